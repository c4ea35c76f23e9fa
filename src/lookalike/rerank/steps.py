"""Re-ranking steps as composable objects, and a chain that runs them on rankings.

The contract, shared by protocol evaluation (the whole database in memory) and collection
search (the database read from disk):

* ``step.fit(database, ids=None, local=None)``: ``database (N, D)`` float32 L2-normalised
  vectors; ``ids (N,)`` int64, the ids that rankings use for those rows (default ``0..N-1``;
  a collection passes its own ids); ``local``: anything indexable by id that returns a
  :class:`~lookalike.descriptors.local.sift.LocalFeatures` (a list when ids are ``0..N-1``, a
  dict, or a collection's lazy reader). Only the steps that need something read it. Returns self.
* ``step(queries, scores, ids, *, local=None, verified=None) -> (scores, ids)``: ``queries
  (Q, D)`` float32, ``scores, ids (Q, K)`` one ranking per query best first (faiss
  conventions, ``-1`` = no result), ``local`` the queries' ``LocalFeatures`` (a list of Q).
  The output has the same ``(Q, K)`` shape. Steps that search again (QE, DBA, diffusion) search
  the database they were fitted on and return its ``K`` best.
* :class:`Reranker` chains them: DBA is a database-side step (applied at ``fit``: the later
  steps are fitted on the augmented vectors, and the first ranking is searched among them);
  the query-side steps run in the order given. Once spatial verification has run, the images it
  verified stay on top, in its order, whatever later steps do; QE with ``verified_only`` expands
  with them alone.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.rerank import diffusion as graph
from lookalike.rerank.expansion import alpha_query_expansion, database_augmentation
from lookalike.rerank.spatial import MATCHERS, MODELS, VerificationTiming, verification_order, verify_candidates

STEPS = ("sv", "qe", "dba", "diffusion")


class _Database:
    """Holds the fitted vectors, their ids and a faiss index over them."""

    def _fit_database(self, database: np.ndarray, ids: np.ndarray | None) -> None:
        import faiss

        database = np.ascontiguousarray(database, dtype=np.float32)
        if database.ndim != 2:
            raise LookalikeError(f"database must be (N, D) vectors, got {database.shape}")
        self.database_ = database
        self.ids_ = np.arange(len(database), dtype=np.int64) if ids is None else np.asarray(ids, dtype=np.int64)
        if self.ids_.shape != (len(database),):
            raise LookalikeError(f"{len(self.ids_)} ids for {len(database)} database vectors")
        self._order = np.argsort(self.ids_, kind="stable")
        self.index_ = faiss.IndexFlatIP(database.shape[1])
        self.index_.add(database)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Database rows of ``ids`` (any shape); ``-1`` where an id is unknown or ``-1``."""
        ids = np.asarray(ids, dtype=np.int64)
        position = np.clip(np.searchsorted(self.ids_, ids, sorter=self._order), 0, len(self.ids_) - 1)
        rows = self._order[position]
        return np.where(self.ids_[rows] == ids, rows, -1)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` best ``(scores, ids)`` of each query among the fitted vectors."""
        if not hasattr(self, "index_"):
            raise LookalikeError(f"{type(self).__name__} is not fitted yet; call fit(database)")
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        if k > HEAP_LIMIT:  # a long ranking (evaluation re-ranks whole databases)
            scores, rows = exact_search(self.database_, queries, min(k, len(self.ids_)))
        else:
            scores, rows = self.index_.search(queries, min(k, len(self.ids_)))
        ids = np.where(rows >= 0, self.ids_[np.maximum(rows, 0)], -1)
        return _pad(scores, ids, k)


#: beyond this many results, faiss's flat search (a heap per query) is slower than a sort
HEAP_LIMIT = 256


def exact_search(database: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` largest inner products ``(scores, rows)``, both ``(Q, k)``, of each query with
    ``database (N, D)``, best first: one matrix product, a partition and a sort of the ``k``
    kept, which beats a heap when ``k`` is a large part of ``N`` (a whole ranking)."""
    scores = np.ascontiguousarray(queries, dtype=np.float32) @ np.ascontiguousarray(database, dtype=np.float32).T
    k = min(k, scores.shape[1])
    rows = np.argpartition(-scores, k - 1, axis=1)[:, :k] if k < scores.shape[1] else np.tile(
        np.arange(k), (len(scores), 1))
    kept = np.take_along_axis(scores, rows, axis=1)
    order = np.argsort(-kept, axis=1, kind="stable")
    return np.take_along_axis(kept, order, axis=1), np.take_along_axis(rows, order, axis=1).astype(np.int64)


def _pad(scores: np.ndarray, ids: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    missing = k - scores.shape[1]
    if missing <= 0:
        return scores, ids
    return (np.pad(scores, ((0, 0), (0, missing)), constant_values=-np.inf),
            np.pad(ids, ((0, 0), (0, missing)), constant_values=-1))


def _check_ranking(queries: np.ndarray, scores: np.ndarray, ids: np.ndarray) -> None:
    if scores.shape != ids.shape or scores.ndim != 2 or len(scores) != len(queries):
        raise LookalikeError(f"scores {scores.shape} and ids {ids.shape} must both be (Q={len(queries)}, K)")


class SpatialVerification:
    """Re-rank each query's ``top`` candidates by RANSAC inliers of local-feature matches
    (:func:`lookalike.rerank.spatial.verify_candidates`); verified candidates come first by
    inliers, the rest keep their order (DELG convention).

    A candidate is verified when its inliers reach ``min_inliers`` and exceed ``inlier_ratio``
    times its tentative matches: chance alignments grow with the number of matches (hundreds
    between two textured photos, a few dozen between two small objects), so a fixed count that
    suits one kind of image verifies distractors of another. ``inlier_weight > 0`` sorts by the
    global score plus ``inlier_weight * log(1 + inliers beyond chance)`` instead of by inliers
    (:func:`lookalike.rerank.spatial.verification_order`).
    """

    needs_local = True

    def __init__(self, top: int = 100, *, method: str = "mutual", ratio: float = 0.8, model: str = "affine",
                 threshold: float | None = None, min_inliers: int = 8, inlier_ratio: float = 0.0,
                 inlier_weight: float = 0.0) -> None:
        if method not in MATCHERS or model not in MODELS:
            raise LookalikeError(f"sv: method must be one of {', '.join(MATCHERS)} and model one of "
                                 f"{', '.join(MODELS)}, got {method!r}, {model!r}")
        if top < 1 or min_inliers < 1 or not 0 <= inlier_ratio <= 1 or inlier_weight < 0:
            raise LookalikeError(f"sv: need top >= 1, min_inliers >= 1, 0 <= inlier_ratio <= 1 and inlier_weight >= 0, "
                                 f"got {top}, {min_inliers}, {inlier_ratio}, {inlier_weight}")
        self.top, self.method, self.ratio, self.model = top, method, ratio, model
        self.threshold, self.min_inliers, self.inlier_ratio = threshold, min_inliers, inlier_ratio
        self.inlier_weight = inlier_weight
        self.timing = VerificationTiming()  # matching and RANSAC seconds, summed over calls

    def fit(self, database: np.ndarray | None = None, ids: np.ndarray | None = None, local: Any = None):
        if local is None:
            raise LookalikeError("sv needs the database's local features (index with --local-features)")
        self.local_ = local
        return self

    def verify(self, local: Sequence, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Inlier counts and tentative matches, both ``(Q, min(top, K))``, of each query's first
        candidates (0 for ``-1``)."""
        if not hasattr(self, "local_"):
            raise LookalikeError("SpatialVerification is not fitted yet; call fit(local=...)")
        if local is None or len(local) != len(ids):
            raise LookalikeError(f"sv needs the local features of each of the {len(ids)} queries")
        top = min(self.top, ids.shape[1])
        inliers = np.zeros((len(ids), top), dtype=np.int64)
        matches = np.zeros((len(ids), top), dtype=np.int64)
        for q, query in enumerate(local):
            known = np.flatnonzero(ids[q, :top] >= 0)
            results = verify_candidates(query, [self.local_[int(ids[q, j])] for j in known], method=self.method,
                                        ratio=self.ratio, model=self.model, threshold=self.threshold,
                                        timing=self.timing)
            inliers[q, known] = [r.inliers for r in results]
            matches[q, known] = [len(r.matches) for r in results]
        return inliers, matches

    def __call__(self, queries, scores, ids, *, local=None, verified=None, return_inliers: bool = False):
        """Re-ranked ``(scores, ids)``; with ``return_inliers`` also the ``(Q, K)`` inlier counts
        aligned with the new order, 0 where a candidate is not verified (and beyond ``top``)."""
        _check_ranking(queries, scores, ids)
        inliers, matches = self.verify(local, ids)
        top = inliers.shape[1]
        scores, ids = scores.copy(), ids.copy()
        aligned = np.zeros(ids.shape, dtype=np.int64)
        for q in range(len(ids)):
            order, verified = verification_order(
                scores[q, :top], inliers[q], matches[q], min_inliers=self.min_inliers,
                inlier_ratio=self.inlier_ratio, inlier_weight=self.inlier_weight)
            scores[q, :top], ids[q, :top] = scores[q, :top][order], ids[q, :top][order]
            aligned[q, :top] = np.where(verified, inliers[q], 0)[order]
        return (scores, ids, aligned) if return_inliers else (scores, ids)


