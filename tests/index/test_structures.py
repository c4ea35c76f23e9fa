"""Compressed and approximate structures in collections: the same results as raw faiss, training,
exact fallback, add/remove/reload, search parameters, clear errors."""

from __future__ import annotations

import re
from pathlib import Path

import faiss
import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.errors import LookalikeError
from lookalike.index import Collection, structures
from lookalike.index.metadata import Entry

DIM = create("edge-hist").dim  # 128
DOCS = Path(__file__).resolve().parents[2] / "docs"


@pytest.fixture(autouse=True)
def one_thread():
    """faiss's k-means and HNSW insertion are only reproducible run to run on one thread."""
    before = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(1)
    yield
    faiss.omp_set_num_threads(before)


def clustered(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    x = centres[rng.integers(0, 20, n)] + 0.3 * rng.normal(size=(n, DIM))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def entries(vectors: np.ndarray, start: int = 0) -> list[Entry]:
    return [Entry(f"/img/{start + i}.jpg", f"h{start + i}", 1, 1, 1, v) for i, v in enumerate(vectors)]


def raw_faiss(factory: str, train: np.ndarray, vectors: np.ndarray, ids: np.ndarray, **parameters):
    index = faiss.index_factory(DIM, factory, faiss.METRIC_INNER_PRODUCT)
    structures.without_polysemous_training(index)  # as lookalike does, see its docstring
    if not index.is_trained:
        index.train(train)
    space = faiss.ParameterSpace()
    for name, value in parameters.items():
        space.set_index_parameter(index, name, value)
    index = index if isinstance(index, faiss.IndexIVF) else faiss.IndexIDMap2(index)
    index.add_with_ids(vectors, ids)
    return index


@pytest.mark.parametrize("factory, ours, theirs", [
    ("PQ16", {}, {}),
    ("PCA32,Flat", {}, {}),
    ("IVF16,PQ16", dict(nprobe=3), dict(nprobe=3)),
    ("IVF16,SQ8", dict(nprobe=5), dict(nprobe=5)),
    ("OPQ8_32,IVF16,PQ8", dict(nprobe=4), dict(nprobe=4)),
    ("HNSW16", dict(efSearch=20), dict(efSearch=20)),
    ("IVF16,PQ16,RFlat", dict(nprobe=2, k_factor=3), dict(nprobe=2, k_factor_rf=3)),
])
def test_same_results_as_raw_faiss_with_the_same_parameters(tmp_path, factory, ours, theirs):
    train, data, queries = clustered(2000, 1), clustered(1500, 2), clustered(20, 3)
    with Collection.create(tmp_path / "c", create("edge-hist"), index=factory) as store:
        ids = np.array(store.write(entries(data)))
        store.train_index(train)
        assert not store.exact
        scores, found = store.search(queries, 10, **ours)
    expected_scores, expected = raw_faiss(factory, train, data, ids, **theirs).search(queries, 10)
    np.testing.assert_array_equal(found, expected)
    np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-6)
    with Collection.open(tmp_path / "c") as again:  # reload: the same structure, no retraining
        np.testing.assert_array_equal(again.search(queries, 10, **ours)[1], expected)


def test_exact_until_enough_vectors_then_trained_once(tmp_path):
    factory = "IVF4,Flat"  # trains from 4 * 39 = 156 vectors
    assert structures.training_size(factory) == 156
    data = clustered(300)
    with Collection.create(tmp_path / "c", create("edge-hist"), index=factory) as store:
        ids = np.array(store.write(entries(data[:100])))
        assert store.exact and "exact search until 156 vectors" in store.info()["index_state"]
        scores, found = store.search(data[:5], 3, nprobe=1)  # parameters wait for the structure
        assert (found[:, 0] == ids[:5]).all()
        store.write(entries(data[100:], start=100))
        assert not store.exact and "trained: IndexIVFFlat" in store.info()["index_state"]
    trained_at = (tmp_path / "c" / "trained.faiss").stat().st_mtime_ns
    with Collection.open(tmp_path / "c", writable=True) as again:
        assert not again.exact and len(again) == 300
        again.remove([f"/img/{i}.jpg" for i in range(50)])
        assert len(again) == 250
    assert (tmp_path / "c" / "trained.faiss").stat().st_mtime_ns == trained_at


