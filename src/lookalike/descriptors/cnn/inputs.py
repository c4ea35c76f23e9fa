"""Images as a network's input, shared by the deep global descriptors and the deep local features:
the options that size them, and the resized ``[3, H, W]`` float32 pixels at each scale."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PIL import Image

from lookalike.descriptors.cnn.engine import ENGINES
from lookalike.errors import LookalikeError

MIN_SIDE = 32  # one cell of the last feature map


def check_input_options(owner: str, engine: str, max_side: int, scales: Sequence[float]) -> None:
    """Raise :class:`LookalikeError`, naming ``owner``, for an unknown engine or unusable sizes."""
    if engine not in ENGINES:
        raise LookalikeError(f"{owner}: engine must be one of {', '.join(ENGINES)}, not {engine!r}")
    if max_side < MIN_SIDE or not scales or not all(0 < s <= 4 for s in scales):
        raise LookalikeError(f"{owner}: need max_side >= {MIN_SIDE} and scales in (0, 4], got {max_side}, {scales}")


def network_input(image: np.ndarray, height: float, width: float) -> np.ndarray:
    """``image [H, W, 3]`` uint8 resized (bilinear) to ``height x width`` (at least
    :data:`MIN_SIDE`), as ``[3, height, width]`` float32 pixels in 0..255."""
    size = (max(MIN_SIDE, round(width)), max(MIN_SIDE, round(height)))
    if size != (image.shape[1], image.shape[0]):
        image = np.asarray(Image.fromarray(image).resize(size, Image.Resampling.BILINEAR, reducing_gap=2.0))
    return image.transpose(2, 0, 1).astype(np.float32)


def scaled_inputs(image: np.ndarray, max_side: int, scales: Sequence[float]) -> tuple[np.ndarray, ...]:
    """The image at each scale, aspect ratio kept, the longer side at most ``max_side`` at scale 1
    (smaller images are not enlarged): ``[3, H, W]`` float32 each."""
    height, width = image.shape[:2]
    base = min(1.0, max_side / max(height, width))
    return tuple(network_input(image, height * base * s, width * base * s) for s in scales)
