"""Add image files to a collection: hash, skip what is stored, describe, commit in batches."""

from __future__ import annotations

import hashlib
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lookalike.errors import ImageError
from lookalike.index.collection import Collection
from lookalike.index.metadata import Entry
from lookalike.io.files import find_images
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import extract


@dataclass
class IndexReport:
    """What an indexing run did."""

    indexed: int = 0  # new images stored
    updated: int = 0  # stored paths whose content changed, re-described
    present: int = 0  # already stored (same content), skipped
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, stored path) same bytes
    skipped: list[ImageError] = field(default_factory=list)  # unusable files
    removed: int = 0  # stored paths that no longer exist (update only)

    def summary(self) -> str:
        reasons = Counter(e.reason for e in self.skipped)
        parts = [f"{self.indexed} indexed"]
        if self.updated:
            parts.append(f"{self.updated} updated")
        if self.removed:
            parts.append(f"{self.removed} removed")
        parts.append(f"{self.present} already present")
        if self.duplicates:
            parts.append(f"{len(self.duplicates)} duplicate content")
        skipped = f"{len(self.skipped)} skipped"
        if reasons:
            skipped += " (" + ", ".join(f"{n} {r}" for r, n in sorted(reasons.items())) + ")"
        parts.append(skipped)
        return ", ".join(parts)


def index_paths(
    collection: Collection,
    paths: list[str | Path],
    *,
    workers: int | None = None,
    batch_size: int = 64,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    prune: bool = False,
    progress: bool = True,
) -> IndexReport:
    """Index the images found under ``paths`` into ``collection``; resumable.

    Files whose content is already stored are skipped without decoding. A stored path whose
    content changed is re-described and replaced. With ``prune``, stored images inside the given
    folders whose file is gone are removed (this is ``lookalike update``). Entries are committed
    every ``batch_size`` images, so an interrupted run keeps all committed batches. A collection
    that keeps local features gets them from the same decoding, in the same transactions.
    """
    report = IndexReport()
    files = [f.resolve() for f in find_images(paths)]
    if prune:
        gone = [p for folder in paths if Path(folder).is_dir()
                for p in collection.metadata.under(str(Path(folder).resolve())) if not Path(p).exists()]
        report.removed = collection.remove(gone)

    hashes = _hash_files(files, progress)
    stored_by_hash = collection.metadata.hashes()
    stored_by_path = collection.metadata.paths()
    todo: list[tuple[Path, str, int]] = []
    claimed: dict[str, str] = {}
    for path, hashed in zip(files, hashes):
        if isinstance(hashed, ImageError):
            report.skipped.append(hashed)
            continue
        digest, size = hashed
        if stored_by_path.get(str(path)) == digest:
            report.present += 1
        elif digest in stored_by_hash or digest in claimed:
            report.duplicates.append((str(path), stored_by_hash.get(digest) or claimed[digest]))
        else:
            claimed[digest] = str(path)
            todo.append((path, digest, size))

    batch: list[Entry] = []
    replaced: list[str] = []

    def commit() -> None:
        collection.write(batch, replaced)
        report.updated += len(replaced)
        report.indexed += len(batch) - len(replaced)
        batch.clear()
        replaced.clear()

    results = extract(collection.descriptor, [t[0] for t in todo], workers=workers, max_pixels=max_pixels,
                      progress="indexing" if progress else None, local=collection.local_extractor)
    for (path, digest, size), (_, result) in zip(todo, results):
        if isinstance(result, ImageError):
            report.skipped.append(result)
            continue
        if str(path) in stored_by_path:
            replaced.append(str(path))
        batch.append(Entry(str(path), digest, size, result.width, result.height, result.vector, result.local))
        if len(batch) >= batch_size:
            commit()
    if batch:
        commit()
    collection.save()
    return report


def _hash_files(files: list[Path], progress: bool) -> list[tuple[str, int] | ImageError]:
    """(sha256, bytes) of each file (threads: hashlib releases the GIL), or an ImageError."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(tqdm(pool.map(_sha256, files), total=len(files), desc="hashing", unit="file",
                         disable=not progress, leave=False))


def _sha256(path: Path) -> tuple[str, int] | ImageError:
    digest = hashlib.sha256()
    size = 0
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
                size += len(block)
    except OSError as exc:
        return ImageError(path, "unreadable", exc.strerror or str(exc))
    return digest.hexdigest(), size
