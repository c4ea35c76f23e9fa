"""Earth Mover's Distance between histograms, for re-scoring a short list.

Rubner, Tomasi & Guibas, "The Earth Mover's Distance as a metric for image retrieval", IJCV 2000.
The transport problem is solved exactly as a linear programme (scipy's HiGHS) over the non-empty
bins only, which keeps it small for colour histograms.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse
from scipy.optimize import linprog
from scipy.spatial.distance import cdist

from lookalike.errors import LookalikeError


def emd(a: np.ndarray, b: np.ndarray, centers: np.ndarray) -> float:
    """EMD between histograms ``a`` and ``b`` ``(K,)`` with bins at ``centers (K, d)``.

    Both are normalised to unit mass first (the usual case of L1-normalised histograms), so this
    is the 1-Wasserstein distance for the Euclidean ground distance between bin centres.
    """
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    if a.shape != b.shape or a.shape[0] != len(centers):
        raise LookalikeError(f"histograms {a.shape}, {b.shape} and centers {centers.shape} disagree")
    if a.sum() <= 0 or b.sum() <= 0:
        raise LookalikeError("EMD needs histograms with positive mass")
    ia, ib = np.flatnonzero(a), np.flatnonzero(b)
    wa, wb = a[ia] / a.sum(), b[ib] / b.sum()
    cost = cdist(centers[ia], centers[ib])
    m, n = len(ia), len(ib)
    # flow[i, j] >= 0, rows sum to wa, columns sum to wb (the last one is implied: drop it)
    rows = sparse.kron(sparse.eye(m), np.ones((1, n)))
    cols = sparse.kron(np.ones((1, m)), sparse.eye(n))
    constraints = sparse.vstack([rows, cols.tocsr()[:-1]]).tocsc()
    solution = linprog(cost.ravel(), A_eq=constraints, b_eq=np.concatenate([wa, wb[:-1]]),
                       bounds=(0, None), method="highs")
    if not solution.success:
        raise LookalikeError(f"EMD did not converge: {solution.message}")
    return float(solution.fun)


def emd_rerank(
    query: np.ndarray, candidates: np.ndarray, ids: np.ndarray, centers: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Re-order a short list by EMD.

    Args:
        query: ``(K,)`` histogram of the query.
        candidates: ``(M, K)`` histograms of the short-listed images.
        ids: ``(M,)`` their ids.
    Returns:
        ``(scores, ids)`` re-ordered, with ``score = -EMD`` so that bigger is closer, as everywhere.
    """
    distances = np.array([emd(query, c, centers) for c in candidates])
    order = np.argsort(distances, kind="stable")
    return -distances[order].astype(np.float32), np.asarray(ids)[order]
