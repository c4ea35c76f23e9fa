"""CCA on a synthetic pair of views whose canonical correlations are known in closed form."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.crossmodal.cca import cca
from lookalike.errors import LookalikeError


def test_recovers_the_known_correlation():
    rng = np.random.default_rng(0)
    n = 20000
    z = rng.standard_normal(n)
    # x = (z + 0.5 noise, noise), y = (noise, z + noise): corr = 1 / sqrt(1.25 * 2)
    x = np.stack([z + 0.5 * rng.standard_normal(n), rng.standard_normal(n)], 1)
    y = np.stack([rng.standard_normal(n), z + rng.standard_normal(n), rng.standard_normal(n)], 1)
    mean_x, w_x, mean_y, w_y, correlations = cca(x, y, 2, regularisation=0.0)
    assert correlations[0] == pytest.approx(1 / np.sqrt(2.5), abs=0.01)
    assert correlations[1] == pytest.approx(0.0, abs=0.03)
    u, v = (x - mean_x) @ w_x[:, 0], (y - mean_y) @ w_y[:, 0]
    assert np.corrcoef(u, v)[0, 1] == pytest.approx(correlations[0], abs=1e-6)
    assert u.var(ddof=1) == pytest.approx(1.0, abs=1e-6)
    # the direction found is the shared coordinate of each view
    assert abs(w_x[0, 0]) > 20 * abs(w_x[1, 0]) and abs(w_y[1, 0]) > 20 * max(abs(w_y[0, 0]), abs(w_y[2, 0]))


def test_rejects_bad_input():
    with pytest.raises(LookalikeError, match="dim"):
        cca(np.zeros((5, 2)), np.zeros((5, 3)), 3)
    with pytest.raises(LookalikeError, match="paired"):
        cca(np.zeros((5, 2)), np.zeros((4, 3)), 1)
