"""The inverted file ranks exactly as brute-force tf-idf cosine, and stays fast for big vocabularies."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import sparse

from lookalike.errors import LookalikeError
from lookalike.index.inverted_file import InvertedFile
from lookalike.postprocess.tfidf import idf_weights, tfidf


def random_counts(rng, n, k, words_per_doc=30):
    rows = np.repeat(np.arange(n), words_per_doc)
    cols = rng.integers(0, k, size=n * words_per_doc)
    return sparse.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(n, k))


@pytest.mark.parametrize("k", [1000, 20000])
def test_same_ranking_as_brute_force(k):
    rng = np.random.default_rng(k)
    database = random_counts(rng, 300, k)
    queries = random_counts(rng, 20, k)
    ids = np.arange(300, dtype=np.int64) * 10
    index = InvertedFile(k)
    index.add(database[:150], ids[:150])
    index.add(database[150:], ids[150:])  # incremental: idf follows the whole database
    scores, found = index.search(queries, 300)

    idf = idf_weights(database.toarray())
    exact = tfidf(queries.toarray(), idf) @ tfidf(database.toarray(), idf).T
    ranked = np.sort(exact, axis=1)[:, ::-1]
    np.testing.assert_allclose(scores, ranked, atol=1e-5)  # the same sorted scores
    np.testing.assert_allclose(np.take_along_axis(exact, found // 10, axis=1), scores, atol=1e-5)
    # and the very same ids wherever brute force has no tie
    untied = np.abs(np.diff(ranked, axis=1)) > 1e-5
    expected = np.argsort(-exact, axis=1, kind="stable") * 10
    before_and_after = np.concatenate([untied[:, :1], untied[:, 1:] & untied[:, :-1], untied[:, -1:]], axis=1)
    assert (found[before_and_after] == expected[before_and_after]).all()


def test_remove_and_small_k():
    rng = np.random.default_rng(1)
    index = InvertedFile(50)
    docs = random_counts(rng, 10, 50, 8)
    index.add(docs, np.arange(10))
    assert index.remove([3, 4, 99]) == 2 and index.ntotal == 8
    scores, found = index.search(docs[3], 20)
    assert 3 not in found[0] and (found[0, 8:] == -1).all() and np.isneginf(scores[0, 8:]).all()
    _, self_hit = index.search(docs[5], 1)
    assert self_hit[0, 0] == 5


def test_bad_shapes():
    index = InvertedFile(10)
    with pytest.raises(LookalikeError, match=r"counts \(N, 10\)"):
        index.add(np.ones((2, 5)), [1, 2])
    index.add(np.ones((2, 10)), [1, 2])
    with pytest.raises(LookalikeError, match="10 word counts"):
        index.search(np.ones((1, 4)), 1)


def test_unweighted_rows_score_by_inner_product():
    database = sparse.random(40, 300, density=0.05, random_state=3, dtype=np.float32).toarray()
    queries = sparse.random(3, 300, density=0.05, random_state=4, dtype=np.float32).toarray()
    index = InvertedFile(300, weighting="none")
    index.add(database, np.arange(40))
    scores, found = index.search(queries, 5)
    exact = queries @ database.T
    np.testing.assert_allclose(scores, np.sort(exact, axis=1)[:, ::-1][:, :5], atol=1e-6)
    with pytest.raises(LookalikeError, match="weighting"):
        InvertedFile(10, weighting="bm25")
