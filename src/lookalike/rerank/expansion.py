"""Query expansion and database-side augmentation on L2-normalised ``(N, D)`` float32 vectors.

* Average query expansion (AQE; Chum et al., "Total recall", ICCV 2007): the query is replaced
  by the mean of itself and its top-k database vectors, re-normalised, and searched again.
* alpha-QE (Radenović, Tolias & Chum, PAMI 2018): the same mean weighted by ``sim^alpha``, so
  that close neighbours count more; ``alpha = 0`` is AQE.
* Database-side augmentation (DBA; Arandjelović & Zisserman, CVPR 2012, weighted as in
  Radenović et al.): every database vector is replaced by the weighted mean of itself and its
  nearest database neighbours, once, offline.

Neighbour ids of ``-1`` (faiss's "no result") are ignored.
"""

from __future__ import annotations

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise

CHUNK = 4096  # database rows augmented at a time


def _check(name: str, x: np.ndarray, dim: int | None = None) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        raise LookalikeError(f"{name} must be (N, {dim or 'D'}) vectors, got {x.shape}")
    return x


def alpha_query_expansion(queries: np.ndarray, database: np.ndarray, neighbours: np.ndarray,
                          similarities: np.ndarray, alpha: float = 3.0) -> np.ndarray:
    """Expanded queries ``(Q, D)``: ``normalise(q + sum_i max(s_i, 0)^alpha x_i)``.

    ``neighbours (Q, k)`` are rows of ``database (N, D)`` and ``similarities (Q, k)`` their inner
    products with the query. The query keeps weight 1 (its similarity to itself).
    """
    queries = _check("queries", queries)
    database = _check("database", database, queries.shape[1])
    neighbours = np.asarray(neighbours, dtype=np.int64)
    similarities = np.asarray(similarities, dtype=np.float32)
    if neighbours.shape != similarities.shape or neighbours.ndim != 2 or len(neighbours) != len(queries):
        raise LookalikeError(f"neighbours {neighbours.shape} and similarities {similarities.shape} "
                             f"must both be (Q={len(queries)}, k)")
    if alpha < 0:
        raise LookalikeError(f"alpha must be >= 0, got {alpha}")
    if len(neighbours) and neighbours.max(initial=-1) >= len(database):
        raise LookalikeError(f"neighbour id {neighbours.max()} is outside the database of {len(database)}")
    weights = np.power(np.maximum(similarities, 0.0), alpha) * (neighbours >= 0)
    expanded = queries + np.einsum("qk,qkd->qd", weights, database[np.maximum(neighbours, 0)])
    return l2_normalise(expanded).astype(np.float32)


def average_query_expansion(queries: np.ndarray, database: np.ndarray, neighbours: np.ndarray) -> np.ndarray:
    """AQE: ``normalise(q + sum of its k neighbours)``, ``(Q, D)``; ``neighbours (Q, k)`` rows of
    ``database``."""
    neighbours = np.asarray(neighbours, dtype=np.int64)
    return alpha_query_expansion(queries, database, neighbours, np.ones(neighbours.shape, np.float32), 0.0)


def database_neighbours(database: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Each database vector's ``k`` nearest database vectors ``(similarities, rows)``, both
    ``(N, k)``, by exact inner product (faiss); a vector is its own first neighbour."""
    import faiss

    database = _check("database", database)
    index = faiss.IndexFlatIP(database.shape[1])
    index.add(database)
    return index.search(database, min(k, len(database)))


def database_augmentation(database: np.ndarray, k: int = 10, alpha: float = 3.0) -> np.ndarray:
    """DBA: every row replaced by ``normalise(sum_{j in kNN(i)} max(s_ij, 0)^alpha x_j)``, ``(N, D)``.

    The ``k`` neighbours include the vector itself (similarity 1 for normalised rows), so
    ``k = 1`` changes nothing; ``alpha = 0`` is the plain mean.
    """
    database = _check("database", database)
    if k < 1:
        raise LookalikeError(f"DBA needs k >= 1 (the vector itself counts), got {k}")
    if alpha < 0:
        raise LookalikeError(f"alpha must be >= 0, got {alpha}")
    if len(database) == 0:
        return database
    similarities, rows = database_neighbours(database, k)
    weights = np.power(np.maximum(similarities, 0.0), alpha) * (rows >= 0)
    augmented = np.empty_like(database)
    for start in range(0, len(database), CHUNK):  # bounds the (chunk, k, D) gather in memory
        part = slice(start, start + CHUNK)
        augmented[part] = np.einsum("nk,nkd->nd", weights[part], database[np.maximum(rows[part], 0)])
    return l2_normalise(augmented).astype(np.float32)
