"""Indexing folders: resumable, reports bad files, updates, and survives SIGKILL."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lookalike.descriptors import create
from lookalike.index import Collection
from lookalike.pipelines.indexing import index_paths
from lookalike.pipelines.searching import search_image
from tests.conftest import photo


def test_index_then_rerun_skips_everything(tmp_path, image_dir):
    with Collection.create(tmp_path / "c", create("color-hist")) as c:
        first = index_paths(c, [image_dir], workers=1, progress=False)
        second = index_paths(c, [image_dir], workers=1, progress=False)
        assert (first.indexed, first.present) == (12, 0)
        assert (second.indexed, second.present) == (0, 12)
        hits = search_image(c, image_dir / "img07.jpg", k=3)
    assert Path(hits[0].path).name == "img07.jpg" and hits[0].rank == 1


def test_bad_files_are_reported_not_fatal(tmp_path, image_dir):
    (image_dir / "empty.jpg").write_bytes(b"")
    (image_dir / "notes.png").write_text("not an image")
    data = (image_dir / "img00.jpg").read_bytes()
    (image_dir / "cut.jpg").write_bytes(data[: len(data) // 2])
    (image_dir / "copy.jpg").write_bytes((image_dir / "img01.jpg").read_bytes())
    Image.new("CMYK", (30, 20), (10, 200, 30, 0)).save(image_dir / "cmyk.jpg")
    (image_dir / "readme.txt").write_text("ignored: not an image extension")
    with Collection.create(tmp_path / "c", create("edge-hist")) as c:
        report = index_paths(c, [image_dir], workers=2, progress=False)
    reasons = sorted(e.reason for e in report.skipped)
    assert reasons == ["empty", "not an image", "truncated"]
    assert report.indexed == 13  # 12 photos + the CMYK one
    assert [{Path(p).name for p in pair} for pair in report.duplicates] == [{"copy.jpg", "img01.jpg"}]
    assert "3 skipped (1 empty, 1 not an image, 1 truncated)" in report.summary()


def test_update_replaces_changed_and_prunes_deleted(tmp_path, image_dir):
    with Collection.create(tmp_path / "c", create("color-hist")) as c:
        index_paths(c, [image_dir], workers=1, progress=False)
        photo(99).save(image_dir / "img03.jpg")  # new content under an old name
        (image_dir / "img04.jpg").unlink()
        photo(100).save(image_dir / "new.jpg")
        report = index_paths(c, [image_dir], workers=1, progress=False, prune=True)
        assert (report.indexed, report.updated, report.removed, report.present) == (1, 1, 1, 10)
        assert len(c) == 12
        hits = search_image(c, image_dir / "img03.jpg", k=1)
        assert Path(hits[0].path).name == "img03.jpg"
        stored = c.lookup(np.array([hits[0].id]))[0]["sha256"]
        assert stored == hashlib.sha256((image_dir / "img03.jpg").read_bytes()).hexdigest()


INDEX_COMMAND = [sys.executable, "-m", "lookalike", "index", "--descriptor", "color-hist",
                 "--batch-size", "5"]


def _count(db: Path) -> int:
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            return conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]
    except sqlite3.OperationalError:
        return 0


def _kill(process: subprocess.Popen) -> None:
    """SIGKILL ``process``, then any worker it left in its process group."""
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    try:
        os.killpg(process.pid, signal.SIGKILL)  # orphaned pool workers, if any
    except ProcessLookupError:
        pass


@pytest.mark.parametrize("workers, kill_after_rows", [(1, 0), (1, 10), (2, 35)])
def test_sigkill_during_indexing_loses_nothing(tmp_path, workers, kill_after_rows):
    """Kill the indexing process for real at some point, then reopen and resume."""
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(80):
        photo(i, (200, 150)).save(photos / f"p{i:03d}.jpg", quality=85)
    collection = tmp_path / "c"
    process = subprocess.Popen(
        [*INDEX_COMMAND, str(photos), "--collection", str(collection), "--workers", str(workers)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None:
        if _count(collection / "metadata.sqlite") >= kill_after_rows and (
            kill_after_rows or (collection / "manifest.json").exists() or time.time() > deadline - 59.8
        ):
            break
        time.sleep(0.01)
    _kill(process)

    if (collection / "manifest.json").exists():
        with Collection.open(collection) as c:
            assert c.metadata.check() == []
            assert len(c) == len(c.metadata)
            hashes = list(c.metadata.hashes())
            assert len(hashes) == len(set(hashes)) == len(c)
            committed = len(c)
        assert committed % 5 == 0 and committed < 80  # whole batches only, killed mid-run
    done = subprocess.run(
        [*INDEX_COMMAND, str(photos), "--collection", str(collection)],
        capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 0, done.stderr
    with Collection.open(collection) as c:
        assert len(c) == 80 and c.metadata.check() == []
        ids, vectors = c.metadata.vectors()
        _, found = c.search(vectors[:5], 1)
        assert found[:, 0].tolist() == ids[:5].tolist()


def test_a_worker_crash_skips_only_that_file(tmp_path):
    from lookalike.descriptors import register
    from lookalike.pipelines.extract import extract
    from tests.pipelines.crashing import Crashing

    register("crashing", Crashing)
    paths = []
    for i in range(20):
        size = (40, 60) if i == 7 else (60, 40)  # image 7 is portrait: its worker dies
        paths.append(tmp_path / f"{i}.png")
        photo(i, size).save(paths[-1])
    results = list(extract(Crashing(), paths, workers=2, progress=None))
    assert [p for p, _ in results] == paths
    failed = [p.name for p, r in results if not hasattr(r, "vector")]
    assert failed == ["7.png"]
    assert "crashed the worker" in str(results[7][1])


def test_a_pool_that_broke_between_two_submits_fails_the_file_for_a_retry(tmp_path):
    """A worker can die while the parent is still submitting: the submit itself then raises, and
    that file must join the retried ones instead of ending the run."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    from lookalike.pipelines.extract import _submit

    with ProcessPoolExecutor(1, multiprocessing.get_context("spawn")) as pool:
        with pytest.raises(BrokenProcessPool):
            pool.submit(os._exit, 1).result()
        future = _submit(pool, [tmp_path / "next.png"])
    assert future.done() and isinstance(future.exception(), BrokenProcessPool)