class QueryExpansion(_Database):
    """Query expansion and search again: AQE (``alpha=0``) or alpha-QE (``alpha=3``) over the
    first ``k`` results (with ``verified_only``, the spatially verified ones alone)."""

    needs_local = False

    def __init__(self, k: int = 2, *, alpha: float = 0.0, verified_only: bool = False) -> None:
        if k < 1 or alpha < 0:
            raise LookalikeError(f"qe: need k >= 1 and alpha >= 0, got k={k}, alpha={alpha}")
        self.k, self.alpha, self.verified_only = k, alpha, verified_only

    def fit(self, database: np.ndarray, ids: np.ndarray | None = None, local: Any = None):
        self._fit_database(database, ids)
        return self

    def __call__(self, queries, scores, ids, *, local=None, verified=None):
        _check_ranking(queries, scores, ids)
        if self.verified_only:
            if verified is None:
                raise LookalikeError("qe verified_only needs spatial verification before it (sv,qe)")
            neighbours = np.full((len(ids), self.k), -1, dtype=np.int64)
            for q, chosen in enumerate(verified):
                neighbours[q, : min(self.k, len(chosen))] = chosen[: self.k]
        else:
            neighbours = ids[:, : self.k]
        rows = self.rows_of(neighbours)
        safe = np.maximum(rows, 0)
        similarities = np.einsum("qd,qkd->qk", queries, self.database_[safe])
        expanded = alpha_query_expansion(queries, self.database_, rows, similarities, self.alpha)
        return self.search(expanded, ids.shape[1])


