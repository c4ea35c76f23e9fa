"""Exact Hamming search over sign bits, behind the float interface of every other structure.

A binary descriptor (``phash``) returns ``±1/sqrt(D)`` vectors, whose inner product is
``1 - 2 h / D`` for a Hamming distance ``h``: ranking by either is the same. Stored as floats
they would cost ``4 D`` bytes; the ``BFlat`` structure keeps ``D / 8`` bytes of sign bits in a
faiss binary index (popcount search, one 64-bit word per 64-bit hash) and answers in the same
``(scores, ids)`` form, with ``score = 1 - 2 h / D``, so a collection cannot tell the difference.
"""

from __future__ import annotations

import numpy as np

from lookalike.errors import LookalikeError

#: the factory string of the exact Hamming structure
BINARY_FLAT = "BFlat"


def pack_signs(x: np.ndarray) -> np.ndarray:
    """Sign bits of ``x (N, D)``, positive = 1, packed ``(N, D / 8)`` uint8, first value in the high bit."""
    return np.packbits(np.asarray(x) > 0, axis=1)


class HammingIndex:
    """faiss's ``IndexBinaryIDMap2(IndexBinaryFlat)`` with float vectors in and similarities out.

    Implements the part of faiss's ``Index`` interface that collections use: ``d``, ``ntotal``,
    ``is_trained``, ``train``, ``add_with_ids``, ``remove_ids`` and ``search``.
    """

    is_trained = True

    def __init__(self, dim: int, index=None) -> None:
        import faiss

        if dim < 8 or dim % 8:
            raise LookalikeError(f"{BINARY_FLAT} stores bits in bytes: the dimension must be a multiple of 8, "
                                 f"not {dim}")
        self.d = dim
        self.index = index if index is not None else faiss.IndexBinaryIDMap2(faiss.IndexBinaryFlat(dim))

    @property
    def ntotal(self) -> int:
        return self.index.ntotal

    def train(self, x: np.ndarray) -> None:
        """Nothing to learn: exact search."""

    def add_with_ids(self, x: np.ndarray, ids: np.ndarray) -> None:
        self.index.add_with_ids(pack_signs(x), np.ascontiguousarray(ids, dtype=np.int64))

    def remove_ids(self, ids: np.ndarray) -> int:
        return self.index.remove_ids(np.ascontiguousarray(ids, dtype=np.int64))

    def search(self, x: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``(scores, ids)``, each ``(N, k)``: ``score = 1 - 2 h / D``, best first; ids -1 past the end."""
        distances, ids = self.index.search(pack_signs(x), k)
        return (1.0 - 2.0 * distances / self.d).astype(np.float32), ids

    def serialize(self) -> np.ndarray:
        """The index as faiss writes it to a file: ``(bytes,)`` uint8."""
        import faiss

        return faiss.serialize_index_binary(self.index)

    @classmethod
    def deserialize(cls, data: np.ndarray) -> HammingIndex:
        import faiss

        index = faiss.deserialize_index_binary(data)
        return cls(index.d, index)
