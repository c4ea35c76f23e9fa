"""Spatial pyramids (Lazebnik, Schmid & Ponce, CVPR 2006): aggregate per grid cell, concatenate."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from lookalike.descriptors.aggregate.checks import local_descriptors
from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise


def pyramid_cells(xy: np.ndarray, size: tuple[int, int], levels: Sequence[int] = (1, 2, 4)) -> np.ndarray:
    """Cell index ``(T, len(levels))`` of each keypoint at each level of ``g x g`` grids, row by row."""
    xy = np.asarray(xy, dtype=np.float64)
    w, h = size
    columns = []
    for g in levels:
        col = np.clip((xy[:, 0] * g / w).astype(np.int64), 0, g - 1)
        row = np.clip((xy[:, 1] * g / h).astype(np.int64), 0, g - 1)
        columns.append(row * g + col)
    return np.stack(columns, axis=1) if columns else np.zeros((len(xy), 0), np.int64)


def spatial_pyramid(
    x: np.ndarray, xy: np.ndarray, size: tuple[int, int], encode: Callable[[np.ndarray], np.ndarray],
    levels: Sequence[int] = (1, 2, 4),
) -> np.ndarray:
    """Encode the descriptors ``x (T, D)`` of each cell of a pyramid and concatenate, L2-normalised.

    Args:
        xy: ``(T, 2)`` keypoint positions (x, y) in an image of ``size = (width, height)``.
        encode: any aggregation of a ``(T_cell, D)`` array to a fixed-length vector, e.g.
            ``lambda x: vlad_encode(x, centers)``.
        levels: grid sizes; (1, 2, 4) gives 1 + 4 + 16 = 21 cells.

    Cells come level by level, and row by row within a level.
    """
    x = local_descriptors(x)
    if len(xy) != len(x):
        raise LookalikeError(f"{len(xy)} positions for {len(x)} descriptors")
    cells = pyramid_cells(xy, size, levels)
    parts = [encode(x[cells[:, level] == cell]) for level, g in enumerate(levels) for cell in range(g * g)]
    return l2_normalise(np.concatenate(parts)).astype(np.float32)
