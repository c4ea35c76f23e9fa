"""Deep features: an offline pretrained backbone, the engines that run it, and pooling functions.

The pooling functions map a feature map ``[B, C, H, W]`` to ``[B, C]``; the registered
descriptors built on them live in :mod:`lookalike.descriptors.cnn.registered`. The names below
load :mod:`~lookalike.descriptors.cnn.pooling` (and torch) on first use only, so that the ONNX
engine's modules in this package can be imported without torch.
"""

from __future__ import annotations

import importlib

__all__ = ["GeM", "NetVLAD", "crow", "gem", "mac", "rmac", "rmac_regions", "spoc"]


def __getattr__(name: str):
    if name in __all__:
        return getattr(importlib.import_module("lookalike.descriptors.cnn.pooling"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
