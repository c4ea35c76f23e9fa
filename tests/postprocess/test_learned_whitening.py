"""Whitening learned from matching pairs (Radenović et al.): its defining properties and a case
whose answer is known."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.postprocess.learned_whitening import LearnedWhitening, matching_pairs
from lookalike.postprocess.whitening import PCAWhitening


def classes_with_nuisance(seed: int = 0, classes: int = 30, per_class: int = 20):
    """2-D points: classes one unit apart along axis 1 (std about 9), each image jittered along
    axis 0 by a nuisance (std 50) that varies far more than the classes do."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(classes), per_class)
    centres = np.stack([np.zeros(classes), rng.permutation(classes)], axis=1)
    x = centres[labels] + rng.normal(0, 1, (len(labels), 2)) * [50.0, 0.1]
    return x.astype(np.float32), labels


def test_the_discriminative_axis_comes_first_where_pca_puts_the_nuisance_first():
    x, labels = classes_with_nuisance()
    learned = LearnedWhitening(1).fit(x, matching_pairs(labels))
    pca = PCAWhitening(1).fit(x)
    assert abs(learned.projection_[0, 1]) > 100 * abs(learned.projection_[0, 0])
    assert abs(pca.projection_[0, 0]) > 10 * abs(pca.projection_[0, 1])
    # so nearest neighbours along the learned axis share the class, along PCA's they do not
    assert nearest_neighbour_accuracy(learned, x, labels) > 0.8
    assert nearest_neighbour_accuracy(pca, x, labels) < 0.2


def nearest_neighbour_accuracy(whitening, x, labels) -> float:
    y = (x - whitening.mean_) @ whitening.projection_.T
    distances = np.abs(y - y.T)
    np.fill_diagonal(distances, np.inf)
    return float((labels[distances.argmin(axis=1)] == labels).mean())


def test_defining_properties_on_random_data():
    rng = np.random.default_rng(1)
    labels = np.repeat(np.arange(40), 10)
    x = (rng.normal(0, 1, (40, 8))[labels] + rng.normal(0, 1, (400, 8)) @ rng.normal(0, 0.5, (8, 8))).astype(np.float32)
    pairs = matching_pairs(labels)
    whitening = LearnedWhitening().fit(x, pairs)
    p = whitening.projection_.astype(np.float64)
    d = (x[pairs[:, 0]] - x[pairs[:, 1]]).astype(np.float64)
    # the differences of matching pairs come out white
    np.testing.assert_allclose(p @ (d.T @ d / len(d)) @ p.T, np.eye(8), atol=1e-3)
    # and the data itself decorrelated, its variances in decreasing order
    centred = x - x.mean(axis=0)
    covariance = p @ (centred.T @ centred / len(x)) @ p.T
    np.testing.assert_allclose(covariance, np.diag(np.diag(covariance)), atol=1e-3)
    assert np.all(np.diff(np.diag(covariance)) <= 1e-6)


def test_saved_file_loads_through_the_whitening_option(tmp_path):
    x, labels = classes_with_nuisance()
    whitening = LearnedWhitening(2).fit(x, matching_pairs(labels))
    whitening.save(tmp_path / "w.npz")
    loaded = PCAWhitening.load(tmp_path / "w.npz")
    np.testing.assert_allclose(loaded.transform(x), whitening.transform(x), atol=1e-6)
    assert loaded.dim == 2


def test_matching_pairs():
    pairs = matching_pairs(np.array([5, 5, 7, 7, 7, 9]))
    assert sorted(map(tuple, pairs.tolist())) == [(0, 1), (2, 3), (2, 4), (3, 4)]
    assert len(matching_pairs(np.zeros(100), max_pairs=50)) == 50


def test_bad_input():
    x, labels = classes_with_nuisance()
    with pytest.raises(LookalikeError, match="matching pairs"):
        LearnedWhitening().fit(x, np.zeros((0, 2)))
    with pytest.raises(LookalikeError, match="index rows"):
        LearnedWhitening().fit(x, np.array([[0, len(x)]]))
    with pytest.raises(LookalikeError, match="dimensions"):
        LearnedWhitening(3).fit(x, matching_pairs(labels))
