"""Deterministic subsampling, shared by training, index structures and benchmarks."""

from __future__ import annotations

import numpy as np


def evenly_spaced(items, n: int):
    """At most ``n`` of ``items`` (an array or a list), evenly spaced and in order: a deterministic
    subsample that needs no random seed."""
    if len(items) <= n:
        return items
    picks = np.linspace(0, len(items) - 1, n).astype(np.int64)
    return items[picks] if isinstance(items, np.ndarray) else [items[i] for i in picks]
