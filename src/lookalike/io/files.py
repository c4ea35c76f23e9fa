"""Find the image files named by a list of files and folders."""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lookalike.errors import LookalikeError

#: File name endings searched for inside folders. Files named explicitly are always tried.
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .png .gif .bmp .tif .tiff .webp .ppm .pgm .pbm .pnm .jp2 .ico .avif".split()
)


def find_images(paths: Iterable[str | Path]) -> list[Path]:
    """List image files: each path is a file (kept as is) or a folder (searched recursively).

    Hidden files and folders are skipped. The result is sorted within each folder and has no
    repeats, so that runs are reproducible.

    Raises:
        LookalikeError: a path does not exist.
    """
    found: list[Path] = []
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            candidates = _walk(path)
        elif path.exists():
            candidates = [path]
        else:
            raise LookalikeError(f"{path}: no such file or folder")
        for candidate in candidates:
            key = candidate.resolve()
            if key not in seen:
                seen.add(key)
                found.append(candidate)
    return found


def _walk(folder: Path) -> list[Path]:
    files = []
    for root, dirs, names in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        files.extend(
            Path(root, name)
            for name in sorted(names)
            if not name.startswith(".") and Path(name).suffix.lower() in IMAGE_EXTENSIONS
        )
    return files
