"""The collection store: add, remove, search, reopen, and refusing the wrong collection."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.errors import CollectionError, LookalikeError
from lookalike.index import Collection
from lookalike.index.metadata import Entry

DIM = create("edge-hist").dim


def entries(n, start=0, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [Entry(f"/img/{start + i}.jpg", f"hash{start + i}", 100, 10, 10, v)
            for i, v in enumerate(vectors)]


def test_add_search_reopen_identical(tmp_path):
    rows = entries(50)
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        ids = c.write(rows)
        queries = np.stack([rows[3].vector, rows[17].vector])
        scores, found = c.search(queries, 5)
    assert found[:, 0].tolist() == [ids[3], ids[17]]
    assert scores.shape == (2, 5) and scores.dtype == np.float32 and found.dtype == np.int64
    assert np.all(np.diff(scores, axis=1) <= 1e-6)
    with Collection.open(tmp_path / "c") as again:
        assert not again.rebuilt
        np.testing.assert_array_equal(again.search(queries, 5)[1], found)
        assert again.lookup(found[0, :1])[0]["path"] == "/img/3.jpg"


def test_search_matches_brute_force(tmp_path):
    rows = entries(40)
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        ids = np.array(c.write(rows))
        q = np.random.default_rng(5).normal(size=(3, DIM)).astype(np.float32)
        scores, found = c.search(q, 40)
    matrix = np.stack([r.vector for r in rows])
    expected = np.argsort(-(q @ matrix.T), axis=1, kind="stable")
    np.testing.assert_array_equal(found, ids[expected])
    np.testing.assert_allclose(scores, np.sort(q @ matrix.T, axis=1)[:, ::-1], rtol=1e-5, atol=1e-6)


def test_fewer_results_than_k(tmp_path):
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        c.write(entries(2))
        scores, ids = c.search(entries(1, seed=3)[0].vector, 4)
    assert ids[0, 2:].tolist() == [-1, -1] and np.isneginf(scores[0, 2:]).all()


def test_remove_and_incremental_add(tmp_path):
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        rows = entries(10)
        c.write(rows)
        assert c.remove(["/img/0.jpg", "/img/5.jpg", "/img/not-there.jpg"]) == 2
        c.write(entries(3, start=10, seed=1))
        assert len(c) == 11
        _, found = c.search(rows[5].vector, 11)
        paths = {row["path"] for row in c.lookup(found[0])}
    assert "/img/5.jpg" not in paths and "/img/12.jpg" in paths
    with Collection.open(tmp_path / "c") as again:
        assert len(again) == 11


def test_stale_index_is_rebuilt(tmp_path):
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        c.write(entries(5))
    for f in (tmp_path / "c").glob("index-*.faiss"):
        f.unlink()
    with Collection.open(tmp_path / "c") as again:
        assert again.rebuilt and len(again) == 5


def test_wrong_descriptor_and_newer_format(tmp_path):
    Collection.create(tmp_path / "c", create("edge-hist")).close()
    with pytest.raises(CollectionError, match="built with descriptor 'edge-hist', not 'gist'"):
        Collection.open(tmp_path / "c", descriptor="gist")
    with pytest.raises(CollectionError, match="config"):
        Collection.open(tmp_path / "c", descriptor=create("edge-hist", orientations=12))
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    manifest["format_version"] = 99
    (tmp_path / "c" / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CollectionError, match="newer than this lookalike"):
        Collection.open(tmp_path / "c")


def test_not_a_collection_and_not_empty(tmp_path):
    with pytest.raises(CollectionError, match="not a lookalike collection"):
        Collection.open(tmp_path)
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(CollectionError, match="not an empty folder"):
        Collection.create(tmp_path, create("gist"))


def test_one_writer_at_a_time(tmp_path):
    with Collection.create(tmp_path / "c", create("edge-hist")):
        with pytest.raises(CollectionError, match="another process is writing"):
            Collection.open(tmp_path / "c", writable=True)
        with Collection.open(tmp_path / "c") as reader:  # readers are not blocked
            assert len(reader) == 0


def test_dimension_mismatch(tmp_path):
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        with pytest.raises(CollectionError, match="expects"):
            c.write([Entry("/a", "h", 1, 1, 1, np.zeros(3, np.float32))])
        with pytest.raises(LookalikeError, match=r"shape \(N, 128\)"):
            c.search(np.zeros((1, 3), np.float32), 1)


def _vectors_mapped(collection) -> bool:
    import faiss

    return not faiss.downcast_index(collection.store._index.index).codes.is_owned


def test_a_read_only_open_maps_the_index_and_searches_as_a_writable_one(tmp_path):
    rows = entries(40)
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        c.write(rows)
    queries = np.stack([r.vector for r in rows[:5]])
    with Collection.open(tmp_path / "c") as mapped:
        assert _vectors_mapped(mapped) and not mapped.rebuilt and len(mapped) == 40
        expected = mapped.search(queries, 7)
    with Collection.open(tmp_path / "c", writable=True) as c:  # read, so that it can grow
        assert not _vectors_mapped(c)
        np.testing.assert_array_equal(c.search(queries, 7)[1], expected[1])
        np.testing.assert_allclose(c.search(queries, 7)[0], expected[0], rtol=1e-6)
        c.write(entries(3, start=40, seed=1))
    with Collection.open(tmp_path / "c") as mapped:
        assert len(mapped) == 43 and not mapped.rebuilt and _vectors_mapped(mapped)
