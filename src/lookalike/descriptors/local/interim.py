"""Interim local-feature extractor registry (SIFT only), until the rerank branch's lands."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from lookalike.descriptors.local.sift import LocalFeatures, SiftConfig, extract_sift
from lookalike.errors import LookalikeError


class Sift:
    name = "sift"

    def __init__(self, config: SiftConfig | None = None, **overrides: Any) -> None:
        self.config = dataclasses.replace(config or SiftConfig(max_keypoints=1000), **overrides)

    @property
    def max_side(self) -> int:
        return self.config.max_side

    def __call__(self, image: np.ndarray) -> LocalFeatures:
        return extract_sift(image, self.config)

    def spec(self) -> dict[str, Any]:
        return {"name": self.name, "config": dataclasses.asdict(self.config)}


def create_local(name: str, **overrides: Any) -> Sift:
    if name != "sift":
        raise LookalikeError(f"unknown local features {name!r}; choose one of: sift")
    return Sift(**overrides)


def local_from_spec(spec: dict[str, Any]) -> Sift:
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
    return create_local(spec["name"], **config)
