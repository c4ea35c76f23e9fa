"""Shared fixtures of the training tests."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import scene


@pytest.fixture(scope="module")
def class_folder(tmp_path_factory) -> Path:
    """6 class folders of 4 images each: crops of one scene per class."""
    root = tmp_path_factory.mktemp("classes")
    for c in range(6):
        (root / f"c{c}").mkdir()
        picture = scene(c, (120, 90))
        for i in range(4):
            picture.crop((4 * i, 3 * i, 4 * i + 80, 3 * i + 60)).save(root / f"c{c}" / f"{i}.jpg")
    return root
