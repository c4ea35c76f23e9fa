"""Shape and type checks shared by the aggregation functions."""

from __future__ import annotations

import numpy as np

from lookalike.errors import LookalikeError


def local_descriptors(x: np.ndarray, dim: int | None = None) -> np.ndarray:
    """``x`` as float32 ``(T, D)``, C-contiguous; ``D`` must equal ``dim`` when given."""
    x = np.asarray(x)
    if x.ndim != 2 or (dim is not None and x.shape[1] != dim):
        expected = f"(T, {dim})" if dim is not None else "(T, D)"
        raise LookalikeError(f"local descriptors should have shape {expected}, got {x.shape}")
    return np.ascontiguousarray(x, dtype=np.float32)


def signed_power(v: np.ndarray, power: float) -> np.ndarray:
    """``sign(v) |v|^power``: power normalisation (Perronnin et al. ECCV 2010)."""
    return np.sign(v) * np.abs(v) ** power

