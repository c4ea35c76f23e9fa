"""Shared fixtures: small real images written by the tests, and the benchmark data if present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def photo(seed: int, size: tuple[int, int] = (96, 64)) -> Image.Image:
    """A deterministic natural-looking RGB image: smooth colour blobs plus texture."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w] / max(w, h)
    channels = []
    for _ in range(3):
        cx, cy, f = rng.uniform(0, 1, 3)
        channels.append(np.sin(6 * f * x + 3 * cx) * np.cos(5 * f * y + 2 * cy))
    pixels = (np.stack(channels, -1) * 100 + 128 + rng.normal(0, 8, (h, w, 3))).clip(0, 255)
    return Image.fromarray(pixels.astype(np.uint8), "RGB")


def scene(seed: int, size: tuple[int, int] = (240, 180)) -> Image.Image:
    """A deterministic image full of corners and blobs (random shapes), where SIFT finds keypoints."""
    from PIL import ImageDraw

    rng = np.random.default_rng(seed)
    image = photo(seed, size)
    draw = ImageDraw.Draw(image)
    w, h = size
    for _ in range(40):
        x0, y0 = rng.uniform(0, w), rng.uniform(0, h)
        x1, y1 = x0 + rng.uniform(4, w / 4), y0 + rng.uniform(4, h / 4)
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        (draw.rectangle if rng.random() < 0.5 else draw.ellipse)((x0, y0, x1, y1), fill=colour)
    return image


CAPTION_WORDS = ["red", "green", "blue", "dog", "cat", "car", "beach", "snow"]


def captions_of(i: int) -> list[str]:
    """The two captions of photo ``i`` of :func:`captioned_folder`."""
    w = CAPTION_WORDS
    return [f"a {w[i % 8]} {w[(i + 3) % 8]}", f"the {w[i % 8]} {w[(i + 5) % 8]}"]


def captioned_folder(root: Path, images: int, train: int) -> Path:
    """A captioned image set laid out like ``../shared/data/captions`` in ``root``: photos
    ``p<i>.jpg`` with :func:`captions_of` ``i``, the first ``train`` the train split, the rest test."""
    import json

    (root / "images").mkdir(parents=True)
    with open(root / "captions.jsonl", "w") as f:
        for i in range(images):
            photo(i).save(root / "images" / f"p{i}.jpg")
            f.write(json.dumps({"image": f"p{i}.jpg", "captions": captions_of(i)}) + "\n")
    (root / "split.json").write_text(json.dumps({"train": [f"p{i}.jpg" for i in range(train)],
                                                 "test": [f"p{i}.jpg" for i in range(train, images)]}))
    return root


@pytest.fixture
def image_dir(tmp_path: Path) -> Path:
    """A folder of 12 distinct JPEG photos."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for i in range(12):
        photo(i).save(folder / f"img{i:02d}.jpg", quality=90)
    return folder


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("benchmark data ../shared/data not present")
    return SHARED_DATA


@pytest.fixture(autouse=True, scope="session")
def _private_model_cache(tmp_path_factory):
    """Exported ONNX graphs go to a folder of the test session, not the user's cache."""
    import os

    os.environ["LOOKALIKE_CACHE"] = str(tmp_path_factory.mktemp("cache"))
