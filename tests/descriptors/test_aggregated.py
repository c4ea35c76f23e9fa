"""The SIFT-aggregating descriptors: training, dimensions, pyramids, and clear errors."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("cv2")

from lookalike.descriptors import create  # noqa: E402
from lookalike.errors import LookalikeError  # noqa: E402
from tests.conftest import photo, scene  # noqa: E402


@pytest.fixture(scope="module")
def sample():
    vlad = create("vlad")
    return [vlad.local_features(np.asarray(scene(s))).descriptors for s in range(8)]


def test_untrained_descriptor_says_how_to_train():
    with pytest.raises(LookalikeError, match="lookalike train"):
        create("vlad")(np.asarray(photo(0, (100, 80))))
    with pytest.raises(LookalikeError, match="not found"):
        create("fisher", vocabulary="/nowhere/v.npz")


@pytest.mark.parametrize("name, options, dim", [
    ("vlad", dict(k=8), 8 * 128),
    ("vlad", dict(k=8, pca=32), 8 * 32),
    ("fisher", dict(k=4, pca=16), 2 * 4 * 16),
    ("bow", dict(k=50), 50),
    ("vlad", dict(k=4, pca=16, pyramid=True), 21 * 4 * 16),
])
def test_dimensions_after_training(tmp_path, sample, name, options, dim):
    descriptor = create(name, **options).fit(sample, tmp_path / "v.npz")
    vector = descriptor(np.asarray(scene(99, (200, 150))))
    assert descriptor.dim == dim and vector.shape == (dim,)
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_bow_idf_and_sparsity(tmp_path, sample):
    bow = create("bow", k=200).fit(sample, tmp_path / "b.npz")
    assert bow.sparse and bow.model["idf"].shape == (200,)
    vector = bow(np.asarray(scene(3)))
    assert (vector > 0).sum() < 200  # only the words present


def test_model_must_match_the_options(tmp_path, sample):
    create("vlad", k=8).fit(sample, tmp_path / "v.npz")
    with pytest.raises(LookalikeError, match="not kmeans with k=16"):
        create("vlad", k=16, vocabulary=str(tmp_path / "v.npz"))(np.asarray(scene(1)))
    with pytest.raises(LookalikeError, match="not gmm"):
        create("fisher", k=8, vocabulary=str(tmp_path / "v.npz"))(np.asarray(scene(1)))


def test_pca_projection_is_learned(tmp_path, sample):
    vlad = create("vlad", k=4, pca=16).fit(sample, tmp_path / "v.npz")
    projected = vlad.project(np.concatenate(sample))
    assert projected.shape[1] == 16
    variances = projected.var(axis=0)
    assert (np.diff(variances) <= 1e-4).all()  # principal axes come in decreasing variance
