"""Training from image files, and evaluation that trains what it needs first."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("cv2")

from lookalike.descriptors import create  # noqa: E402
from lookalike.errors import LookalikeError  # noqa: E402
from lookalike.io.protocol import load_protocol  # noqa: E402
from lookalike.pipelines.evaluation import evaluate_descriptor  # noqa: E402
from lookalike.pipelines.training import train_descriptor  # noqa: E402
from tests.conftest import scene  # noqa: E402


@pytest.fixture
def big_photos(tmp_path):
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(10):
        scene(i).save(folder / f"p{i}.jpg", quality=92)
    (folder / "broken.jpg").write_bytes(b"nope")
    return folder


def test_train_from_files(tmp_path, big_photos):
    paths = sorted(big_photos.iterdir())
    trained, report = train_descriptor(create("vlad", k=8), paths, tmp_path / "v.npz", workers=2,
                                       progress=False)
    assert trained.trained and trained.config.vocabulary == str((tmp_path / "v.npz").resolve())
    assert report["images"] == 10 and report["skipped"] == 1 and report["descriptors"] > 100
    with pytest.raises(LookalikeError, match="learns no vocabulary"):
        train_descriptor(create("gist"), paths, tmp_path / "g.npz")


def test_evaluation_trains_then_ranks_bow_through_the_inverted_file(tmp_path, big_photos):
    names = sorted(p.name for p in big_photos.glob("p*.jpg"))
    (tmp_path / "protocol.json").write_text(json.dumps({
        "imlist": names, "qimlist": names[:4], "gnd": [{"ok": [], "junk": [i]} for i in range(4)]}))
    for i in range(4):  # each query's answer: a JPEG-recompressed, cropped copy
        scene(i).crop((10, 10, 230, 170)).save(big_photos / f"z{i}.jpg", quality=60)
    data = json.loads((tmp_path / "protocol.json").read_text())
    data["imlist"] += [f"z{i}.jpg" for i in range(4)]
    data["gnd"] = [{"ok": [10 + i], "junk": [i]} for i in range(4)]
    (tmp_path / "protocol.json").write_text(json.dumps(data))
    result = evaluate_descriptor(load_protocol(tmp_path / "protocol.json", big_photos), create("bow", k=64),
                                 workers=1, progress=False, vocabulary_dir=tmp_path / "vocab")
    assert result["training"]["images"] == 14
    assert result["map"] == 1.0 and (tmp_path / "vocab").is_dir()
