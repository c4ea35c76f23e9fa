"""Captioned image sets: images with one or more sentences each, for text<->image retrieval.

Two layouts are read:

* a folder like Flickr8k's in ``shared/data/captions``: ``images/``, ``captions.jsonl`` (one line
  per image: ``{"image": "<path under images/>", "captions": ["...", ...]}``) and an optional
  ``split.json`` (``{"train": [names], "test": [names]}``);
* a CSV file with a header ``path,caption`` (one row per caption; an image may appear on several
  rows; a relative path is relative to the CSV's folder). It has no split: everything is ``train``.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError


@dataclass(frozen=True)
class CaptionedImages:
    """Images and their captions; caption ``j`` describes image ``owner[j]``."""

    paths: tuple[Path, ...]
    captions: tuple[str, ...]
    owner: np.ndarray  # (M,) int64 index into paths

    def __len__(self) -> int:
        return len(self.paths)

    def subset(self, indices) -> CaptionedImages:
        """The images at ``indices`` (in that order) with their captions."""
        indices = np.asarray(indices, dtype=np.int64)
        new_index = np.full(len(self.paths), -1, dtype=np.int64)
        new_index[indices] = np.arange(len(indices))
        keep = np.flatnonzero(new_index[self.owner] >= 0)
        keep = keep[np.argsort(new_index[self.owner[keep]], kind="stable")]
        return CaptionedImages(tuple(self.paths[i] for i in indices), tuple(self.captions[j] for j in keep),
                               new_index[self.owner[keep]])

    def documents(self) -> list[str]:
        """Each image's captions joined into one text (for a tf-idf of the image's description)."""
        joined: list[list[str]] = [[] for _ in self.paths]
        for caption, image in zip(self.captions, self.owner):
            joined[image].append(caption)
        return [" ".join(parts) for parts in joined]


def load_captions(source: str | Path, split: str | None = None) -> CaptionedImages:
    """Read a captioned image set (folder or CSV, see the module docstring), or one split of it.

    Args:
        split: ``"train"`` or ``"test"`` to keep the images that ``split.json`` lists there; ``None``
            keeps all. A CSV, or a folder without ``split.json``, is all ``train`` and has no ``test``.
    """
    source = Path(source)
    if source.is_dir():
        pairs, names = _read_folder(source)
    elif source.is_file() and source.suffix.lower() == ".csv":
        pairs, names = _read_csv(source), None
    else:
        raise LookalikeError(f"{source}: expected a folder with images/ and captions.jsonl, or a path,caption CSV")
    if not pairs:
        raise LookalikeError(f"{source}: no captions found")
    order: dict[Path, int] = {}
    for path, _ in pairs:
        order.setdefault(path, len(order))
    data = CaptionedImages(tuple(order), tuple(c for _, c in pairs),
                           np.array([order[p] for p, _ in pairs], dtype=np.int64))
    if split is None:
        return data
    if split not in ("train", "test"):
        raise LookalikeError(f"split must be train or test, not {split!r}")
    if names is None:
        if split == "test":
            raise LookalikeError(f"{source}: has no split.json, so no test split; evaluate on another set")
        return data
    wanted = set(names.get(split, []))
    if not wanted:
        raise LookalikeError(f"{source}/split.json: no {split!r} images")
    return data.subset([i for i, p in enumerate(data.paths) if p.name in wanted or _relative(p, source) in wanted])


def _relative(path: Path, source: Path) -> str:
    return path.relative_to(source / "images").as_posix()


def _read_folder(folder: Path) -> tuple[list[tuple[Path, str]], dict | None]:
    index = folder / "captions.jsonl"
    if not index.is_file():
        raise LookalikeError(f"{folder}: no captions.jsonl; expected images/ and captions.jsonl (or give a CSV)")
    pairs = []
    with open(index, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                image, captions = row["image"], row["captions"]
            except (ValueError, KeyError, TypeError):
                raise LookalikeError(f"{index}:{number}: expected {{\"image\": ..., \"captions\": [...]}}") from None
            if isinstance(captions, str):
                captions = [captions]
            pairs += [(folder / "images" / image, str(c).strip()) for c in captions if str(c).strip()]
    split_file = folder / "split.json"
    if not split_file.is_file():
        return pairs, None
    try:
        names = json.loads(split_file.read_text())
    except ValueError as exc:
        raise LookalikeError(f"{split_file}: not JSON ({exc})") from None
    return pairs, names


def _read_csv(file: Path) -> list[tuple[Path, str]]:
    with open(file, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        if not reader.fieldnames or not {"path", "caption"} <= set(reader.fieldnames):
            raise LookalikeError(f"{file}: needs a header with columns path,caption; found {reader.fieldnames}")
        return [(file.parent / row["path"], row["caption"].strip()) for row in reader
                if row["path"] and row["caption"] and row["caption"].strip()]
