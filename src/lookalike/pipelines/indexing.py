"""Add image files to a collection: hash, skip what is stored, describe, commit in batches."""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from lookalike.errors import ImageError, LookalikeError
from lookalike.index.collection import Collection
from lookalike.index.metadata import Entry
from lookalike.io.files import scan_images
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import extract

#: the longest an indexing run describes before committing: what a kill can lose, at most
COMMIT_SECONDS = 2.0


@dataclass
class IndexReport:
    """What an indexing run did."""

    indexed: int = 0  # new images stored
    updated: int = 0  # stored paths whose content changed, re-described
    present: int = 0  # already stored (same content), skipped
    moved: int = 0  # stored content found under a new path (renamed, swapped): path fixed, not re-described
    duplicates: list[tuple[str, str]] = field(default_factory=list)  # (path, stored path) same bytes
    skipped: list[ImageError] = field(default_factory=list)  # unusable files
    removed: int = 0  # stored paths that no longer exist (update only)

    def summary(self) -> str:
        reasons = Counter(e.reason for e in self.skipped)
        parts = [f"{self.indexed} indexed"]
        if self.updated:
            parts.append(f"{self.updated} updated")
        if self.moved:
            parts.append(f"{self.moved} moved")
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
    batch_size: int = 1024,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    prune: bool = False,
    progress: bool = True,
    engine: str = "local",
    address: str | None = None,
) -> IndexReport:
    """Index the images found under ``paths`` into ``collection``; resumable.

    Files whose content is already stored are skipped without decoding. Stored content found
    under a new path, whose old path is gone or now holds other bytes (a renamed folder, two
    swapped files), keeps its vector and gets the new path. A stored path whose content changed
    is re-described and replaced. With ``prune``, stored images inside the given folders whose
    file is gone are removed (this is ``lookalike update``). Entries are committed every
    ``batch_size`` images or :data:`COMMIT_SECONDS`, whichever comes first, so an interrupted run
    keeps all committed batches and loses at most a few seconds of work. Files and folders
    that cannot be used are reported in ``skipped`` with their reason. A collection that keeps
    local features gets them from the same decoding, in the same transactions.

    ``engine="ray"`` describes the images on the Ray cluster at ``address`` (None: a local one)
    instead of in local worker processes; the collection is written here either way.
    """
    if batch_size < 1:
        raise LookalikeError(f"batch_size={batch_size} should be >= 1")
    report = IndexReport()
    paths = [Path(p).expanduser() for p in paths]
    scan = scan_images(paths)
    report.skipped.extend(scan.problems)
    files = [f.resolve() for f in scan.found]
    # Into an empty collection nothing is skipped or moved: each file is then read once, by the
    # worker that hashes and decodes it. Otherwise a first pass hashes every file, so that stored
    # content is skipped without decoding.
    read_once = engine == "local" and len(collection) == 0
    hashes = [("", 0)] * len(files) if read_once else _hash_files(files, progress)
    found = {str(path): hashed[0] for path, hashed in zip(files, hashes) if not isinstance(hashed, ImageError)}
    moved_to = set() if read_once else _follow_moves(collection, found)
    report.moved = len(moved_to)
    if prune:
        gone = [p for folder in paths if Path(folder).is_dir()
                for p in collection.metadata.under(str(Path(folder).resolve())) if not os.path.lexists(p)]
        report.removed = collection.remove(gone)

    stored_by_hash = collection.metadata.hashes()
    stored_by_path = collection.metadata.paths()
    todo: list[tuple[Path, str, int]] = []
    claimed: dict[str, str] = {}
    for path, hashed in zip(files, hashes):
        if isinstance(hashed, ImageError):
            report.skipped.append(hashed)
            continue
        digest, size = hashed
        if str(path) in moved_to:
            continue
        if stored_by_path.get(str(path)) == digest:
            report.present += 1
        elif digest and (digest in stored_by_hash or digest in claimed):
            report.duplicates.append((str(path), stored_by_hash.get(digest) or claimed[digest]))
        else:
            if digest:
                claimed[digest] = str(path)
            todo.append((path, digest, size))

    batch: list[Entry] = []
    replaced: list[str] = []
    last_commit = time.monotonic()

    def commit() -> None:
        nonlocal last_commit
        collection.write(batch, replaced)
        last_commit = time.monotonic()
        report.updated += len(replaced)
        report.indexed += len(batch) - len(replaced)
        batch.clear()
        replaced.clear()

    local = collection.local_extractor
    if engine == "ray":
        if local is not None:
            raise LookalikeError("--engine ray does not extract local features yet; index this collection "
                                 "with --engine local")
        from lookalike.scale.ray_extract import extract_ray

        results = extract_ray(collection.descriptor, [t[0] for t in todo], address=address, max_pixels=max_pixels)
    elif engine == "local":
        results = extract(collection.descriptor, [t[0] for t in todo], workers=workers, max_pixels=max_pixels,
                          progress="indexing" if progress else None, local=local)
    else:
        raise LookalikeError(f"unknown engine {engine!r}; choose local or ray")
    for (path, planned, size), (_, result) in zip(todo, results):
        if isinstance(result, ImageError):
            report.skipped.append(result)
            continue
        # the digest of the bytes the worker decoded: read once, or changed since the first pass
        digest, size = (result.sha256, result.bytes) if result.sha256 else (planned, size)
        if digest != planned:
            owner = stored_by_hash.get(digest) or claimed.get(digest)
            if owner is not None and owner != str(path):
                report.duplicates.append((str(path), owner))
                continue
            claimed[digest] = str(path)
        if str(path) in stored_by_path:
            replaced.append(str(path))
        batch.append(Entry(str(path), digest, size, result.width, result.height, result.vector, result.local))
        if len(batch) >= batch_size or time.monotonic() - last_commit >= COMMIT_SECONDS:
            commit()
    if batch:
        commit()
    collection.save()
    return report


def _follow_moves(collection: Collection, found: dict[str, str]) -> set[str]:
    """Give stored content found under a new path that path, where its old path is gone or now
    holds other bytes; return the new paths. ``found``: path -> sha256 of this run."""
    moves = moved_paths(found, collection.metadata.hashes(), os.path.lexists)
    if not moves:
        return set()
    # a target path whose own stored content went nowhere: that content is gone, drop it first
    leaving = {old for old, _ in moves}
    stored_by_path = collection.metadata.paths()
    collection.remove([new for _, new in moves if new in stored_by_path and new not in leaving])
    collection.move(moves)
    return {new for _, new in moves}


def moved_paths(found: dict[str, str], stored: dict[str, str], exists) -> list[tuple[str, str]]:
    """``(old, new)`` path pairs for content stored at ``old`` (``stored``: sha256 -> path) and found
    at ``new`` (``found``: path -> sha256), where ``old`` no longer holds it: it does not
    ``exists``, or it was found with other bytes. Content still at its old path is a duplicate
    elsewhere, not a move."""
    moves, done = [], set()
    for new, digest in found.items():
        old = stored.get(digest)
        if old is None or old == new or digest in done or found.get(old) == digest:
            continue
        if old in found or not exists(old):
            moves.append((old, new))
            done.add(digest)  # moved once; under a second new path it is a duplicate
    return moves


def _hash_files(files: list[Path], progress: bool) -> list[tuple[str, int] | ImageError]:
    """(sha256, bytes) of each file (threads: hashlib releases the GIL), or an ImageError."""
    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(tqdm(pool.map(_sha256, files), total=len(files), desc="hashing", unit="file",
                         disable=None if progress else True, leave=False))


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
