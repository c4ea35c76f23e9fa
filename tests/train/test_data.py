"""Reading labelled training input (protocol json, CSV, class folders) and the validation split."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lookalike.errors import LookalikeError
from lookalike.train.data import LabelledImages, decode_square, read_labelled, split_classes
from tests.conftest import photo


@pytest.fixture
def class_folders(tmp_path):
    root = tmp_path / "classes"
    for c, name in enumerate(["bird", "cat", "dog"]):
        (root / name).mkdir(parents=True)
        for i in range(3):
            photo(10 * c + i).save(root / name / f"{i}.jpg")
    return root


def test_the_three_inputs_give_the_same_classes(class_folders, tmp_path):
    folders, how = read_labelled(class_folders)
    assert how == "sub-folders" and folders.classes == ("bird", "cat", "dog")
    assert folders.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]

    rows = [f"{p.relative_to(class_folders)},{folders.classes[c]}" for p, c in zip(folders.paths, folders.labels)]
    (class_folders / "train.csv").write_text("path,label\n" + "\n".join(rows) + "\n")
    csv, _ = read_labelled(class_folders / "train.csv")
    assert csv.paths == folders.paths and csv.labels.tolist() == folders.labels.tolist()

    imlist = [str(p.relative_to(class_folders)) for p in folders.paths]
    protocol = {"imlist": imlist, "qimlist": imlist[:1], "gnd": [{"ok": [1, 2], "junk": [0]}],
                "labels": {"kind": ["animal"] * 9, "species": [folders.classes[c] for c in folders.labels]}}
    (tmp_path / "p.json").write_text(json.dumps(protocol))
    (tmp_path / "images").symlink_to(class_folders)
    chosen, how = read_labelled(tmp_path / "p.json", "")  # the label with the most classes
    assert how == "label species" and chosen.labels.tolist() == folders.labels.tolist()
    assert read_labelled(tmp_path / "p.json", "kind")[0].classes == ("animal",)


def test_bad_inputs_say_what_to_do(tmp_path):
    with pytest.raises(LookalikeError, match="no such training input"):
        read_labelled(tmp_path / "missing.csv")
    (tmp_path / "bad.csv").write_text("a.jpg\n")
    with pytest.raises(LookalikeError, match="row 1"):
        read_labelled(tmp_path / "bad.csv")
    (tmp_path / "x.txt").write_text("")
    with pytest.raises(LookalikeError, match="json protocol, a .csv or a folder"):
        read_labelled(tmp_path / "x.txt")


def test_validation_holds_out_whole_classes(class_folders):
    images, _ = read_labelled(class_folders)
    images = images.subset(np.arange(9))
    with pytest.raises(LookalikeError, match="at least 2 on each side"):
        split_classes(images, 0.34)
    labels = np.repeat(np.arange(10), 4)
    many = LabelledImages(tuple(f"{i}.jpg" for i in range(40)), labels, tuple(map(str, range(10))))
    train, val = split_classes(many, 0.2, seed=3)
    assert len(val) == 8 and not set(labels[train]) & set(labels[val])
    assert split_classes(many, 0.2, seed=3)[1].tolist() == val.tolist()  # seeded


def test_decode_square(class_folders):
    images, _ = read_labelled(class_folders)
    pixels = decode_square(images.paths[:2], 32)
    assert pixels.shape == (2, 3, 32, 32) and pixels.dtype == np.uint8 and pixels.std() > 0
