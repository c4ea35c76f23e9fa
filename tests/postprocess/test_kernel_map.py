"""The homogeneous kernel map against the exact additive kernels (closed forms)."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.postprocess.kernel_map import (
    additive_kernel,
    homogeneous_kernel_map,
    inverse_kernel_map,
)

RNG = np.random.default_rng(0)
X = RNG.dirichlet(np.full(64, 0.5), size=40).astype(np.float32)
Y = RNG.dirichlet(np.full(64, 0.5), size=30).astype(np.float32)


def test_exact_kernels_closed_form():
    x = np.array([[0.5, 0.5, 0.0]], np.float32)
    y = np.array([[0.25, 0.25, 0.5]], np.float32)
    # chi2: 2*0.5*0.25/0.75 twice = 2/3; intersection: 0.25 + 0.25 = 0.5
    assert additive_kernel(x, y, "chi2")[0, 0] == pytest.approx(2 / 3)
    assert additive_kernel(x, y, "intersection")[0, 0] == pytest.approx(0.5)
    # chi2 distance = 2 - 2 k for L1-normalised histograms
    chi2_distance = ((x - y) ** 2 / np.maximum(x + y, 1e-12)).sum()
    assert chi2_distance == pytest.approx(2 - 2 * (2 / 3))


@pytest.mark.parametrize("kernel, order, mean_error", [("chi2", 1, 0.01), ("chi2", 3, 0.002),
                                                        ("intersection", 2, 0.03)])
def test_map_approximates_kernel(kernel, order, mean_error):
    exact = additive_kernel(X, Y, kernel)
    approx = homogeneous_kernel_map(X, kernel, order) @ homogeneous_kernel_map(Y, kernel, order).T
    assert np.abs(approx - exact).mean() / exact.mean() < mean_error
    assert homogeneous_kernel_map(X, kernel, order).shape == (40, 64 * (2 * order + 1))


def test_map_is_exact_on_the_diagonal_for_chi2():
    # k(x, x) = x for each bin; the truncated series is close to it everywhere
    x = np.linspace(0.01, 1, 20, dtype=np.float32)[:, None]
    psi = homogeneous_kernel_map(x, "chi2", 3)
    np.testing.assert_allclose((psi**2).sum(axis=1), x[:, 0], rtol=0.01)


def test_ranking_agrees_with_exact_chi2():
    exact = additive_kernel(X, Y, "chi2")
    approx = homogeneous_kernel_map(X, "chi2", 2) @ homogeneous_kernel_map(Y, "chi2", 2).T
    # fraction of database pairs (i, j) that both rank in the same order, per query
    same = np.sign(exact[:, :, None] - exact[:, None, :]) == np.sign(approx[:, :, None] - approx[:, None, :])
    assert same.mean() > 0.97


def test_zero_bins_and_inverse():
    x = np.array([[0.0, 0.3, 0.7]], np.float32)
    psi = homogeneous_kernel_map(x, "chi2", 2)
    assert np.isfinite(psi).all() and (psi[0, :5] == 0).all()
    np.testing.assert_allclose(inverse_kernel_map(psi, "chi2", 2), x, atol=1e-7)


def test_bad_inputs():
    with pytest.raises(LookalikeError, match="non-negative"):
        homogeneous_kernel_map(-X, "chi2")
    with pytest.raises(LookalikeError, match="unknown kernel"):
        homogeneous_kernel_map(X, "rbf")
    with pytest.raises(LookalikeError, match=r"shape \(N, D\)"):
        homogeneous_kernel_map(X[0], "chi2")
