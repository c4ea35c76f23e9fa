"""The SQLite half of a collection: one row per image, with its vector, in atomic transactions.

SQLite is the source of truth. Each write is one transaction that also bumps ``generation``, so a
process killed at any moment leaves either the whole batch or none of it, and the faiss index
saved beside it can tell whether it is up to date.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

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

    def __init__(self, path: Path, dim: int) -> None:
        self.dim = dim
        self.db = sqlite3.connect(path, isolation_level=None, timeout=30.0)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")  # a committed batch survives power loss too
        self.db.execute("PRAGMA foreign_keys=ON")  # an image's local features are deleted with it
        self.db.executescript(SCHEMA + local_store.SCHEMA)

    def close(self) -> None:
        self.db.close()

    @property
    def generation(self) -> int:
        return self.db.execute("SELECT value FROM state WHERE key='generation'").fetchone()[0]

    def __len__(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def hashes(self) -> dict[str, str]:
        """sha256 -> path of every stored image."""
        return dict(self.db.execute("SELECT sha256, path FROM images"))

    def paths(self) -> dict[str, str]:
        """path -> sha256 of every stored image."""
        return dict(self.db.execute("SELECT path, sha256 FROM images"))

    def write(self, add: Iterable[Entry], remove_paths: Iterable[str] = ()) -> tuple[list[int], list[int]]:
        """In one transaction, delete rows by path and insert ``add``; return (new ids, removed ids)."""
        now = time.time()
        with self._transaction() as db:
            removed = []
            for path in remove_paths:
                row = db.execute("DELETE FROM images WHERE path=? RETURNING id", (path,)).fetchone()
                if row:
                    removed.append(row[0])
            added = []
            for e in add:
                blob = np.ascontiguousarray(e.vector, dtype=np.float32).tobytes()
                cur = db.execute(
                    "INSERT INTO images (path, sha256, bytes, width, height, added, vector) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?)",
                    (e.path, e.sha256, e.bytes, e.width, e.height, now, blob),
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
        return [rows.get(int(i)) for i in np.asarray(ids).ravel()]

    def under(self, folder: str) -> list[str]:
        """Stored paths inside ``folder`` (absolute)."""
        prefix = folder.rstrip("/") + "/"
        return [r[0] for r in self.db.execute(
            "SELECT path FROM images WHERE substr(path, 1, ?) = ?", (len(prefix), prefix))]

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