class DatabaseAugmentation(_Database):
    """DBA: every database vector replaced by the ``sim^alpha``-weighted mean of its ``k``
    nearest (itself included), at ``fit``; a call searches the queries among them."""

    needs_local = False

    def __init__(self, k: int = 2, *, alpha: float = 0.0) -> None:
        if k < 1 or alpha < 0:
            raise LookalikeError(f"dba: need k >= 1 and alpha >= 0, got k={k}, alpha={alpha}")
        self.k, self.alpha = k, alpha

    def fit(self, database: np.ndarray, ids: np.ndarray | None = None, local: Any = None, *,
            augmented: np.ndarray | None = None):
        """``augmented``: the augmented vectors computed before (a collection stores them)."""
        self._fit_database(database_augmentation(database, self.k, self.alpha) if augmented is None else augmented,
                           ids)
        return self

    @property
    def augmented_(self) -> np.ndarray:
        return self.database_

    def __call__(self, queries, scores, ids, *, local=None, verified=None):
        _check_ranking(queries, scores, ids)
        return self.search(queries, ids.shape[1])


class Diffusion(_Database):
    """Diffusion on the database's mutual kNN graph (Iscen et al., CVPR 2017); ``truncate > 0``
    restricts it to each query's first ``truncate`` results, which are re-ordered by ``f``."""

    needs_local = False

    def __init__(self, k: int = 50, *, kq: int = 10, gamma: float = 3.0, alpha: float = 0.99,
                 max_iter: int = 20, truncate: int = 0) -> None:
        if k < 1 or kq < 1 or truncate < 0 or not 0 < alpha < 1:
            raise LookalikeError(f"diffusion: need k, kq >= 1, truncate >= 0 and 0 < alpha < 1, "
                                 f"got k={k}, kq={kq}, truncate={truncate}, alpha={alpha}")
        self.k, self.kq, self.gamma, self.alpha = k, kq, gamma, alpha
        self.max_iter, self.truncate = max_iter, truncate

    def fit(self, database: np.ndarray, ids: np.ndarray | None = None, local: Any = None, *,
            affinity: Any = None):
        """``affinity``: the kNN graph of ``database`` computed before (a collection stores it)."""
        self._fit_database(database, ids)
        self.affinity_ = graph.knn_graph(self.database_, self.k, self.gamma) if affinity is None else affinity
        self.normalized_ = graph.normalize_graph(self.affinity_)
        return self

    def __call__(self, queries, scores, ids, *, local=None, verified=None):
        _check_ranking(queries, scores, ids)
        near_scores, near_ids = self.search(queries, self.kq)
        near_rows = self.rows_of(near_ids)
        out_scores, out_ids = scores.copy(), ids.copy()
        n = len(self.ids_)
        for q in range(len(queries)):
            if self.truncate:
                # the truncated graph: the query's head, plus its kq seeds wherever they rank
                head = self.rows_of(ids[q, : self.truncate])
                seeds = near_rows[q] >= 0
                head = np.concatenate([head[head >= 0], near_rows[q][seeds]])
                head = head[np.sort(np.unique(head, return_index=True)[1])]  # first occurrences, in order
                order = np.argsort(head)
                y = np.zeros(len(head), np.float32)
                y[order[np.searchsorted(head, near_rows[q][seeds], sorter=order)]] = np.power(
                    np.maximum(near_scores[q][seeds], 0.0), self.gamma)
                f = graph.diffuse_truncated(self.affinity_, head, y, alpha=self.alpha, max_iter=self.max_iter)
                ranked = self.ids_[head[np.argsort(-f, kind="stable")]]
                values = np.sort(f)[::-1]
            else:
                y = graph.query_vector(near_scores[q], near_rows[q], n, self.gamma)[:, 0]
                f = graph.diffuse(self.normalized_, y, alpha=self.alpha, max_iter=self.max_iter)
                order = np.argsort(-f, kind="stable")
                order = order[f[order] > 0]  # reached by the diffusion; the rest keeps its order
                ranked, values = self.ids_[order], f[order]
            out_scores[q], out_ids[q] = _merge(ranked, values, scores[q], ids[q])
        return out_scores, out_ids


