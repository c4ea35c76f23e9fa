"""Re-ranking steps (``sv``, ``qe``, ``dba``, ``diffusion``) fitted on a collection on disk.

Spatial verification reads the candidates' local features from SQLite, all of one query's
candidates in one query. QE, DBA and diffusion are fitted on the collection's stored vectors;
what they learn from the whole database is stored beside it and tagged with the SQLite
generation it was computed at:

    dba.npz        the augmented vectors (and their ids), for the DBA options they were made with
    diffusion.npz  the mutual kNN graph (CSR arrays, and the ids of its nodes)

Both are computed at first use (or ahead of time by ``lookalike rerank-prepare``), written
atomically, read with ``allow_pickle=False``, and recomputed when the collection has changed
since (another generation) or the options differ. A search never modifies them: a query only
enters diffusion through its own vector ``y``. Where the folder is not writable, the state is
computed in memory for the process and not stored.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.index.collection import Collection

STATE_FILES = {"dba": "dba.npz", "diffusion": "diffusion.npz"}


class CollectionReranker:
    """The steps of ``rerank`` (e.g. ``"sv,qe"``) fitted on ``collection``, ready for many queries.

    ``options`` are those of :func:`lookalike.rerank.steps.parse_steps` (``rerank_top``,
    ``qe_k``, ``alpha``, ``sv_model`` ...). Fitting reads every stored vector once when a step
    needs the database (all but ``sv``).
    """

    def __init__(self, collection: Collection, rerank: str, **options: Any) -> None:
        from lookalike.rerank.steps import DatabaseAugmentation, Diffusion, Reranker, SpatialVerification, parse_steps

        self.collection = collection
        has_local = "local_features" in collection.manifest
        names = [n.strip() for n in rerank.split(",")]
        if "sv" in names and not has_local:
            raise LookalikeError(f"--rerank sv needs local features, and {collection.path} was created without "
                                 f"them: re-create it with `lookalike index ... --local-features sift`")
        self.reranker = Reranker(parse_steps(rerank, local_features=has_local, **options))
        self.top = next((s.top for s in self.reranker.steps if isinstance(s, SpatialVerification)), 0)
        self.local = _Candidates(collection)
        ids = database = None
        if any(not s.needs_local for s in self.reranker.steps):
            generation = collection.metadata.generation  # before the vectors: never newer than them
            ids, database = collection.metadata.vectors()
        basis: dict[str, Any] = {"on": "vectors"}  # what the database is, for the graph's tag
        for step in self.reranker.steps:
            if isinstance(step, DatabaseAugmentation):
                params = {"k": step.k, "alpha": step.alpha}
                state = _stored(collection, "dba", generation, params, lambda step=step: _augment(database, step))
                step.fit(database, ids, augmented=state["vectors"])
                database, basis = step.augmented_, {"on": "dba", **params}
            elif isinstance(step, Diffusion):
                params = {"k": step.k, "gamma": step.gamma, **basis}
                state = _stored(collection, "diffusion", generation, params,
                                lambda step=step, database=database: _graph(database, step))
                step.fit(database, ids, affinity=_csr(state))
            else:
                step.fit(database, ids, self.local)

    @property
    def steps(self) -> list:
        return self.reranker.steps

    def __call__(self, vector: np.ndarray, local: Any, scores: np.ndarray, ids: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, dict[int, int]]:
        """Re-rank one query's ranking ``scores, ids (1, K)``; also return ``{id: inliers}`` of the
        candidates spatial verification looked at (empty without ``sv``)."""
        if self.top:
            self.local.fetch(ids[0, : self.top])
        scores, ids = self.reranker(vector[None], scores, ids, local=[local])
        return scores, ids, (self.reranker.inliers_ or [{}])[0]


def prepare(collection: Collection, rerank: str, **options: Any) -> list[str]:
    """Compute and store the state the steps of ``rerank`` need (``lookalike rerank-prepare``);
    return the names of the files that are now up to date."""
    CollectionReranker(collection, rerank, **options)
    return [STATE_FILES[name.strip()] for name in rerank.split(",") if name.strip() in STATE_FILES]


class _Candidates:
    """Local features by id, for spatial verification: those of one query's candidates, read in
    one SQLite query before the steps run (a candidate that an earlier step brought in is read
    when asked for)."""

    def __init__(self, collection: Collection) -> None:
        self.collection = collection
        self.features: dict[int, Any] = {}
        self.seconds = 0.0  # spent reading them

    def fetch(self, ids: np.ndarray) -> None:
        start = time.perf_counter()
        ids = [int(i) for i in ids if i >= 0]
        self.features = dict(zip(ids, self.collection.local_features(ids)))
        self.seconds += time.perf_counter() - start

    def __getitem__(self, ident: int):
        if ident not in self.features:
            self.features[ident] = self.collection.local_features([ident])[0]
        features = self.features[ident]
        if features is None:
            raise LookalikeError(f"{self.collection.path}: image {ident} has no stored local features; "
                                 f"`lookalike update` the collection, or re-create it with --local-features")
        return features


def _augment(database: np.ndarray, step) -> dict[str, np.ndarray]:
    from lookalike.rerank.expansion import database_augmentation

    return {"vectors": database_augmentation(database, step.k, step.alpha)}


def _graph(database: np.ndarray, step) -> dict[str, np.ndarray]:
    from lookalike.rerank.diffusion import knn_graph

    graph = knn_graph(database, step.k, step.gamma)
    return {"data": graph.data, "indices": graph.indices, "indptr": graph.indptr, "shape": np.array(graph.shape)}


def _csr(state: dict[str, np.ndarray]):
    from scipy import sparse

    return sparse.csr_matrix((state["data"], state["indices"], state["indptr"]), shape=tuple(state["shape"]))


def _stored(collection: Collection, kind: str, generation: int, params: dict, compute) -> dict[str, np.ndarray]:
    """The state ``kind`` for ``generation`` and ``params``: read from the collection if it is up to
    date, else computed and stored (atomically; skipped where the folder is not writable)."""
    path = collection.path / STATE_FILES[kind]
    tag = json.dumps(params, sort_keys=True)
    try:
        with np.load(path, allow_pickle=False) as data:
            if int(data["generation"]) == generation and str(data["params"]) == tag:
                return {name: data[name] for name in data.files}
    except (OSError, ValueError, KeyError):  # missing, or unreadable: compute it again
        pass
    state = compute()
    try:
        _save_atomically(path, {"generation": np.int64(generation), "params": np.str_(tag), **state})
    except OSError:
        pass  # a read-only collection: the state lives in this process only
    return state


def _save_atomically(path: Path, arrays: dict[str, np.ndarray]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        np.savez(f, **arrays)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
