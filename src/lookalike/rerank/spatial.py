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

import time
from collections.abc import Sequence
from dataclasses import dataclass
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
    return match_many(a, [b], method=method, ratio=ratio)[0]


def match_many(a: np.ndarray, candidates: Sequence[np.ndarray], *, method: str = "mutual", ratio: float = 0.8,
               chunk_bytes: int = 1 << 25) -> list[np.ndarray]:
    """:func:`match_features` of ``a (Na, D)`` against each of ``candidates`` (``(Nb_c, D)`` each).

    The candidates are stacked, padded to the longest, and matched a chunk of about
    ``chunk_bytes`` of similarities at a time: one ``Na x (C * Nb)`` matrix product and one
    reduction per chunk instead of one small product per pair, which is what makes re-ranking
    100 candidates cheap (the cost is memory passes over the similarity matrix, not flops).
    """
    if method not in MATCHERS:
        raise LookalikeError(f"unknown matching {method!r}; choose one of: {', '.join(MATCHERS)}")
    if not 0 < ratio <= 1:
        raise LookalikeError(f"ratio must be in (0, 1], got {ratio}")
    a = np.asarray(a, dtype=np.float32)
    candidates = [np.asarray(b, dtype=np.float32) for b in candidates]
    for b in candidates:
        if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[1]:
            raise LookalikeError(f"descriptors must be (Na, D) and (Nb, D) arrays, got {a.shape} and {b.shape}")
    empty = np.zeros((0, 2), np.int64)
    out = [empty] * len(candidates)
    if len(a) == 0:
        return out
    aa = (a * a).sum(axis=1)
    useful = [c for c, b in enumerate(candidates) if len(b) >= (2 if method == "ratio" else 1)]
    # similar sizes share a chunk, so that little of it is padding
    useful.sort(key=lambda c: len(candidates[c]))
    start = 0
    while start < len(useful):
        stop = start + 1
        while stop < len(useful) and (stop - start + 1) * len(candidates[useful[stop]]) * len(a) * 4 <= chunk_bytes:
            stop += 1
        chunk = useful[start:stop]
        width = len(candidates[chunk[-1]])
        matched = _match_chunk(a, aa, [candidates[c] for c in chunk], width, method, ratio)
        for c, pairs in zip(chunk, matched):
            out[c] = pairs
        start = stop
    return out


def _match_chunk(a: np.ndarray, aa: np.ndarray, chunk: list[np.ndarray], width: int, method: str,
                 ratio: float) -> list[np.ndarray]:
    """Match ``a`` against each of ``chunk`` (at most ``width`` rows each) with one product."""
    stacked = np.zeros((len(chunk), width, a.shape[1]), np.float32)
    bb = np.full((len(chunk), width), np.inf, np.float32)  # padding: infinitely far
    for c, b in enumerate(chunk):
        stacked[c, :len(b)] = b
        bb[c, :len(b)] = (b * b).sum(axis=1)
    real = np.isfinite(bb)
    unit = np.allclose(aa, 1.0, atol=1e-3) and np.allclose(bb[real], 1.0, atol=1e-3)
    # g_ij = a_i.b_j - |b_j|^2 / 2 = (|a_i|^2 - d_ij^2) / 2: row-wise the same order as -d^2.
    # For unit descriptors (RootSIFT, DELF) the correction is constant and skipped, but the
    # padding must still lose. Every step works in place on the one (Na, C, width) matrix.
    g = (a @ stacked.reshape(-1, a.shape[1]).T).reshape(len(a), len(chunk), width)
    if unit:
        if not real.all():
            g[:, ~real] = -np.inf
    else:
        g -= 0.5 * bb
    rows = np.arange(len(a))
    forward = g.argmax(axis=2)  # (Na, C)
    if method == "mutual":
        if not unit:  # now column-wise the same order as -d^2: a_i.b_j - |a_i|^2 / 2
            g += 0.5 * np.where(real, bb, 0)[None] - 0.5 * aa[:, None, None]
        # a_i -> b_j is mutual when no row beats a_i on column j. A max over rows, unlike an
        # argmax, reduces the matrix in place without copying it column-major.
        columns = np.arange(len(chunk))[None, :]
        best = g.max(axis=0)  # (C, width)
        keep = g[rows[:, None], columns, forward] >= best[columns, forward]
        # exact ties between rows: the first one wins, as an argmax would choose
        keep &= _first_of_column(keep, forward)
    else:
        first = np.take_along_axis(g, forward[:, :, None], axis=2)[:, :, 0]
        np.put_along_axis(g, forward[:, :, None], -np.inf, axis=2)
        second = g.max(axis=2)
        offset = 2.0 if unit else aa[:, None]  # d^2 = |a|^2 + |b|^2 - 2 a.b: 2 - 2 g for unit rows
        d_first, d_second = np.maximum(offset - 2 * first, 0), np.maximum(offset - 2 * second, 0)
        keep = d_first < ratio * ratio * d_second  # squared distances
    return [np.stack([rows[keep[:, c]], forward[keep[:, c], c]], axis=1).astype(np.int64) for c in range(len(chunk))]


def _first_of_column(keep: np.ndarray, forward: np.ndarray) -> np.ndarray:
    """``(Na, C)`` bool: whether row i is the first kept row pointing at its column ``forward``."""
    first = np.zeros_like(keep)
    kept_rows, kept_candidates = np.nonzero(keep)
    key = kept_candidates * (forward.max(initial=0) + 1) + forward[kept_rows, kept_candidates]
    _, position = np.unique(key, return_index=True)  # nonzero is row-major: earliest row first
    first[kept_rows[position], kept_candidates[position]] = True
    return first


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


