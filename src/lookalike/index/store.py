"""Where a collection's vectors are searched: the interface, and the choice made at creation.

A :class:`~lookalike.index.Collection` keeps its truth in SQLite (ids, paths, vectors) and asks a
vector store to search. Two stores exist:

* ``faiss`` (:mod:`lookalike.index.faiss_store`, the default): a faiss index in memory, saved in
  the collection folder as ``index-<generation>.faiss``;
* ``milvus`` (:mod:`lookalike.index.milvus_store`, extra ``[scale]``): a Milvus collection, in an
  embedded milvus-lite file inside the folder or on a Milvus server given by URI.

Both hold the same ids as SQLite, remove by id, filter a search to a set of ids, and are rebuilt
from SQLite when they lag behind it. The store and its address are written in the manifest
(``"store": {"kind": ..., ...}``), so later opens use the same one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from lookalike.errors import CollectionError

#: the stores a collection can be created with
KINDS = ("faiss", "milvus")


class VectorStore(ABC):
    """The vectors of one collection, searchable by inner product; ids are SQLite's."""

    #: True when the store had to be rebuilt from SQLite on opening (stale or damaged)
    rebuilt: bool = False
    #: which file did not match its checksum, if one did not
    damaged: str | None = None

    @abstractmethod
    def __len__(self) -> int:
        """Number of vectors stored."""

    @property
    @abstractmethod
    def exact(self) -> bool:
        """True while a structure that needs training searches exactly, waiting for vectors."""

    @abstractmethod
    def search(self, x: np.ndarray, k: int, *, within: np.ndarray | None = None,
               **parameters: Any) -> tuple[np.ndarray, np.ndarray]:
        """``x (N, D)`` float32 -> ``(scores, ids)``, each ``(N, k)``, -1 / -inf past the last hit;
        ``within``: search only these ids; ``parameters``: nprobe, efSearch, k_factor (None: default)."""

    @abstractmethod
    def update(self, added: list[int], vectors: np.ndarray | None, removed: list[int]) -> None:
        """Follow one committed SQLite write: ``added`` ids with their ``vectors (A, D)``, ``removed`` ids."""

    @abstractmethod
    def train(self, vectors: np.ndarray) -> None:
        """Train the structure on ``vectors (N, D)`` and rebuild it from SQLite."""

    @abstractmethod
    def reindex(self, factory: str, training: np.ndarray | None = None) -> None:
        """Change the structure to ``factory`` (the manifest already says so) and rebuild it,
        trained on ``training (N, D)`` if given, else on the stored vectors."""

    def check_structure(self, factory: str) -> None:
        """Raise :class:`LookalikeError` unless this store can hold ``factory`` (before a reindex commits)."""

    @abstractmethod
    def save(self) -> None:
        """Make what was written durable (writable stores only)."""

    @abstractmethod
    def close(self) -> None:
        """Release what the store holds open."""

    @abstractmethod
    def state(self) -> str:
        """One line on what the structure is now, for ``lookalike info``."""

    @abstractmethod
    def info(self) -> dict[str, Any]:
        """The store's own part of ``lookalike info``."""


def store_spec(kind: str = "faiss", uri: str | None = None, index: str = "Flat") -> dict[str, Any]:
    """The manifest's ``store`` entry for a new collection whose structure is ``index``; checked
    before anything is written."""
    if kind not in KINDS:
        raise CollectionError(f"store {kind!r}: choose one of {', '.join(KINDS)}")
    if kind == "faiss":
        if uri is not None:
            raise CollectionError(f"--milvus-uri {uri!r} is for --store milvus only")
        return {"kind": "faiss"}
    from lookalike.index.milvus_store import new_spec

    return new_spec(uri, index)


def open_store(collection: Any) -> VectorStore:
    """The store named in ``collection``'s manifest (faiss for collections made before stores)."""
    kind = collection.manifest.get("store", {}).get("kind", "faiss")
    if kind == "faiss":
        from lookalike.index.faiss_store import FaissStore

        return FaissStore(collection)
    if kind == "milvus":
        from lookalike.index.milvus_store import MilvusStore

        return MilvusStore(collection)
    raise CollectionError(f"{collection.path}: unknown vector store {kind!r} in the manifest; "
                          f"this lookalike knows {', '.join(KINDS)}")
