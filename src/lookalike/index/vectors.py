"""Exact inner-product search with faiss, following faiss's conventions.

Queries are float32 ``(N, D)``; results are ``(scores, ids)``, both ``(N, k)``, scores descending,
ids int64 with -1 where fewer than ``k`` vectors exist.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError


def as_matrix(x: np.ndarray, dim: int, what: str = "queries") -> np.ndarray:
    """Check ``x`` is ``(N, dim)`` (or a single ``(dim,)`` vector) and return it float32, C-contiguous."""
    x = np.asarray(x)
    if x.ndim == 1:
        x = x[None]
    if x.ndim != 2 or x.shape[1] != dim:
        raise LookalikeError(f"{what} should have shape (N, {dim}), got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def new_index(dim: int):
    """An empty exact inner-product index whose ids are chosen by the caller (``add_with_ids``)."""
    import faiss

    return faiss.IndexIDMap2(faiss.IndexFlatIP(dim))


def search(index, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``k`` best ids by inner product for each row of ``x``; see the module docstring."""
    if k < 1:
        raise LookalikeError(f"k={k} should be >= 1")
    x = as_matrix(x, index.d)
    if index.ntotal == 0:
        return np.full((len(x), k), -np.inf, np.float32), np.full((len(x), k), -1, np.int64)
    scores, ids = index.search(x, k)
    scores[ids < 0] = -np.inf
    return scores, ids


def write_atomically(index, path: Path) -> None:
    """Save ``index`` so that ``path`` holds either the old file or the complete new one."""
    import faiss

    tmp = path.with_name(path.name + ".tmp")
    faiss.write_index(index, str(tmp))
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read(path: Path):
    import faiss

    return faiss.read_index(str(path))
