"""The pooling functions of :mod:`lookalike.descriptors.cnn.pooling` in numpy, for the ONNX engine.

ONNX Runtime gives the feature map as a numpy array, and importing torch only to pool it costs
seconds at start-up (``docs/benchmarks.md``, issue 14), so a search on the ONNX engine pools here.
Each function computes what its torch twin does, in the same order of operations, and the tests
hold the two together on real feature maps; the torch ones stay for training, where gradients
flow through them. ``x`` is a non-negative float32 feature map ``[B, C, H, W]``; the output is
``[B, C]`` float32, not normalised.
"""

from __future__ import annotations

import math

import numpy as np

from lookalike.norms import l2_normalise


def average(x: np.ndarray) -> np.ndarray:
    """The spatial mean of each channel (the classifier's input, ``cnn-fc``)."""
    return x.mean(axis=(2, 3), dtype=np.float32)


def mac(x: np.ndarray) -> np.ndarray:
    """Maximum activation of convolutions (Tolias et al. 2016)."""
    return x.max(axis=(2, 3))


def centre_prior(height: int, width: int) -> np.ndarray:
    """SPoC's Gaussian weights ``[H, W]``, centred, sigma a third of the centre-to-border distance."""
    sigma = min(height, width) / 2 / 3
    y = np.arange(height, dtype=np.float32) - np.float32((height - 1) / 2)
    x = np.arange(width, dtype=np.float32) - np.float32((width - 1) / 2)
    return np.exp(-(y[:, None] ** 2 + x[None, :] ** 2) / np.float32(2 * sigma**2))


def spoc(x: np.ndarray, *, prior: bool = True) -> np.ndarray:
    """Sum-pooled convolutional features with the centre prior (Babenko & Lempitsky, ICCV 2015), averaged."""
    if not prior:
        return average(x)
    weights = centre_prior(x.shape[2], x.shape[3])
    return (x * weights).sum(axis=(2, 3)) / weights.sum()


def crow(x: np.ndarray, *, a: float = 2.0, b: float = 2.0, eps: float = 1e-6) -> np.ndarray:
    """Cross-dimensional weighting (Kalantidis et al., ECCV-W 2016); see :func:`pooling.crow`."""
    total = x.sum(axis=1, keepdims=True)  # [B, 1, H, W]
    norm = (total**a).sum(axis=(2, 3), keepdims=True) ** np.float32(1 / a)
    spatial = (total / (norm + np.float32(eps))) ** np.float32(1 / b)
    pooled = (x * spatial).sum(axis=(2, 3))
    nonzero = (x > 0).mean(axis=(2, 3), dtype=np.float32)  # [B, C]
    channel = np.log(nonzero.sum(axis=1, keepdims=True) / (nonzero + np.float32(eps)) + np.float32(eps))
    return pooled * channel


def gem(x: np.ndarray, p: float = 3.0, *, eps: float = 1e-6) -> np.ndarray:
    """Generalised mean (Radenović et al., PAMI 2018), ``m (mean (x/m)^p)^(1/p)`` with ``m`` the
    channel's maximum, so that large ``p`` does not overflow float32."""
    x = np.maximum(x, np.float32(eps))
    peak = x.max(axis=(2, 3), keepdims=True)
    return peak[:, :, 0, 0] * ((x / peak) ** np.float32(p)).mean(axis=(2, 3)) ** np.float32(1.0 / p)


def rmac_regions(height: int, width: int, levels: int = 3, overlap: float = 0.4) -> list[tuple[int, int, int, int]]:
    """R-MAC's square regions ``(top, left, size, size)`` on an ``H x W`` map (Tolias et al., ICLR 2016).

    At level ``l = 1..L`` the side is ``2 min(H, W) / (l + 1)``; ``l`` regions fit along the short
    side and ``l + m - 1`` along the long one, ``m`` chosen once so that the level-1 regions
    overlap by the amount closest to ``overlap``.
    """
    short, long_ = min(height, width), max(height, width)
    m = 1
    if long_ > short:  # how many level-1 squares to lay along the long side (2..7, as in the paper)
        def share(n: int) -> float:
            return (short - (long_ - short) / (n - 1)) / short
        m = min(range(2, 8), key=lambda n: abs(share(n) - overlap))
    regions = []
    for level in range(1, levels + 1):
        side = max(1, math.floor(2 * short / (level + 1)))
        along_short, along_long = level, level + m - 1
        rows, cols = (along_short, along_long) if height <= width else (along_long, along_short)
        for top in _starts(height, side, rows):
            for left in _starts(width, side, cols):
                regions.append((top, left, side, side))
    return regions


def _starts(length: int, side: int, count: int) -> list[int]:
    if count == 1:
        return [(length - side) // 2]
    step = (length - side) / (count - 1)
    return [round(i * step) for i in range(count)]


def rmac(x: np.ndarray, levels: int = 3) -> np.ndarray:
    """Regional MAC: MAC of each region, L2-normalised and summed (no regional whitening)."""
    regions = rmac_regions(x.shape[2], x.shape[3], levels)
    vectors = np.stack([x[:, :, t:t + h, s:s + w].max(axis=(2, 3)) for t, s, h, w in regions], axis=1)
    return l2_normalise(vectors).sum(axis=1)  # [B, R, C] -> [B, C]
