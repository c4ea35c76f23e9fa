"""Pool a CNN feature map ``[B, C, H, W]`` into one vector per image ``[B, C]``.

Pure functions of a non-negative feature map (the last ReLU of the network), none of which
normalises its output: the descriptors do that, after combining scales. :class:`GeM` and
:class:`NetVLAD` are the trainable layers, for fine-tuning. The ONNX engine pools with their numpy
twins (:mod:`lookalike.descriptors.cnn.numpy_pooling`), so that it runs without torch.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lookalike.descriptors.cnn.numpy_pooling import rmac_regions


def mac(x: torch.Tensor) -> torch.Tensor:
    """Maximum activation of convolutions: the spatial max of each channel (Tolias et al. 2016)."""
    return x.amax(dim=(2, 3))


def centre_prior(height: int, width: int, *, device=None) -> torch.Tensor:
    """SPoC's Gaussian weights ``[H, W]``, centred, sigma a third of the centre-to-border distance."""
    sigma = min(height, width) / 2 / 3
    y = torch.arange(height, device=device, dtype=torch.float32) - (height - 1) / 2
    x = torch.arange(width, device=device, dtype=torch.float32) - (width - 1) / 2
    return torch.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / (2 * sigma**2))


def spoc(x: torch.Tensor, *, prior: bool = True) -> torch.Tensor:
    """Sum-pooled convolutional features (Babenko & Lempitsky, ICCV 2015), with the centre prior;
    averaged rather than summed, which only changes the scale."""
    if not prior:
        return x.mean(dim=(2, 3))
    weights = centre_prior(x.shape[2], x.shape[3], device=x.device)
    return (x * weights).sum(dim=(2, 3)) / weights.sum()


def crow(x: torch.Tensor, *, a: float = 2.0, b: float = 2.0, eps: float = 1e-6) -> torch.Tensor:
    """Cross-dimensional weighting (Kalantidis et al., ECCV-W 2016).

    Spatial weights: the channel-summed map, normalised by its ``a``-norm and raised to ``1/b``.
    Channel weights: ``log(sum_j Q_j / Q_k)``, with ``Q_k`` the share of non-zero positions of
    channel ``k`` (rare channels weigh more, like idf).
    """
    total = x.sum(dim=1, keepdim=True)  # [B, 1, H, W]
    norm = total.pow(a).sum(dim=(2, 3), keepdim=True).pow(1 / a)
    spatial = (total / (norm + eps)).pow(1 / b)
    pooled = (x * spatial).sum(dim=(2, 3))
    nonzero = (x > 0).float().mean(dim=(2, 3))  # [B, C]
    channel = torch.log(nonzero.sum(dim=1, keepdim=True) / (nonzero + eps) + eps)
    return pooled * channel


def gem(x: torch.Tensor, p: float | torch.Tensor = 3.0, *, eps: float = 1e-6) -> torch.Tensor:
    """Generalised mean (Radenović et al., PAMI 2018): ``(mean x^p)^(1/p)``; p=1 is average
    pooling and p -> infinity is MAC.

    Computed as ``m (mean (x/m)^p)^(1/p)`` with ``m`` the channel's maximum, so that large ``p``
    does not overflow float32.
    """
    x = x.clamp(min=eps)
    peak = x.amax(dim=(2, 3), keepdim=True)
    return peak[:, :, 0, 0] * (x / peak).pow(p).mean(dim=(2, 3)).pow(1.0 / p)


def rmac(x: torch.Tensor, levels: int = 3, *, transform=None) -> torch.Tensor:
    """Regional MAC: MAC of each region, L2-normalised, ``transform``-ed (the learned PCA-whitening
    of the paper, a function of ``[R, C]`` rows), normalised again and summed."""
    regions = rmac_regions(x.shape[2], x.shape[3], levels)
    vectors = torch.stack([x[:, :, t:t + h, s:s + w].amax(dim=(2, 3)) for t, s, h, w in regions], dim=1)
    vectors = nn.functional.normalize(vectors, dim=-1)  # [B, R, C]
    if transform is not None:
        batch, count, _ = vectors.shape
        vectors = nn.functional.normalize(transform(vectors.reshape(batch * count, -1)), dim=-1)
        vectors = vectors.reshape(batch, count, -1)
    return vectors.sum(dim=1)


class GeM(nn.Module):
    """GeM pooling whose exponent ``p`` is learned with the network."""

    def __init__(self, p: float = 3.0, eps: float = 1e-6) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.tensor(float(p)))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return gem(x, self.p, eps=self.eps)


class NetVLAD(nn.Module):
    """The NetVLAD layer (Arandjelović et al., CVPR 2016): VLAD with a soft, trainable assignment.

    Local features (L2-normalised per position) are softly assigned to ``K`` centres by a 1x1
    convolution and a softmax; the output is the intra-normalised, flattened, L2-normalised sum of
    weighted residuals, ``[B, K * C]``. :meth:`from_centres` initialises it from k-means so that,
    untrained, it is VLAD with a soft assignment: ``w_k = 2 alpha c_k``, ``b_k = -alpha |c_k|^2``.
    """

    def __init__(self, clusters: int, channels: int) -> None:
        super().__init__()
        self.centres = nn.Parameter(torch.zeros(clusters, channels))
        self.assign = nn.Conv2d(channels, clusters, 1, bias=True)

    @classmethod
    def from_centres(cls, centres: torch.Tensor, alpha: float) -> NetVLAD:
        layer = cls(*centres.shape)
        with torch.no_grad():
            layer.centres.copy_(centres)
            layer.assign.weight.copy_((2 * alpha * centres)[:, :, None, None])
            layer.assign.bias.copy_(-alpha * centres.pow(2).sum(dim=1))
        return layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = nn.functional.normalize(x, dim=1)
        soft = self.assign(x).flatten(2).softmax(dim=1)  # [B, K, N]
        features = x.flatten(2)  # [B, C, N]
        # sum_n a_kn (x_n - c_k) = sum_n a_kn x_n - c_k sum_n a_kn
        vlad = soft @ features.transpose(1, 2) - self.centres * soft.sum(dim=2, keepdim=True)
        vlad = nn.functional.normalize(vlad, dim=2)
        return nn.functional.normalize(vlad.flatten(1), dim=1)


def assignment_sharpness(features: torch.Tensor, centres: torch.Tensor, ratio: float = 100.0) -> float:
    """The ``alpha`` for :meth:`NetVLAD.from_centres` that makes a feature's weight on its nearest
    centre ``ratio`` times that on the second nearest, on average over ``features`` ``[N, C]``."""
    distances = torch.cdist(nn.functional.normalize(features, dim=1), centres).pow(2)
    nearest = distances.topk(2, dim=1, largest=False).values
    gap = (nearest[:, 1] - nearest[:, 0]).mean().clamp(min=1e-6)
    return float(math.log(ratio) / gap)
