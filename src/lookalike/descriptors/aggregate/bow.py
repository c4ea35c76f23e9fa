"""Bag of visual words (Sivic & Zisserman, "Video Google", ICCV 2003) with tf-idf weighting."""

from __future__ import annotations

import numpy as np

from lookalike.descriptors.aggregate.checks import local_descriptors
from lookalike.descriptors.aggregate.vlad import knn_centers
from lookalike.errors import LookalikeError


def bow_encode(x: np.ndarray, centers: np.ndarray, *, soft: int = 1, sigma: float | None = None) -> np.ndarray:
    """Word counts ``(K,)`` float32 of descriptors ``x (T, D)`` for the vocabulary ``centers (K, D)``.

    ``soft=1`` is hard assignment (each descriptor adds 1 to its nearest word). ``soft=n > 1``
    spreads each descriptor's unit weight over its ``n`` nearest words in proportion to
    ``exp(-d^2 / (2 sigma^2))`` (Philbin et al., "Lost in quantization", CVPR 2008); ``sigma``
    defaults to the median distance to the nearest word.
    """
    centers = local_descriptors(centers)
    x = local_descriptors(x, centers.shape[1])
    k = len(centers)
    if not 1 <= soft <= k:
        raise LookalikeError(f"soft={soft} should be between 1 and the vocabulary size {k}")
    if len(x) == 0:
        return np.zeros(k, dtype=np.float32)
    d2, nearest = knn_centers(x, centers, soft)  # (T, soft) each, nearest first
    if soft == 1:
        return np.bincount(nearest[:, 0], minlength=k).astype(np.float32)
    scale = sigma if sigma is not None else float(np.median(np.sqrt(d2[:, 0]))) or 1.0
    weights = np.exp(-(d2 - d2[:, :1]) / (2.0 * scale * scale))
    weights /= weights.sum(axis=1, keepdims=True)
    return np.bincount(nearest.ravel(), weights=weights.ravel(), minlength=k).astype(np.float32)
