"""SIFT from OpenCV: geometry, RootSIFT, dense grids; VLAD and Fisher of real SIFT equal VLFeat's."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors.aggregate import fisher_encode, nearest_centers, vlad_encode
from lookalike.descriptors.aggregate.vocabulary import GaussianMixture, KMeansVocabulary
from lookalike.io.images import load_image
from tests.reference import vlfeat as vl

pytest.importorskip("cv2")
from lookalike.descriptors.local.sift import SiftConfig, dense_grid, extract_sift  # noqa: E402

VLFEAT = vl.load()


@pytest.fixture(scope="module")
def landmark(shared_data):
    return load_image(shared_data / "landmarks/images/sceaux_castle/100_7101.jpg", max_side=512).pixels


def test_detected_keypoints_keep_geometry(landmark):
    features = extract_sift(landmark, SiftConfig(max_keypoints=500))
    t = len(features.keypoints)
    assert 100 < t <= 520 and features.descriptors.shape == (t, 128)
    x, y, scale, angle = features.keypoints.T
    w, h = features.size
    assert (x >= 0).all() and (x < w).all() and (y >= 0).all() and (y < h).all()
    assert (scale > 0).all() and (angle >= 0).all() and (angle < 360).all()
    np.testing.assert_allclose(np.linalg.norm(features.descriptors, axis=1), 1.0, rtol=1e-5)


def test_rootsift_is_sqrt_of_l1_normalised_sift(landmark):
    raw = extract_sift(landmark, SiftConfig(root=False, max_keypoints=200)).descriptors
    root = extract_sift(landmark, SiftConfig(root=True, max_keypoints=200)).descriptors
    np.testing.assert_allclose(root, np.sqrt(raw / raw.sum(axis=1, keepdims=True)), atol=1e-6)


def test_dense_grid():
    grid = dense_grid((40, 64), step=8, size=16)
    assert grid[0].tolist() == [8, 8] and grid[:, 0].max() == 56 and grid[:, 1].max() == 32
    image = np.random.default_rng(0).integers(0, 255, (40, 64, 3), dtype=np.uint8)
    features = extract_sift(image, SiftConfig(dense=True, step=8, scales=(16,)))
    assert len(features.keypoints) == len(grid)
    np.testing.assert_allclose(features.keypoints[:, :2], grid)


def test_flat_image_gives_no_detected_features():
    features = extract_sift(np.full((64, 64, 3), 90, np.uint8))
    assert features.descriptors.shape == (0, 128) and features.keypoints.shape == (0, 4)


@pytest.mark.skipif(VLFEAT is None, reason="libvlfeat-dev is not installed")
@pytest.mark.parametrize("options, flags", [
    (dict(l2=False), vl.VLAD_UNNORMALIZED),
    (dict(intra=True, power=0.5), vl.VLAD_NORMALIZE_COMPONENTS | vl.VLAD_SQUARE_ROOT),
])
def test_vlad_and_fisher_of_real_sift_match_vlfeat(landmark, shared_data, options, flags):
    x = extract_sift(landmark).descriptors
    # the vocabulary comes from another photo, as in real use: no centre is the exact mean of its
    # descriptors, so no residual is pure float noise that a square root would magnify
    other = load_image(shared_data / "landmarks/images/strecha_castle/castle-P30_0005.jpg", max_side=512)
    training = extract_sift(other.pixels).descriptors
    centers = KMeansVocabulary(16, seed=0).fit(training).centers_
    assignments = np.zeros((len(x), 16), np.float32)
    assignments[np.arange(len(x)), nearest_centers(x, centers)] = 1
    expected = VLFEAT.vlad(x, centers, assignments, flags)
    np.testing.assert_allclose(vlad_encode(x, centers, **options), expected, atol=5e-5)
    gmm = GaussianMixture(8, seed=0, n_iter=10).fit(training)
    expected = VLFEAT.fisher(x, gmm.means_, gmm.variances_, gmm.weights_, vl.FISHER_IMPROVED)
    np.testing.assert_allclose(
        fisher_encode(x, gmm.means_, gmm.variances_, gmm.weights_), expected, atol=5e-5)
