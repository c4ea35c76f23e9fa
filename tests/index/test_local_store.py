"""Local features stored with a collection: round trip, atomicity, removal and update in step."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.errors import CollectionError
from lookalike.index import Collection, local_store
from lookalike.index.metadata import Entry
from lookalike.pipelines.indexing import index_paths
from tests.conftest import scene

pytest.importorskip("cv2")
from lookalike.descriptors.local.registry import create_local  # noqa: E402


def _features(rng, count: int, dim: int = 128) -> LocalFeatures:
    keypoints = np.column_stack([rng.uniform(0, 512, (count, 2)), rng.uniform(1, 40, count),
                                 rng.uniform(0, 360, count)]).astype(np.float32)
    descriptors = rng.normal(size=(count, dim)).astype(np.float32)
    descriptors /= np.linalg.norm(descriptors, axis=1, keepdims=True)
    return LocalFeatures(keypoints, descriptors, (512, 384))


def _entry(i: int, vector, local=None) -> Entry:
    return Entry(f"/x/{i}.jpg", f"{i:064x}", 100, 640, 480, vector, local)


@pytest.fixture
def store(tmp_path):
    with Collection.create(tmp_path / "c", create("color-hist"), local_features=create_local("sift")) as c:
        yield c


def test_round_trip_keeps_geometry_exactly_and_descriptors_to_float16(store):
    rng = np.random.default_rng(0)
    written = [_features(rng, 300), _features(rng, 0), _features(rng, 7)]
    vectors = rng.random((3, store.dim), dtype=np.float32)
    ids = store.write([_entry(i, vectors[i], f) for i, f in enumerate(written)])
    read = store.local_features([ids[2], -1, ids[0], 12345, ids[1]])
    assert read[1] is None and read[3] is None
    for original, back in zip([written[2], written[0], written[1]], [read[0], read[2], read[4]]):
        assert back.size == original.size
        np.testing.assert_array_equal(back.keypoints, original.keypoints)
        assert back.descriptors.dtype == np.float32 and back.descriptors.shape == original.descriptors.shape
        # float16: 11 significant bits, so within 2^-11 relative (plus the subnormal step near 0)
        bound = np.abs(original.descriptors) * 2.0 ** -11 + 2.0 ** -24
        assert np.all(np.abs(back.descriptors - original.descriptors) <= bound)
    stats = local_store.stats(store.metadata.db)
    assert stats == {"images": 3, "keypoints": 307, "bytes": 307 * (16 + 2 * 128)}
    assert store.metadata.check() == []


def test_an_entry_and_its_local_features_are_written_together_or_not_at_all(store):
    rng = np.random.default_rng(1)
    vectors = rng.random((2, store.dim), dtype=np.float32)
    broken = LocalFeatures(np.zeros((5, 4), np.float32), np.zeros((4, 128), np.float32), (10, 10))
    with pytest.raises(ValueError, match="should be"):
        store.write([_entry(0, vectors[0], _features(rng, 5)), _entry(1, vectors[1], broken)])
    assert len(store.metadata) == 0 and local_store.stats(store.metadata.db)["images"] == 0
    with pytest.raises(CollectionError, match="local features missing"):
        store.write([_entry(0, vectors[0])])


def test_a_collection_without_local_features_refuses_them(tmp_path):
    rng = np.random.default_rng(2)
    with Collection.create(tmp_path / "plain", create("color-hist")) as plain:
        with pytest.raises(CollectionError, match="keeps no local features"):
            plain.write([_entry(0, rng.random(plain.dim, dtype=np.float32), _features(rng, 3))])
    with pytest.raises(CollectionError, match="created without local features.*--local-features sift"):
        Collection.open(tmp_path / "plain", local_features="sift")


def test_remove_and_update_keep_local_features_in_step(tmp_path):
    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(6):
        scene(i).save(photos / f"s{i}.jpg", quality=90)
    sift = create_local("sift")
    with Collection.create(tmp_path / "c", create("color-hist"), local_features=sift) as c:
        index_paths(c, [photos], workers=1, progress=False)
        assert local_store.stats(c.metadata.db)["images"] == 6 and local_store.missing(c.metadata.db) == 0

        assert c.remove([str(photos / "s1.jpg"), str(photos / "s2.jpg")]) == 2
        assert local_store.stats(c.metadata.db)["images"] == 4 and c.metadata.check() == []

        scene(50).save(photos / "s3.jpg", quality=90)  # new content under a stored name
        (photos / "s4.jpg").unlink()
        report = index_paths(c, [photos], workers=1, progress=False, prune=True)
        assert (report.updated, report.removed) == (1, 1)
        paths = {row["path"]: ident for ident, row in zip(*_all_rows(c))}
        assert local_store.stats(c.metadata.db)["images"] == len(c) == len(paths)
        assert local_store.missing(c.metadata.db) == 0 and c.metadata.check() == []
        stored = c.local_features([paths[str(photos / "s3.jpg")]])[0]
        from lookalike.io.images import load_image

        fresh = sift(load_image(photos / "s3.jpg", max_side=sift.max_side).pixels)
        np.testing.assert_allclose(stored.keypoints, fresh.keypoints)
        np.testing.assert_allclose(stored.descriptors, fresh.descriptors, atol=1e-3)
        assert c.info()["local_features"]["images"] == len(c)


def _all_rows(collection):
    ids, _ = collection.metadata.vectors()
    return ids, collection.lookup(ids)


def test_a_learned_file_of_the_extractor_is_copied_into_the_collection_with_its_checksum(tmp_path):
    pytest.importorskip("torch")
    import hashlib
    import json

    rng = np.random.default_rng(3)
    delf = create_local("delf").fit([rng.normal(size=(300, 112)).astype(np.float32)], tmp_path / "elsewhere.npz")
    with Collection.create(tmp_path / "c", create("color-hist"), local_features=delf) as c:
        manifest = json.loads((tmp_path / "c" / "manifest.json").read_text())
        copied = tmp_path / "c" / "delf-pca.npz"
        assert manifest["files"] == {"delf-pca.npz": hashlib.sha256(copied.read_bytes()).hexdigest()}
        assert manifest["local_features"]["config"]["pca"] == "delf-pca.npz"  # relative: the folder can move
        assert copied.read_bytes() == (tmp_path / "elsewhere.npz").read_bytes()
    (tmp_path / "elsewhere.npz").unlink()
    shutil.move(tmp_path / "c", tmp_path / "moved")
    with Collection.open(tmp_path / "moved") as c:
        assert c.local_extractor.config.pca == str(tmp_path / "moved" / "delf-pca.npz")
        assert c.local_extractor.spec()["config"]["dim"] == 40
