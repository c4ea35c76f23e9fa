"""Local features of a collection's images, in their own table of ``metadata.sqlite``.

One row per image, keyed by the image's id and deleted with it (``ON DELETE CASCADE``), written in
the same transaction as the image's row and vector: a kill at any moment leaves an image with its
local features or neither. Keypoints are kept as float32 ``(T, 4)`` (x, y, scale, angle, in pixels
of the image they were computed on, whose size is kept too) and descriptors as float16 ``(T, D)``:
RootSIFT and L2-normalised deep descriptors lie in [-1, 1], where float16 is exact to 2^-11
relative, far below what matching can tell apart, at half the bytes.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

import numpy as np

from lookalike.descriptors.local.sift import LocalFeatures

SCHEMA = """
CREATE TABLE IF NOT EXISTS local_features (
    id          INTEGER PRIMARY KEY REFERENCES images(id) ON DELETE CASCADE,
    width       INTEGER NOT NULL,  -- size of the image the keypoints were computed on
    height      INTEGER NOT NULL,
    count       INTEGER NOT NULL,  -- T keypoints
    dim         INTEGER NOT NULL,  -- D, the descriptor length
    keypoints   BLOB NOT NULL,     -- (T, 4) float32: x, y, scale, angle
    descriptors BLOB NOT NULL      -- (T, D) float16
);
"""
KEYPOINT_DTYPE = np.dtype("<f4")
DESCRIPTOR_DTYPE = np.dtype("<f2")
#: SQLite's default limit on bound parameters is 999
_CHUNK = 900


def insert(db: sqlite3.Connection, ident: int, features: LocalFeatures) -> None:
    """Store the local features of image ``ident`` (inside the caller's transaction)."""
    keypoints = np.ascontiguousarray(features.keypoints, dtype=KEYPOINT_DTYPE)
    descriptors = np.ascontiguousarray(features.descriptors, dtype=DESCRIPTOR_DTYPE)
    if keypoints.ndim != 2 or keypoints.shape[1] != 4 or descriptors.ndim != 2 or len(descriptors) != len(keypoints):
        raise ValueError(f"local features of image {ident}: keypoints {keypoints.shape} and descriptors "
                         f"{descriptors.shape} should be (T, 4) and (T, D)")
    width, height = features.size
    db.execute("INSERT INTO local_features VALUES (?, ?, ?, ?, ?, ?, ?)",
               (ident, int(width), int(height), len(keypoints), descriptors.shape[1],
                keypoints.tobytes(), descriptors.tobytes()))


def load(db: sqlite3.Connection, ids: Iterable[int]) -> list[LocalFeatures | None]:
    """The local features of ``ids`` (one query per 900 ids), in the order given; ``None`` for an id
    without any. Descriptors come back as float32, ready for BLAS."""
    ids = [int(i) for i in ids]
    wanted = sorted(set(i for i in ids if i >= 0))
    found: dict[int, LocalFeatures] = {}
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = db.execute(f"SELECT id, width, height, count, dim, keypoints, descriptors FROM local_features "
                          f"WHERE id IN ({','.join('?' * len(chunk))})", chunk)
        for ident, width, height, count, dim, keypoints, descriptors in rows:
            found[ident] = LocalFeatures(
                np.frombuffer(keypoints, KEYPOINT_DTYPE).reshape(count, 4),
                np.frombuffer(descriptors, DESCRIPTOR_DTYPE).reshape(count, dim).astype(np.float32),
                (width, height))
    return [found.get(i) for i in ids]


def stats(db: sqlite3.Connection) -> dict[str, float]:
    """Images with local features, keypoints in all, and the bytes their blobs take."""
    images, keypoints, stored = db.execute(
        "SELECT COUNT(*), COALESCE(SUM(count), 0), "
        "COALESCE(SUM(length(keypoints) + length(descriptors)), 0) FROM local_features").fetchone()
    return {"images": images, "keypoints": keypoints, "bytes": stored}


def check(db: sqlite3.Connection) -> list[str]:
    """Rows whose blobs do not match their declared shapes, and rows of images that are gone."""
    problems = []
    bad = db.execute(
        f"SELECT COUNT(*) FROM local_features WHERE length(keypoints) != {4 * KEYPOINT_DTYPE.itemsize} * count "
        f"OR length(descriptors) != {DESCRIPTOR_DTYPE.itemsize} * count * dim").fetchone()[0]
    if bad:
        problems.append(f"{bad} local-feature rows do not have the size their count and dim say")
    orphans = db.execute("SELECT COUNT(*) FROM local_features WHERE id NOT IN (SELECT id FROM images)").fetchone()[0]
    if orphans:
        problems.append(f"{orphans} local-feature rows belong to no image")
    return problems


def missing(db: sqlite3.Connection) -> int:
    """How many images have no local features."""
    return db.execute("SELECT COUNT(*) FROM images WHERE id NOT IN (SELECT id FROM local_features)").fetchone()[0]
