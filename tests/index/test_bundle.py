"""Kept files: checked by sha256 once, then by their stamp (size and modification time)."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.errors import CollectionError
from lookalike.index import Collection, bundle
from lookalike.index.metadata import Entry
from lookalike.postprocess.whitening import PCAWhitening

DIM = create("edge-hist").dim


def collection_with_a_kept_file(tmp_path):
    rng = np.random.default_rng(0)
    PCAWhitening(16).fit(rng.normal(size=(300, DIM))).save(tmp_path / "w.npz")
    with Collection.create(tmp_path / "c", create("edge-hist", whitening=str(tmp_path / "w.npz"))) as c:
        c.write(Entry(f"/img/{i}.jpg", f"hash{i}", 100, 10, 10, v)
                for i, v in enumerate(np.eye(16, dtype=np.float32)[:5]))
    return tmp_path / "c"


def stamps(folder):
    return json.loads((folder / "manifest.json").read_text())[bundle.STAMPS]


def test_a_writable_open_stamps_the_kept_files_and_a_rewritten_one_is_still_refused(tmp_path):
    folder = collection_with_a_kept_file(tmp_path)
    kept = folder / "whitening.npz"
    digest = json.loads((folder / "manifest.json").read_text())[bundle.FILES]["whitening.npz"]
    stat = kept.stat()
    assert stamps(folder) == {"whitening.npz": f"{digest} {stat.st_size} {stat.st_mtime_ns}"}
    Collection.open(folder).close()  # read-only: the stamp matches, nothing to hash or write

    data = bytearray(kept.read_bytes())
    data[-30] ^= 0xFF  # same size, other bytes, a new modification time
    kept.write_bytes(bytes(data))
    os.utime(kept, ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))
    with pytest.raises(CollectionError, match="whitening.npz: changed since the collection was built"):
        Collection.open(folder)


def test_the_stamp_is_what_an_open_trusts(tmp_path):
    """Opening reads no kept file whose size and modification time are those stamped: bytes
    changed behind a restored modification time go unseen (the price of not hashing them)."""
    folder = collection_with_a_kept_file(tmp_path)
    kept = folder / "whitening.npz"
    stat = kept.stat()
    data = bytearray(kept.read_bytes())
    data[-30] ^= 0xFF
    kept.write_bytes(bytes(data))
    os.utime(kept, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    Collection.open(folder).close()
    files = json.loads((folder / "manifest.json").read_text())[bundle.FILES]
    with pytest.raises(CollectionError, match="changed since"):
        bundle.check(folder, files)  # without stamps: hashed, and refused


def test_a_copy_that_loses_modification_times_is_hashed_then_stamped_again(tmp_path):
    folder = collection_with_a_kept_file(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(folder, copy, copy_function=shutil.copyfile)  # new modification times
    old = stamps(copy)["whitening.npz"]
    Collection.open(copy).close()  # hashed: same content, so it opens; read-only, so nothing written
    assert stamps(copy)["whitening.npz"] == old
    Collection.open(copy, writable=True).close()
    assert stamps(copy)["whitening.npz"] != old
    assert stamps(copy)["whitening.npz"].split()[2] == str((copy / "whitening.npz").stat().st_mtime_ns)
