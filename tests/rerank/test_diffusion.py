"""Diffusion against its dense closed form; the kNN graph by hand; inductiveness."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.rerank.diffusion import diffuse, diffuse_truncated, knn_graph, normalize_graph, query_vector

pytest.importorskip("faiss")


def _vectors(n=60, d=8, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(4, d))
    x = centres[rng.integers(0, 4, n)] + 0.4 * rng.normal(size=(n, d))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_knn_graph_is_mutual_clipped_and_raised_to_gamma():
    x = _vectors()
    k, gamma = 5, 3.0
    w = knn_graph(x, k=k, gamma=gamma).toarray()
    sims = x @ x.T
    np.fill_diagonal(sims, -np.inf)
    knn = np.argsort(-sims, axis=1)[:, :k]
    adjacency = np.zeros_like(sims, dtype=bool)
    adjacency[np.repeat(np.arange(len(x)), k), knn.ravel()] = True
    mutual = adjacency & adjacency.T
    expected = np.where(mutual, np.maximum(x @ x.T, 0) ** gamma, 0)
    np.testing.assert_allclose(w, expected, atol=1e-5)
    assert (np.diag(w) == 0).all() and np.allclose(w, w.T)


def test_diffusion_equals_the_dense_closed_form():
    x = _vectors()
    s = normalize_graph(knn_graph(x, k=8))
    dense = s.toarray()
    degree = knn_graph(x, k=8).toarray().sum(1)
    with np.errstate(divide="ignore"):
        root = np.where(degree > 0, degree ** -0.5, 0)
    np.testing.assert_allclose(dense, root[:, None] * knn_graph(x, k=8).toarray() * root[None], atol=1e-6)
    y = query_vector(np.array([[0.9, 0.8, 0.7]]), np.array([[3, 10, 20]]), len(x), gamma=3.0)
    assert y.shape == (len(x), 1) and y[3, 0] == pytest.approx(0.729)
    alpha = 0.9
    closed = np.linalg.solve(np.eye(len(x)) - alpha * dense, y)
    f = diffuse(s, y, alpha=alpha, max_iter=200, tol=1e-10)
    np.testing.assert_allclose(f, closed, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(diffuse(s, y[:, 0], alpha=alpha, max_iter=200, tol=1e-10), closed[:, 0],
                               rtol=1e-4, atol=1e-6)


def test_truncated_diffusion_is_the_closed_form_on_the_subgraph():
    x = _vectors()
    w = knn_graph(x, k=8)
    rows = np.arange(0, 60, 2)
    y = np.zeros(len(rows), np.float32)
    y[[0, 5]] = [1.0, 0.5]
    sub = w.toarray()[np.ix_(rows, rows)]
    degree = sub.sum(1)
    root = np.where(degree > 0, 1 / np.sqrt(np.maximum(degree, 1e-30)), 0)
    closed = np.linalg.solve(np.eye(len(rows)) - 0.95 * root[:, None] * sub * root[None], y)
    f = diffuse_truncated(w, rows, y, alpha=0.95, max_iter=300, tol=1e-10)
    np.testing.assert_allclose(f, closed, rtol=1e-4, atol=1e-6)


def test_diffusion_is_inductive_and_checks_its_input():
    from lookalike.rerank.steps import Diffusion

    x = _vectors()
    step = Diffusion(k=8, kq=3).fit(x)
    before = step.affinity_.copy(), step.normalized_.copy()
    queries = _vectors(5, seed=1)
    scores, ids = step.index_.search(queries, len(x))
    first = step(queries, scores, ids)
    second = step(queries, scores, ids)
    assert (step.affinity_ != before[0]).nnz == 0 and (step.normalized_ != before[1]).nnz == 0
    np.testing.assert_array_equal(first[1], second[1])
    assert sorted(first[1][0]) == list(range(len(x)))
    with pytest.raises(LookalikeError, match="0 < alpha < 1"):
        diffuse(step.normalized_, np.ones(len(x)), alpha=1.0)


def test_truncated_step_over_the_whole_database_ranks_like_the_full_one():
    from lookalike.rerank.steps import Diffusion

    x, queries = _vectors(), _vectors(4, seed=2)
    step = Diffusion(k=8, kq=3).fit(x)
    scores, ids = step.index_.search(queries, len(x))
    full = step(queries, scores, ids)[1]
    step.truncate = len(x)
    truncated = step(queries, scores, ids)[1]
    reached = (full[:, :10] == truncated[:, :10]).mean()
    assert reached == 1.0
