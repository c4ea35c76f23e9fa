"""Files a collection depends on (a vocabulary, a whitening, network weights), kept inside it.

A descriptor names such files in its config (the options listed in its ``file_options``). When
a collection is created, each one is copied into the collection folder; the manifest's
``"files"`` maps the copy's name (relative to the folder) to its sha256, and the descriptor
config stored in the manifest names the copy by that relative name. On opening, every file is
checked against its sha256 and the config gets absolute paths inside the folder. So a collection
can be moved, renamed or opened from any directory, and a file changed behind its back is an
error instead of silently different results.

Hashing network weights on every open would cost more than the search itself, so the manifest's
``"stamps"`` remember each file's size and modification time as they were when it last matched
its sha256 (as the faiss files' checksums do): a file whose stamp still matches is not hashed
again. Writing a file changes its modification time, so a changed file is still hashed and
refused; a copy that does not keep modification times is hashed until a writable open stamps it.

Anything else a collection needs to keep (a learned model of another stage) goes through the
same ``"files"`` entry with :func:`keep` and :func:`resolve`.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from lookalike.errors import CollectionError

#: manifest key: name inside the collection folder -> sha256 of its bytes
FILES = "files"
#: manifest key: name -> "<sha256> <size> <mtime_ns>" of the file when it last matched that sha256
STAMPS = "stamps"


def sha256_of(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def keep(folder: Path, source: str | Path, name: str, files: dict[str, str]) -> str:
    """Copy ``source`` into ``folder`` as ``name`` (atomically; nothing to copy if it is already
    that file), record its sha256 in ``files`` and return ``name``."""
    target = folder / name
    source = Path(source)
    if not source.is_file():
        raise CollectionError(f"{source}: not found, so it cannot be kept in the collection {folder}")
    if not (target.exists() and os.path.samefile(source, target)):
        tmp = target.with_name(target.name + ".tmp")
        shutil.copyfile(source, tmp)
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, target)
    files[name] = sha256_of(target)
    return name


def keep_descriptor_files(folder: Path, spec: dict[str, Any], options: tuple[str, ...],
                          files: dict[str, str]) -> dict[str, Any]:
    """``spec`` with each non-empty file option copied into ``folder`` (as ``<option><suffix>``)
    and named relative to it."""
    config = dict(spec["config"])
    for option in options:
        if config.get(option):
            config[option] = keep(folder, config[option], option + Path(config[option]).suffix, files)
    return {**spec, "config": config}


def check(folder: Path, files: dict[str, str], stamps: dict[str, str] | None = None) -> bool:
    """Raise :class:`CollectionError`, naming the file, if a kept file is missing or changed.

    With ``stamps`` (:data:`STAMPS`), a file whose size, modification time and sha256 are those
    stamped is taken as unchanged without reading it; the stamps of the files that had to be
    hashed are updated in place. Returns whether ``stamps`` changed (worth saving).
    """
    changed = False
    for name, expected in files.items():
        path = resolve(folder, name)
        if not path.is_file():
            raise CollectionError(f"{path}: missing from the collection; restore it or rebuild the collection")
        stat = path.stat()
        stamp = f"{expected} {stat.st_size} {stat.st_mtime_ns}"
        if stamps is not None and stamps.get(name) == stamp:
            continue
        if sha256_of(path) != expected:
            raise CollectionError(f"{path}: changed since the collection was built (sha256 differs); "
                                  "restore the original file or rebuild the collection")
        if stamps is not None:
            stamps[name] = stamp
            changed = True
    return changed


def resolve(folder: Path, name: str) -> Path:
    """The absolute path of the kept file ``name``; a name that leaves the folder is refused."""
    path = (folder / name).absolute()
    if Path(name).is_absolute() or ".." in Path(name).parts:
        raise CollectionError(f"{folder}: the manifest names a file outside the collection ({name!r})")
    return path


def resolve_descriptor(folder: Path, spec: dict[str, Any], files: dict[str, str]) -> dict[str, Any]:
    """``spec`` with every config value that names a kept file made an absolute path."""
    config = {key: str(resolve(folder, value)) if isinstance(value, str) and value in files else value
              for key, value in spec.get("config", {}).items()}
    return {**spec, "config": config}
