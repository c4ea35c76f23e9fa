"""The SQLite half of a collection: one row per image, with its vector, in atomic transactions.

SQLite is the source of truth. Each write is one transaction that also bumps ``generation``, so a
process killed at any moment leaves either the whole batch or none of it, and the faiss index
saved beside it can tell whether it is up to date.

Paths are stored losslessly: as text when they are valid UTF-8, else as the bytes the file
system gave (``os.fsencode``), and read back as Python's surrogate-escaped ``str``.

Opened ``readonly``, nothing is written: the file is opened with SQLite's ``mode=ro`` and no
schema script runs, so a collection on read-only storage can be searched.
"""

from __future__ import annotations

import os
import sqlite3
import time
import urllib.parse
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.errors import CollectionError
from lookalike.index import local_store

if TYPE_CHECKING:
    from lookalike.descriptors.local.sift import LocalFeatures

SCHEMA = """
CREATE TABLE IF NOT EXISTS images (
    id      INTEGER PRIMARY KEY,   -- the faiss id
    path    TEXT NOT NULL UNIQUE,  -- absolute path when added
    sha256  TEXT NOT NULL UNIQUE,  -- content hash: the same bytes are indexed once
    bytes   INTEGER NOT NULL,      -- file size
    width   INTEGER NOT NULL,      -- image size after EXIF orientation
    height  INTEGER NOT NULL,
    added   REAL NOT NULL,         -- unix time
    vector  BLOB NOT NULL          -- float32 descriptor
);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
INSERT OR IGNORE INTO state VALUES ('generation', 0);
"""


@dataclass(frozen=True)
class Entry:
    """One image to store."""

    path: str
    sha256: str
    bytes: int
    width: int
    height: int
    vector: np.ndarray  # (D,) float32
    local: LocalFeatures | None = None  # stored in the same transaction, in collections that keep them


class Metadata:
    """Rows of a collection's ``metadata.sqlite``."""

    def __init__(self, path: Path, dim: int, *, readonly: bool = False, new: bool = False) -> None:
        """Open ``path``; ``new`` creates it, else it must be a sound, existing database."""
        self.dim = dim
        if not new:
            check_database_file(path)
        try:
            if readonly:
                self.db = _connect_read_only(path)
            else:
                # check_same_thread=False: the service searches from a pool of threads; SQLite itself
                # serialises the calls on one connection (its default threading mode)
                self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0, check_same_thread=False)
                self.db.execute("PRAGMA journal_mode=WAL")
                self.db.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss too
                self.db.execute("PRAGMA foreign_keys=ON")  # an image's local features are deleted with it
                self.db.executescript(SCHEMA + local_store.SCHEMA)
            self.generation  # noqa: B018 - reads the schema: a damaged file fails here, in one line
        except sqlite3.DatabaseError as exc:
            raise CollectionError(f"{path}: damaged database ({exc}); restore the collection from a backup "
                                  "or index the images again into a new collection") from None

    def close(self) -> None:
        self.db.close()

    @property
    def generation(self) -> int:
        return self.db.execute("SELECT value FROM state WHERE key='generation'").fetchone()[0]

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def hashes(self) -> dict[str, str]:
        """sha256 -> path of every stored image."""
        return {digest: _path(path) for digest, path in self.db.execute("SELECT sha256, path FROM images")}

    def paths(self) -> dict[str, str]:
        """path -> sha256 of every stored image."""
        return {_path(path): digest for path, digest in self.db.execute("SELECT path, sha256 FROM images")}

    def move(self, moves: Iterable[tuple[str, str]]) -> int:
        """Give stored images new paths, ``(old, new)`` pairs, in one transaction; the vectors stay.

        The new paths may be old paths of other pairs (two files that swapped contents); a new
        path held by an image not moved away is an error of the caller (UNIQUE constraint).
        """
        moves = list(moves)
        with self._transaction() as db:
            for old, _ in moves:  # first out of the way, so that paths can trade places
                db.execute("UPDATE images SET path = ? WHERE path = ?", (_stored("\0moving " + old), _stored(old)))
            for old, new in moves:
                db.execute("UPDATE images SET path = ? WHERE path = ?", (_stored(new), _stored("\0moving " + old)))
        return len(moves)

    def get_state(self, key: str) -> str | int | None:
        """A value of the ``state`` table (the generation, file checksums), or None."""
        row = self.db.execute("SELECT value FROM state WHERE key=?", (key,)).fetchone()
        return None if row is None else row[0]

    def set_state(self, values: dict[str, str | int], *, drop_prefix: str = "") -> None:
        """Set ``state`` values in one transaction, first removing keys that start with ``drop_prefix``."""
        with self._transaction() as db:
            if drop_prefix:
                db.execute("DELETE FROM state WHERE substr(key, 1, ?) = ?", (len(drop_prefix), drop_prefix))
            db.executemany("INSERT OR REPLACE INTO state VALUES (?, ?)", values.items())

    def write(self, add: Iterable[Entry], remove_paths: Iterable[str] = ()) -> tuple[list[int], list[int]]:
        """In one transaction, delete rows by path and insert ``add``; return (new ids, removed ids)."""
        now = time.time()
        with self._transaction() as db:
            removed = []
            for path in remove_paths:
                row = db.execute("DELETE FROM images WHERE path=? RETURNING id", (_stored(path),)).fetchone()
                if row:
                    removed.append(row[0])
            added = []
            for e in add:
                blob = np.ascontiguousarray(e.vector, dtype=np.float32).tobytes()
                cur = db.execute(
                    "INSERT INTO images (path, sha256, bytes, width, height, added, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (_stored(e.path), e.sha256, e.bytes, e.width, e.height, now, blob),
                )
                added.append(cur.lastrowid)
                if e.local is not None:
                    local_store.insert(db, cur.lastrowid, e.local)
            db.execute("UPDATE state SET value = value + 1 WHERE key='generation'")
        return added, removed

    def vectors(self) -> tuple[np.ndarray, np.ndarray]:
        """All ``(ids (N,) int64, vectors (N, D) float32)``, in id order."""
        rows = self.db.execute("SELECT id, vector FROM images ORDER BY id").fetchall()
        ids = np.fromiter((r[0] for r in rows), dtype=np.int64, count=len(rows))
        flat = np.frombuffer(b"".join(r[1] for r in rows), dtype=np.float32)
        return ids, flat.reshape(len(rows), self.dim)

    def vectors_of(self, ids: np.ndarray) -> np.ndarray:
        """Stored vectors ``(len(ids), D)`` for known ids, in the order given."""
        out = np.zeros((len(ids), self.dim), dtype=np.float32)
        for i, ident in enumerate(np.asarray(ids).ravel()):
            row = self.db.execute("SELECT vector FROM images WHERE id=?", (int(ident),)).fetchone()
            if row:
                out[i] = np.frombuffer(row[0], dtype=np.float32)
        return out

    def lookup(self, ids: np.ndarray) -> list[dict | None]:
        """Rows (without vectors) for ``ids``, ``None`` for -1 or unknown ids; order kept."""
        wanted = [int(i) for i in np.unique(ids) if i >= 0]
        rows: dict[int, dict] = {}
        for start in range(0, len(wanted), 900):  # SQLite's bound-parameter limit
            chunk = wanted[start : start + 900]
            query = (
                "SELECT id, path, sha256, bytes, width, height, added FROM images WHERE id IN "
                f"({','.join('?' * len(chunk))})"
            )
            for r in self.db.execute(query, chunk):
                rows[r[0]] = dict(zip(("id", "path", "sha256", "bytes", "width", "height", "added"), r))
                rows[r[0]]["path"] = _path(r[1])
        return [rows.get(int(i)) for i in np.asarray(ids).ravel()]

    def id_of(self, path: str) -> int | None:
        """The id of the stored image at ``path``, or ``None``."""
        row = self.db.execute("SELECT id FROM images WHERE path=?", (path,)).fetchone()
        return None if row is None else row[0]

    def under(self, folder: str) -> list[str]:
        """Stored paths inside ``folder`` (absolute)."""
        prefix = folder.rstrip("/") + "/"  # compared in Python: paths may be stored as bytes
        return [path for (stored,) in self.db.execute("SELECT path FROM images")
                if (path := _path(stored)).startswith(prefix)]

    def check(self) -> list[str]:
        """Problems found by SQLite's integrity check and by vector-size checks; empty when sound."""
        problems = [r[0] for r in self.db.execute("PRAGMA integrity_check") if r[0] != "ok"]
        bad = self.db.execute(
            "SELECT COUNT(*) FROM images WHERE length(vector) != ?", (4 * self.dim,)
        ).fetchone()[0]
        if bad:
            problems.append(f"{bad} vectors do not have {self.dim} float32 values")
        problems += local_store.check(self.db)
        return problems

    def _transaction(self):
        return _Transaction(self.db)


