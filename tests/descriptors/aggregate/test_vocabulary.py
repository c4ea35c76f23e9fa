"""Vocabularies: k-means and the diagonal GMM recover known clusters, validate, save and load."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors.aggregate.vocabulary import GaussianMixture, KMeansVocabulary
from lookalike.errors import LookalikeError

RNG = np.random.default_rng(0)
TRUE_MEANS = np.array([[0, 0], [10, 0], [0, 10]], np.float32)
TRUE_STD = np.array([[1.0, 0.5], [0.5, 2.0], [1.5, 1.5]], np.float32)
LABELS = RNG.integers(0, 3, 6000)
X = (TRUE_MEANS[LABELS] + RNG.normal(size=(6000, 2)) * TRUE_STD[LABELS]).astype(np.float32)


def _match(found, expected):
    order = [int(np.argmin(np.linalg.norm(found - e, axis=1))) for e in expected]
    assert sorted(order) == [0, 1, 2]
    return order


def test_kmeans_recovers_centres_and_assigns():
    vocabulary = KMeansVocabulary(3, n_redo=5, seed=1).fit(X)
    order = _match(vocabulary.centers_, TRUE_MEANS)
    np.testing.assert_allclose(vocabulary.centers_[order], TRUE_MEANS, atol=0.2)
    assert (np.array(order)[LABELS] == vocabulary.transform(X)).mean() > 0.97


def test_kmeans_is_seeded():
    a = KMeansVocabulary(16, seed=3).fit(X).centers_
    b = KMeansVocabulary(16, seed=3).fit(X).centers_
    np.testing.assert_array_equal(a, b)


def test_large_vocabulary_uses_the_same_assignment():
    data = RNG.normal(size=(4200, 8)).astype(np.float32)
    vocabulary = KMeansVocabulary(2048, n_iter=2).fit(data)
    dense = np.argmin(((data[:50, None] - vocabulary.centers_[None]) ** 2).sum(-1), axis=1)
    np.testing.assert_array_equal(vocabulary.transform(data[:50]), dense)


def test_gmm_recovers_means_variances_weights():
    gmm = GaussianMixture(3, seed=0).fit(X)
    order = _match(gmm.means_, TRUE_MEANS)
    np.testing.assert_allclose(gmm.means_[order], TRUE_MEANS, atol=0.15)
    np.testing.assert_allclose(np.sqrt(gmm.variances_[order]), TRUE_STD, rtol=0.1)
    np.testing.assert_allclose(gmm.weights_[order], np.bincount(LABELS) / len(LABELS), atol=0.02)
    posteriors = gmm.predict_proba(X[:10])
    np.testing.assert_allclose(posteriors.sum(axis=1), 1.0)
    # the mean log-likelihood of one diagonal Gaussian fitted to everything: the GMM must beat it
    one_gaussian = -0.5 * (np.log(2 * np.pi * X.var(axis=0)).sum() + X.shape[1])
    assert gmm.score(X) > one_gaussian


def test_save_and_load_round_trip(tmp_path):
    vocabulary = KMeansVocabulary(4).fit(X)
    vocabulary.save(tmp_path / "v.npz")
    again = KMeansVocabulary.load(tmp_path / "v.npz")
    np.testing.assert_array_equal(again.transform(X), vocabulary.transform(X))
    gmm = GaussianMixture(3).fit(X)
    gmm.save(tmp_path / "g.npz")
    np.testing.assert_allclose(GaussianMixture.load(tmp_path / "g.npz").predict_proba(X[:5]),
                               gmm.predict_proba(X[:5]))
    with pytest.raises(LookalikeError, match="not a gmm one"):
        GaussianMixture.load(tmp_path / "v.npz")


def test_bad_inputs():
    with pytest.raises(LookalikeError, match="n_samples=5 should be >= 1 \\* n_clusters=8"):
        KMeansVocabulary(8).fit(X[:5])
    with pytest.raises(LookalikeError, match="not fitted"):
        KMeansVocabulary(8).transform(X)
    with pytest.raises(LookalikeError, match=r"shape \(T, 2\)"):
        KMeansVocabulary(3).fit(X).transform(np.zeros((4, 3)))
    with pytest.raises(LookalikeError, match="NaN"):
        GaussianMixture(2).fit(np.full((10, 2), np.nan))
