"""Near-duplicate groups of image files or of a collection, best copy first.

The grouping itself (range search, connected components) is :mod:`lookalike.index.duplicates`;
this module feeds it vectors, resolutions and file sizes, and turns rows back into files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.descriptors.base import Descriptor
from lookalike.errors import ImageError, LookalikeError
from lookalike.index.collection import Collection
from lookalike.index.duplicates import find_groups, preset_threshold
from lookalike.io.files import find_images
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import extract

#: a group member: path, width, height, bytes, score (to the best copy), and id (collections only)
Member = dict


def choose_threshold(descriptor: Descriptor, threshold: float | None, preset: str | None) -> float:
    """``threshold`` if given, else the preset's (``near`` by default), which needs the descriptor
    the presets were calibrated for."""
    from lookalike.descriptors.registry import DEFAULT_NAME, default_descriptor

    if threshold is not None:
        if not -1.0 <= threshold <= 1.0:
            raise LookalikeError(f"--threshold {threshold}: a cosine similarity, between -1 and 1")
        return threshold
    preset = preset or "near"
    value = preset_threshold(preset)
    # the name first: a non-default descriptor must not need the default's extra to be refused
    if descriptor.name != DEFAULT_NAME or descriptor.spec()["config"] != default_descriptor().spec()["config"]:
        raise LookalikeError(f"the presets are calibrated for the default descriptor (gem at 3 scales), not "
                             f"{descriptor.name} {descriptor.spec()['config']}; give --threshold instead of --preset")
    return value


def collection_duplicates(collection: Collection, threshold: float) -> list[list[Member]]:
    """Groups of near-duplicates among a collection's stored vectors."""
    ids, vectors = collection.metadata.vectors()
    rows = collection.lookup(ids)
    pixels = np.array([r["width"] * r["height"] for r in rows])
    sizes = np.array([r["bytes"] for r in rows])
    return [[{**rows[m], "score": float(s)} for m, s in zip(g.members, g.scores)]
            for g in find_groups(vectors, threshold, pixels, sizes)]


def file_duplicates(
    paths: list[str | Path], descriptor: Descriptor, threshold: float | None = None, preset: str | None = None, *,
    workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True,
) -> tuple[list[list[Member]], list[ImageError]]:
    """Describe the images under ``paths`` and group their near-duplicates; also return the
    files that could not be used."""
    chosen = choose_threshold(descriptor, threshold, preset)
    members, vectors, skipped = [], [], []
    for path, result in extract(descriptor, find_images(paths), workers=workers, max_pixels=max_pixels,
                                progress="describing" if progress else None):
        if isinstance(result, ImageError):
            skipped.append(result)
            continue
        members.append({"path": str(path), "width": result.width, "height": result.height,
                        "bytes": path.stat().st_size})
        vectors.append(result.vector)
    if not members:
        return [], skipped
    pixels = np.array([m["width"] * m["height"] for m in members])
    sizes = np.array([m["bytes"] for m in members])
    return [[{**members[m], "score": float(s)} for m, s in zip(g.members, g.scores)]
            for g in find_groups(np.stack(vectors), chosen, pixels, sizes)], skipped
