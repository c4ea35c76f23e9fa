"""Exact inner-product search with faiss, following faiss's conventions.

Queries are float32 ``(N, D)``; results are ``(scores, ids)``, both ``(N, k)``, scores descending,
ids int64 with -1 where fewer than ``k`` vectors exist.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError


def as_matrix(x: np.ndarray, dim: int, what: str = "queries") -> np.ndarray:
    """Check ``x`` is ``(N, dim)`` (or a single ``(dim,)`` vector) and return it float32, C-contiguous."""
    if type(x) is np.ndarray and x.dtype == np.float32 and x.ndim == 2 and x.shape[1] == dim and x.flags.c_contiguous:
        return x  # the common case, checked cheaply: single queries are searched in microseconds
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


def search(index, x: np.ndarray, k: int, dim: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``k`` best ids by inner product for each row of ``x``; see the module docstring.

    ``dim`` saves asking faiss for ``index.d`` on every call.
    """
    if k < 1:
        raise LookalikeError(f"k={k} should be >= 1")
    scores, ids = index.search(as_matrix(x, dim or index.d), k)
    last = ids[0, -1] if len(ids) == 1 else ids[:, -1].min()  # (a single query: no numpy reduction)
    if last < 0:  # fewer than k results: faiss pads with -1 and a huge negative score
        scores[ids < 0] = -np.inf
    return scores, ids


def write_atomically(index, path: Path) -> str:
    """Save ``index`` so that ``path`` holds either the old file or the complete new one; return
    the sha256 of what was written."""
    import faiss

    from lookalike.index.binary import HammingIndex

    # (bytes,) uint8: hashed and written from one copy
    data = index.serialize() if isinstance(index, HammingIndex) else faiss.serialize_index(index)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        f.write(memoryview(data))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return hashlib.sha256(memoryview(data)).hexdigest()


def read(path: Path, sha256: str | None = None, binary: bool = False):
    """The index saved at ``path``, or None if its bytes do not match ``sha256`` or, when no
    checksum is known, faiss cannot read them (a truncated or overwritten file). ``binary`` for a
    :class:`~lookalike.index.binary.HammingIndex`."""
    import faiss

    from lookalike.index.binary import HammingIndex

    data = path.read_bytes()
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        return None
    try:
        codes = np.frombuffer(data, dtype=np.uint8)
        return HammingIndex.deserialize(codes) if binary else faiss.deserialize_index(codes)
    except RuntimeError:
        return None


def read_mapped(path: Path):
    """The index saved at ``path`` with its vectors mapped from the file instead of read: opening
    costs nothing whatever the size, and the pages load as searches touch them. Only for an index
    that will not change (faiss cannot add to mapped vectors) in a file that is replaced, never
    rewritten in place (:func:`write_atomically`); None if faiss cannot read it."""
    import faiss

    try:
        return faiss.read_index(str(path), faiss.IO_FLAG_MMAP_IFC)
    except RuntimeError:
        return None