@pytest.mark.parametrize("factory", ["IVF8,PQ16", "HNSW16", "IVF8,PQ16,RFlat"])
def test_add_remove_reload_round_trip(tmp_path, factory):
    data, queries = clustered(600), clustered(10, 9)
    with Collection.create(tmp_path / "c", create("edge-hist"), index=factory) as store:
        ids = np.array(store.write(entries(data[:400])))
        store.train_index(data)
        store.remove([f"/img/{i}.jpg" for i in range(0, 400, 3)])  # HNSW and refine rebuild
        more = np.array(store.write(entries(data[400:], start=400)))
        before = store.search(queries, 8)
    kept = np.concatenate([np.setdiff1d(ids, ids[::3]), more])  # SQLite may reuse a freed id
    assert set(before[1].ravel()) <= set(kept)
    with Collection.open(tmp_path / "c") as again:
        assert len(again) == len(kept)
        after = again.search(queries, 8)
    np.testing.assert_array_equal(after[1], before[1])
    kept_vectors = np.concatenate([np.delete(data[:400], np.s_[::3], axis=0), data[400:]])
    defaults = {"efSearch": 64} if "HNSW" in factory else {"nprobe": 16}  # the collection's
    if "RFlat" in factory:
        defaults["k_factor_rf"] = 4
    raw = raw_faiss(factory, data, kept_vectors, kept, **defaults)
    if "HNSW" not in factory:  # HNSW's graph depends on the insertion history
        np.testing.assert_array_equal(after[1], raw.search(queries, 8)[1])


def test_parameters_apply_to_one_query_only(tmp_path):
    data, queries = clustered(1000), clustered(30, 5)
    with Collection.create(tmp_path / "c", create("edge-hist"), index="IVF32,Flat") as store:
        ids = np.array(store.write(entries(data)))
        store.train_index(data)
        narrow = store.search(queries, 10, nprobe=1)[1]
        default = store.search(queries, 10)[1]
        exact = store.search(queries, 10, nprobe=32)[1]
        assert not np.array_equal(narrow, default)
        np.testing.assert_array_equal(store.search(queries, 10)[1], default)
        brute = ids[np.argsort(-(queries @ data.T), axis=1)[:, :10]]
        assert (exact == brute).mean() > 0.99
        with pytest.raises(LookalikeError, match="efSearch does not apply"):
            store.search(queries, 10, efSearch=32)


def test_bad_factory_strings_and_dimension_mismatches(tmp_path):
    for factory, message in [("IVF", "need a number"), ("PQ7", "not a multiple of 7"),
                             ("PCA256,Flat", "cannot reduce 128-D"), ("Bogus", "not a valid faiss factory"),
                             ("IVF16, Flat", "no spaces")]:
        with pytest.raises(LookalikeError, match=message):
            Collection.create(tmp_path / "c", create("edge-hist"), index=factory)
        assert not (tmp_path / "c").exists()
    with Collection.create(tmp_path / "c", create("edge-hist"), index="HNSW8") as store:
        with pytest.raises(LookalikeError, match=r"shape \(N, 128\)"):
            store.search(np.zeros((2, 64), np.float32), 3)
        with pytest.raises(LookalikeError, match="training vectors should have shape"):
            store.train_index(np.zeros((10, 64), np.float32))


def documented_factories() -> list[str]:
    """The factory strings in the docs' tables (a table cell holding just `code`)."""
    text = (DOCS / "design.md").read_text() + (DOCS / "benchmarks.md").read_text()
    return sorted(set(re.findall(r"\| `([A-Z][A-Za-z0-9_,]*)` \|", text)))


def test_every_factory_string_in_the_docs_builds():
    found = documented_factories()
    assert len(found) >= 8, found
    for factory in [*found, *structures.EXAMPLES]:
        index = structures.build(factory, 1280)
        assert index.d == 1280 and index.metric_type == faiss.METRIC_INNER_PRODUCT


def test_choose_explains_its_choice_in_one_line():
    small = structures.choose(50_000, 1280, 8e9)
    assert small.factory == "Flat" and "\n" not in small.reason
    graph = structures.choose(2_000_000, 128, 8e9)
    assert graph.factory == "HNSW32" and graph.bytes_per_vector * 2e6 < 0.8 * 8e9
    big = structures.choose(100_000_000, 512, 16e9)
    assert big.factory.startswith("IVF") and "PQ" in big.factory and big.bytes_per_vector * 1e8 <= 0.8 * 16e9
    structures.build(big.factory, 512)
    with pytest.raises(LookalikeError, match="shard"):
        structures.choose(10**11, 512, 1e9)


@pytest.mark.parametrize("factory", ["HNSW16", "IVF8,PQ16,RFlat"])
def test_adding_and_removing_in_one_write_stores_each_vector_once(tmp_path, factory):
    """A removal these structures cannot do rebuilds them from SQLite, which already holds the
    additions of the same write: they must not be added a second time."""
    data = clustered(500)
    with Collection.create(tmp_path / "c", create("edge-hist"), index=factory) as store:
        store.write(entries(data[:300]))
        store.train_index(data)
        store.write(entries(data[300:], start=300), remove_paths=["/img/0.jpg", "/img/1.jpg"])
        assert len(store) == 498
        _, found = store.search(data[400:410], 5)
    assert all(len(set(row)) == len(row) for row in found)  # no id found twice
