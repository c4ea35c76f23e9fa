"""VLAD: Vector of Locally Aggregated Descriptors (Jégou et al., CVPR 2010)."""

from __future__ import annotations

import numpy as np
from scipy import sparse

from lookalike.descriptors.aggregate.checks import local_descriptors, signed_power
from lookalike.norms import l2_normalise
from lookalike.threads import threads_for

#: Above this many centres, faiss's blocked search beats one dense (T, K) distance matrix.
LARGE_VOCABULARY = 1024


def knn_centers(x: np.ndarray, centers: np.ndarray, n: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Squared L2 distances and indices ``(T, n)`` of the ``n`` nearest centres of each row of ``x``.

    Small vocabularies use one BLAS product; large ones (20k words and more) use faiss, which
    never holds the whole ``(T, K)`` distance matrix. One image's descriptors run on one thread.
    """
    with threads_for(x.shape[0] * centers.shape[0] * centers.shape[1]):
        return _knn_centers(x, centers, n)


def _knn_centers(x: np.ndarray, centers: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    if len(centers) > LARGE_VOCABULARY:
        import faiss

        distances, indices = faiss.knn(np.ascontiguousarray(x, np.float32),
                                       np.ascontiguousarray(centers, np.float32), n)
        return distances, indices.astype(np.int64)
    squared = np.maximum((x * x).sum(1)[:, None] - 2.0 * (x @ centers.T) + (centers * centers).sum(1), 0.0)
    if n == 1:
        indices = np.argmin(squared, axis=1)[:, None]
    else:
        indices = np.argpartition(squared, n - 1, axis=1)[:, :n]
    distances = np.take_along_axis(squared, indices, axis=1)
    order = np.argsort(distances, axis=1, kind="stable")
    return np.take_along_axis(distances, order, axis=1), np.take_along_axis(indices, order, axis=1)


def nearest_centers(x: np.ndarray, centers: np.ndarray) -> np.ndarray:
    """Index ``(T,)`` of the nearest centre (L2) of each row of ``x (T, D)``."""
    return knn_centers(x, centers, 1)[1][:, 0]


def vlad_encode(
    x: np.ndarray, centers: np.ndarray, *, intra: bool = False, power: float | None = None,
    l2: bool = True,
) -> np.ndarray:
    """VLAD of local descriptors ``x (T, D)`` with a vocabulary ``centers (K, D)``.

    Each descriptor is assigned to its nearest centre; ``v_k`` is the sum of the residuals
    ``x - c_k`` of the descriptors assigned to centre ``k``. Then, in this order (VLFeat's):
    signed power normalisation ``sign(v)|v|^power`` if ``power`` is set, intra-normalisation (each
    ``v_k`` L2-normalised; Arandjelović & Zisserman, "All about VLAD", CVPR 2013) if ``intra``, and
    global L2 normalisation if ``l2``.

    Returns ``(K * D,)`` float32 laid out ``[v_1, ..., v_K]``. With ``intra=False, power=None,
    l2=False`` it equals VLFeat's ``vl_vlad_encode`` with ``VL_VLAD_FLAG_UNNORMALIZED``.
    """
    centers = local_descriptors(centers)
    x = local_descriptors(x, centers.shape[1])
    k, d = centers.shape
    if len(x) == 0:
        return np.zeros(k * d, dtype=np.float32)
    assigned = nearest_centers(x, centers)
    one_hot = sparse.csr_matrix(
        (np.ones(len(x), np.float32), (assigned, np.arange(len(x)))), shape=(k, len(x))
    )
    counts = np.bincount(assigned, minlength=k).astype(np.float32)
    v = np.asarray(one_hot @ x) - counts[:, None] * centers  # (K, D) residual sums
    if power is not None:
        v = signed_power(v, power)
    if intra:
        v = l2_normalise(v, axis=1)
    v = v.reshape(-1)
    if l2:
        v = l2_normalise(v)
    return v.astype(np.float32)