@pytest.mark.parametrize("seconds, commits", [(3600.0, 1), (0.0, 12)])
def test_a_batch_is_committed_when_full_or_after_commit_seconds(tmp_path, image_dir, monkeypatch, seconds, commits):
    """Large transactions, but never more than COMMIT_SECONDS of work in one: each commit bumps
    the generation once."""
    from lookalike.pipelines import indexing

    monkeypatch.setattr(indexing, "COMMIT_SECONDS", seconds)
    with Collection.create(tmp_path / "c", create("color-hist")) as c:
        before = c.metadata.generation
        report = index_paths(c, [image_dir], workers=1, progress=False)
        assert report.indexed == 12 and c.metadata.generation - before == commits


def test_a_squashing_descriptor_gets_the_image_down_to_its_shorter_side(tmp_path):
    """cnn-fc squashes to 224 x 224: a 4:3 photo shrunk to 224 x 168 first would lose a quarter of
    its rows, so JPEG draft alone takes it to 400 x 300, and it is described as the full image is."""
    from lookalike.io.images import load_image
    from lookalike.pipelines.extract import decode_for, describe_pixels

    photo(3, (800, 600)).save(tmp_path / "p.jpg", quality=95)
    fc, gem = create("cnn-fc"), create("gem", max_side=256)
    assert decode_for(tmp_path / "p.jpg", fc).pixels.shape == (300, 400, 3)
    assert decode_for(tmp_path / "p.jpg", gem).pixels.shape == (192, 256, 3)
    vector, _ = describe_pixels(decode_for(tmp_path / "p.jpg", fc).pixels, fc)
    assert float(vector @ fc(load_image(tmp_path / "p.jpg").pixels)) > 0.99


def test_the_stored_digest_is_that_of_the_bytes_described(tmp_path, image_dir, monkeypatch):
    """Into an empty collection each file is read once, hashed and decoded by its worker; later,
    a file that changes between the hashing pass and its decoding is stored with the digest of
    what was described."""
    from lookalike.pipelines import indexing

    def sha(path: Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    hash_files = indexing._hash_files
    monkeypatch.setattr(indexing, "_hash_files", lambda *args: pytest.fail("an empty collection needs no first pass"))
    with Collection.create(tmp_path / "c", create("color-hist")) as c:
        index_paths(c, [image_dir], workers=2, progress=False)
        assert {r["path"]: r["sha256"] for r in c.lookup(c.metadata.vectors()[0])} == {
            str(p.resolve()): sha(p) for p in image_dir.iterdir()}

        photo(40).save(image_dir / "new.jpg")

        def then_change(files, progress):
            hashed = hash_files(files, progress)
            photo(41).save(image_dir / "new.jpg")  # after its first-pass digest was taken
            return hashed

        monkeypatch.setattr(indexing, "_hash_files", then_change)
        assert index_paths(c, [image_dir], workers=1, progress=False).indexed == 1
        row = c.lookup(np.array([c.metadata.id_of(str((image_dir / "new.jpg").resolve()))]))[0]
        assert row["sha256"] == sha(image_dir / "new.jpg")
