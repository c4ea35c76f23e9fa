"""The perceptual hash equals imagehash's bit for bit, and binary search equals brute-force Hamming."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from lookalike.descriptors import create
from lookalike.descriptors.holistic.phash import perceptual_hash
from lookalike.errors import CollectionError, LookalikeError
from lookalike.index import Collection
from lookalike.index.binary import HammingIndex, pack_signs
from lookalike.index.metadata import Entry
from lookalike.io.images import load_image
from tests.conftest import SHARED_DATA

imagehash = pytest.importorskip("imagehash")


@pytest.fixture(scope="module")
def photos():
    """Real photographs: scikit-image's, and a dozen of copydays' where the benchmark data is present."""
    from skimage import data

    out = [getattr(data, name)() for name in ("astronaut", "coffee", "chelsea", "rocket", "camera")]
    if SHARED_DATA.is_dir():
        paths = sorted((SHARED_DATA / "copydays" / "images").rglob("*.jpg"))
        out += [load_image(p).pixels for p in paths[:: max(1, len(paths) // 12)][:12]]
    return [p if p.ndim == 3 else np.stack([p] * 3, axis=2) for p in out]


def test_same_bits_as_imagehash_on_real_photos(photos):
    assert len(photos) >= 5
    for pixels in photos:
        theirs = imagehash.phash(Image.fromarray(pixels)).hash.ravel()
        np.testing.assert_array_equal(perceptual_hash(pixels), theirs)


def test_descriptor_inner_product_is_one_minus_twice_the_hamming_fraction(photos):
    phash = create("phash")
    a, b = photos[:2]
    va, vb = phash(a), phash(b)
    hamming = imagehash.phash(Image.fromarray(a)) - imagehash.phash(Image.fromarray(b))
    assert va @ vb == pytest.approx(1 - 2 * hamming / 64, abs=1e-6)
    assert va @ va == pytest.approx(1.0, abs=1e-6)


def test_bad_options():
    with pytest.raises(LookalikeError, match="multiple of 8"):
        create("phash", hash_size=3)
    with pytest.raises(LookalikeError, match="whitening"):
        create("phash", whitening="white.npz")


def signs(n, dim, seed):
    return np.where(np.random.default_rng(seed).random((n, dim)) > 0.5, 1.0, -1.0).astype(np.float32)


def test_binary_search_equals_brute_force_hamming():
    database, queries = signs(500, 64, 0), signs(20, 64, 1)
    index = HammingIndex(64)
    index.add_with_ids(database, np.arange(500) * 7)
    scores, ids = index.search(queries, 10)
    hamming = (pack_signs(queries)[:, None, :] ^ pack_signs(database)[None]).astype(np.uint8)
    distances = np.unpackbits(hamming, axis=2).sum(axis=2)  # (20, 500), brute force
    expected = np.sort(distances, axis=1)[:, :10]
    np.testing.assert_array_equal(scores, (1 - 2 * expected / 64).astype(np.float32))
    # every returned id really is at the distance reported (ties may come in any order)
    np.testing.assert_array_equal(np.take_along_axis(distances, ids // 7, axis=1), expected)


def test_phash_collection_stores_bits_and_searches_like_the_float_vectors(tmp_path):
    phash = create("phash")
    vectors = signs(300, 64, 2) / 8
    with Collection.create(tmp_path / "c", phash) as collection:
        assert collection.factory == "BFlat"
        collection.write([Entry(f"/img/{i}.jpg", f"{i:064x}", 1, 8, 8, v) for i, v in enumerate(vectors)])
        collection.remove(["/img/0.jpg"])
    with Collection.open(tmp_path / "c") as collection:
        assert len(collection) == 299 and collection.info()["bytes_per_image"] == 16
        scores, ids = collection.search(vectors[1:4], 5)
        index_file = tmp_path / "c" / f"index-{collection.metadata.generation}.faiss"
    exact = np.sort(vectors[1:4] @ vectors[1:].T, axis=1)[:, ::-1][:, :5]
    np.testing.assert_allclose(scores, exact, atol=1e-6)
    assert (ids[:, 0] == [2, 3, 4]).all()  # rows 1..3 have ids 2..4: each finds itself first
    assert index_file.stat().st_size < 300 * 20  # 8 bytes of bits and an 8-byte id per image


def test_bits_are_only_for_binary_descriptors(tmp_path):
    with pytest.raises(CollectionError, match="binary descriptors"):
        Collection.create(tmp_path / "g", create("gist"), index="BFlat")
