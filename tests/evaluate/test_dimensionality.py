"""Distance concentration and PCA energy against closed forms."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.evaluate.dimensionality import (
    concentration_curves,
    distance_statistics,
    interpret,
    pca_energy,
)


def test_uniform_spread_follows_the_closed_form():
    # for uniform [0,1]^d, std/mean of distances ~ 3 sqrt(7/180) / sqrt(d)
    rng = np.random.default_rng(0)
    for d in (256, 1024):
        spread = distance_statistics(rng.random((1500, d)))["std_over_mean"]
        assert spread == pytest.approx(3 * np.sqrt(7 / 180) / np.sqrt(d), rel=0.1)


def test_contrast_vanishes_with_dimension_but_not_for_structured_data():
    rng = np.random.default_rng(1)
    # real-like data: 64-D but living on 4 directions
    structured = rng.normal(size=(1500, 4)) @ rng.normal(size=(4, 64)) + 0.01 * rng.normal(size=(1500, 64))
    curves = concentration_curves(structured, dimensions=(2, 16, 64, 512), n_points=1500)
    uniform = [curves["uniform"][d]["relative_contrast"] for d in (2, 16, 64, 512)]
    assert all(a > b for a, b in zip(uniform, uniform[1:]))
    assert curves["real"][64]["relative_contrast"] > 5 * curves["uniform"][64]["relative_contrast"]
    assert set(curves["real"]) == {2, 16, 64}
    text = " ".join(interpret(curves, pca_energy(structured)))
    assert "first 4 of 64 principal components" in text or "first 3 of 64" in text


def test_pca_energy_of_a_known_spectrum():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(20000, 3)) * np.sqrt([6.0, 3.0, 1.0])
    np.testing.assert_allclose(pca_energy(x), [0.6, 0.9, 1.0], atol=0.01)


def test_bad_input():
    with pytest.raises(LookalikeError, match=r"\(N, D\)"):
        distance_statistics(np.zeros(5))
    with pytest.raises(LookalikeError, match="N >= 10"):
        concentration_curves(np.zeros((3, 4)))
