"""Near-duplicates of files and of a collection, through the real extraction and store."""

from __future__ import annotations

import pytest

from lookalike.descriptors import create, default_descriptor
from lookalike.errors import LookalikeError
from lookalike.index import Collection
from lookalike.pipelines.duplicates import choose_threshold, collection_duplicates, file_duplicates
from lookalike.pipelines.indexing import index_paths
from tests.conftest import photo


@pytest.fixture
def with_copies(image_dir):
    original = photo(3)
    original.resize((192, 128)).save(image_dir / "img03_large.png")
    original.save(image_dir / "img03_q40.jpg", quality=40)
    (image_dir / "broken.jpg").write_bytes(b"\xff\xd8\xff nothing")
    return image_dir


def test_files_and_collection_give_the_same_groups(with_copies, tmp_path):
    hist = create("color-hist")
    groups, skipped = file_duplicates([with_copies], hist, threshold=0.9, workers=1, progress=False)
    assert [e.path.split("/")[-1] for e in skipped] == ["broken.jpg"]
    names = [[m["path"].split("/")[-1] for m in g] for g in groups]
    assert names == [["img03_large.png", "img03.jpg", "img03_q40.jpg"]]  # the largest is the best copy
    assert groups[0][0]["width"] == 192 and groups[0][0]["bytes"] == (with_copies / "img03_large.png").stat().st_size

    with Collection.create(tmp_path / "c", hist) as store:
        index_paths(store, [with_copies], workers=1, progress=False)
        stored = collection_duplicates(store, 0.9)
    assert [[m["path"] for m in g] for g in stored] == [[m["path"] for m in g] for g in groups]
    assert [m["score"] for m in stored[0]] == pytest.approx([m["score"] for m in groups[0]], abs=1e-6)


def test_presets_need_the_descriptor_they_were_calibrated_for():
    assert choose_threshold(default_descriptor(), None, None) == choose_threshold(default_descriptor(), None, "near")
    assert choose_threshold(create("gist"), 0.7, None) == 0.7
    with pytest.raises(LookalikeError, match="give --threshold"):
        choose_threshold(create("gist"), None, "exact")
    with pytest.raises(LookalikeError, match="between -1 and 1"):
        choose_threshold(create("gist"), 3.0, None)
