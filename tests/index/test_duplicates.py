"""Near-duplicate grouping against a hand-made case and a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.sparse.csgraph import connected_components

from lookalike.errors import LookalikeError
from lookalike.index.duplicates import (
    NPROBE,
    PRESETS,
    connected_groups,
    find_groups,
    preset_threshold,
    similar_pairs,
    train_lists,
)


def unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def clustered(n_sources: int = 60, copies: int = 3, dim: int = 32, noise: float = 0.25, seed: int = 0):
    """Random sources, each with noisy copies, plus the row of the source of each row."""
    rng = np.random.default_rng(seed)
    sources = rng.standard_normal((n_sources, dim))
    owner = np.repeat(np.arange(n_sources), copies + 1)
    x = sources[owner] + noise * rng.standard_normal((len(owner), dim))
    return unit(x), owner


def reference_groups(x: np.ndarray, threshold: float) -> set[tuple[int, ...]]:
    """The same groups from the full similarity matrix (fine for a few hundred rows)."""
    adjacency = x @ x.T > threshold
    _, labels = connected_components(adjacency, directed=False)
    groups = [tuple(np.flatnonzero(labels == label)) for label in np.unique(labels)]
    return {g for g in groups if len(g) > 1}


def test_hand_made_case():
    x = unit(np.array([[1, 0, 0], [0.99, 0.14, 0], [0, 1, 0], [0, 0.98, 0.2], [0, 0, 1], [0.7, 0.7, 0]]))
    pairs = similar_pairs(x, 0.95)
    assert sorted(map(tuple, pairs)) == [(0, 1), (2, 3)]
    pixels = np.array([10, 20, 30, 30, 40, 50])
    sizes = np.array([0, 0, 5, 9, 0, 0])
    groups = find_groups(x, 0.95, pixels, sizes)
    # largest resolution first; a tie on resolution goes to the larger file
    assert [list(g.members) for g in groups] == [[1, 0], [3, 2]]
    assert groups[0].scores[0] == pytest.approx(1.0) and groups[0].scores[1] == pytest.approx(x[0] @ x[1])


def test_chains_join_into_one_group():
    pairs = np.array([[0, 1], [1, 2], [5, 6]])
    assert [list(g) for g in connected_groups(pairs, 8)] == [[0, 1, 2], [5, 6]]
    assert connected_groups(np.zeros((0, 2), dtype=np.int64), 4) == []


@pytest.mark.parametrize("threshold", [0.5, 0.8, 0.95])
def test_exact_grouping_equals_the_full_matrix(threshold):
    x, _ = clustered()
    expected = reference_groups(x, threshold)
    for batch in (7, 256):  # the block size changes nothing
        got = {tuple(sorted(g.members)) for g in find_groups(x, threshold)}
        assert got == expected
        pairs = similar_pairs(x, threshold, batch=batch)
        assert (pairs[:, 0] < pairs[:, 1]).all()
        assert len(pairs) == int(np.triu(x @ x.T > threshold, 1).sum())


def test_inverted_file_range_search_is_exact_in_what_it_finds_and_finds_nearly_all():
    x, owner = clustered(n_sources=400, copies=2, dim=64, noise=0.3, seed=1)
    exact = {tuple(p) for p in similar_pairs(x, 0.8)}
    approximate = {tuple(p) for p in similar_pairs(x, 0.8, exact_up_to=0)}
    assert approximate <= exact  # every pair returned really scores above the threshold
    assert len(approximate) >= 0.95 * len(exact) and len(exact) > 300


def test_inverted_file_join_equals_faiss_ivf_range_search_over_the_same_lists():
    """The list-by-list join finds what faiss's IVF range search finds with the same lists and
    nprobe, from either end of a pair (faiss is the reference implementation)."""
    import faiss

    x, _ = clustered(n_sources=300, copies=2, dim=48, noise=0.35, seed=2)
    centroids = train_lists(x)  # seeded: the join trains the same lists
    index = faiss.IndexIVFFlat(faiss.IndexFlatIP(x.shape[1]), x.shape[1], len(centroids), faiss.METRIC_INNER_PRODUCT)
    index.quantizer.add(centroids)
    index.is_trained = True
    index.add(x)
    index.nprobe = NPROBE
    lims, _, ids = index.range_search(x, 0.75)
    queries = np.repeat(np.arange(len(x)), np.diff(lims).astype(np.int64))
    reference = {tuple(sorted(p)) for p in zip(queries.tolist(), ids.tolist()) if p[0] != p[1]}
    got = {tuple(p) for p in similar_pairs(x, 0.75, exact_up_to=0).tolist()}
    assert got == reference and len(got) > 300


def test_presets_and_bad_input():
    assert PRESETS["exact"] > PRESETS["near"] > PRESETS["similar"]
    assert preset_threshold("near") == PRESETS["near"]
    with pytest.raises(LookalikeError, match="exact, near, similar"):
        preset_threshold("fuzzy")
    with pytest.raises(LookalikeError, match=r"\(N, D\)"):
        similar_pairs(np.zeros(5, dtype=np.float32), 0.5)
    assert find_groups(np.zeros((0, 4), dtype=np.float32), 0.5) == []
