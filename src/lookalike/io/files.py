"""Find the image files named by a list of files and folders, and say why others were left out."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from lookalike.errors import ImageError, LookalikeError

#: File name endings searched for inside folders. Files named explicitly are always tried.
IMAGE_EXTENSIONS = frozenset(
    ".jpg .jpeg .jpe .png .gif .bmp .tif .tiff .webp .ppm .pgm .pbm .pnm .jp2 .ico .avif".split()
)
#: Image formats that Pillow does not decode: reported inside folders, instead of ignored like
#: other files (text, videos), because the user surely meant them to be indexed.
UNSUPPORTED_EXTENSIONS = {
    ".heic": "HEIC", ".heif": "HEIF", ".svg": "SVG (vector graphics)", ".svgz": "SVG (vector graphics)",
    ".jxl": "JPEG XL", ".xcf": "GIMP XCF", ".raw": "camera raw", ".dng": "camera raw", ".cr2": "camera raw",
    ".cr3": "camera raw", ".nef": "camera raw", ".arw": "camera raw", ".orf": "camera raw", ".rw2": "camera raw",
}


@dataclass
class Scan:
    """What :func:`scan_images` found: image files, and the files and folders it could not use."""

    found: list[Path] = field(default_factory=list)
    problems: list[ImageError] = field(default_factory=list)


def find_images(paths: Iterable[str | Path]) -> list[Path]:
    """The image files of :func:`scan_images`, without the problems."""
    return scan_images(paths).found


def scan_images(paths: Iterable[str | Path]) -> Scan:
    """List image files: each path is a file (kept as is) or a folder (searched recursively);
    ``~`` means the user's home folder.

    Hidden files and folders are skipped. Symlinked folders are followed once; a link back to a
    folder being walked is reported as a loop. Unreadable folders, links that lead nowhere and
    images in formats that cannot be decoded (HEIC, SVG...) are reported with their path and
    reason. The result is sorted within each folder and has no repeats (by device and inode), so
    that runs are reproducible. Names that are not valid UTF-8 are kept as Python keeps them
    (surrogate escapes), which round-trips to the same bytes.

    Raises:
        LookalikeError: a path does not exist.
    """
    scan = Scan()
    seen_files: set[tuple[int, int]] = set()
    seen_folders: set[tuple[int, int]] = set()
    for raw in paths:
        path = Path(raw).expanduser()
        try:
            info = path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                scan.problems.append(ImageError(path, "symlink loop", "the link leads back to itself"))
                continue
            raise LookalikeError(f"{path}: no such file or folder") from None
        if stat.S_ISDIR(info.st_mode):
            _walk(path, scan, seen_files, seen_folders, frozenset({(info.st_dev, info.st_ino)}))
        elif (info.st_dev, info.st_ino) not in seen_files:
            seen_files.add((info.st_dev, info.st_ino))
            scan.found.append(path)
    return scan


def _walk(folder: Path, scan: Scan, seen_files: set, seen_folders: set, ancestors: frozenset) -> None:
    seen_folders.update(ancestors)
    try:
        with os.scandir(folder) as listing:
            entries = sorted(listing, key=lambda e: e.name)
    except OSError as exc:
        scan.problems.append(ImageError(folder, "unreadable", f"folder: {exc.strerror or exc}"))
        return
    for entry in entries:
        if entry.name.startswith("."):
            continue
        path = Path(entry.path)
        suffix = path.suffix.lower()
        try:
            info = entry.stat()  # follows symbolic links
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                scan.problems.append(ImageError(path, "symlink loop", "the link leads back to itself"))
            elif suffix in IMAGE_EXTENSIONS:
                scan.problems.append(ImageError(path, "unreadable", "a symbolic link to a missing file"
                                                if entry.is_symlink() else exc.strerror or str(exc)))
            continue
        key = (info.st_dev, info.st_ino)
        if stat.S_ISDIR(info.st_mode):
            if key in ancestors:
                scan.problems.append(ImageError(path, "symlink loop", "a link to a folder that contains it"))
            elif key not in seen_folders:
                _walk(path, scan, seen_files, seen_folders, ancestors | {key})
        elif suffix in UNSUPPORTED_EXTENSIONS:
            scan.problems.append(ImageError(path, "unsupported format", f"{UNSUPPORTED_EXTENSIONS[suffix]} files "
                                            "are not decoded; convert them to JPEG or PNG"))
        elif suffix in IMAGE_EXTENSIONS and key not in seen_files:
            seen_files.add(key)
            scan.found.append(path)
