"""Tentative correspondences between one image and many, in one batched matrix product.

:func:`lookalike.rerank.spatial.match_features` matches one pair at a time; cleaning verifies every
pair of images inside a class (``n (n - 1) / 2`` pairs), so here one image is matched against a
stack of ``M`` others at once: their descriptors are padded to a common count ``T``, one product
``[M, Ta, T]`` gives every distance, and the nearest neighbours in both directions come from
arg-max over its axes. The result is the same as calling ``match_features`` per pair (tested).
"""

from __future__ import annotations

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.rerank.spatial import MATCHERS


def pad_descriptors(descriptors: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Stack ``(T_i, D)`` descriptor arrays into ``(N, T, D)`` float32 zero-padded rows and counts ``(N,)``."""
    counts = np.array([len(d) for d in descriptors], dtype=np.int64)
    dim = descriptors[0].shape[1] if descriptors else 0
    out = np.zeros((len(descriptors), int(counts.max(initial=0)), dim), dtype=np.float32)
    for i, d in enumerate(descriptors):  # one copy per image, not per descriptor
        out[i, :len(d)] = d
    return out, counts


def match_many(a: np.ndarray, others: np.ndarray, counts: np.ndarray, *, method: str = "mutual",
               ratio: float = 0.8) -> list[np.ndarray]:
    """Correspondences of descriptors ``a (Ta, D)`` with each of ``M`` padded images.

    Args:
        a: ``(Ta, D)`` descriptors of one image.
        others: ``(M, T, D)`` descriptors of M images, row ``m`` valid up to ``counts[m]``
            (:func:`pad_descriptors`).
        method: ``mutual`` (mutual nearest neighbours) or ``ratio`` (Lowe's test, IJCV 2004),
            as :func:`lookalike.rerank.spatial.match_features`.

    Returns:
        M arrays ``(K_m, 2)`` int64 of ``(row of a, row of image m)``, sorted by row of ``a``.
    """
    if method not in MATCHERS:
        raise LookalikeError(f"unknown matching {method!r}; choose one of: {', '.join(MATCHERS)}")
    a = np.asarray(a, dtype=np.float32)
    others = np.asarray(others, dtype=np.float32)
    counts = np.asarray(counts)
    if a.ndim != 2 or others.ndim != 3 or others.shape[2] != a.shape[1] or len(counts) != len(others):
        raise LookalikeError(f"expected a (Ta, D), others (M, T, D) and counts (M,); got {a.shape}, "
                             f"{others.shape} and {np.shape(counts)}")
    empty = np.zeros((0, 2), np.int64)
    if len(a) == 0 or others.shape[1] == 0:
        return [empty] * len(others)
    # -d^2 / 2 = a.b - |a|^2 / 2 - |b|^2 / 2, with padded columns at -inf so that no row picks them
    g = np.einsum("td,msd->mts", a, others, optimize=True)
    g -= 0.5 * (a * a).sum(axis=1)[None, :, None]
    g -= 0.5 * (others * others).sum(axis=2)[:, None, :]
    padded = np.arange(others.shape[1])[None, :] >= counts[:, None]  # (M, T)
    np.copyto(g, -np.inf, where=padded[:, None, :])
    forward = g.argmax(axis=2)  # (M, Ta): nearest row of image m for each row of a
    rows = np.broadcast_to(np.arange(len(a)), forward.shape)
    if method == "mutual":
        backward = g.argmax(axis=1)  # (M, T): nearest row of a for each row of image m
        keep = np.take_along_axis(backward, forward, axis=1) == rows
    else:
        if g.shape[2] < 2:
            return [empty] * len(others)
        top2 = -np.partition(-g, 1, axis=2)[:, :, :2]
        # squared distances from the two largest -d^2/2; an image with one valid row has its second
        # neighbour at -inf, which would pass: it is masked below, as match_features returns
        # nothing for fewer than 2 rows
        first, second = np.maximum(-2 * top2[..., 0], 0), np.maximum(-2 * top2[..., 1], 0)
        keep = first < ratio * ratio * second
    keep &= (counts >= (2 if method == "ratio" else 1))[:, None]
    return [np.stack([rows[m][keep[m]], forward[m][keep[m]]], axis=1).astype(np.int64) for m in range(len(others))]
