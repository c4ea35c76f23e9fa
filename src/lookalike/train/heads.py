"""The trainable heads over frozen inputs, and the files they are saved as.

* :func:`save_netvlad`: the NetVLAD layer (Arandjelović et al., CVPR 2016) over the backbone's
  last feature map, starting from its k-means initialisation
  (:func:`~lookalike.descriptors.cnn.registered.netvlad_from_file`); trained with a
  ranking loss, its centres and soft assignment are saved in the same ``.npz`` the ``netvlad``
  descriptor reads through ``-s vocabulary=``.
* :class:`FisherMlp` / :func:`save_fvfc`: the Fisher vector + fully connected hybrid
  (Perronnin & Larlus, CVPR 2015): PCA-reduced Fisher vectors of SIFT through a small MLP,
  saved with the GMM and the PCA for the ``fvfc`` descriptor.
* :class:`AttentionPooling`: DELF's attention head (Noh et al., ICCV 2017) with the
  attention-weighted mean it is trained through; the head alone is saved for ``delf``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
from torch import nn

from lookalike.descriptors.aggregate.trained import save_arrays
from lookalike.descriptors.cnn.local import AttentionHead
from lookalike.descriptors.cnn.pooling import NetVLAD


def save_netvlad(layer: NetVLAD, alpha: float, out: str | Path, report: dict) -> Path:
    """Write a trained NetVLAD layer where the ``netvlad`` descriptor reads its centres."""
    weight = layer.assign.weight.detach()[:, :, 0, 0]
    return save_arrays(out, "netvlad", k=len(weight), centres=layer.centres.detach().numpy().astype(np.float32),
                       alpha=np.float32(alpha), assign_weight=weight.numpy().astype(np.float32),
                       assign_bias=layer.assign.bias.detach().numpy().astype(np.float32),
                       training=json.dumps(report))


class FisherMlp(nn.Module):
    """``[B, D]`` PCA-reduced Fisher vectors -> ``[B, out]`` L2-normalised: Linear, ReLU, Linear."""

    def __init__(self, dim: int, hidden: int = 1024, out: int = 256) -> None:
        super().__init__()
        self.layers = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.layers(x), dim=1)


def save_fvfc(out: str | Path, fisher: dict[str, np.ndarray], pca_mean: np.ndarray, pca_components: np.ndarray,
              mlp: FisherMlp, report: dict) -> Path:
    """Write the whole hybrid for the ``fvfc`` descriptor: the Fisher model's arrays (GMM and SIFT
    PCA, as ``lookalike train -d fisher`` wrote them), the Fisher-vector PCA and the MLP."""
    first, second = mlp.layers[0], mlp.layers[2]
    arrays = {key: value for key, value in fisher.items() if key != "kind"}
    return save_arrays(out, "fvfc", **arrays, fv_mean=pca_mean.astype(np.float32),
                       fv_components=pca_components.astype(np.float32),
                       w1=first.weight.detach().numpy(), b1=first.bias.detach().numpy(),
                       w2=second.weight.detach().numpy(), b2=second.bias.detach().numpy(),
                       training=json.dumps(report))


class AttentionPooling(nn.Module):
    """DELF's training-time pooling: ``[B, C, h, w]`` -> the attention-weighted mean of the
    features ``[B, C]`` (:meth:`pooled`, what the classifier reads), L2-normalised by ``forward``
    (what the validation ranks)."""

    def __init__(self, head: AttentionHead) -> None:
        super().__init__()
        self.head = head

    def pooled(self, x: torch.Tensor) -> torch.Tensor:
        weights = self.head(x)  # [B, h, w]
        return (x * weights[:, None]).mean(dim=(2, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.pooled(x), dim=1)
