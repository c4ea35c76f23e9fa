"""The faiss vector store: a faiss index in memory, saved in the collection folder.

Files in ``DIR/``::

    index-<gen>.faiss    the search structure, valid for SQLite generation <gen>
    trained.faiss        a structure that learns (IVF, PQ, PCA), trained and still empty

The structure is a faiss factory string (:mod:`lookalike.index.structures`), ``Flat`` by default.
One that must be trained waits for enough vectors (or :meth:`Collection.train_index`); until
then the collection searches exactly, and says so in :meth:`Collection.info`.

The faiss file is saved atomically (write, fsync, rename) under the generation it reflects. On
opening, a missing or older faiss file is rebuilt from the vectors in SQLite. SQLite also keeps
the sha256 of each faiss file: one that was overwritten or truncated is rebuilt from SQLite too,
so SQLite alone is always enough. Opened read-only, a stale or damaged faiss file is rebuilt in
memory only.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from lookalike.index import structures
from lookalike.index import vectors as flat
from lookalike.index.store import VectorStore
from lookalike.sampling import evenly_spaced

TRAINED = "trained.faiss"
#: vectors a structure is trained on, at most (evenly spaced over the collection)
TRAINING_SAMPLE = 100_000
#: search parameters used unless a query sets its own (faiss's defaults, nprobe=1 and
#: efSearch=16, trade too much recall for speed)
DEFAULT_SEARCH = {"nprobe": 16, "efSearch": 64, "k_factor": 4}
#: what the exact structure looks like (built here, or by the factory from "Flat")
EXACT = ("IndexIDMap2(IndexFlatIP)", "IndexIDMap2(IndexFlat)")
#: prefix of the ``state`` keys that hold "<sha256> <size> <mtime_ns>" of a faiss file, by file name
CHECKSUM = "sha256 "


class FaissStore(VectorStore):
    """A collection's faiss index: loaded (or rebuilt from SQLite) on opening, saved on closing."""

    def __init__(self, collection: Any) -> None:
        self.path: Path = collection.path
        self.dim: int = collection.dim
        self.factory: str = collection.factory
        self.writable: bool = collection.writable
        self.metadata = collection.metadata
        self.rebuilt = False  # True when the faiss file was stale or damaged and had to be rebuilt
        self.damaged: str | None = None  # which faiss file did not match its checksum
        self._index = self._load_index()
        self._saved_generation = self.metadata.generation if not self.rebuilt else -1

    def __len__(self) -> int:
        return int(self._index.ntotal)

    @property
    def _index(self):
        return self._structure

    @_index.setter
    def _index(self, index) -> None:
        """Use ``index`` from now on, and note what searching it needs."""
        self._structure = index
        self._exact = self.factory != "Flat" and structures.describe(index) in EXACT
        applicable = set() if self._exact else structures.parameters_of(index)
        self._defaults = {k: v for k, v in DEFAULT_SEARCH.items() if k in applicable}
        self._parameters: dict = {}  # what is set on the structure now

    @property
    def exact(self) -> bool:
        return self._exact

    def search(self, x: np.ndarray, k: int, *, within: np.ndarray | None = None, nprobe: int | None = None,
               efSearch: int | None = None, k_factor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        given = (nprobe, efSearch, k_factor) != (None, None, None)
        if not self._exact and (given or self._parameters != self._defaults):  # else nothing to set
            wanted = dict(self._defaults)
            wanted.update((name, value) for name, value in
                          (("nprobe", nprobe), ("efSearch", efSearch), ("k_factor", k_factor)) if value is not None)
            changed = {name: value for name, value in wanted.items() if self._parameters.get(name) != value}
            structures.set_search_parameters(self._structure, **changed)
            self._parameters.update(changed)
        if within is not None:
            return structures.search_within(self._structure, flat.as_matrix(x, self.dim), k, within)
        return flat.search(self._structure, x, k, self.dim)

    def update(self, added: list[int], vectors: np.ndarray | None, removed: list[int]) -> None:
        rebuild = False
        if removed:
            try:
                self._index.remove_ids(np.asarray(removed, dtype=np.int64))
            except RuntimeError:  # HNSW and refine cannot remove
                rebuild = True
        # enough vectors now to train the structure?
        rebuild = rebuild or (self.exact and len(self) + len(added) >= structures.training_size(self.factory))
        if rebuild:  # from SQLite, which already holds this write's additions
            self._index = self._rebuild()
        elif added:
            self._index.add_with_ids(vectors, np.asarray(added, dtype=np.int64))

    def train(self, vectors: np.ndarray) -> None:
        self._train(structures.build(self.factory, self.dim), vectors)
        self._index = self._rebuild()

    def reindex(self, factory: str, training: np.ndarray | None = None) -> None:
        (self.path / TRAINED).unlink(missing_ok=True)
        self.factory = factory
        if training is not None:
            self.train(training)
        else:
            self._index = self._rebuild()

    def save(self) -> None:
        """Write the faiss file for the current generation, if it changed, and drop older ones."""
        generation = self.metadata.generation
        target = self.path / f"index-{generation}.faiss"
        if generation == self._saved_generation and target.exists():
            return
        self.metadata.set_state(_checksum(target, flat.write_atomically(self._index, target)),
                                drop_prefix=CHECKSUM + "index-")
        for old in [*self.path.glob("index-*.faiss"), *self.path.glob("index-*.faiss.tmp")]:
            if old != target:
                old.unlink(missing_ok=True)
        self._saved_generation = generation

    def close(self) -> None:
        pass  # nothing held open: the index lives in memory

    def state(self) -> str:
        if self.factory == "Flat":
            return "exact inner product"
        if structures.is_binary(self.factory):
            return "exact Hamming distance over sign bits"
        if self.exact:
            return (f"exact search until {structures.training_size(self.factory):,} vectors are stored to train "
                    f"{self.factory} on (now {len(self):,}), or `lookalike reindex --train-images`")
        return f"trained: {structures.describe(self._index)}"

    def info(self) -> dict[str, Any]:
        return {
            "bytes_per_image": structures.bytes_per_vector("Flat" if self.exact else self.factory, self.dim),
            "index_file_bytes": sum(f.stat().st_size for f in self.path.glob("index-*.faiss")),
        }

    # ---- internals -----------------------------------------------------------------------
    def _load_index(self):
        current = self.path / f"index-{self.metadata.generation}.faiss"
        if current.exists():
            index = self._read_checked(current, mapped=not self.writable)
            if index is not None:
                return index
            self.damaged = current.name
        # Stale, missing or damaged (an interrupted run, a new collection, a file overwritten or
        # cut short): rebuild from SQLite.
        index = self._rebuild()
        self.rebuilt = index.ntotal > 0 or self.damaged is not None
        return index

    def _read_checked(self, file: Path, *, mapped: bool = False):
        """The faiss index in ``file``, or None if it does not match the checksum kept in SQLite.

        The bytes are hashed only when the file's size or modification time changed since it was
        saved (overwriting or truncating a file changes them), so that opening a big collection
        does not cost a pass over its index at every search. With ``mapped`` (an index that will
        only be searched), an unchanged file is mapped rather than read (:func:`vectors.read_mapped`):
        opening then costs milliseconds at any size.
        """
        binary = structures.is_binary(self.factory)
        recorded = self.metadata.get_state(CHECKSUM + file.name)
        if recorded is None:  # saved before checksums were kept: trusted if faiss can read it
            return flat.read(file, binary=binary)
        digest, *stamp = str(recorded).split()
        stat = file.stat()
        unchanged = stamp == [str(stat.st_size), str(stat.st_mtime_ns)]
        if unchanged and mapped and not binary:
            return flat.read_mapped(file)
        return flat.read(file, None if unchanged else digest, binary=binary)

    def _rebuild(self):
        """The structure holding every stored vector: trained if it can be, else exact."""
        ids, vectors = self.metadata.vectors()
        self._saved_generation = -1
        index = self._empty(vectors)
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index

    def _empty(self, vectors: np.ndarray):
        if self.factory == "Flat":
            return flat.new_index(self.dim)
        if (self.path / TRAINED).exists():
            trained = self._read_checked(self.path / TRAINED)
            if trained is not None and trained.ntotal == 0:
                return trained
            self.damaged = TRAINED  # retrained below, and replaced if writable
        index = structures.build(self.factory, self.dim)
        if index.is_trained:  # HNSW, or Flat behind a fixed transform: nothing to learn
            return self._train(index, vectors[:0])
        needed = structures.training_size(self.factory)
        if len(vectors) < needed:
            return flat.new_index(self.dim)
        return self._train(index, evenly_spaced(vectors, max(needed, TRAINING_SAMPLE)))

    def _train(self, index, vectors: np.ndarray):
        if len(vectors):
            index.train(vectors)
        if self.writable:  # kept, so that rebuilding after a crash or a removal does not retrain
            self.metadata.set_state(_checksum(self.path / TRAINED, flat.write_atomically(index, self.path / TRAINED)))
        return index


def _checksum(file: Path, digest: str) -> dict[str, str]:
    """The ``state`` entry that records the faiss file just written with sha256 ``digest``."""
    stat = file.stat()
    return {CHECKSUM + file.name: f"{digest} {stat.st_size} {stat.st_mtime_ns}"}

