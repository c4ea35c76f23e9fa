"""Captioned image sets: the folder layout with its split, and path,caption CSV files."""

from __future__ import annotations

import json

import pytest

from lookalike.errors import LookalikeError
from lookalike.io.captions import load_captions


def _folder(tmp_path):
    (tmp_path / "images").mkdir(parents=True)
    rows = [{"image": "a.jpg", "captions": ["a dog", "a brown dog"]}, {"image": "b.jpg", "captions": ["a cat"]},
            {"image": "c.jpg", "captions": ["a car", " ", "a red car"]}]
    (tmp_path / "captions.jsonl").write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    (tmp_path / "split.json").write_text(json.dumps({"train": ["a.jpg", "c.jpg"], "test": ["b.jpg"]}))
    return tmp_path


def test_folder_and_splits(tmp_path):
    folder = _folder(tmp_path)
    everything = load_captions(folder)
    assert [p.name for p in everything.paths] == ["a.jpg", "b.jpg", "c.jpg"]
    assert everything.captions == ("a dog", "a brown dog", "a cat", "a car", "a red car")  # blank dropped
    assert everything.owner.tolist() == [0, 0, 1, 2, 2]
    train = load_captions(folder, "train")
    assert [p.name for p in train.paths] == ["a.jpg", "c.jpg"] and train.owner.tolist() == [0, 0, 1, 1]
    assert train.documents() == ["a dog a brown dog", "a car a red car"]
    swapped = everything.subset([2, 0])
    assert swapped.captions == ("a car", "a red car", "a dog", "a brown dog") and swapped.owner.tolist() == [0, 0, 1, 1]


def test_csv(tmp_path):
    (tmp_path / "pairs.csv").write_text('path,caption\nx/1.jpg,"a dog, running"\nx/2.jpg,a cat\nx/1.jpg,a dog\n')
    data = load_captions(tmp_path / "pairs.csv", "train")
    assert data.paths == (tmp_path / "x/1.jpg", tmp_path / "x/2.jpg") and data.owner.tolist() == [0, 1, 0]
    with pytest.raises(LookalikeError, match="no split.json"):
        load_captions(tmp_path / "pairs.csv", "test")


def test_bad_input(tmp_path):
    with pytest.raises(LookalikeError, match="captions.jsonl"):
        load_captions(tmp_path)
    (tmp_path / "bad.csv").write_text("file,text\na.jpg,a dog\n")
    with pytest.raises(LookalikeError, match="path,caption"):
        load_captions(tmp_path / "bad.csv")
    (tmp_path / "captions.jsonl").write_text('{"image": "a.jpg"}\n')
    with pytest.raises(LookalikeError, match=r"captions.jsonl:1"):
        load_captions(tmp_path)
    with pytest.raises(LookalikeError, match="split must be"):
        load_captions(_folder(tmp_path / "ok"), "val")
