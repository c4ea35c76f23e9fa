"""Learn what a descriptor needs from a set of training images: its vocabulary (PCA, k-means or
GMM, idf; NetVLAD's centres), or a PCA-whitening of its vectors."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from lookalike.descriptors.base import Descriptor
from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import extract
from lookalike.postprocess.whitening import PCAWhitening
from lookalike.sampling import evenly_spaced


def _training_sample(descriptor: Descriptor, image):
    return descriptor.training_sample(image)


def describe_all(descriptor: Descriptor, paths: list[Path], *, progress: str | None, compute=None,
                 workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS) -> tuple[list, int]:
    """What ``extract`` gives for the images that could be described, and how many could not."""
    arrays, skipped = [], 0
    for _, result in extract(descriptor, paths, compute=compute, progress=progress, workers=workers,
                             max_pixels=max_pixels):
        if isinstance(result, ImageError):
            skipped += 1
        else:
            arrays.append(result.vector)
    return arrays, skipped


def train_descriptor(
    descriptor: Descriptor, paths: list[Path], out: str | Path, *, max_images: int = 1000,
    workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, seed: int = 0,
    progress: bool = True,
) -> tuple[Descriptor, dict]:
    """Fit ``descriptor``'s vocabulary on local features of (an evenly spaced subset of) ``paths``.

    Returns the trained descriptor (its ``vocabulary`` option names ``out``) and a report with
    the number of images and descriptors used and the seconds spent describing and learning.
    """
    if not hasattr(descriptor, "fit"):
        raise LookalikeError(f"{descriptor.name} learns no vocabulary; to whiten it use --whiten")
    paths = evenly_spaced(list(paths), max_images)
    start = time.perf_counter()
    per_image, skipped = describe_all(descriptor, paths, progress="training sample" if progress else None,
                                      compute=_training_sample, workers=workers, max_pixels=max_pixels)
    if not per_image:
        raise LookalikeError(f"none of the {len(paths)} training images could be described")
    described = time.perf_counter() - start
    trained = descriptor.fit(per_image, out, seed=seed)
    return trained, {
        "images": len(per_image), "skipped": skipped, "descriptors": sum(len(x) for x in per_image),
        "describe_seconds": described, "learn_seconds": time.perf_counter() - start - described,
        "vocabulary": str(out),
    }


def train_whitening(
    descriptor: Descriptor, paths: list[Path], out: str | Path, *, dim: int = 0, shrinkage: float = 0.0,
    max_images: int = 5000, workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: bool = True,
) -> tuple[Descriptor, dict]:
    """Learn a :class:`PCAWhitening` of ``descriptor``'s vectors on ``paths`` and save it to ``out``.

    Returns the descriptor that applies it (its ``whitening`` option names ``out``) and a report.
    """
    if descriptor.config.whitening:
        raise LookalikeError(f"{descriptor.name} is already whitened by {descriptor.config.whitening}")
    if not descriptor.trained:
        raise LookalikeError(f"{descriptor.name} needs its vocabulary before it can be whitened")
    paths = evenly_spaced(list(paths), max_images)
    start = time.perf_counter()
    vectors, skipped = describe_all(descriptor, paths, progress="whitening sample" if progress else None,
                                    workers=workers, max_pixels=max_pixels)
    if len(vectors) < 2:
        raise LookalikeError(f"only {len(vectors)} of the {len(paths)} training images could be described")
    described = time.perf_counter() - start
    PCAWhitening(dim, shrinkage=shrinkage).fit(np.stack(vectors)).save(out)
    whitened = type(descriptor)(descriptor.config, whitening=str(Path(out).resolve()))
    return whitened, {
        "images": len(vectors), "skipped": skipped, "dim": whitened.dim,
        "describe_seconds": described, "learn_seconds": time.perf_counter() - start - described,
        "whitening": str(out),
    }