def _merge(first_ids: np.ndarray, first_scores: np.ndarray, scores: np.ndarray, ids: np.ndarray):
    """``first_ids`` in front, then the rest of ``ids`` in order, cut to ``len(ids)``."""
    k = len(ids)
    rest = ~np.isin(ids, first_ids)
    merged_ids = np.concatenate([first_ids, ids[rest]])[:k]
    merged_scores = np.concatenate([first_scores.astype(scores.dtype), scores[rest]])[:k]
    if len(merged_ids) < k:
        merged_ids = np.pad(merged_ids, (0, k - len(merged_ids)), constant_values=-1)
        merged_scores = np.pad(merged_scores, (0, k - len(merged_scores)), constant_values=-np.inf)
    return merged_scores, merged_ids


class Reranker:
    """Run steps on rankings: ``Reranker(parse_steps("sv,qe")).fit(db, local=db_local)(q, s, i, local=ql)``.

    Spatially verified images (inliers >= the step's ``min_inliers``) stay on top of later steps'
    rankings, in the verification order. ``seconds`` accumulates the time spent in each step.
    """

    def __init__(self, steps: Sequence) -> None:
        self.steps = list(steps)
        self.seconds: dict[str, float] = {type(s).__name__: 0.0 for s in self.steps}

    @property
    def needs_local(self) -> bool:
        return any(s.needs_local for s in self.steps)

    def fit(self, database: np.ndarray, ids: np.ndarray | None = None, local: Any = None) -> Reranker:
        for step in self.steps:
            start = time.perf_counter()
            step.fit(database, ids, local)
            database = getattr(step, "augmented_", database)
            self.seconds[type(step).__name__] += time.perf_counter() - start
        self.database_ = database
        return self

    def __call__(self, queries: np.ndarray, scores: np.ndarray, ids: np.ndarray, *, local: Sequence | None = None
                 ) -> tuple[np.ndarray, np.ndarray]:
        queries = np.ascontiguousarray(queries, dtype=np.float32)
        scores, ids = np.asarray(scores, dtype=np.float32), np.asarray(ids, dtype=np.int64)
        _check_ranking(queries, scores, ids)
        verified: list[np.ndarray] | None = None
        self.inliers_: list[dict[int, int]] | None = None  # per query: candidate id -> inliers, once sv ran
        for step in self.steps:
            start = time.perf_counter()
            if isinstance(step, SpatialVerification):
                scores, ids, inliers = step(queries, scores, ids, local=local, return_inliers=True)
                verified = [row[counts >= step.min_inliers] for row, counts in zip(ids, inliers)]
                self.inliers_ = [dict(zip(row[:step.top].tolist(), counts[:step.top].tolist()))
                                 for row, counts in zip(ids, inliers)]
            else:
                before = scores, ids
                scores, ids = step(queries, scores, ids, local=local, verified=verified)
                if verified is not None:
                    for q, chosen in enumerate(verified):
                        # each keeps the score the step gave it, or the one it had
                        known = dict(zip(before[1][q].tolist(), before[0][q].tolist()))
                        known.update(zip(ids[q].tolist(), scores[q].tolist()))
                        head_scores = np.array([known[i] for i in chosen.tolist()], np.float32)
                        scores[q], ids[q] = _merge(chosen, head_scores, scores[q], ids[q])
            self.seconds[type(step).__name__] += time.perf_counter() - start
        return scores, ids


