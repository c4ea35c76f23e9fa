"""VLAD and Fisher vectors equal VLFeat's, on random data and on real SIFT descriptors."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors.aggregate import fisher_encode, nearest_centers, vlad_encode
from lookalike.errors import LookalikeError
from tests.reference import vlfeat as vl

VLFEAT = vl.load()
needs_vlfeat = pytest.mark.skipif(VLFEAT is None, reason="libvlfeat-dev is not installed")

RNG = np.random.default_rng(0)
X = RNG.normal(size=(500, 16)).astype(np.float32)
CENTERS = RNG.normal(size=(8, 16)).astype(np.float32)
VARIANCES = RNG.uniform(0.5, 2.0, size=(8, 16)).astype(np.float32)
WEIGHTS = (lambda w: (w / w.sum()).astype(np.float32))(RNG.uniform(0.5, 1.5, 8))


def one_hot(x, centers):
    a = np.zeros((len(x), len(centers)), np.float32)
    a[np.arange(len(x)), nearest_centers(x, centers)] = 1
    return a


def test_vlad_closed_form():
    x = np.array([[1, 0], [3, 0], [0, 5]], np.float32)
    centers = np.array([[2, 0], [0, 4]], np.float32)
    v = vlad_encode(x, centers, l2=False)
    np.testing.assert_allclose(v, [0, 0, 0, 1])  # (-1 + 1, 0) and (0, 1)
    assert np.linalg.norm(vlad_encode(x, centers)) == pytest.approx(1.0)


@needs_vlfeat
@pytest.mark.parametrize(
    "options, flags",
    [
        (dict(l2=False), vl.VLAD_UNNORMALIZED),
        (dict(), 0),
        (dict(intra=True), vl.VLAD_NORMALIZE_COMPONENTS),
        (dict(power=0.5), vl.VLAD_SQUARE_ROOT),
        (dict(power=0.5, intra=True, l2=False), vl.VLAD_SQUARE_ROOT | vl.VLAD_NORMALIZE_COMPONENTS | vl.VLAD_UNNORMALIZED),
    ],
)
def test_vlad_matches_vlfeat(options, flags):
    expected = VLFEAT.vlad(X, CENTERS, one_hot(X, CENTERS), flags)
    np.testing.assert_allclose(vlad_encode(X, CENTERS, **options), expected, rtol=1e-4, atol=2e-5)


@needs_vlfeat
@pytest.mark.parametrize("improved", [False, True])
def test_fisher_matches_vlfeat(improved):
    expected = VLFEAT.fisher(X, CENTERS, VARIANCES, WEIGHTS, vl.FISHER_IMPROVED if improved else 0)
    ours = fisher_encode(X, CENTERS, VARIANCES, WEIGHTS, improved=improved)
    assert ours.shape == (2 * 8 * 16,)
    np.testing.assert_allclose(ours, expected, rtol=1e-4, atol=1e-5)


def test_fisher_of_one_gaussian_closed_form():
    # K = 1: u = mean of (x - mu)/sigma, v = mean of ((x - mu)/sigma)^2 - 1, over sqrt(2)
    x = np.array([[1.0], [3.0]], np.float32)
    fv = fisher_encode(x, np.array([[1.0]]), np.array([[4.0]]), np.array([1.0]), improved=False)
    np.testing.assert_allclose(fv, [0.5, (0.5 - 1) / np.sqrt(2)], rtol=1e-6)


def test_empty_and_bad_inputs():
    assert not vlad_encode(np.zeros((0, 16)), CENTERS).any()
    assert fisher_encode(np.zeros((0, 16)), CENTERS, VARIANCES, WEIGHTS).shape == (256,)
    with pytest.raises(LookalikeError, match=r"shape \(T, 16\)"):
        vlad_encode(np.zeros((5, 3)), CENTERS)
    with pytest.raises(LookalikeError, match="must be positive"):
        fisher_encode(X, CENTERS, -VARIANCES, WEIGHTS)
    with pytest.raises(LookalikeError, match="shapes disagree"):
        fisher_encode(X, CENTERS, VARIANCES[:3], WEIGHTS)
