"""tf-idf weighting of bag-of-words counts (Sivic & Zisserman, ICCV 2003)."""

from __future__ import annotations

import numpy as np

from lookalike.norms import l2_normalise


def idf_weights(counts: np.ndarray) -> np.ndarray:
    """Inverse document frequency ``log(N / n_w)`` per word from ``counts (N, K)`` (dense or sparse).

    Words in no document get weight 0: they can match nothing.
    """
    n_docs = counts.shape[0]
    document_frequency = np.asarray((counts > 0).sum(axis=0)).ravel().astype(np.float64)
    with np.errstate(divide="ignore"):
        idf = np.where(document_frequency > 0, np.log(n_docs / np.maximum(document_frequency, 1)), 0.0)
    return idf.astype(np.float32)


def tfidf(counts: np.ndarray, idf: np.ndarray) -> np.ndarray:
    """L2-normalised tf-idf rows ``(N, K)`` from dense word counts ``(N, K)``: the brute-force reference."""
    counts = np.atleast_2d(np.asarray(counts, dtype=np.float64))
    tf = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1e-12)
    weighted = tf * idf
    return l2_normalise(weighted).astype(np.float32)
