"""Spatial verification: match local features, fit a geometric model with RANSAC, count inliers.

Philbin et al., "Object retrieval with large vocabularies and fast spatial matching", CVPR 2007:
a short list from the global search is re-ranked by the number of tentative correspondences
that agree with one affine transformation (or homography) between query and candidate. The
final order follows the DELG convention (Cao et al., ECCV 2020): verified candidates first by
inlier count, then everything else in its global order.

Matching is one matrix product per pair (mutual nearest neighbours, or Lowe's ratio test,
IJCV 2004), and the model is fitted by OpenCV's RANSAC / USAC (MAGSAC++, Barath et al. CVPR 2020).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.errors import LookalikeError

MATCHERS = ("mutual", "ratio")
MODELS = ("affine", "homography")
#: fewest correspondences that determine each model
MINIMAL = {"affine": 3, "homography": 4}


class Verification(NamedTuple):
    """The outcome of verifying one (query, candidate) pair."""

    inliers: int  # correspondences consistent with the transform (0 when none was found)
    matches: np.ndarray  # (M, 2) int64: rows of the query's and of the candidate's features
    mask: np.ndarray  # (M,) bool: which matches are inliers
    transform: np.ndarray | None  # (2, 3) affine or (3, 3) homography, query -> candidate pixels


def _cv2():
    try:
        import cv2
    except ImportError:
        raise LookalikeError("spatial verification needs OpenCV: pip install 'lookalike[cv]'") from None
    return cv2


def match_features(a: np.ndarray, b: np.ndarray, *, method: str = "mutual", ratio: float = 0.8) -> np.ndarray:
    """Tentative correspondences between descriptors ``a (Na, D)`` and ``b (Nb, D)``.

    ``mutual``: pairs that are each other's nearest neighbour (Euclidean distance).
    ``ratio``: Lowe's test, each row of ``a`` keeps its nearest row of ``b`` when that is closer
    than ``ratio`` times the second nearest.

    Returns ``(M, 2)`` int64 index pairs ``(row of a, row of b)``, sorted by row of ``a``.
    One matrix product gives every squared distance; nothing loops over descriptors.
    """
    if method not in MATCHERS:
        raise LookalikeError(f"unknown matching {method!r}; choose one of: {', '.join(MATCHERS)}")
    if not 0 < ratio <= 1:
        raise LookalikeError(f"ratio must be in (0, 1], got {ratio}")
    a = np.asarray(a, dtype=np.float32)
    b = np.asarray(b, dtype=np.float32)
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
        raise LookalikeError(f"descriptors must be (Na, D) and (Nb, D) arrays, got {a.shape} and {b.shape}")
    if len(a) == 0 or len(b) == 0 or (method == "ratio" and len(b) < 2):
        return np.zeros((0, 2), np.int64)
    aa, bb = (a * a).sum(axis=1), (b * b).sum(axis=1)
    unit = np.allclose(aa, 1.0, atol=1e-3) and np.allclose(bb, 1.0, atol=1e-3)
    # g_ij = a_i.b_j - |b_j|^2 / 2 = (|a_i|^2 - d_ij^2) / 2: row-wise the same order as -d^2.
    # For unit descriptors (RootSIFT, DELF) the correction is constant and skipped; every step
    # below works in place on the one (Na, Nb) matrix, the cost being memory passes, not flops.
    g = a @ b.T
    if not unit:
        g -= 0.5 * bb[None, :]
    rows = np.arange(len(a))
    forward = g.argmax(axis=1)
    if method == "mutual":
        if not unit:
            g += 0.5 * (bb[None, :] - aa[:, None])  # now column-wise the same order as -d^2
        keep = g.argmax(axis=0)[forward] == rows
        return np.stack([rows[keep], forward[keep]], axis=1).astype(np.int64)
    first = g[rows, forward]
    g[rows, forward] = -np.inf
    second = g.max(axis=1)
    offset = 2.0 if unit else aa  # d^2 = |a|^2 + |b|^2 - 2 a.b: 2 - 2 g for unit rows, else |a|^2 - 2 g
    d_first, d_second = np.maximum(offset - 2 * first, 0), np.maximum(offset - 2 * second, 0)
    keep = d_first < ratio * ratio * d_second  # squared distances
    return np.stack([rows[keep], forward[keep]], axis=1).astype(np.int64)


def estimate_geometry(
    points_a: np.ndarray, points_b: np.ndarray, *, model: str = "affine", threshold: float = 5.0,
    max_iterations: int = 2000, confidence: float = 0.999,
) -> tuple[np.ndarray | None, np.ndarray]:
    """Fit ``model`` mapping ``points_a (M, 2)`` onto ``points_b (M, 2)`` robustly.

    ``affine``: 6 degrees of freedom, ``cv2.estimateAffine2D`` (RANSAC, then Levenberg-Marquardt
    refinement on the inliers). ``homography``: ``cv2.findHomography`` with MAGSAC++ (USAC).
    ``threshold`` is the largest reprojection error of an inlier, in pixels of ``b``.

    Returns the transform (``(2, 3)`` or ``(3, 3)`` float64, or ``None`` when there are too few
    points or no model was found) and the ``(M,)`` bool inlier mask.
    """
    if model not in MODELS:
        raise LookalikeError(f"unknown geometric model {model!r}; choose one of: {', '.join(MODELS)}")
    points_a = np.ascontiguousarray(points_a, dtype=np.float32).reshape(-1, 2)
    points_b = np.ascontiguousarray(points_b, dtype=np.float32).reshape(-1, 2)
    if len(points_a) != len(points_b):
        raise LookalikeError(f"{len(points_a)} points against {len(points_b)}: they must correspond")
    none = np.zeros(len(points_a), dtype=bool)
    if len(points_a) < MINIMAL[model]:
        return None, none
    cv2 = _cv2()
    if model == "affine":
        transform, mask = cv2.estimateAffine2D(
            points_a, points_b, method=cv2.RANSAC, ransacReprojThreshold=threshold,
            maxIters=max_iterations, confidence=confidence, refineIters=10)
    else:
        transform, mask = cv2.findHomography(points_a, points_b, cv2.USAC_MAGSAC, threshold,
                                             maxIters=max_iterations, confidence=confidence)
    if transform is None or mask is None:
        return None, none
    return transform, mask.ravel().astype(bool)


def verify_pair(
    query: LocalFeatures, candidate: LocalFeatures, *, method: str = "mutual", ratio: float = 0.8,
    model: str = "affine", threshold: float | None = None, **ransac,
) -> Verification:
    """Match the two images' local features and count the matches that one transform explains.

    ``threshold`` is in pixels of the candidate image; by default 1 % of its longer side
    (:attr:`LocalFeatures.size`), so that it follows the resolution features were computed at.
    ``ransac`` goes to :func:`estimate_geometry` (``max_iterations``, ``confidence``).
    """
    matches = match_features(query.descriptors, candidate.descriptors, method=method, ratio=ratio)
    if threshold is None:
        threshold = 0.01 * max(candidate.size)
    transform, mask = estimate_geometry(query.keypoints[matches[:, 0], :2], candidate.keypoints[matches[:, 1], :2],
                                        model=model, threshold=threshold, **ransac)
    return Verification(int(mask.sum()), matches, mask, transform)


def spatial_rerank(scores: np.ndarray, ids: np.ndarray, inliers: np.ndarray, *,
                   min_inliers: int = 10) -> tuple[np.ndarray, np.ndarray]:
    """Re-order one ranking: verified candidates (``inliers >= min_inliers``) first, by inliers
    then by global score; the others after them, in their original order.

    ``scores, ids, inliers``: ``(M,)`` for the candidates, best global score first. Returns the
    re-ordered ``(scores, ids)``; scores stay the global similarities (the DELG convention).
    """
    scores, ids, inliers = np.asarray(scores), np.asarray(ids), np.asarray(inliers)
    if not scores.shape == ids.shape == inliers.shape or scores.ndim != 1:
        raise LookalikeError(f"scores {scores.shape}, ids {ids.shape} and inliers {inliers.shape} "
                             "must be equal-length 1-D arrays")
    verified = inliers >= min_inliers
    # lexsort: the last key is the primary one; position breaks the remaining ties stably
    order = np.lexsort((np.arange(len(ids)), np.where(verified, -inliers, 0), ~verified))
    return scores[order], ids[order]
