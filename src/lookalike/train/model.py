"""The network being fine-tuned, and the one-file model it is saved as.

A model file is ``torch.save`` of plain data, readable with ``torch.load(weights_only=True)``::

    {"format": "lookalike-finetuned/1",
     "state_dict": {...},   # the backbone's own state dict (no ImageNet classifier)
     "config": {...}}       # JSON data: backbone, pooling, learned p, and how it was trained

:func:`lookalike.descriptors.cnn.backbone.load_backbone` reads ``state_dict`` from it as from any
weights file, and the ``gem`` descriptor takes ``p`` from ``config`` unless ``-s p=`` says otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from lookalike.descriptors.cnn.backbone import build_backbone
from lookalike.descriptors.cnn.pooling import GeM

FORMAT = "lookalike-finetuned/1"


class RetrievalNet(nn.Module):
    """Pixels ``[B, 3, H, W]`` (0..255) -> L2-normalised GeM descriptors ``[B, C]``.

    With ``classes`` > 0 it also holds a linear classifier over the pooled features, for the
    classification loss ("neural codes", Babenko et al. ECCV 2014); the descriptor never uses it.
    """

    def __init__(self, backbone: str = "efficientnet-lite0", weights: str = "", p: float = 3.0,
                 classes: int = 0) -> None:
        super().__init__()
        self.backbone_name = backbone
        self.backbone = build_backbone(backbone, weights)
        self.backbone.classifier = None  # the ImageNet head is neither trained nor saved
        if hasattr(self.backbone.features, "network"):
            self.backbone.features.network._fc = None
        self.pool = GeM(p)
        self.classifier = nn.Linear(self.backbone.channels, classes) if classes else None

    def pooled(self, pixels: torch.Tensor) -> torch.Tensor:
        """``[B, C]`` GeM-pooled features, not normalised."""
        return self.pool(self.backbone(pixels))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(self.pooled(pixels), dim=1)

    def backbone_state(self) -> dict[str, torch.Tensor]:
        """The backbone's weights under the names its weights files use."""
        network = getattr(self.backbone.features, "network", self.backbone.features)
        return {k: v.detach().cpu().clone() for k, v in network.state_dict().items()}


def save_model(net: RetrievalNet, path: str | Path, config: dict) -> Path:
    """Write the one-file model (atomically): weights, and ``config`` plus backbone and p."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    full = {"backbone": net.backbone_name, "pooling": "gem", "p": float(net.pool.p.detach()), **config}
    tmp = path.with_name(path.name + ".tmp")
    torch.save({"format": FORMAT, "state_dict": net.backbone_state(), "config": full}, tmp)
    os.replace(tmp, path)
    return path
