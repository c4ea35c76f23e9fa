"""Vector stores: id filters in the faiss store, and the Milvus store (milvus-lite) giving the
same ids as the faiss store for adds, searches, removals and filters, and reopening."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.errors import CollectionError, LookalikeError
from lookalike.index import Collection
from lookalike.index.metadata import Entry

DESCRIPTOR = create("edge-hist")
DIM = DESCRIPTOR.dim


def entries(n, start=0, seed=0):
    rng = np.random.default_rng(seed)
    vectors = rng.normal(size=(n, DIM)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    return [Entry(f"/img/{start + i}.jpg", f"hash{start + i}", 100, 10, 10, v) for i, v in enumerate(vectors)]


def brute_force_within(rows, ids, queries, allowed, k):
    """Expected (scores, ids) of an exact search restricted to ``allowed`` ids."""
    keep = np.isin(ids, allowed)
    matrix, kept = np.stack([r.vector for r in rows])[keep], ids[keep]
    scores = queries @ matrix.T
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(scores, order, 1), kept[order]


@pytest.mark.parametrize("factory", ["Flat", "HNSW16", "IVF4,Flat", "PCA32,Flat", "IVF4,PQ8,RFlat"])
def test_faiss_search_within_ids_only_returns_those(tmp_path, factory):
    rows = entries(300)
    with Collection.create(tmp_path / "c", DESCRIPTOR, index=factory) as c:
        ids = np.array(c.write(rows))
        allowed = ids[::7]
        queries = np.stack([rows[1].vector, rows[14].vector])
        parameters = {"nprobe": 4} if factory.startswith("IVF") else {}
        scores, found = c.search(queries, 5, within=allowed, **parameters)
        assert np.isin(found, allowed).all()
        assert found[1, 0] == ids[14]  # an allowed image finds itself
        if factory in ("Flat", "IVF4,Flat", "IVF4,PQ8,RFlat"):  # exact scores over the allowed ids
            expected_scores, expected = brute_force_within(rows, ids, queries, allowed, 5)
            np.testing.assert_array_equal(found, expected)
            np.testing.assert_allclose(scores, expected_scores, rtol=1e-5, atol=1e-5)
        # fewer allowed than k: padded with -1 and -inf, as an unfiltered search of a small collection
        scores, found = c.search(queries[:1], 4, within=ids[:2])
        assert sorted(found[0, :2].tolist()) == sorted(ids[:2].tolist()) and found[0, 2:].tolist() == [-1, -1]
        assert np.isneginf(scores[0, 2:]).all()


def test_unknown_store_and_uri_without_milvus_are_refused(tmp_path):
    with pytest.raises(CollectionError, match="store 'qdrant': choose one of faiss, milvus"):
        Collection.create(tmp_path / "a", DESCRIPTOR, store="qdrant")
    with pytest.raises(CollectionError, match="--milvus-uri"):
        Collection.create(tmp_path / "b", DESCRIPTOR, milvus_uri="http://localhost:19530")
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---- Milvus, embedded (milvus-lite) ---------------------------------------------------------

def _milvus():
    pytest.importorskip("pymilvus", reason="the Milvus store needs the [scale] extra")
    pytest.importorskip("milvus_lite", reason="the Milvus store is tested with milvus-lite")


@pytest.mark.parametrize("factory, parameters", [("Flat", {}), ("IVF4,Flat", {"nprobe": 4})])
def test_milvus_gives_the_same_ids_as_faiss(tmp_path, factory, parameters):
    _milvus()
    rows, more = entries(200), entries(30, start=200, seed=1)
    queries = np.stack([rows[5].vector, rows[60].vector, more[3].vector,
                        *np.random.default_rng(7).normal(size=(3, DIM)).astype(np.float32)])
    answers = {}
    for store in ("faiss", "milvus"):
        with Collection.create(tmp_path / store, DESCRIPTOR, index=factory, store=store) as c:
            ids = np.array(c.write(rows))
            first = c.search(queries, 10, **parameters)
            # removals, then additions: ids are SQLite's in both stores, never reused
            c.remove([f"/img/{i}.jpg" for i in range(0, 200, 3)])
            new = np.array(c.write(more))
            after = c.search(queries, 10, **parameters)
            allowed = np.concatenate([ids[1::5], new[::2], ids[::3][:5]])  # with removed ids: never found
            within = c.search(queries, 10, within=allowed, **parameters)
            answers[store] = (first, after, within, len(c), ids, new)
    faiss_answers, milvus_answers = answers["faiss"], answers["milvus"]
    for got, expected in zip(milvus_answers[:3], faiss_answers[:3]):
        np.testing.assert_array_equal(got[1], expected[1])
        np.testing.assert_allclose(got[0], expected[0], rtol=1e-4, atol=1e-5)
    assert milvus_answers[3] == faiss_answers[3] == 230 - 67
    np.testing.assert_array_equal(milvus_answers[5], faiss_answers[5])
    removed = faiss_answers[4][::3]
    assert not np.isin(milvus_answers[1][1], removed).any() and not np.isin(milvus_answers[2][1], removed).any()


def test_milvus_collection_reopens_with_its_store(tmp_path):
    _milvus()
    rows = entries(120)
    with Collection.create(tmp_path / "c", DESCRIPTOR, index="HNSW16", store="milvus") as c:
        ids = np.array(c.write(rows))
        scores, found = c.search(np.stack([rows[9].vector]), 5, efSearch=128)
    manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
    assert manifest["store"]["kind"] == "milvus" and manifest["store"]["uri"] is None
    assert (tmp_path / "c" / "milvus.db").exists() and not list((tmp_path / "c").glob("index-*.faiss"))
    with Collection.open(tmp_path / "c") as again:  # read-only
        assert not again.rebuilt and len(again) == 120
        info = again.info()
        assert info["store"]["kind"] == "milvus" and "HNSW" in info["index_state"]
        again_scores, again_found = again.search(np.stack([rows[9].vector]), 5, efSearch=128)
        assert again_found[0, 0] == ids[9]
        np.testing.assert_array_equal(again_found, found)
        with pytest.raises(LookalikeError, match="nprobe does not apply"):
            again.search(rows[0].vector, 3, nprobe=4)


def test_milvus_behind_sqlite_is_rebuilt_from_it(tmp_path):
    """A kill between the SQLite commit and Milvus: read-only opens refuse with the fix, a
    writable open rebuilds Milvus from SQLite."""
    _milvus()
    from lookalike.index.milvus_store import SYNCED

    rows = entries(40)
    with Collection.create(tmp_path / "c", DESCRIPTOR, store="milvus") as c:
        ids = np.array(c.write(rows))
        c.metadata.set_state({SYNCED: -1})  # as if Milvus had not followed the last write
    with pytest.raises(CollectionError, match="lags behind.*open it for writing"):
        Collection.open(tmp_path / "c")
    with Collection.open(tmp_path / "c", writable=True) as again:
        assert again.rebuilt and len(again) == 40
        assert again.search(rows[11].vector, 1)[1][0, 0] == ids[11]
    with Collection.open(tmp_path / "c") as reader:
        assert not reader.rebuilt


def test_milvus_refuses_structures_it_lacks(tmp_path):
    _milvus()
    with pytest.raises(LookalikeError, match="'PCA32,Flat' has no Milvus counterpart"):
        Collection.create(tmp_path / "c", DESCRIPTOR, index="PCA32,Flat", store="milvus")
    assert not (tmp_path / "c").exists()
