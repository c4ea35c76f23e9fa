"""A descriptor that kills its own process on tall images, to test worker-crash recovery."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from lookalike.descriptors import Descriptor
from lookalike.descriptors.base import DescriptorConfig


@dataclass(frozen=True)
class CrashingConfig(DescriptorConfig):
    max_side: int = 64  # decode small


class Crashing(Descriptor):
    """Mean colour, except that a portrait image ends the process like a segfaulting decoder (2024)."""

    name = "crashing"
    Config = CrashingConfig
    raw_dim = 3

    def compute(self, image: np.ndarray) -> np.ndarray:
        if image.shape[0] > image.shape[1]:
            os._exit(139)
        return image.reshape(-1, 3).mean(axis=0).astype(np.float32)


class FailsInWorkers(Crashing):
    """Builds in the parent, but refuses to in any worker process: a worker that cannot start."""

    name = "fails-in-workers"

    def validate(self) -> None:
        import multiprocessing

        if multiprocessing.parent_process() is not None:
            raise RuntimeError("no model in this process")