class _Transaction:
    def __init__(self, db: sqlite3.Connection) -> None:
        self.db = db

    def __enter__(self) -> sqlite3.Connection:
        self.db.execute("BEGIN IMMEDIATE")
        return self.db

    def __exit__(self, kind, value, tb) -> None:
        self.db.execute("COMMIT" if kind is None else "ROLLBACK")



def _stored(path: str) -> str | bytes:
    """A path as SQLite keeps it: text if it is valid UTF-8, else the file system's bytes."""
    try:
        path.encode("utf-8")
        return path
    except UnicodeEncodeError:  # a name with surrogate escapes: bytes that are not UTF-8
        return os.fsencode(path)


def _path(stored: str | bytes) -> str:
    return os.fsdecode(stored) if isinstance(stored, bytes) else stored


def check_database_file(path: Path) -> None:
    """Raise :class:`CollectionError` if ``path`` is missing, empty, not SQLite, or shorter than its
    header says (truncated): a one-line verdict before SQLite gives confusing answers."""
    advice = "restore the collection from a backup or index the images again into a new collection"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            header = f.read(100)
    except FileNotFoundError:
        raise CollectionError(f"{path}: missing, the collection's metadata is lost; {advice}") from None
    except OSError as exc:
        raise CollectionError(f"{path}: unreadable ({exc.strerror}); check its permissions") from None
    if size == 0:
        raise CollectionError(f"{path}: empty (0 bytes), the collection's metadata is lost; {advice}")
    if len(header) < 100 or not header.startswith(b"SQLite format 3\0"):
        raise CollectionError(f"{path}: not an SQLite database (damaged or overwritten); {advice}")
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    if header[24:28] == header[92:96] and size < pages * page_size:  # the page count is valid and says more
        raise CollectionError(f"{path}: truncated ({size:,} of {pages * page_size:,} bytes), the collection is "
                              f"damaged; {advice}")


def _connect_read_only(path: Path) -> sqlite3.Connection:
    """A connection that cannot write. In WAL mode SQLite still wants its ``-shm`` file; where the
    folder is read-only too and none exists, nobody can be writing, and the file is read as is."""
    uri = "file:" + urllib.parse.quote(os.fsencode(os.path.abspath(path))) + "?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True, isolation_level=None, timeout=30.0, check_same_thread=False)
        db.execute("SELECT COUNT(*) FROM sqlite_master").fetchone()
        return db
    except sqlite3.OperationalError:
        return sqlite3.connect(uri + "&immutable=1", uri=True, isolation_level=None, check_same_thread=False)
