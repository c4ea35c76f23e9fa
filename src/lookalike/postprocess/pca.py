"""PCA as an estimator: learn a projection on a training set, apply it anywhere."""

from __future__ import annotations

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.threads import threads_for


class PCA:
    """Project ``(N, D)`` rows onto their top ``n_components`` principal axes.

    Used on local descriptors before a vocabulary (128 -> 64 for SIFT, as in Jégou et al.'s
    VLAD and Perronnin et al.'s Fisher vectors), where decorrelation also suits the diagonal GMM.
    With ``whiten`` each output dimension is divided by its standard deviation.
    """

    def __init__(self, n_components: int, *, whiten: bool = False) -> None:
        self.n_components = n_components
        self.whiten = whiten

    def fit(self, x: np.ndarray) -> PCA:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2:
            raise LookalikeError(f"expected (N, D) training data, got {x.shape}")
        if not 1 <= self.n_components <= x.shape[1]:
            raise LookalikeError(f"n_components={self.n_components} should be in 1..{x.shape[1]}")
        if len(x) <= self.n_components:
            raise LookalikeError(f"n_samples={len(x)} should be > n_components={self.n_components}")
        self.mean_ = x.mean(axis=0)
        centred = x - self.mean_
        eigenvalues, eigenvectors = np.linalg.eigh(centred.T @ centred / (len(x) - 1))
        order = np.argsort(eigenvalues)[::-1][: self.n_components]
        self.explained_variance_ = eigenvalues[order]
        self.components_ = eigenvectors[:, order].T  # (n_components, D)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "components_"):
            raise LookalikeError("PCA is not fitted yet; call fit()")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.components_.shape[1]:
            raise LookalikeError(f"expected (N, {self.components_.shape[1]}) rows, got {x.shape}")
        with threads_for(x.size * len(self.components_)):
            projected = (x - self.mean_.astype(np.float32)) @ self.components_.T.astype(np.float32)
        if self.whiten:
            projected /= np.sqrt(np.maximum(self.explained_variance_, 1e-12)).astype(np.float32)
        return np.ascontiguousarray(projected, dtype=np.float32)
