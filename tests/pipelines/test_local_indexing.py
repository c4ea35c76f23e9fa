"""Indexing with local features: one decoding for both, and a real SIGKILL loses nothing."""

from __future__ import annotations

import subprocess
import sys
import time

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.index import Collection, local_store
from lookalike.io.images import load_image
from lookalike.pipelines.extract import decode_side, extract
from tests.conftest import scene
from tests.pipelines.test_indexing import _count, _kill

pytest.importorskip("cv2")
from lookalike.descriptors.local.registry import create_local  # noqa: E402


def test_one_decoding_gives_the_vector_and_the_local_features(tmp_path):
    paths = []
    for i in range(3):
        paths.append(tmp_path / f"{i}.jpg")
        scene(i, (700, 500)).save(paths[-1], quality=90)  # bigger than both need
    descriptor, sift = create("color-hist"), create_local("sift")
    assert decode_side(descriptor, sift) == 512 and decode_side(descriptor) == 256
    results = list(extract(descriptor, paths, workers=2, progress=None, local=sift))
    for path, described in results:
        decoded = load_image(path, max_side=512)
        assert (described.width, described.height) == (700, 500)
        expected = sift(decoded.pixels)
        np.testing.assert_array_equal(described.local.keypoints, expected.keypoints)
        assert described.local.size == (512, 366)
        # the colour histogram sees the same image as it would alone, to within resampling
        alone = descriptor(load_image(path, max_side=256).pixels)
        assert described.vector.shape == alone.shape and np.abs(described.vector - alone).max() < 0.05


INDEX_COMMAND = [sys.executable, "-m", "lookalike", "index", "--descriptor", "color-hist",
                 "--local-features", "sift", "--batch-size", "5"]


def test_sigkill_while_indexing_local_features_leaves_no_half_entry(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(60):
        scene(i, (200, 150)).save(photos / f"p{i:03d}.jpg", quality=85)
    collection = tmp_path / "c"
    process = subprocess.Popen([*INDEX_COMMAND, str(photos), "--collection", str(collection), "--workers", "2"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 60
    while time.time() < deadline and process.poll() is None and _count(collection / "metadata.sqlite") < 10:
        time.sleep(0.01)
    _kill(process)

    with Collection.open(collection) as c:
        assert c.metadata.check() == []
        committed = len(c)
        assert committed % 5 == 0 and 10 <= committed < 60  # whole batches only, killed mid-run
        assert local_store.stats(c.metadata.db)["images"] == committed and local_store.missing(c.metadata.db) == 0
    done = subprocess.run([*INDEX_COMMAND, str(photos), "--collection", str(collection)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    with Collection.open(collection) as c:
        assert len(c) == 60 and c.metadata.check() == [] and local_store.missing(c.metadata.db) == 0
        ids, _ = c.metadata.vectors()
        row = c.lookup(ids[:1])[0]
        stored = c.local_features(ids[:1])[0]
        fresh = create_local("sift")(load_image(row["path"], max_side=512).pixels)
        np.testing.assert_array_equal(stored.keypoints, fresh.keypoints)
