"""Labelled training images: read from a protocol json, a folder of class folders or a CSV, split
into train and validation, decoded once into a tensor of small square images."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.errors import ImageError, LookalikeError


@dataclass(frozen=True)
class LabelledImages:
    """Image files and the class of each, as ints into ``classes``."""

    paths: tuple[Path, ...]
    labels: np.ndarray  # (N,) int64 indices into classes
    classes: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, rows: np.ndarray) -> LabelledImages:
        """The images at ``rows``, classes renumbered 0..C'-1 in their order of appearance."""
        kept, labels = np.unique(self.labels[rows], return_inverse=True)
        return LabelledImages(tuple(self.paths[i] for i in rows), labels.astype(np.int64),
                              tuple(self.classes[c] for c in kept))


def read_labelled(source: str | Path, label: str = "") -> tuple[LabelledImages, str]:
    """The labelled images of ``source`` and how their labels were read.

    ``source`` is a protocol json with ``labels`` (``label`` names which one; by default the one
    with the most classes, e.g. ``object`` rather than ``category``), a CSV of ``path,label`` rows
    (paths relative to the CSV's folder), or a folder with one sub-folder of images per class.
    """
    source = Path(source)
    if source.is_dir():
        return _from_folders(source), "sub-folders"
    if not source.is_file():
        raise LookalikeError(f"{source}: no such training input; give a protocol json, a CSV of "
                             "path,label or a folder of class folders")
    if source.suffix.lower() == ".json":
        return _from_protocol(source, label)
    if source.suffix.lower() == ".csv":
        return _from_csv(source), "csv"
    raise LookalikeError(f"{source}: training input must be a .json protocol, a .csv or a folder")


def _labelled(paths: list[Path], names: list[str], source: Path) -> LabelledImages:
    if not paths:
        raise LookalikeError(f"{source}: no labelled images found")
    classes, labels = np.unique(np.asarray(names, dtype=str), return_inverse=True)
    return LabelledImages(tuple(paths), labels.astype(np.int64), tuple(str(c) for c in classes))


def _from_protocol(path: Path, label: str) -> tuple[LabelledImages, str]:
    from lookalike.io.protocol import load_protocol

    protocol = load_protocol(path)
    if not protocol.labels:
        raise LookalikeError(f"{path}: this protocol has no `labels`; fine-tuning needs a class per image")
    if label and label not in protocol.labels:
        raise LookalikeError(f"{path}: no label {label!r}; it has {', '.join(protocol.labels)}")
    label = label or max(protocol.labels, key=lambda k: len(set(map(str, protocol.labels[k]))))
    return _labelled(protocol.database_paths(), [str(v) for v in protocol.labels[label]], path), f"label {label}"


def _from_csv(path: Path) -> LabelledImages:
    try:
        with open(path, newline="") as f:
            rows = [row for row in csv.reader(f) if row and not row[0].startswith("#")]
    except (OSError, UnicodeDecodeError) as exc:
        raise LookalikeError(f"{path}: cannot read the CSV ({exc})") from None
    if rows and [c.strip().lower() for c in rows[0][:2]] == ["path", "label"]:
        rows = rows[1:]
    bad = next((i for i, row in enumerate(rows) if len(row) < 2 or not row[1].strip()), None)
    if bad is not None:
        raise LookalikeError(f"{path}: row {bad + 1} {rows[bad]!r} is not `path,label`")
    return _labelled([path.parent / row[0].strip() for row in rows], [row[1].strip() for row in rows], path)


def _from_folders(folder: Path) -> LabelledImages:
    from lookalike.io.files import find_images

    paths, names = [], []
    for sub in sorted(p for p in folder.iterdir() if p.is_dir()):
        found = find_images([sub])
        paths += found
        names += [sub.name] * len(found)
    return _labelled(paths, names, folder)


def split_classes(images: LabelledImages, fraction: float, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows ``(train, validation)``: a random ``fraction`` of the classes is held out whole, so that
    validation, like the test, asks about objects the network never trained on."""
    classes = len(images.classes)
    held = int(round(fraction * classes))
    if fraction > 0 and not 2 <= held <= classes - 2:
        raise LookalikeError(f"a validation fraction of {fraction} holds out {held} of {classes} classes; "
                             "need at least 2 on each side (more classes, or another --val-fraction)")
    validation = np.random.default_rng(seed).permutation(classes)[:held]
    is_validation = np.isin(images.labels, validation)
    return np.flatnonzero(~is_validation), np.flatnonzero(is_validation)


def decode_square(paths: tuple[Path, ...], side: int, *, progress: str | None = None) -> np.ndarray:
    """``(N, 3, side, side)`` uint8 pixels: each image resized (squashed) to a ``side`` square."""
    from PIL import Image
    from tqdm import tqdm

    from lookalike.io.images import load_image

    out = np.empty((len(paths), 3, side, side), dtype=np.uint8)
    for i, path in enumerate(tqdm(paths, desc=progress, disable=progress is None, unit="image")):
        try:
            pixels = load_image(path, max_side=2 * side).pixels
        except ImageError as exc:
            raise LookalikeError(f"training image {exc}; remove it from the training input") from None
        image = Image.fromarray(pixels).resize((side, side), Image.Resampling.BILINEAR)
        out[i] = np.asarray(image).transpose(2, 0, 1)
    return out


def summary(images: LabelledImages) -> str:
    counts = np.bincount(images.labels, minlength=len(images.classes))
    return f"{len(images)} images of {len(images.classes)} classes ({counts.min()}-{counts.max()} per class)"