# ---- by name ----------------------------------------------------------------------------------
#: option name -> (step, keyword of its constructor); for `--rerank` with the CLI's options
OPTIONS = {
    "rerank_top": ("sv", "top"), "sv_method": ("sv", "method"), "sv_model": ("sv", "model"),
    "sv_threshold": ("sv", "threshold"), "min_inliers": ("sv", "min_inliers"),
    "inlier_ratio": ("sv", "inlier_ratio"), "inlier_weight": ("sv", "inlier_weight"),
    "qe_k": ("qe", "k"), "alpha": ("qe", "alpha"), "qe_verified": ("qe", "verified_only"),
    "dba_k": ("dba", "k"), "dba_alpha": ("dba", "alpha"),
    "diffusion_k": ("diffusion", "k"), "kq": ("diffusion", "kq"), "gamma": ("diffusion", "gamma"),
    "diffusion_alpha": ("diffusion", "alpha"), "truncate": ("diffusion", "truncate"),
}
_CLASSES = {"sv": SpatialVerification, "qe": QueryExpansion, "dba": DatabaseAugmentation, "diffusion": Diffusion}


def parse_steps(text: str, *, local_features: bool = True, **options: Any) -> list:
    """Steps from a comma-separated list such as ``"sv,dba,qe,diffusion"``.

    ``options`` are the keys of :data:`OPTIONS` (``rerank_top=100, qe_k=2, alpha=3.0`` ...);
    ``None`` values are ignored. ``local_features``: whether the database has local features
    (``sv`` needs them). Unknown names, repeated steps, ``dba`` after ``qe`` or ``diffusion`` and
    ``qe_verified`` without ``sv`` before ``qe`` are one-line errors.
    """
    names = [n.strip() for n in text.split(",") if n.strip()]
    if not names:
        raise LookalikeError(f"--rerank {text!r} names no step; use a comma-separated list of: {', '.join(STEPS)}")
    for name in names:
        if name not in STEPS:
            raise LookalikeError(f"unknown re-ranking step {name!r} in {text!r}; choose from: {', '.join(STEPS)}")
    if len(set(names)) != len(names):
        raise LookalikeError(f"--rerank {text!r} repeats a step; name each at most once")
    if "sv" in names and not local_features:
        raise LookalikeError("--rerank sv needs local features: add --local-features sift (or delf)")
    if "dba" in names and any(names.index("dba") > names.index(n) for n in ("qe", "diffusion") if n in names):
        raise LookalikeError(f"--rerank {text!r}: dba augments the database that qe and diffusion search, "
                             "so list it before them")
    unknown = sorted(set(options) - set(OPTIONS))
    if unknown:
        raise LookalikeError(f"unknown re-ranking option(s) {', '.join(unknown)}; valid: {', '.join(sorted(OPTIONS))}")
    if options.get("qe_verified") and not ("sv" in names and "qe" in names and names.index("sv") < names.index("qe")):
        raise LookalikeError("qe_verified expands with verified images: list sv before qe (e.g. --rerank sv,qe)")
    keywords: dict[str, dict[str, Any]] = {name: {} for name in names}
    for option, value in options.items():
        step, keyword = OPTIONS[option]
        if value is not None and step in keywords:
            keywords[step][keyword] = value
    return [_CLASSES[name](**keywords[name]) for name in names]
