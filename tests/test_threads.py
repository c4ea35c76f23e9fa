"""Thread bounds of the numeric kernels: small problems run on one thread, results never depend on it."""

from __future__ import annotations

import numpy as np
import pytest
from threadpoolctl import threadpool_info

from lookalike.descriptors.aggregate import GaussianMixture, bow_encode, fisher_encode, vlad_encode
from lookalike.postprocess.pca import PCA
from lookalike.postprocess.whitening import PCAWhitening
from lookalike.threads import SMALL_PROBLEM, limited_threads, threads_for


def blas_threads() -> set[int]:
    return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}


def test_small_problems_run_on_one_thread_and_the_limit_is_restored():
    with limited_threads(2):
        before = blas_threads()
        with threads_for(SMALL_PROBLEM - 1):
            assert blas_threads() == {1}
        assert blas_threads() == before
        with threads_for(SMALL_PROBLEM):  # large: left to the libraries
            assert blas_threads() == before


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    training = rng.normal(size=(4000, 32)).astype(np.float32)
    image = rng.normal(size=(3000, 32)).astype(np.float32)
    gmm = GaussianMixture(16, seed=0, n_iter=3).fit(training)
    return training, image, gmm


ENCODERS = {
    "vlad": lambda t, x, g: vlad_encode(x, g.means_.astype(np.float32), intra=True, power=0.5),
    "bow-soft": lambda t, x, g: bow_encode(x, g.means_.astype(np.float32), soft=3),
    "fisher": lambda t, x, g: fisher_encode(x, g.means_, g.variances_, g.weights_),
    "gmm-posteriors": lambda t, x, g: g.predict_proba(x),
    "pca": lambda t, x, g: PCA(8, whiten=True).fit(t).transform(x),
    "whitening": lambda t, x, g: PCAWhitening(8, shrinkage=0.1).fit(t).transform(x),
}


@pytest.mark.parametrize("name", sorted(ENCODERS))
def test_encoders_give_identical_results_with_any_thread_count(name, data, monkeypatch):
    training, image, gmm = data
    results = []
    for threads in (1, 2):
        # lift the one-thread bound so that the second run really uses two BLAS threads
        monkeypatch.setattr("lookalike.threads.SMALL_PROBLEM", 0 if threads > 1 else SMALL_PROBLEM)
        with limited_threads(threads):
            results.append(ENCODERS[name](training, image, gmm))
    np.testing.assert_allclose(results[0], results[1], rtol=1e-6, atol=1e-7)
