"""PCA against closed forms: known axes and variances, whitening, errors."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.postprocess.pca import PCA


def test_recovers_known_axes_and_variances():
    rng = np.random.default_rng(0)
    rotation, _ = np.linalg.qr(rng.normal(size=(3, 3)))
    x = (rng.normal(size=(20000, 3)) * [5.0, 2.0, 0.5]) @ rotation.T + [1, 2, 3]
    pca = PCA(2).fit(x)
    np.testing.assert_allclose(pca.explained_variance_, [25.0, 4.0], rtol=0.05)
    np.testing.assert_allclose(np.abs(pca.components_ @ rotation[:, :2]), np.eye(2), atol=0.01)
    projected = pca.transform(x)
    np.testing.assert_allclose(projected.mean(axis=0), 0, atol=0.05)
    white = PCA(2, whiten=True).fit(x).transform(x)
    np.testing.assert_allclose(white.std(axis=0), 1.0, rtol=0.02)


def test_bad_inputs():
    with pytest.raises(LookalikeError, match="n_components=5 should be in 1..3"):
        PCA(5).fit(np.zeros((10, 3)))
    with pytest.raises(LookalikeError, match="not fitted"):
        PCA(1).transform(np.zeros((2, 3)))
    with pytest.raises(LookalikeError, match=r"expected \(N, 3\)"):
        PCA(1).fit(np.random.default_rng(0).normal(size=(10, 3))).transform(np.zeros((2, 4)))
