"""The zero-shot bridge: the class names, the top-k mixing, and the classifier on a real photo."""

from __future__ import annotations

import numpy as np
import pytest

from lookalike.crossmodal.zeroshot import ZeroShotBridge, class_names

pytest.importorskip("sklearn")


def test_class_names_in_the_classifiers_order():
    names = class_names()
    assert len(names) == 1000 and len(set(names)) == 1000
    assert (names[0], names[207], names[817], names[999]) == ("tench", "golden retriever", "sports car",
                                                              "toilet tissue")


def test_images_are_their_top_classes_mixed_by_probability():
    from lookalike.crossmodal.text import create_text_encoder

    sentences = [f"a photo of a {n}." for n in class_names()]
    encoder = create_text_encoder("tfidf", min_df=1, stop_words=False).fit(sentences)
    bridge = ZeroShotBridge(encoder, top=2)
    logits = np.zeros((1, 1000))
    logits[0, [207, 817]] = [np.log(300.0), np.log(100.0)]  # p = 300/1398, 100/1398; 998 classes at 1/1398
    expected = 300 * bridge.class_embeddings[207] + 100 * bridge.class_embeddings[817]
    np.testing.assert_allclose(bridge.encode_images(logits)[0], expected / np.linalg.norm(expected), atol=1e-6)
    scores = bridge.encode_texts(["golden retriever", "sports car", "tench"]) @ bridge.encode_images(logits)[0]
    assert scores[0] > scores[1] > scores[2]


def test_classifier_names_a_real_car(shared_data):
    pytest.importorskip("torch")
    from lookalike.crossmodal.zeroshot import classifier_logits
    from lookalike.descriptors import create
    from lookalike.io import load_image

    pixels = load_image(shared_data / "eth80" / "images" / "car" / "car1" / "car1-066-153.jpg").pixels
    top = np.argsort(-classifier_logits(create("cnn-fc", engine="torch"), pixels))[:5]
    vehicles = {"sports car", "convertible", "racer", "cab", "car wheel", "beach wagon", "grille", "limousine",
                "minivan", "pickup", "Model T", "jeep", "passenger car", "tow truck", "go-kart", "moving van"}
    assert vehicles & {class_names()[i] for i in top}
