"""`lookalike index --store milvus`: the Milvus store chosen on the command line, kept in the
manifest, and used by every later command (search, duplicates, info, remove, reindex)."""

from __future__ import annotations

import json

import pytest

from tests.test_cli import run

pytest.importorskip("pymilvus", reason="the Milvus store needs the [scale] extra")
pytest.importorskip("milvus_lite", reason="the Milvus store is tested with milvus-lite")


def test_a_milvus_collection_from_the_command_line(tmp_path, image_dir):
    from tests.conftest import photo

    photo(4).resize((192, 128)).save(image_dir / "img04_large.png")  # a near-duplicate of img04.jpg
    collection = tmp_path / "c"
    result = run("index", image_dir, "-c", collection, "-d", "color-hist", "--workers", "1", "--store", "milvus")
    assert "13 indexed" in result.stdout and (collection / "milvus.db").exists()
    assert not list(collection.glob("index-*.faiss"))

    hits = json.loads(run("search", image_dir / "img05.jpg", "-c", collection, "-k", "3", "--json").stdout)
    assert hits["results"][0]["path"].endswith("img05.jpg") and len(hits["results"]) == 3
    groups = json.loads(run("duplicates", "-c", collection, "--threshold", "0.9", "--json").stdout)["groups"]
    assert [[m["path"].rsplit("/", 1)[-1] for m in g] for g in groups] == [["img04_large.png", "img04.jpg"]]
    info = json.loads(run("info", collection, "--json").stdout)
    assert info["store"]["kind"] == "milvus" and info["index_state"].startswith("Milvus FLAT")

    assert "12 left" in run("remove", image_dir / "img05.jpg", "-c", collection).stdout
    hits = json.loads(run("search", image_dir / "img05.jpg", "-c", collection, "-k", "12", "--json").stdout)
    assert not any(r["path"].endswith("img05.jpg") for r in hits["results"])

    run("reindex", collection, "--index", "HNSW16")
    assert "HNSW" in json.loads(run("info", collection, "--json").stdout)["index_state"]
    bad = run("reindex", collection, "--index", "PCA16,Flat", ok=False)
    assert bad.returncode != 0 and "no Milvus counterpart" in bad.stderr and "Traceback" not in bad.stderr

    moved = run("index", image_dir, "-c", collection, "--store", "milvus", "--milvus-uri", "http://elsewhere:19530",
                ok=False)
    assert moved.returncode != 0 and "keeps its vectors in milvus" in moved.stderr


def test_bad_store_options_are_refused_before_anything_is_written(tmp_path, image_dir):
    bad = run("index", image_dir, "-c", tmp_path / "c", "-d", "color-hist", "--milvus-uri", "http://x:19530",
              ok=False)
    assert bad.returncode != 0 and "--milvus-uri" in bad.stderr and "Traceback" not in bad.stderr
    bad = run("index", image_dir, "-c", tmp_path / "d", "-d", "color-hist", "--store", "milvus",
              "--index", "PQ8", ok=False)
    assert "no Milvus counterpart" in bad.stderr and not (tmp_path / "d").exists()
