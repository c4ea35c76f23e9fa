"""Clean labelled training images: local features of every image, verified pairs inside each
class, each class's largest component written out as a CSV of ``path,label``."""

from __future__ import annotations

import csv
import os
import tempfile
import time
from pathlib import Path

from lookalike.clean import CleanConfig, clean_classes
from lookalike.io.images import DEFAULT_MAX_PIXELS

REPORT_COLUMNS = ("class", "images", "kept", "dropped", "verified_pairs", "components")


def clean(source: str | Path, out: str | Path, config: CleanConfig = CleanConfig(), *, local_features: str = "sift",
          local_options: dict | None = None, label: str = "", report: str | Path | None = None,
          workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True) -> dict:
    """Clean the labelled images of ``source`` (protocol json, CSV or class folders) and write the
    kept ones to the CSV ``out`` (paths relative to its folder, as training reads it back).

    ``report`` (optional) gets one CSV row per class (:data:`REPORT_COLUMNS`). Returns
    ``{"input", "classes": [per-class dicts], "images", "kept", "seconds", "out", "report"}``.
    """
    from lookalike.descriptors.local.registry import create_local
    from lookalike.pipelines.reranking import describe_local, train_local
    from lookalike.train.data import read_labelled, summary

    config.validate()
    extractor = create_local(local_features, **(local_options or {}))
    images, how = read_labelled(source, label)
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lookalike-") as scratch:
        if not extractor.trained:  # DELF learns its PCA, unsupervised, from the images being cleaned
            extractor = train_local(extractor, list(images.paths), Path(scratch) / f"{extractor.name}.npz",
                                    workers=workers, max_pixels=max_pixels, progress=progress)
        features = describe_local(extractor, list(images.paths), workers=workers, max_pixels=max_pixels,
                                  progress=progress)
    keep, classes = clean_classes(images.labels, features, config, progress=progress)
    for row in classes:
        row["class"] = images.classes[row.pop("label")]
    out = Path(out)
    base = out.resolve().parent
    _write_csv(out, ("path", "label"), [(os.path.relpath(Path(p).resolve(), base), images.classes[c])
                                        for p, c, k in zip(images.paths, images.labels, keep) if k])
    if report:
        _write_csv(Path(report), REPORT_COLUMNS, [[row[c] for c in REPORT_COLUMNS] for row in classes])
    return {"input": f"{summary(images)}, classes from {how}", "classes": classes, "images": len(images),
            "kept": int(keep.sum()), "seconds": time.perf_counter() - start, "out": str(out),
            "report": str(report) if report else None}


def _write_csv(path: Path, header: tuple[str, ...], rows: list) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.replace(tmp, path)
