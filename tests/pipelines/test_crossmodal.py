"""A collection's joint space: text, image and mixed searches through faiss equal brute force."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lookalike.crossmodal.joint import JointEmbedding  # noqa: E402
from lookalike.crossmodal.text import create_text_encoder  # noqa: E402
from lookalike.descriptors import create  # noqa: E402
from lookalike.errors import CollectionError  # noqa: E402
from lookalike.index import Collection  # noqa: E402
from lookalike.pipelines import crossmodal  # noqa: E402
from lookalike.pipelines.indexing import index_paths  # noqa: E402
from tests.conftest import photo  # noqa: E402

WORDS = ["red", "green", "blue", "dog", "cat", "car", "beach", "snow", "night", "city", "tree", "boat"]


def _captions(i):
    return [f"a {WORDS[i % 12]} {WORDS[(i * 5 + 3) % 12]}", f"the {WORDS[i % 12]} and a {WORDS[(i * 7 + 1) % 12]}"]


@pytest.fixture
def joint_collection(tmp_path, image_dir):
    """A gem collection of 12 photos, and a CCA joint model fitted on its vectors and made-up captions."""
    gem = create("gem", max_side=64, engine="torch")
    store = Collection.create(tmp_path / "c", gem)
    index_paths(store, [image_dir], workers=1, progress=False)
    ids, vectors = store.metadata.vectors()
    captions = [c for i in range(len(ids)) for c in _captions(i)]
    tfidf = create_text_encoder("tfidf", min_df=1).fit(captions)
    model = JointEmbedding(method="cca", dim=6, image_spec=gem.spec(), text_spec=tfidf.spec())
    model.fit(vectors, tfidf.encode(captions), np.repeat(np.arange(len(ids)), 2))
    model_path = model.save(tmp_path / "joint.pt")
    yield store, model, model_path
    store.close()


def test_text_and_mixed_search_equal_brute_force(joint_collection, image_dir, tmp_path):
    store, model, model_path = joint_collection
    crossmodal.attach_joint(store, model_path)
    manifest = json.loads((store.path / "manifest.json").read_text())
    assert manifest["joint"]["dim"] == 6 and set(manifest["files"]) == {"joint.pt"}
    assert (store.path / f"joint-{store.metadata.generation}.faiss").exists()

    ids, vectors = store.metadata.vectors()
    projected = model.encode_images(vectors)
    for text, query in (("a red dog", None), ("blue beach at night", None), ("at night", image_dir / "img03.jpg")):
        hits = crossmodal.search_joint(store, text=text, query=query, k=5)
        query_vector = None
        if query is not None:
            from lookalike.io import load_image

            query_vector = store.descriptor(load_image(query).pixels)
        q = crossmodal.joint_queries(model, text=text, image_vectors=query_vector)
        scores = (q @ projected.T)[0]
        order = np.argsort(-scores, kind="stable")[:5]
        assert [h.id for h in hits] == ids[order].tolist()
        np.testing.assert_allclose([h.score for h in hits], scores[order], atol=1e-5)


def test_joint_space_follows_writes_and_checks_its_model(joint_collection, tmp_path):
    store, model, model_path = joint_collection
    crossmodal.attach_joint(store, model_path)
    extra = tmp_path / "extra"
    extra.mkdir()
    photo(99).save(extra / "new.jpg")
    index_paths(store, [extra], workers=1, progress=False)
    # stale until refreshed: rebuilt from the stored vectors, without decoding anything
    crossmodal.refresh_joint(store)
    assert len(list(store.path.glob("joint-*.faiss"))) == 1
    assert crossmodal.joint_index(store, model).ntotal == 13
    hits = crossmodal.search_joint(store, text="a red dog", k=20)
    assert len(hits) == 13

    (store.path / "joint.pt").write_bytes(model_path.read_bytes()[:-10])
    with pytest.raises(CollectionError, match="changed"):
        crossmodal.joint_model(store)


def test_joint_model_must_read_the_collections_descriptor(joint_collection, tmp_path):
    store, model, _ = joint_collection
    larger = create("gem", max_side=128, engine="torch")
    other = JointEmbedding(model.config, image_spec=larger.spec(), text_spec=model.text_spec)
    other.image_head_, other.text_head_ = model.image_head_, model.text_head_
    with pytest.raises(CollectionError, match="train the joint model on the collection's descriptor"):
        crossmodal.attach_joint(store, other.save(tmp_path / "other.pt"))
    with pytest.raises(CollectionError, match="carries no joint space"):
        crossmodal.search_joint(store, text="a dog")
