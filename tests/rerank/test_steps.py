"""The re-ranking steps: parsing, ids, the chain's rules, and each step against its function."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.errors import LookalikeError
from lookalike.rerank.expansion import alpha_query_expansion, database_augmentation
from lookalike.rerank.steps import (
    DatabaseAugmentation,
    Diffusion,
    QueryExpansion,
    Reranker,
    SpatialVerification,
    parse_steps,
)

pytest.importorskip("faiss")


def _unit(x):
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(5, 16))
    database = _unit(centres[np.arange(50) % 5] + 0.6 * rng.normal(size=(50, 16)))
    queries = _unit(centres[[0, 3]] + 0.6 * rng.normal(size=(2, 16)))
    return database, queries


def _search(database, queries, ids=None):
    scores = queries @ database.T
    order = np.argsort(-scores, axis=1)
    ids = np.arange(len(database)) if ids is None else ids
    return np.take_along_axis(scores, order, 1), ids[order]


@pytest.mark.parametrize("text, message", [
    ("sv,foo", "unknown re-ranking step 'foo'"),
    ("", "names no step"),
    ("qe,qe", "repeats a step"),
    ("qe,dba", "list it before them"),
    ("diffusion,dba", "list it before them"),
])
def test_parse_steps_errors_are_one_line(text, message):
    with pytest.raises(LookalikeError, match=message) as error:
        parse_steps(text)
    assert "\n" not in str(error.value)


def test_parse_steps_checks_local_features_options_and_builds_the_steps():
    with pytest.raises(LookalikeError, match="needs local features: add --local-features"):
        parse_steps("sv,qe", local_features=False)
    with pytest.raises(LookalikeError, match="unknown re-ranking option"):
        parse_steps("qe", qe_size=3)
    with pytest.raises(LookalikeError, match="list sv before qe"):
        parse_steps("qe,sv", qe_verified=True)
    steps = parse_steps("sv, dba ,qe,diffusion", rerank_top=30, qe_k=4, alpha=3.0, dba_k=3, truncate=None)
    assert [type(s) for s in steps] == [SpatialVerification, DatabaseAugmentation, QueryExpansion, Diffusion]
    assert steps[0].top == 30 and steps[2].k == 4 and steps[2].alpha == 3.0 and steps[1].k == 3
    assert steps[3].truncate == 0


def test_query_expansion_step_equals_the_function_and_uses_collection_ids(data):
    database, queries = data
    ids = np.arange(1000, 1050, dtype=np.int64)[::-1].copy()  # a collection's ids, in any order
    scores, ranked = _search(database, queries, ids)
    step = QueryExpansion(k=3, alpha=3.0).fit(database, ids)
    new_scores, new_ids = step(queries, scores, ranked)
    rows = 1049 - ranked[:, :3]
    expanded = alpha_query_expansion(queries, database, rows, scores[:, :3], 3.0)
    expected_scores, expected_ids = _search(database, expanded, ids)
    np.testing.assert_array_equal(new_ids, expected_ids)
    np.testing.assert_allclose(new_scores, expected_scores, rtol=1e-5, atol=1e-6)


def test_dba_then_qe_searches_the_augmented_database(data):
    database, queries = data
    chain = Reranker(parse_steps("dba,qe", dba_k=3, qe_k=2)).fit(database)
    augmented = database_augmentation(database, 3, 0.0)
    np.testing.assert_allclose(chain.database_, augmented)
    np.testing.assert_allclose(chain.steps[1].database_, augmented)
    scores, ids = _search(database, queries)
    result_scores, _ = chain(queries, scores, ids)
    first = _search(augmented, queries)[1][:, :2]
    expanded = alpha_query_expansion(queries, augmented, first, np.ones(first.shape), 0.0)
    # scores, not ids: DBA makes rows with the same neighbours identical, whose order is a tie
    np.testing.assert_allclose(result_scores, _search(augmented, expanded)[0], rtol=1e-5, atol=1e-6)


def _features(points, descriptors, size=(200, 200)):
    return LocalFeatures(np.column_stack([points, np.ones((len(points), 2))]).astype(np.float32),
                         descriptors.astype(np.float32), size)


def test_spatial_verification_step_and_verified_images_stay_on_top(data):
    database, queries = data
    rng = np.random.default_rng(1)
    points = rng.uniform(0, 200, (40, 2))
    descriptors = _unit(rng.normal(size=(40, 32)))
    noise = [_features(rng.uniform(0, 200, (40, 2)), _unit(rng.normal(size=(40, 32)))) for _ in range(50)]
    local = list(noise)
    local[17] = _features(points * 0.9 + 5, descriptors)  # the same 40 features, moved by an affine map
    query_local = [_features(points, descriptors), noise[0]]
    scores, ids = _search(database, queries)
    chain = Reranker(parse_steps("sv,qe", rerank_top=50, qe_k=1, qe_verified=True)).fit(database, local=local)
    new_scores, new_ids = chain(queries, scores, ids, local=query_local)
    assert new_ids[0, 0] == 17 and np.isfinite(new_scores).all()  # verified, kept on top after QE
    assert sorted(new_ids[0]) == list(range(50)) and sorted(new_ids[1]) == list(range(50))
    with pytest.raises(LookalikeError, match="local features of each"):
        chain(queries, scores, ids)


def test_steps_check_their_input(data):
    database, queries = data
    with pytest.raises(LookalikeError, match="not fitted"):
        QueryExpansion().search(queries, 3)
    with pytest.raises(LookalikeError, match="needs the database's local features"):
        SpatialVerification().fit(database)
    step = DatabaseAugmentation(k=2).fit(database)
    with pytest.raises(LookalikeError, match=r"\(Q=2, K\)"):
        step(queries, np.zeros((2, 3)), np.zeros((2, 4), np.int64))


def test_inlier_ratio_verifies_in_proportion_to_the_tentative_matches(data):
    database, queries = data
    rng = np.random.default_rng(2)
    points, descriptors = rng.uniform(0, 200, (40, 2)), _unit(rng.normal(size=(40, 32)))
    local = [_features(rng.uniform(0, 200, (40, 2)), _unit(rng.normal(size=(40, 32)))) for _ in range(50)]
    local[17] = _features(points * 0.9 + 5, descriptors)  # all 40 matches agree with one affine map
    scattered = points * 0.9 + 5
    scattered[12:] = rng.uniform(0, 200, (28, 2))  # 40 matches, of which 12 agree
    local[23] = _features(scattered, descriptors)
    query_local = [_features(points, descriptors), local[0]]
    scores, ids = _search(database, queries)
    loose = SpatialVerification(50, min_inliers=8).fit(local=local)
    inliers, matches = loose.verify(query_local, ids)
    row = list(ids[0])
    assert inliers[0, row.index(17)] == matches[0, row.index(17)] == 40
    assert matches[0, row.index(23)] == 40 and 12 <= inliers[0, row.index(23)] < 20
    assert loose.timing.pairs == 100 and loose.timing.matching > 0 and loose.timing.ransac > 0
    assert list(loose(queries, scores, ids, local=query_local)[1][0, :2]) == [17, 23]
    strict = SpatialVerification(50, min_inliers=8, inlier_ratio=0.5).fit(local=local)
    _, ranked, counted = strict(queries, scores, ids, local=query_local, return_inliers=True)
    assert ranked[0, 0] == 17 and counted[0, 0] == 40
    np.testing.assert_array_equal(ranked[0, 1:], [i for i in ids[0] if i != 17])  # 23 keeps its global rank
    assert counted[0, list(ranked[0]).index(23)] == 0
    with pytest.raises(LookalikeError, match="inlier_ratio"):
        SpatialVerification(inlier_ratio=1.5)


def test_exact_search_of_a_whole_ranking_equals_faiss(data):
    import faiss

    from lookalike.rerank.steps import exact_search

    database, queries = data
    index = faiss.IndexFlatIP(database.shape[1])
    index.add(database)
    for k in (1, 7, 50):
        scores, rows = exact_search(database, queries, k)
        expected_scores, expected_rows = index.search(queries, k)
        np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(rows, expected_rows)