@dataclass
class VerificationTiming:
    """Seconds spent matching and fitting models (wall clock and CPU time of this process),
    summed over every verified pair; pass one to :func:`verify_candidates` to fill it."""

    pairs: int = 0
    matching: float = 0.0
    ransac: float = 0.0
    matching_cpu: float = 0.0
    ransac_cpu: float = 0.0

    @property
    def matching_share(self) -> float:
        """Share of the wall time spent matching (the rest is RANSAC)."""
        return self.matching / max(self.matching + self.ransac, 1e-12)


def verify_candidates(
    query: LocalFeatures, candidates: Sequence[LocalFeatures], *, method: str = "mutual", ratio: float = 0.8,
    model: str = "affine", threshold: float | None = None, timing: VerificationTiming | None = None, **ransac,
) -> list[Verification]:
    """Match the query's local features with each candidate's (all candidates in a few matrix
    products, :func:`match_many`) and count the matches that one transform explains, per pair.

    ``threshold`` is in pixels of the candidate image; by default 1 % of its longer side
    (:attr:`LocalFeatures.size`), so that it follows the resolution features were computed at.
    ``ransac`` goes to :func:`estimate_geometry` (``max_iterations``, ``confidence``).
    ``timing``: adds the time spent in matching and in RANSAC to it.
    """
    clock, cpu = time.perf_counter(), time.process_time()
    matched = match_many(query.descriptors, [c.descriptors for c in candidates], method=method, ratio=ratio)
    middle, middle_cpu = time.perf_counter(), time.process_time()
    results = []
    for candidate, matches in zip(candidates, matched):
        transform, mask = estimate_geometry(
            query.keypoints[matches[:, 0], :2], candidate.keypoints[matches[:, 1], :2], model=model,
            threshold=0.01 * max(candidate.size) if threshold is None else threshold, **ransac)
        results.append(Verification(int(mask.sum()), matches, mask, transform))
    if timing is not None:
        timing.pairs += len(candidates)
        timing.matching += middle - clock
        timing.matching_cpu += middle_cpu - cpu
        timing.ransac += time.perf_counter() - middle
        timing.ransac_cpu += time.process_time() - middle_cpu
    return results


def verify_pair(query: LocalFeatures, candidate: LocalFeatures, **options) -> Verification:
    """:func:`verify_candidates` for one candidate (same options)."""
    return verify_candidates(query, [candidate], **options)[0]


def verification_order(scores: np.ndarray, inliers: np.ndarray, matches: np.ndarray | None = None, *,
                       min_inliers: int = 10, inlier_ratio: float = 0.0, inlier_weight: float = 0.0
                       ) -> tuple[np.ndarray, np.ndarray]:
    """The new order of one query's candidates, and which are verified.

    ``scores, inliers, matches``: ``(M,)`` global similarities, RANSAC inliers and tentative
    matches of the candidates (``matches`` only matters with ``inlier_ratio``). A candidate is
    verified when its inliers reach ``min_inliers`` and exceed ``inlier_ratio * matches``, the
    inliers that chance alignments among that many tentative matches give. Verified candidates
    come first. With ``inlier_weight = 0`` (the DELG convention, Cao et al. ECCV 2020) they are
    sorted by inliers and the others keep their order; with ``inlier_weight = w > 0`` both groups
    are sorted by ``score + w * log(1 + excess)``, ``excess = max(0, inliers - inlier_ratio *
    matches)``, so that a candidate with some inliers beyond chance, too few to be verified,
    still moves up among the unverified. Ties keep the given order.

    Returns ``order (M,)`` (candidate positions, new first) and ``verified (M,)`` bool.
    """
    scores, inliers = np.asarray(scores, dtype=np.float64), np.asarray(inliers)
    matches = np.zeros_like(inliers) if matches is None else np.asarray(matches)
    if not scores.shape == inliers.shape == matches.shape or scores.ndim != 1:
        raise LookalikeError(f"scores {scores.shape}, inliers {inliers.shape} and matches {matches.shape} "
                             "must be equal-length 1-D arrays")
    excess = inliers - inlier_ratio * matches
    verified = (inliers >= min_inliers) & (excess > 0)
    if inlier_weight > 0:
        key = -(scores + inlier_weight * np.log1p(np.maximum(excess, 0)))
    else:
        key = np.where(verified, -inliers, 0)
    # lexsort: the last key is the primary one; position breaks the remaining ties stably
    return np.lexsort((np.arange(len(scores)), key, ~verified)), verified


def spatial_rerank(scores: np.ndarray, ids: np.ndarray, inliers: np.ndarray, matches: np.ndarray | None = None,
                   **rule) -> tuple[np.ndarray, np.ndarray]:
    """Re-order one ranking ``scores, ids (M,)`` (best global score first) by
    :func:`verification_order` (``rule``: ``min_inliers``, ``inlier_ratio``, ``inlier_weight``).
    Returns the re-ordered ``(scores, ids)``; scores stay the global similarities (DELG)."""
    ids = np.asarray(ids)
    order, _ = verification_order(scores, inliers, matches, **rule)
    if ids.shape != order.shape:
        raise LookalikeError(f"{len(ids)} ids for {len(order)} scores: they must correspond")
    return np.asarray(scores)[order], ids[order]
