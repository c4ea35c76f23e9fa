"""EMD against closed forms: shifted mass, and the 1-D CDF formula."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.rerank.emd import emd, emd_rerank

LINE = np.arange(6, dtype=np.float64)[:, None]  # bins at 0, 1, ..., 5 on a line


def test_moving_all_mass_costs_the_distance():
    a = np.array([1, 0, 0, 0, 0, 0.0])
    b = np.array([0, 0, 0, 1, 0, 0.0])
    assert emd(a, b, LINE) == pytest.approx(3.0)
    assert emd(a, a, LINE) == pytest.approx(0.0, abs=1e-9)


def test_one_dimensional_emd_is_l1_between_cdfs():
    rng = np.random.default_rng(0)
    for _ in range(5):
        a, b = rng.random(6), rng.random(6)
        expected = np.abs(np.cumsum(a / a.sum()) - np.cumsum(b / b.sum())).sum()
        assert emd(a, b, LINE) == pytest.approx(expected, abs=1e-7)


def test_rerank_orders_by_distance():
    query = np.array([1, 0, 0, 0, 0, 0.0])
    candidates = np.eye(6)[[4, 1, 2]]
    scores, ids = emd_rerank(query, candidates, np.array([40, 10, 20]), LINE)
    assert ids.tolist() == [10, 20, 40]
    np.testing.assert_allclose(scores, [-1, -2, -4], atol=1e-9)


def test_bad_inputs():
    with pytest.raises(LookalikeError, match="positive mass"):
        emd(np.zeros(6), np.ones(6), LINE)
    with pytest.raises(LookalikeError, match="disagree"):
        emd(np.ones(5), np.ones(6), LINE)
