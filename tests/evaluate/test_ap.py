"""AP against hand-computed values, with junk, truncation and the revisited setups."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.evaluate.ap import average_precision, plain_average_precision, positive_ranks
from lookalike.evaluate.metrics import evaluate_rankings, pr_curve
from lookalike.io.protocol import load_protocol


def ap_of(ranking, ok, junk=()):
    ranks = positive_ranks(np.array(ranking), np.array(ok), np.array(junk, dtype=np.int64))
    n_pos = len(set(ok) - set(junk))
    return average_precision(ranks, n_pos), plain_average_precision(ranks, n_pos)


def test_perfect_ranking():
    assert ap_of([2, 0, 1], ok=[2, 0]) == (1.0, 1.0)


def test_hand_computed_without_junk():
    # positives at ranks 1 and 3: trapezoid terms (0 + 1/2)/2 and (1/3 + 2/4)/2, over 2 positives
    ap, plain = ap_of([5, 0, 6, 1, 7], ok=[0, 1])
    assert ap == pytest.approx((0.25 + (1 / 3 + 0.5) / 2) / 2)
    assert plain == pytest.approx((1 / 2 + 2 / 4) / 2)


def test_hand_computed_with_junk():
    # junk 3 is dropped: [0, 5, 1, 2, 4]; positives at ranks 0 and 2
    ap, plain = ap_of([3, 0, 5, 1, 2, 4], ok=[0, 1], junk=[3])
    assert ap == pytest.approx((1.0 + (1 / 2 + 2 / 3) / 2) / 2)
    assert plain == pytest.approx((1 + 2 / 3) / 2)


def test_junk_can_only_help():
    without, _ = ap_of([3, 0, 5, 1], ok=[0, 1])
    with_junk, _ = ap_of([3, 0, 5, 1], ok=[0, 1], junk=[3])
    assert with_junk > without


def test_missing_positives_count_as_never_retrieved():
    ap, _ = ap_of([0, 2], ok=[0, 1])  # truncated ranking, positive 1 absent
    assert ap == pytest.approx(0.5)


def test_query_without_positives_is_nan():
    assert np.isnan(ap_of([0, 1], ok=[0], junk=[0])[0])


@pytest.fixture
def revisited_protocol(tmp_path):
    (tmp_path / "images").mkdir()
    data = {"imlist": ["a", "b", "c", "d"], "qimlist": ["q"],
            "gnd": [{"easy": [0], "hard": [1], "junk": [2]}]}
    (tmp_path / "r.json").write_text(json.dumps(data))
    return load_protocol(tmp_path / "r.json")


def test_revisited_setups(revisited_protocol):
    result = evaluate_rankings(np.array([[3, 1, 2, 0]]), revisited_protocol)
    variants = result["variants"]
    assert variants["easy"]["map"] == pytest.approx(0.25)  # [3, 0]: rank 1
    assert variants["medium"]["map"] == pytest.approx((0.25 + (1 / 2 + 2 / 3) / 2) / 2)  # [3, 1, 0]
    assert variants["hard"]["map"] == pytest.approx(0.25)  # [3, 1]
    assert result["map"] == variants["medium"]["map"]


@pytest.fixture
def copy_protocol(tmp_path):
    (tmp_path / "images").mkdir()
    data = {"imlist": ["a", "b", "c"], "qimlist": ["q1", "q2", "q3"],
            "gnd": [{"ok": [0], "junk": []}, {"ok": [1], "junk": []}, {"ok": [2], "junk": []}],
            "qattack": ["jpeg", "crop", "crop"], "qfamily": ["x", "y", "y"]}
    (tmp_path / "c.json").write_text(json.dumps(data))
    return load_protocol(tmp_path / "c.json")


def test_per_attack_and_top1(copy_protocol):
    rankings = np.array([[0, 1, 2], [0, 1, 2], [2, 0, 1]])
    result = evaluate_rankings(rankings, copy_protocol, ks=(1, 2))
    assert result["per_attack"]["jpeg"]["map"] == 1.0
    assert result["per_attack"]["crop"]["map"] == pytest.approx((0.25 + 1.0) / 2)
    assert result["per_attack"]["crop"]["top1"] == 0.5
    assert result["top1"] == pytest.approx(2 / 3)
    assert result["mp@k"]["2"] == pytest.approx(0.5)
    assert result["mr@k"]["1"] == pytest.approx(2 / 3)
    assert [q["query"] for q in result["per_query"]] == ["q1", "q2", "q3"]
    assert set(result["per_family"]) == {"x", "y"}


def test_pr_curve_of_perfect_and_halfway(copy_protocol):
    perfect = evaluate_rankings(np.array([[0, 1, 2], [1, 0, 2], [2, 0, 1]]), copy_protocol)
    recall, precision = pr_curve(perfect["_scores"])
    assert recall[0] == 0 and recall[-1] == 1 and np.allclose(precision, 1)
    second = evaluate_rankings(np.array([[1, 0, 2], [0, 1, 2], [0, 2, 1]]), copy_protocol)
    assert np.allclose(pr_curve(second["_scores"])[1], 0.5)
