"""Learn what a descriptor needs (PCA, a vocabulary, a GMM, idf) from a set of training images."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lookalike.descriptors.aggregated import AggregatedDescriptor, evenly_spaced
from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import extract

#: Local descriptors kept per training image: enough for k-means, bounded in memory.
PER_IMAGE = 300


def training_sample(descriptor: AggregatedDescriptor, pixels: np.ndarray) -> np.ndarray:
    """Up to PER_IMAGE local descriptors of one image, evenly spaced (deterministic)."""
    return evenly_spaced(descriptor.local_features(pixels).descriptors, PER_IMAGE)


def train_descriptor(
    descriptor: AggregatedDescriptor, paths: list[Path], out: str | Path, *, max_images: int = 1000,
    workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, seed: int = 0,
    progress: bool = True,
) -> tuple[AggregatedDescriptor, dict]:
    """Fit ``descriptor`` on local features of (an evenly spaced subset of) ``paths``.

    Returns the trained descriptor (its ``vocabulary`` option names ``out``) and a report with
    the number of images and descriptors used and the seconds spent describing and learning.
    """
    if not isinstance(descriptor, AggregatedDescriptor):
        raise LookalikeError(f"{descriptor.name} learns nothing; it needs no training")
    paths = evenly_spaced(list(paths), max_images)
    start = time.perf_counter()
    per_image, skipped = [], 0
    for _, result in extract(descriptor, paths, workers=workers, max_pixels=max_pixels,
                             progress="training sample" if progress else None, compute=training_sample):
        if isinstance(result, ImageError):
            skipped += 1
        else:
            per_image.append(result.vector)
    described = time.perf_counter() - start
    total = sum(len(x) for x in per_image)
    trained = descriptor.fit(per_image, out, seed=seed)
    return trained, {
        "images": len(per_image), "skipped": skipped, "descriptors": total,
        "describe_seconds": described, "learn_seconds": time.perf_counter() - start - described,
        "vocabulary": str(out),
    }
