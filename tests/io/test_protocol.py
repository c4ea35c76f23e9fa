"""Protocol files: the shared benchmark files load, and malformed ones say what is wrong."""

from __future__ import annotations

import json

import pytest

from lookalike.errors import ProtocolError
from lookalike.io.protocol import load_protocol


def write(tmp_path, data):
    (tmp_path / "images").mkdir(exist_ok=True)
    path = tmp_path / "p.json"
    path.write_text(json.dumps(data))
    return path


@pytest.mark.parametrize("name", ["eth80/instance.json", "eth80/category.json",
                                  "landmarks/full.json", "copydays/full.json"])
def test_shared_protocols_load(shared_data, name):
    protocol = load_protocol(shared_data / name)
    assert len(protocol.gnd) == len(protocol.qimlist) > 0
    assert protocol.database_paths()[0].exists() and protocol.query_paths()[-1].exists()


@pytest.mark.parametrize(
    "data, message",
    [
        ({"imlist": ["a"], "qimlist": ["q"]}, "missing list 'gnd'"),
        ({"imlist": ["a"], "qimlist": ["q"], "gnd": []}, "0 entries for 1 queries"),
        ({"imlist": ["a"], "qimlist": ["q"], "gnd": [{"ok": [3]}]}, "outside 0..0"),
        ({"imlist": ["a"], "qimlist": ["q"], "gnd": [{"junk": []}]}, "no list 'ok'"),
        ({"imlist": ["a"], "qimlist": ["q"], "gnd": [{"ok": [0]}], "qattack": []}, "qattack has 0"),
    ],
)
def test_malformed_protocols(tmp_path, data, message):
    with pytest.raises(ProtocolError, match=message):
        load_protocol(write(tmp_path, data))


def test_missing_file_and_images(tmp_path):
    with pytest.raises(ProtocolError, match="no such protocol file"):
        load_protocol(tmp_path / "none.json")
    path = tmp_path / "p.json"
    path.write_text(json.dumps({"imlist": ["a.jpg"], "qimlist": ["a.jpg"], "gnd": [{"ok": [0]}]}))
    with pytest.raises(ProtocolError, match="--images"):
        load_protocol(path)
