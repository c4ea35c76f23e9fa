"""Spatial verification: matching by hand, a known homography recovered from real SIFT, re-ordering."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.rerank.spatial import (
    estimate_geometry,
    match_features,
    match_many,
    spatial_rerank,
    verification_order,
    verify_pair,
)

cv2 = pytest.importorskip("cv2")
skimage_data = pytest.importorskip("skimage.data")


def test_mutual_keeps_only_reciprocal_pairs():
    a = np.array([[0.0], [1.0], [5.0]], np.float32)
    b = np.array([[0.1], [4.0]], np.float32)
    # a0 <-> b0 mutual; a1 -> b0 but b0 prefers a0; a2 <-> b1 mutual
    np.testing.assert_array_equal(match_features(a, b), [[0, 0], [2, 1]])


def test_ratio_test_by_hand():
    a = np.array([[0.0], [5.0], [10.0]], np.float32)
    b = np.array([[0.5], [1.5], [9.0], [20.0]], np.float32)
    # a0: 0.5 vs 1.5 -> ratio 0.33 kept; a1: b1 at 3.5 vs b2 at 4.0 -> 0.875 dropped; a2: 1.0 vs 8.5 kept
    np.testing.assert_array_equal(match_features(a, b, method="ratio", ratio=0.8), [[0, 0], [2, 2]])
    np.testing.assert_array_equal(match_features(a, b, method="ratio", ratio=0.9), [[0, 0], [1, 1], [2, 2]])


@pytest.mark.parametrize("unit", [True, False])
def test_matching_equals_brute_force_distances(unit):
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(70, 16)).astype(np.float32), rng.normal(size=(90, 16)).astype(np.float32)
    if unit:  # the fast path for normalised descriptors
        a, b = a / np.linalg.norm(a, axis=1, keepdims=True), b / np.linalg.norm(b, axis=1, keepdims=True)
    d = np.sqrt(((a[:, None].astype(np.float64) - b[None]) ** 2).sum(-1))
    forward, backward = d.argmin(1), d.argmin(0)
    mutual = [[i, j] for i, j in enumerate(forward) if backward[j] == i]
    np.testing.assert_array_equal(match_features(a, b), mutual)
    two = np.sort(d, axis=1)[:, :2]
    ratio = [[i, forward[i]] for i in range(len(a)) if two[i, 0] < 0.8 * two[i, 1]]
    np.testing.assert_array_equal(match_features(a, b, method="ratio"), ratio)


def test_matching_degenerate_inputs_and_errors():
    assert match_features(np.zeros((0, 8)), np.ones((3, 8))).shape == (0, 2)
    assert match_features(np.ones((3, 8)), np.ones((1, 8)), method="ratio").shape == (0, 2)
    with pytest.raises(LookalikeError, match="unknown matching"):
        match_features(np.ones((2, 4)), np.ones((2, 4)), method="nearest")
    with pytest.raises(LookalikeError, match=r"\(Na, D\)"):
        match_features(np.ones((2, 4)), np.ones((2, 5)))


def test_affine_from_points_with_outliers():
    rng = np.random.default_rng(0)
    a = rng.uniform(0, 500, (60, 2)).astype(np.float32)
    truth = np.array([[0.9, -0.2, 30], [0.25, 1.1, -12]])
    b = a @ truth[:, :2].T + truth[:, 2]
    b[:15] = rng.uniform(0, 500, (15, 2))  # outliers
    transform, mask = estimate_geometry(a, b, model="affine", threshold=2.0)
    np.testing.assert_allclose(transform, truth, atol=1e-3)
    assert mask[15:].all() and not mask[:15].any()
    assert estimate_geometry(a[:2], b[:2])[0] is None


def _warp(image, homography):
    h, w = image.shape[:2]
    return cv2.warpPerspective(image, homography, (w, h), flags=cv2.INTER_LINEAR)


@pytest.mark.parametrize("model", ["homography", "affine"])
def test_known_homography_is_recovered_from_real_sift(model):
    from lookalike.descriptors.local.registry import create_local

    photo = skimage_data.astronaut()  # 512 x 512 RGB
    if model == "homography":
        truth = np.array([[0.9, 0.08, 30], [-0.05, 0.85, 40], [1e-4, -5e-5, 1.0]])
    else:
        truth = np.array([[0.8, -0.15, 60], [0.15, 0.8, 20], [0, 0, 1.0]])
    warped = _warp(photo, truth)
    sift = create_local("sift")
    result = verify_pair(sift(photo), sift(warped), model=model, threshold=3.0)
    assert result.inliers > 100 and result.inliers == result.mask.sum()
    estimated = result.transform if model == "homography" else np.vstack([result.transform, [0, 0, 1]])
    corners = np.array([[100, 100, 1], [400, 100, 1], [400, 400, 1], [100, 400, 1], [256, 256, 1]], float).T
    projected, expected = estimated @ corners, truth @ corners
    assert np.abs(projected[:2] / projected[2] - expected[:2] / expected[2]).max() < 2.0  # pixels


def test_unrelated_images_are_not_verified():
    from lookalike.descriptors.local.registry import create_local

    sift = create_local("sift")
    result = verify_pair(sift(skimage_data.astronaut()), sift(skimage_data.coffee()))
    assert result.inliers < 8


def test_spatial_rerank_puts_verified_first_and_keeps_the_rest_in_order():
    ids = np.array([10, 11, 12, 13, 14, 15])
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4])
    inliers = np.array([3, 40, 0, 40, 12, 100])
    new_scores, new_ids = spatial_rerank(scores, ids, inliers, min_inliers=10)
    np.testing.assert_array_equal(new_ids, [15, 11, 13, 14, 10, 12])  # 40-tie broken by global score
    np.testing.assert_array_equal(new_scores, scores[[5, 1, 3, 4, 0, 2]])
    with pytest.raises(LookalikeError, match="equal-length"):
        spatial_rerank(scores, ids, inliers[:3])


def test_verification_order_with_an_inlier_ratio_and_a_combined_score_by_hand():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    inliers = np.array([12, 30, 0, 9, 15])
    matches = np.array([400, 100, 50, 60, 100])
    # chance: 0.05 * matches = 20, 5, 2.5, 3, 5 -> excess -8, 25, -2.5, 6, 10
    order, verified = verification_order(scores, inliers, matches, min_inliers=10, inlier_ratio=0.05)
    np.testing.assert_array_equal(verified, [False, True, False, False, True])
    np.testing.assert_array_equal(order, [1, 4, 0, 2, 3])  # by inliers, then the rest in order
    order, _ = verification_order(scores, inliers, matches, min_inliers=10, inlier_ratio=0.05, inlier_weight=0.1)
    key = scores + 0.1 * np.log1p([0, 25, 0, 6, 10])  # 0.9, 1.126, 0.7, 0.795, 0.740
    np.testing.assert_array_equal(order, [1, 4, 0, 3, 2])
    assert key[3] > key[2]  # candidate 3's 6 inliers beyond chance lift it over candidate 2
    # without a ratio every candidate with inliers >= min_inliers is verified (the DELG rule)
    np.testing.assert_array_equal(verification_order(scores, inliers, min_inliers=10)[1], inliers >= 10)


@pytest.mark.parametrize("method", ["mutual", "ratio"])
@pytest.mark.parametrize("unit", [True, False])
def test_matching_many_candidates_at_once_equals_pair_by_pair(method, unit):
    rng = np.random.default_rng(5)
    a = rng.normal(size=(60, 8)).astype(np.float32)
    candidates = [rng.normal(size=(n, 8)).astype(np.float32) for n in (40, 1, 0, 75, 60, 3)]
    if unit:
        a /= np.linalg.norm(a, axis=1, keepdims=True)
        candidates = [b / np.linalg.norm(b, axis=1, keepdims=True) for b in candidates]
    # a tiny chunk forces several products with padding between candidates of different sizes
    for chunk_bytes in (1, 60 * 80 * 4, 1 << 25):
        many = match_many(a, candidates, method=method, chunk_bytes=chunk_bytes)
        assert len(many) == len(candidates)
        for b, pairs in zip(candidates, many):
            np.testing.assert_array_equal(pairs, match_features(a, b, method=method))
            if len(b) > 1:  # against the squared distances themselves, not the shared code
                d = ((a[:, None].astype(np.float64) - b[None]) ** 2).sum(-1)
                if method == "mutual":
                    expected = [[i, j] for i, j in enumerate(d.argmin(1)) if d.argmin(0)[j] == i]
                else:
                    two = np.sort(d, axis=1)[:, :2]
                    expected = [[i, j] for i, j in enumerate(d.argmin(1)) if two[i, 0] < 0.64 * two[i, 1]]
                np.testing.assert_array_equal(pairs, np.array(expected, np.int64).reshape(-1, 2))
