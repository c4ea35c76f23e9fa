"""Cleaning a class by spatial verification, on real photographs: a planted clean component of one
object's views is recovered from among outliers of other objects and of other scenes."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.clean import CleanConfig, clean_classes
from lookalike.clean.verification import largest_component, pair_inliers
from lookalike.errors import LookalikeError

pytest.importorskip("cv2")


def _sift(paths):
    from lookalike.descriptors.local.registry import create_local
    from lookalike.pipelines.reranking import describe_local

    return describe_local(create_local("sift"), paths, workers=1, progress=False)


@pytest.fixture(scope="module")
def planted(shared_data):
    """12 views of one car, then 5 outliers: two views of a cow, one of a dog, two landscapes."""
    eth80 = shared_data / "eth80" / "images"
    views = sorted((eth80 / "car" / "car1").glob("*.jpg"))[:12]
    outliers = sorted((eth80 / "cow" / "cow1").glob("*.jpg"))[:2] + sorted((eth80 / "dog" / "dog1").glob("*.jpg"))[:1]
    outliers += sorted((shared_data / "landmarks" / "images" / "distractors").glob("*.jpg"))[:2]
    return _sift(views + outliers), len(views)


def test_cleaning_recovers_a_planted_clean_component(planted):
    features, clean = planted
    labels = np.zeros(len(features), dtype=np.int64)
    keep, report = clean_classes(labels, features, CleanConfig())
    assert keep.tolist() == [True] * clean + [False] * (len(features) - clean)
    assert report == [{"label": 0, "images": len(features), "kept": clean, "dropped": len(features) - clean,
                       "verified_pairs": report[0]["verified_pairs"], "components": 2}]  # the cow's two views too
    assert report[0]["verified_pairs"] >= clean - 1  # at least a spanning tree of the views


def test_classes_are_cleaned_apart(planted):
    """The same images split into two classes: no pair across the classes is ever verified."""
    features, clean = planted
    labels = np.array([0, 1] * (len(features) // 2) + [0] * (len(features) % 2))
    keep, report = clean_classes(labels, features, CleanConfig())
    for row, label in zip(report, (0, 1)):
        rows = np.flatnonzero(labels == label)
        alone = largest_component(pair_inliers([features[i] for i in rows], min_inliers=8) >= 8)[0]
        assert keep[rows].tolist() == alone.tolist() and row["kept"] == alone.sum()


def test_pair_inliers_is_symmetric_and_agrees_with_verify_pair(planted):
    from lookalike.rerank.spatial import verify_pair

    features, _ = planted
    inliers = pair_inliers(features[:6])
    assert (inliers == inliers.T).all() and (np.diag(inliers) == 0).all()
    for i, j in [(0, 1), (2, 5), (1, 4)]:
        assert inliers[i, j] == verify_pair(features[i], features[j]).inliers


def test_largest_component_of_hand_made_graphs():
    edges = np.zeros((7, 7), dtype=bool)
    for i, j in [(0, 1), (1, 2), (4, 5), (5, 6), (4, 6)]:
        edges[i, j] = edges[j, i] = True
    mask, components = largest_component(edges)
    assert mask.tolist() == [True] * 3 + [False] * 4 and components == 2  # a tie: the lowest index wins
    edges[3, 4] = edges[4, 3] = True  # 3-4-5-6 now outgrows 0-1-2
    assert largest_component(edges)[0].tolist() == [False] * 3 + [True] * 4
    assert largest_component(np.zeros((3, 3), dtype=bool))[0].tolist() == [False] * 3  # nothing verified


def test_bad_settings_are_refused():
    with pytest.raises(LookalikeError, match="min_inliers"):
        clean_classes(np.zeros(2), [], CleanConfig(min_inliers=0))
    with pytest.raises(LookalikeError, match="'hinge'"):
        clean_classes(np.zeros(2), [], CleanConfig(model="hinge"))
    with pytest.raises(LookalikeError, match="2 labels for 0"):
        clean_classes(np.zeros(2), [], CleanConfig())
