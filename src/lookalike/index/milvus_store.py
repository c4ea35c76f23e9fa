"""The Milvus vector store: a collection's vectors in Milvus, through pymilvus (extra ``[scale]``).

Where the vectors live is the manifest's ``store`` entry: ``{"kind": "milvus", "uri": ...,
"name": ...}``. Without a URI they live in ``DIR/milvus.db``, an embedded milvus-lite database (no
server: tests and single machines); with one (``http://host:19530``) on a Milvus server, where a
collection can outgrow one machine. ``name`` is the Milvus collection, unique per lookalike
collection, so that many share one server.

The structure is the same faiss factory string as for the faiss store, translated to Milvus's
index types (:func:`milvus_index`): ``Flat`` -> FLAT, ``IVF<n>,Flat`` -> IVF_FLAT,
``IVF<n>,SQ8`` -> IVF_SQ8, ``IVF<n>,PQ<m>`` -> IVF_PQ (servers only), ``HNSW<M>`` -> HNSW. Milvus
trains its IVF and PQ structures itself, on the vectors it holds.

Ids are SQLite's (an INT64 primary key), removals delete by id, and a search filtered to a set of
ids is an ``id in [...]`` expression, so both stores give the same answers. SQLite stays the
truth: after each write the store records the SQLite generation it follows (``state`` key
``milvus generation``); one that lags behind (a kill between the SQLite commit and Milvus) is
dropped and rebuilt from SQLite when the collection is next opened for writing.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import numpy as np

from lookalike.errors import CollectionError, LookalikeError
from lookalike.index import structures
from lookalike.index.store import VectorStore

#: the embedded database inside the collection folder, when no URI is given
LITE_FILE = "milvus.db"
#: the ``state`` key holding the SQLite generation Milvus reflects
SYNCED = "milvus generation"
#: search parameters used unless a query sets its own (as the faiss store's)
DEFAULT_SEARCH = {"nprobe": 16, "efSearch": 64}
#: our search parameter -> Milvus's name for it
MILVUS_PARAMETERS = {"nprobe": "nprobe", "efSearch": "ef"}
#: rows per insert call (Milvus caps one request at 64 MB)
INSERT_BATCH = 5_000
#: HNSW's build-time candidate list, as faiss's default
EF_CONSTRUCTION = 40
SUPPORTED = "Flat, IVF<n>,Flat, IVF<n>,SQ8, IVF<n>,PQ<m> (on a server) and HNSW<M>"


def milvus_index(factory: str) -> dict[str, Any]:
    """Milvus's index type and build parameters for a faiss factory string.

    Raises:
        LookalikeError: for a structure Milvus has no counterpart of (PCA, OPQ, refine, BFlat).
    """
    factory = factory.strip()
    if factory == "Flat":
        return {"index_type": "FLAT", "params": {}}
    if match := re.fullmatch(r"IVF(\d+),(Flat|SQ8|PQ(\d+))", factory):
        nlist, codes, m = int(match.group(1)), match.group(2), match.group(3)
        if codes == "Flat":
            return {"index_type": "IVF_FLAT", "params": {"nlist": nlist}}
        if codes == "SQ8":
            return {"index_type": "IVF_SQ8", "params": {"nlist": nlist}}
        return {"index_type": "IVF_PQ", "params": {"nlist": nlist, "m": int(m), "nbits": 8}}
    if match := re.fullmatch(r"HNSW(\d+)(?:,Flat)?", factory):
        return {"index_type": "HNSW", "params": {"M": int(match.group(1)), "efConstruction": EF_CONSTRUCTION}}
    raise LookalikeError(f"index {factory!r} has no Milvus counterpart; with --store milvus use {SUPPORTED}")


def new_spec(uri: str | None, index: str | None) -> dict[str, Any]:
    """The manifest's ``store`` entry of a new Milvus collection (pymilvus checked, index translated)."""
    _pymilvus()
    milvus_index(index or "Flat")
    return {"kind": "milvus", "uri": uri, "name": f"lookalike_{uuid.uuid4().hex}"}


