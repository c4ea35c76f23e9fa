"""The cleaning config and the loop over classes: verify every pair inside each class, keep each
class's largest connected component of verified pairs."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.clean.verification import largest_component, pair_inliers
from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.errors import LookalikeError
from lookalike.rerank.spatial import MATCHERS, MODELS


@dataclass(frozen=True)
class CleanConfig:
    min_inliers: int = 8  # RANSAC inliers that make a pair verified (the sv re-ranking default)
    method: str = "mutual"  # tentative matches: mutual nearest neighbours, or Lowe's ratio test
    ratio: float = 0.8  # the ratio test's threshold (method="ratio")
    model: str = "affine"  # geometry fitted by RANSAC: affine (RANSAC) or homography (MAGSAC++)
    threshold: float = 0.0  # largest inlier error in pixels; 0 = 1 % of the image's longer side
    max_iterations: int = 2000  # RANSAC iterations per pair

    def validate(self) -> None:
        if self.min_inliers < 1 or self.max_iterations < 1 or self.threshold < 0:
            raise LookalikeError(f"need min_inliers >= 1, max_iterations >= 1 and threshold >= 0; got {self}")
        if self.method not in MATCHERS or self.model not in MODELS:
            raise LookalikeError(f"method must be one of {', '.join(MATCHERS)} and model one of "
                                 f"{', '.join(MODELS)}; got {self.method!r}, {self.model!r}")
        if not 0 < self.ratio <= 1:
            raise LookalikeError(f"ratio must be in (0, 1], got {self.ratio}")


def class_inliers(features: list[LocalFeatures], config: CleanConfig) -> np.ndarray:
    """Inliers ``(n, n)`` of every pair of the ``n`` images of one class under ``config``."""
    return pair_inliers(features, method=config.method, ratio=config.ratio, model=config.model,
                        threshold=config.threshold or None, min_inliers=config.min_inliers,
                        max_iterations=config.max_iterations)


def clean_classes(labels: np.ndarray, features: list[LocalFeatures], config: CleanConfig = CleanConfig(), *,
                  progress: bool = False) -> tuple[np.ndarray, list[dict]]:
    """Which images to keep, and a report per class.

    Args:
        labels: ``(N,)`` int class of each image.
        features: the N images' local features (keypoints in their own pixels).

    Returns:
        ``keep`` ``(N,)`` bool (each class's largest component of verified pairs), and per class
        (in the order of ``np.unique(labels)``) a dict: ``label``, ``images``, ``kept``, ``dropped``,
        ``verified_pairs``, ``components`` (of two or more images).
    """
    from tqdm import tqdm

    config.validate()
    labels = np.asarray(labels)
    if len(labels) != len(features):
        raise LookalikeError(f"{len(labels)} labels for {len(features)} images' features")
    keep = np.zeros(len(labels), dtype=bool)
    report = []
    for label in tqdm(np.unique(labels), desc="verifying pairs", unit="class", disable=not progress):
        rows = np.flatnonzero(labels == label)
        verified = class_inliers([features[i] for i in rows], config) >= config.min_inliers
        kept, components = largest_component(verified)
        keep[rows[kept]] = True
        report.append({"label": label.item(), "images": len(rows), "kept": int(kept.sum()),
                       "dropped": int(len(rows) - kept.sum()), "verified_pairs": int(verified.sum() // 2),
                       "components": components})
    return keep, report
