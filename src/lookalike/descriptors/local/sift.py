"""SIFT descriptors from OpenCV, at detected keypoints or densely on a grid, optionally RootSIFT."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from lookalike.errors import LookalikeError


class LocalFeatures(NamedTuple):
    """Local features of one image."""

    keypoints: np.ndarray  # (T, 4) float32: x, y, scale (diameter in pixels), angle (degrees)
    descriptors: np.ndarray  # (T, D) float32
    size: tuple[int, int]  # (width, height) of the image they were computed on


@dataclass(frozen=True)
class SiftConfig:
    dense: bool = False  # a regular grid instead of the difference-of-Gaussians detector
    step: int = 8  # dense grid step in pixels
    scales: tuple[int, ...] = (16, 24)  # dense patch sizes (keypoint diameters) in pixels
    max_keypoints: int = 2000  # detector: keep the strongest responses (0 = all)
    root: bool = True  # RootSIFT: L1-normalise then square-root (Arandjelović & Zisserman 2012)
    max_side: int = 512  # images are shrunk to this longer side first


def _cv2():
    try:
        import cv2
    except ImportError:
        raise LookalikeError("SIFT needs OpenCV: pip install 'lookalike[cv]'") from None
    return cv2


def extract_sift(image: np.ndarray, config: SiftConfig = SiftConfig()) -> LocalFeatures:
    """SIFT (Lowe, IJCV 2004) of an RGB ``[H, W, 3]`` uint8 image.

    Keypoints keep their geometry (x, y, scale, angle) for spatial verification. Dense keypoints
    have angle 0 (upright). With ``root`` the descriptors are RootSIFT, so that their dot product
    is the Hellinger kernel of the original histograms.
    """
    cv2 = _cv2()
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise LookalikeError(f"expected an RGB image [H, W, 3] uint8, got {image.shape} {image.dtype}")
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    sift = cv2.SIFT_create(nfeatures=0 if config.dense else config.max_keypoints)
    if config.dense:
        keypoints = []
        for size in config.scales:
            grid = dense_grid(gray.shape, config.step, size)
            keypoints += cv2.KeyPoint_convert(grid, size=float(size))  # made in C, not per point here
        keypoints, descriptors = sift.compute(gray, keypoints)
    else:
        keypoints, descriptors = sift.detectAndCompute(gray, None)
    if descriptors is None or len(keypoints) == 0:
        return LocalFeatures(np.zeros((0, 4), np.float32), np.zeros((0, 128), np.float32),
                             (gray.shape[1], gray.shape[0]))
    # at most a few thousand keypoints: reading their fields is negligible next to SIFT itself
    geometry = np.array([(*k.pt, k.size, k.angle) for k in keypoints], dtype=np.float32)
    descriptors = descriptors.astype(np.float32)
    if config.root:
        descriptors = np.sqrt(descriptors / np.maximum(descriptors.sum(axis=1, keepdims=True), 1e-12))
    return LocalFeatures(geometry, descriptors, (gray.shape[1], gray.shape[0]))


def dense_grid(shape: tuple[int, int], step: int, size: int) -> np.ndarray:
    """Centres ``(N, 2)`` float32 (x, y) of a grid of ``size``-pixel patches inside an image of ``shape``."""
    h, w = shape
    half = size / 2
    xs = np.arange(half, max(w - half, half) + 1e-6, step, dtype=np.float32)
    ys = np.arange(half, max(h - half, half) + 1e-6, step, dtype=np.float32)
    gx, gy = np.meshgrid(xs, ys)
    return np.stack([gx.ravel(), gy.ravel()], axis=1)
