"""Bag of words (hard and soft), tf-idf, and spatial pyramids: closed forms and layout."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors.aggregate import bow_encode, pyramid_cells, spatial_pyramid, vlad_encode
from lookalike.errors import LookalikeError
from lookalike.postprocess.tfidf import idf_weights, tfidf

CENTERS = np.array([[0, 0], [10, 0], [0, 10]], np.float32)


def test_hard_bow_counts_nearest_words():
    x = np.array([[1, 1], [9, 1], [8, -1], [0, 12]], np.float32)
    np.testing.assert_array_equal(bow_encode(x, CENTERS), [1, 2, 1])


def test_soft_bow_spreads_unit_weight():
    x = np.array([[5, 0]], np.float32)  # halfway between words 0 and 1
    counts = bow_encode(x, CENTERS, soft=2, sigma=3.0)
    np.testing.assert_allclose(counts, [0.5, 0.5, 0.0], atol=1e-6)
    many = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32) * 5
    assert bow_encode(many, CENTERS, soft=3).sum() == pytest.approx(50.0, rel=1e-5)
    with pytest.raises(LookalikeError, match="soft=4"):
        bow_encode(many, CENTERS, soft=4)


def test_idf_and_tfidf_closed_form():
    counts = np.array([[2, 0, 1], [0, 0, 3]], np.float32)
    idf = idf_weights(counts)
    np.testing.assert_allclose(idf, [np.log(2), 0, 0])  # word 2 is in every document; word 1 in none
    np.testing.assert_allclose(tfidf(counts, idf), [[1, 0, 0], [0, 0, 0]], atol=1e-7)


def test_pyramid_cells_and_order():
    xy = np.array([[1, 1], [99, 1], [1, 99], [99, 99], [60, 30]], np.float32)
    cells = pyramid_cells(xy, (100, 100), (1, 2, 4))
    assert cells[:, 0].tolist() == [0, 0, 0, 0, 0]
    assert cells[:, 1].tolist() == [0, 1, 2, 3, 1]  # row by row
    assert cells[:, 2].tolist() == [0, 3, 12, 15, 6]


def test_spatial_pyramid_dimension_and_cells():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 2)).astype(np.float32)
    xy = rng.uniform(0, 100, size=(200, 2)).astype(np.float32)
    encode = lambda part: vlad_encode(part, CENTERS, l2=False)  # noqa: E731
    vector = spatial_pyramid(x, xy, (100, 100), encode)
    assert vector.shape == (21 * 6,) and np.linalg.norm(vector) == pytest.approx(1.0)
    # the first cell (level 0) is the whole image; level-1 cells add up to it
    whole = vector[:6]
    quarters = vector[6:30].reshape(4, 6).sum(axis=0)
    np.testing.assert_allclose(whole, quarters, atol=1e-5)
    with pytest.raises(LookalikeError, match="positions"):
        spatial_pyramid(x, xy[:5], (100, 100), encode)