class MilvusStore(VectorStore):
    """A collection's vectors in a Milvus collection, kept in step with SQLite."""

    def __init__(self, collection: Any) -> None:
        spec = collection.manifest["store"]
        self.path = collection.path
        self.dim: int = collection.dim
        self.factory: str = collection.factory
        self.writable: bool = collection.writable
        self.metadata = collection.metadata
        self.name: str = spec["name"]
        self.uri: str = spec.get("uri") or str(self.path / LITE_FILE)
        self._index = milvus_index(self.factory)
        self.client = _connect(self.uri)
        in_step = self.client.has_collection(self.name) and self.metadata.get_state(SYNCED) == self.metadata.generation
        if not in_step:
            if not self.writable:
                self.close()
                raise CollectionError(f"{self.path}: its Milvus collection {self.name} at {self.uri} lags behind "
                                      f"the metadata (an interrupted write); open it for writing once to rebuild "
                                      f"it from SQLite: `lookalike reindex {self.path} --index {self.factory}`")
            self._rebuild()
            self.rebuilt = len(self) > 0
        self.client.load_collection(self.name)

    def __len__(self) -> int:
        return len(self.metadata)  # Milvus holds exactly SQLite's rows while in step

    @property
    def exact(self) -> bool:
        return False  # Milvus trains its own structures: none waits for vectors here

    def search(self, x: np.ndarray, k: int, *, within: np.ndarray | None = None, nprobe: int | None = None,
               efSearch: int | None = None, k_factor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        if k < 1:
            raise LookalikeError(f"k={k} should be >= 1")
        if k_factor is not None:
            raise LookalikeError(f"k_factor does not apply to the Milvus store ({self._index['index_type']})")
        params = self._search_parameters(nprobe=nprobe, efSearch=efSearch)
        scores = np.full((len(x), k), -np.inf, dtype=np.float32)
        ids = np.full((len(x), k), -1, dtype=np.int64)
        if within is not None:
            allowed = np.unique(np.asarray(within, dtype=np.int64))
            if not len(allowed):
                return scores, ids
            expression = f"id in [{','.join(map(str, allowed.tolist()))}]"
        else:
            expression = ""
        if not len(self):
            return scores, ids
        hits = self.client.search(self.name, data=x, limit=k, filter=expression, output_fields=[],
                                  search_params={"metric_type": "IP", "params": params})
        for row, found in enumerate(hits):
            n = len(found)
            ids[row, :n] = [hit["id"] for hit in found]
            scores[row, :n] = [hit["distance"] for hit in found]
        return scores, ids

    def update(self, added: list[int], vectors: np.ndarray | None, removed: list[int]) -> None:
        if removed:
            self.client.delete(self.name, ids=[int(i) for i in removed])
        if added:
            self._insert(np.asarray(added, dtype=np.int64), vectors)
        self.metadata.set_state({SYNCED: self.metadata.generation})

    def train(self, vectors: np.ndarray) -> None:
        raise CollectionError(f"{self.path}: Milvus trains its {self._index['index_type']} structure on the vectors "
                              "it holds; reindex without training images")

    def reindex(self, factory: str, training: np.ndarray | None = None) -> None:
        if training is not None:
            self.train(training)
        self.factory, self._index = factory, milvus_index(factory)
        self._rebuild()
        self.client.load_collection(self.name)

    def check_structure(self, factory: str) -> None:
        milvus_index(factory)

    def save(self) -> None:
        self.client.flush(self.name)

    def close(self) -> None:
        self.client.close()

    def state(self) -> str:
        params = ", ".join(f"{k}={v}" for k, v in self._index["params"].items())
        return f"Milvus {self._index['index_type']}{f' ({params})' if params else ''}, collection {self.name}"

    def info(self) -> dict[str, Any]:
        local = self.path / LITE_FILE
        return {
            # the same codes, ids and graph links as the faiss structure of that name
            "bytes_per_image": structures.bytes_per_vector(self.factory, self.dim),
            "milvus_uri": self.uri,
            # (a directory for milvus-lite: its segments, write-ahead log and index files)
            "index_file_bytes": sum(f.stat().st_size for f in local.rglob("*") if f.is_file()) if local.exists() else 0,
        }

    # ---- internals -----------------------------------------------------------------------
    def _search_parameters(self, **given: int | None) -> dict[str, int]:
        kind = self._index["index_type"]
        applicable = {"nprobe"} if kind.startswith("IVF") else {"efSearch"} if kind.startswith("HNSW") else set()
        for name, value in given.items():
            if value is not None and name not in applicable:
                raise LookalikeError(f"{name} does not apply to this index (Milvus {kind}); it has: "
                                     f"{', '.join(sorted(applicable)) or 'no search parameters'}")
        wanted = {name: value for name, value in DEFAULT_SEARCH.items() if name in applicable}
        wanted.update((name, value) for name, value in given.items() if value is not None)
        return {MILVUS_PARAMETERS[name]: int(value) for name, value in wanted.items()}

    def _rebuild(self) -> None:
        """A fresh Milvus collection holding SQLite's vectors, marked in step with it."""
        from pymilvus import DataType

        if self.client.has_collection(self.name):
            self.client.drop_collection(self.name)
        schema = self.client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.INT64, is_primary=True)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=self.dim)
        index = self.client.prepare_index_params()
        index.add_index("vector", metric_type="IP", **self._index)
        self.client.create_collection(self.name, schema=schema, index_params=index)
        ids, vectors = self.metadata.vectors()
        self._insert(ids, vectors)
        self.client.flush(self.name)
        self.metadata.set_state({SYNCED: self.metadata.generation})

    def _insert(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        for start in range(0, len(ids), INSERT_BATCH):
            rows = [{"id": int(i), "vector": v} for i, v in
                    zip(ids[start:start + INSERT_BATCH], vectors[start:start + INSERT_BATCH])]
            self.client.insert(self.name, rows)


def _pymilvus():
    try:
        import pymilvus
    except ImportError:
        raise LookalikeError("the Milvus store needs pymilvus (and milvus-lite without a server): "
                             "pip install 'lookalike[scale]'") from None
    return pymilvus


def _connect(uri: str):
    """A client of the Milvus at ``uri``: a server's address, or a milvus-lite file (started here)."""
    pymilvus = _pymilvus()
    try:
        return pymilvus.MilvusClient(uri)
    except Exception as exc:  # pymilvus raises its own errors, and OSError/gRPC ones beneath
        raise CollectionError(f"cannot reach Milvus at {uri} ({str(exc).strip().splitlines()[0]}); start the "
                              "server or fix the collection's store URI") from None
