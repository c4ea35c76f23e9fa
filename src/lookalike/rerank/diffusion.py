"""Diffusion on the database's k-nearest-neighbour graph (Iscen et al., "Efficient diffusion on
region manifolds", CVPR 2017).

Offline, once: a mutual kNN graph ``W`` over the database (similarities clipped at 0 and raised
to ``gamma``), symmetrically normalised to ``S = D^-1/2 W D^-1/2``. Online, per query: a sparse
vector ``y`` holding the query's similarities to its ``kq`` nearest database items, and the
ranking scores ``f`` solving ``(I - alpha S) f = y``, by conjugate gradient (the matrix is
symmetric positive definite for ``alpha < 1``), with a bounded number of iterations.

Inductive: a query only enters through ``y``; the stored graph never changes. The truncated
variant solves the same system on the sub-graph of the top few thousand images of the global
ranking, so that its cost does not grow with the database.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import LinearOperator, cg

from lookalike.errors import LookalikeError


def knn_graph(database: np.ndarray, k: int = 50, gamma: float = 3.0) -> sparse.csr_matrix:
    """Mutual kNN affinity ``W (N, N)``: ``w_ij = max(x_i . x_j, 0)^gamma`` when ``j`` is among the
    ``k`` nearest neighbours of ``i`` and ``i`` among those of ``j`` (self excluded), else 0.

    ``database (N, D)``: L2-normalised float32 rows; neighbours by exact inner product (faiss).
    """
    from lookalike.rerank.expansion import database_neighbours

    if k < 1 or gamma <= 0:
        raise LookalikeError(f"the kNN graph needs k >= 1 and gamma > 0, got k={k}, gamma={gamma}")
    n = len(database)
    similarities, rows = database_neighbours(database, k + 1)  # +1: each vector finds itself
    source = np.repeat(np.arange(n), rows.shape[1])
    target = rows.ravel()
    keep = (target >= 0) & (target != source)
    values = np.power(np.maximum(similarities.ravel()[keep], 0.0), gamma)
    knn = sparse.csr_matrix((values, (source[keep], target[keep])), shape=(n, n), dtype=np.float32)
    # a vector whose duplicate pushed it out of its own top k+1 still keeps at most k + 1 edges
    return knn.minimum(knn.T).tocsr()  # mutual: both directions present (the values are symmetric)


def normalize_graph(affinity: sparse.spmatrix) -> sparse.csr_matrix:
    """``S = D^-1/2 W D^-1/2`` with ``D`` the degrees (row sums) of ``W``; isolated nodes stay 0."""
    affinity = sparse.csr_matrix(affinity, dtype=np.float32)
    degree = np.asarray(affinity.sum(axis=1)).ravel()
    inverse_root = np.where(degree > 0, 1.0 / np.sqrt(np.maximum(degree, 1e-30)), 0.0).astype(np.float32)
    rows = np.repeat(np.arange(affinity.shape[0]), np.diff(affinity.indptr))
    # scale the stored values in place of two sparse products (which would sort and copy twice)
    values = affinity.data * inverse_root[rows] * inverse_root[affinity.indices]
    return sparse.csr_matrix((values, affinity.indices, affinity.indptr), shape=affinity.shape)


def query_vector(similarities: np.ndarray, rows: np.ndarray, n: int, gamma: float = 3.0) -> np.ndarray:
    """The online query vectors ``y (n, Q)``: ``max(s, 0)^gamma`` at each query's ``kq`` nearest
    database rows (``similarities, rows``: ``(Q, kq)``), 0 elsewhere; rows of ``-1`` are skipped."""
    similarities, rows = np.atleast_2d(similarities), np.atleast_2d(rows)
    y = np.zeros((n, len(rows)), dtype=np.float32)
    queries = np.repeat(np.arange(len(rows)), rows.shape[1])
    valid = rows.ravel() >= 0
    y[rows.ravel()[valid], queries[valid]] = np.power(np.maximum(similarities.ravel()[valid], 0.0), gamma)
    return y


def diffuse(normalized: sparse.spmatrix, y: np.ndarray, *, alpha: float = 0.99, max_iter: int = 20,
            tol: float = 1e-6) -> np.ndarray:
    """Solve ``(I - alpha S) f = y`` by conjugate gradient, for ``y (N,)`` or one column per query
    ``(N, Q)``; returns ``f`` of the same shape. At most ``max_iter`` iterations per column
    (Iscen et al. stop at 20: the ranking settles long before the residual does)."""
    if not 0 < alpha < 1:
        raise LookalikeError(f"diffusion needs 0 < alpha < 1, got {alpha}")
    n = normalized.shape[0]
    y = np.asarray(y, dtype=np.float32)
    if y.shape[0] != n or y.ndim not in (1, 2):
        raise LookalikeError(f"y must be ({n},) or ({n}, Q), got {y.shape}")
    normalized = sparse.csr_matrix(normalized)
    # I - alpha S as an operator: building the sum would copy the graph at every query
    system = LinearOperator((n, n), matvec=lambda x: x - alpha * (normalized @ x), dtype=np.float32)
    columns = y[:, None] if y.ndim == 1 else y
    f = np.zeros(columns.shape, dtype=np.float32)
    for q in range(columns.shape[1]):  # one linear system per query
        if columns[:, q].any():
            f[:, q], _ = cg(system, columns[:, q], rtol=tol, atol=0.0, maxiter=max_iter)
    return f[:, 0] if y.ndim == 1 else f


def diffuse_truncated(affinity: sparse.spmatrix, rows: np.ndarray, y: np.ndarray, *, alpha: float = 0.99,
                      max_iter: int = 20, tol: float = 1e-6) -> np.ndarray:
    """Diffusion restricted to the sub-graph of database ``rows (m,)`` (a query's top ``m``):
    the affinity ``W`` is cut to those rows and columns and normalised again. ``y (m,)`` is the
    query vector on those rows; returns ``f (m,)``. ``affinity`` itself is not modified."""
    rows = np.asarray(rows, dtype=np.int64)
    band = sparse.csr_matrix(affinity)[rows]  # row slicing is cheap; scipy's column indexing is not
    position = np.full(affinity.shape[1], -1, dtype=np.int64)
    position[rows] = np.arange(len(rows))
    columns = position[band.indices]
    keep = columns >= 0
    row_of_entry = np.repeat(np.arange(len(rows)), np.diff(band.indptr))
    indptr = np.concatenate([[0], np.cumsum(np.bincount(row_of_entry[keep], minlength=len(rows)))])
    sub = sparse.csr_matrix((band.data[keep], columns[keep], indptr), shape=(len(rows), len(rows)))
    return diffuse(normalize_graph(sub), y, alpha=alpha, max_iter=max_iter, tol=tol)
