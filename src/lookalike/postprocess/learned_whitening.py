"""Whitening learned from matching pairs (Radenović, Tolias & Chum, PAMI 2018, "learned whitening").

Where :class:`~lookalike.postprocess.whitening.PCAWhitening` only sees the images, this one is told
which images match. It first whitens the *differences* of matching pairs, the variation that should
not matter (viewpoint, lighting, background), so that this nuisance weighs alike on every axis,
then rotates onto the principal axes of the data so whitened, ordered by how much they vary, and
keeps the first ``n_components``. It is still one linear map ``(x - mean) @ projection.T`` followed
by L2 normalisation, stored in the same file format and applied through the same ``whitening``
option.
"""

from __future__ import annotations

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.postprocess.whitening import PCAWhitening


def learn_pair_whitening(x: np.ndarray, pairs: np.ndarray, n_components: int, shrinkage: float = 0.0,
                         ) -> tuple[np.ndarray, np.ndarray]:
    """The mean ``(D,)`` and projection ``(n_components, D)`` of the learned whitening.

    Args:
        x: ``(N, D)`` training vectors.
        pairs: ``(M, 2)`` row indices of matching vectors.
        n_components: rows of the projection kept.
        shrinkage: in [0, 1]; the eigenvalues of the pair-difference covariance are replaced by
            ``(1 - s) lambda + s mean(lambda)``, which keeps directions where matching pairs
            never differ (too few pairs) from being blown up.

    The projection is ``V^T C_S^{-1/2}``, with ``C_S`` the covariance of the differences of
    matching pairs and ``V`` the eigenvectors of ``C_S^{-1/2} C_D C_S^{-1/2}``, ``C_D`` the
    covariance of the centred data, by decreasing eigenvalue.
    """
    x = np.asarray(x, dtype=np.float64)
    mean = x.mean(axis=0)
    differences = x[pairs[:, 0]] - x[pairs[:, 1]]
    pair_covariance = differences.T @ differences / len(differences)
    values, vectors = np.linalg.eigh(pair_covariance)
    values = np.maximum(values, 0.0)
    values = (1 - shrinkage) * values + shrinkage * values.mean()
    values = np.maximum(values, 1e-9 * max(values.max(), 1e-30))
    inverse_sqrt = (vectors / np.sqrt(values)) @ vectors.T  # C_S^{-1/2}, symmetric
    whitened = (x - mean) @ inverse_sqrt
    spread, axes = np.linalg.eigh(whitened.T @ whitened / len(x))
    order = np.argsort(spread)[::-1][:n_components]
    return mean, axes[:, order].T @ inverse_sqrt


class LearnedWhitening(PCAWhitening):
    """``(N, D) -> (N, n_components)`` L2-normalised rows, whitened against matching-pair variation.

    Args:
        n_components: output dimension (0 = ``D``).
        shrinkage: see :func:`learn_pair_whitening`.

    ``fit(x, pairs)`` takes the vectors and the ``(M, 2)`` indices of matching pairs (e.g. every
    pair of images of one class, :func:`matching_pairs`).
    """

    kind = "learned-whitening"

    def fit(self, x: np.ndarray, pairs: np.ndarray | None = None) -> LearnedWhitening:  # type: ignore[override]
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or len(x) < 2:
            raise LookalikeError(f"learned whitening needs at least 2 training vectors (N, D), got {x.shape}")
        pairs = np.asarray(pairs if pairs is not None else np.zeros((0, 2)), dtype=np.int64).reshape(-1, 2)
        if len(pairs) == 0:
            raise LookalikeError("learned whitening needs matching pairs: images that show the same thing")
        if pairs.min() < 0 or pairs.max() >= len(x):
            raise LookalikeError(f"matching pairs index rows 0..{len(x) - 1}, got {pairs.min()}..{pairs.max()}")
        n = self.n_components or x.shape[1]
        if n > x.shape[1]:
            raise LookalikeError(f"cannot keep {n} dimensions of {x.shape[1]}-D vectors; use fewer")
        mean, projection = learn_pair_whitening(x, pairs, n, self.shrinkage)
        self.mean_, self.projection_ = mean.astype(np.float32), projection.astype(np.float32)
        return self


def matching_pairs(labels: np.ndarray, max_pairs: int = 100_000, seed: int = 0) -> np.ndarray:
    """``(M, 2)`` indices of distinct items sharing a label: all such pairs, or ``max_pairs`` of them
    drawn at random."""
    labels = np.asarray(labels)
    groups = [np.flatnonzero(labels == label) for label in np.unique(labels)]
    pairs = [np.stack([g[i], g[j]], axis=1) for g in groups for i, j in [np.triu_indices(len(g), k=1)]]
    pairs = np.concatenate(pairs) if pairs else np.zeros((0, 2), dtype=np.int64)
    if len(pairs) > max_pairs:
        pairs = pairs[np.sort(np.random.default_rng(seed).choice(len(pairs), max_pairs, replace=False))]
    return pairs.astype(np.int64)
