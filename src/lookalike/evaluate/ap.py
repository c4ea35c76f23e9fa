"""Average precision with junk images, as in the Oxford and revisitop evaluation code."""

from __future__ import annotations

import numpy as np


def positive_ranks(ranking: np.ndarray, ok: np.ndarray, junk: np.ndarray) -> np.ndarray:
    """0-based ranks of the ``ok`` images once ``junk`` images are removed from ``ranking``.

    ``ranking`` lists database indices best first. ``ok`` images missing from it (a truncated
    ranking) get no rank: they count as never retrieved. Returns the ranks sorted ascending.
    """
    ranking = np.asarray(ranking, dtype=np.int64)
    position = np.full(max(ranking.max(initial=-1), np.max(ok, initial=-1),
                           np.max(junk, initial=-1)) + 1, -1, dtype=np.int64)
    position[ranking] = np.arange(len(ranking))
    ok_pos = np.sort(position[np.asarray(ok, dtype=np.int64)])
    ok_pos = ok_pos[ok_pos >= 0]
    junk_pos = np.sort(position[np.asarray(junk, dtype=np.int64)])
    junk_pos = junk_pos[junk_pos >= 0]
    # An image that is both ok and junk counts as junk, as in revisitop.
    ok_pos = ok_pos[~np.isin(ok_pos, junk_pos)]
    return ok_pos - np.searchsorted(junk_pos, ok_pos)


def average_precision(ranks: np.ndarray, n_positives: int) -> float:
    """AP by the trapezoid rule on the precision-recall curve (revisitop's ``compute_ap``).

    Each retrieved positive adds ``recall_step * (p_before + p_at) / 2`` where ``p_at`` is the
    precision at its rank and ``p_before`` the precision just before it (1 at rank 0).
    ``ranks`` are the 0-based junk-free ranks of the retrieved positives (:func:`positive_ranks`).
    """
    if n_positives <= 0:
        return float("nan")
    ranks = np.asarray(ranks, dtype=np.float64)
    found = np.arange(len(ranks), dtype=np.float64)
    with np.errstate(divide="ignore", invalid="ignore"):
        before = np.where(ranks == 0, 1.0, found / ranks)
    at = (found + 1) / (ranks + 1)
    return float(((before + at) / 2).sum() / n_positives)


def plain_average_precision(ranks: np.ndarray, n_positives: int) -> float:
    """Non-interpolated AP: the mean over positives of the precision at each positive's rank."""
    if n_positives <= 0:
        return float("nan")
    ranks = np.asarray(ranks, dtype=np.float64)
    return float(((np.arange(len(ranks)) + 1) / (ranks + 1)).sum() / n_positives)
