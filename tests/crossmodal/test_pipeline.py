"""The winning options end to end: a joint model on gem-flip with every caption a positive, one
view of each image per batch, an ensemble of heads and the hubness correction, trained through the
pipeline, saved, and used identically by eval-text, a collection's text and mixed search, and
caption."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("torch")
pytest.importorskip("sklearn")

from lookalike.crossmodal.joint import JointConfig, JointEmbedding  # noqa: E402
from lookalike.crossmodal.metrics import text_image_retrieval  # noqa: E402
from lookalike.crossmodal.text import create_text_encoder  # noqa: E402
from lookalike.descriptors import create  # noqa: E402
from lookalike.index import Collection  # noqa: E402
from lookalike.io import load_image  # noqa: E402
from lookalike.pipelines import crossmodal  # noqa: E402
from lookalike.pipelines.indexing import index_paths  # noqa: E402
from tests.conftest import captioned_folder, captions_of  # noqa: E402


def test_gem_flip_ensemble_trains_saves_and_ranks_the_same_everywhere(tmp_path):
    data = captioned_folder(tmp_path / "captions", images=12, train=9)
    descriptor = create("gem-flip", max_side=64, scales=(1.0, 0.7071), engine="torch", threads=1)
    config = JointConfig(method="infonce", dim=8, epochs=3, batch_size=4, captions="all", augment="views", ensemble=2,
                         hubness=3)
    model, report = crossmodal.train_joint(data, descriptor, create_text_encoder("tfidf", min_df=1),
                                           tmp_path / "joint.pt", config=config, holdout=2, workers=1, progress=False)
    assert len(report["members"]) == 2 and model.dim == 16
    loaded = JointEmbedding.load(tmp_path / "joint.pt")
    assert loaded.config == model.config and loaded.image_descriptor.spec() == descriptor.spec()

    # brute force from the saved model: the test images' descriptors and captions in its space
    test = [data / "images" / f"p{i}.jpg" for i in range(9, 12)]
    vectors = np.stack([descriptor(load_image(p, max_side=descriptor.max_side).pixels) for p in test])
    images = loaded.encode_images(vectors)
    sentences = [caption for i in range(9, 12) for caption in captions_of(i)]
    texts = loaded.encode_texts(loaded.text_encoder.encode(sentences))
    # the hubness correction, by hand: half the mean of each row's 3 best cosines to the training rows
    bank_images = loaded.encode_images(loaded.bank_[0].numpy())
    bank_texts = loaded.encode_texts(loaded.bank_[1].numpy())
    assert len(bank_images) == 7 and len(bank_texts) == 14  # the 7 images fitted on and their captions
    image_penalty = 0.5 * np.sort(images @ bank_texts.T, axis=1)[:, -3:].mean(1)
    text_penalty = 0.5 * np.sort(texts @ bank_images.T, axis=1)[:, -3:].mean(1)
    np.testing.assert_allclose(loaded.image_penalties(images), image_penalty, atol=1e-6)
    expected = text_image_retrieval(images, texts, np.repeat(np.arange(3), 2), image_penalties=image_penalty,
                                    text_penalties=text_penalty)
    result = crossmodal.evaluate_joint(data, loaded, workers=1, progress=False)  # eval-text
    assert {d: result[d] for d in ("t2i", "i2t")} == {d: expected[d] for d in ("t2i", "i2t")}

    ranked = crossmodal.caption_image(test[0], sentences, loaded, k=6)  # caption
    np.testing.assert_allclose([s for _, s, _ in ranked], np.sort(texts @ images[0] - text_penalty)[::-1], atol=1e-5)

    with Collection.create(tmp_path / "c", descriptor) as collection:  # search --text, alone and mixed
        index_paths(collection, test, workers=1, progress=False)
        crossmodal.attach_joint(collection, tmp_path / "joint.pt")
        hits = crossmodal.search_joint(collection, text=sentences[2], k=3)
        by_path = dict(zip(map(str, test), images))
        penalty = dict(zip(map(str, test), image_penalty))
        scores = [float(by_path[h.path] @ texts[2] - penalty[h.path]) for h in hits]
        np.testing.assert_allclose([h.score for h in hits], scores, atol=1e-5)
        assert scores == sorted(scores, reverse=True)
        mixed = crossmodal.search_joint(collection, text="snow", query=test[1], k=3)
        query = crossmodal.joint_queries(loaded, text="snow", image_vectors=vectors[1])
        np.testing.assert_allclose([h.score for h in mixed], np.sort(images @ query[0] - image_penalty)[::-1],
                                   atol=1e-5)
