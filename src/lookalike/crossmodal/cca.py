"""Regularised canonical correlation analysis (Hotelling 1936), the closed-form joint space.

Images and texts are projected by ``W_x`` and ``W_y`` onto the directions along which they
correlate most. Following Gong et al. (IJCV 2014, "A multi-view embedding space for modeling
internet images, tags, and their semantics"), each direction is then weighted by its canonical
correlation to a power, so that the well-correlated directions dominate the cosine.
"""

from __future__ import annotations

import numpy as np

from lookalike.errors import LookalikeError


def _inverse_sqrt(covariance: np.ndarray, regularisation: float) -> np.ndarray:
    """``(C + r * mean(eig(C)) I)^(-1/2)`` of a symmetric positive semi-definite matrix."""
    values, vectors = np.linalg.eigh(covariance)
    values = np.maximum(values, 0.0) + regularisation * max(values.mean(), 1e-12)
    return (vectors / np.sqrt(values)) @ vectors.T


def cca(x: np.ndarray, y: np.ndarray, dim: int, regularisation: float = 0.1
        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Fit CCA on paired rows.

    Args:
        x: [N, Dx] one view (image descriptors); y: [N, Dy] the other (text embeddings), row i paired.
        dim: number of canonical directions kept (<= min(Dx, Dy)).
        regularisation: ridge added to each covariance, relative to its mean eigenvalue (0 = plain CCA).

    Returns:
        ``(mean_x [Dx], w_x [Dx, dim], mean_y [Dy], w_y [Dy, dim], correlations [dim])``, so that
        ``(x - mean_x) @ w_x`` and ``(y - mean_y) @ w_y`` have unit variance (up to the ridge)
        and correlate by ``correlations``, in decreasing order.
    """
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    if x.ndim != 2 or y.ndim != 2 or len(x) != len(y) or len(x) < 2:
        raise LookalikeError(f"CCA needs paired (N, D) rows with N >= 2, got {x.shape} and {y.shape}")
    if not 0 < dim <= min(x.shape[1], y.shape[1]):
        raise LookalikeError(f"CCA dim={dim} must be in [1, {min(x.shape[1], y.shape[1])}]")
    mean_x, mean_y = x.mean(0), y.mean(0)
    x, y = x - mean_x, y - mean_y
    n = len(x) - 1
    sx, sy = _inverse_sqrt(x.T @ x / n, regularisation), _inverse_sqrt(y.T @ y / n, regularisation)
    u, correlations, vt = np.linalg.svd(sx @ (x.T @ y / n) @ sy, full_matrices=False)
    w_x, w_y = sx @ u[:, :dim], sy @ vt[:dim].T
    return mean_x, w_x, mean_y, w_y, correlations[:dim]
