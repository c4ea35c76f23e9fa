"""Spatial verification of every pair of images of one class, and the graph it defines.

Gordo et al., "Deep Image Retrieval: Learning global representations for image search",
ECCV 2016 (section 3): a landmark class gathered from the web holds views of the landmark and
unrelated pictures. Inside each class every pair of images is matched with local features and
verified with RANSAC; verified pairs are the edges of a graph, and the largest connected
component is kept as the class: the views of the landmark link up through their overlaps, the
unrelated pictures verify with nothing.
"""

from __future__ import annotations

import numpy as np

from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.rerank.spatial import MINIMAL, estimate_geometry, match_many


def pair_inliers(features: list[LocalFeatures], *, method: str = "mutual", ratio: float = 0.8,
                 model: str = "affine", threshold: float | None = None, min_inliers: int = 0,
                 **ransac) -> np.ndarray:
    """Inliers ``(n, n)`` int64 of every pair of ``n`` images (symmetric, 0 on the diagonal).

    Each image ``i`` is matched against all ``j > i`` at once (:func:`match_many`, the re-ranking's
    batched matcher), then RANSAC
    (:func:`lookalike.rerank.spatial.estimate_geometry`) fits ``model`` from ``i`` to ``j`` with
    ``threshold`` in pixels of ``j`` (default 1 % of its longer side, as ``verify_pair``). Pairs
    with fewer than ``min_inliers`` correspondences cannot reach that many inliers: RANSAC is
    skipped for them and they count 0.
    """
    n = len(features)
    inliers = np.zeros((n, n), dtype=np.int64)
    if n < 2:
        return inliers
    for i in range(n - 1):
        a = features[i]
        later = [f.descriptors for f in features[i + 1:]]
        for j, matches in enumerate(match_many(a.descriptors, later, method=method, ratio=ratio), start=i + 1):
            if len(matches) < max(min_inliers, MINIMAL[model]):
                continue
            b = features[j]
            _, mask = estimate_geometry(a.keypoints[matches[:, 0], :2], b.keypoints[matches[:, 1], :2],
                                        model=model, threshold=threshold or 0.01 * max(b.size), **ransac)
            inliers[i, j] = inliers[j, i] = int(mask.sum())
    return inliers


def largest_component(adjacency: np.ndarray) -> tuple[np.ndarray, int]:
    """The largest connected component of a symmetric ``(n, n)`` bool graph: its mask ``(n,)`` bool,
    and how many components of two or more nodes the graph has.

    Ties go to the component holding the lowest index. An image without any edge is a component of
    one; when no image has an edge the mask keeps nothing, since nothing was verified.
    """
    from scipy.sparse import csr_matrix
    from scipy.sparse.csgraph import connected_components

    adjacency = np.asarray(adjacency, dtype=bool)
    n = len(adjacency)
    if n == 0 or not adjacency.any():
        return np.zeros(n, dtype=bool), 0
    _, component = connected_components(csr_matrix(adjacency), directed=False)
    sizes = np.bincount(component)  # components are numbered in the order of their lowest index
    return component == np.argmax(sizes), int((sizes >= 2).sum())
