"""L2 normalisation of rows, shared by the descriptors, the re-ranking and the cross-modal space."""

from __future__ import annotations

import numpy as np


def l2_normalise(v: np.ndarray, axis: int = -1) -> np.ndarray:
    """Divide by the L2 norm along ``axis``, never by less than 1e-12 (as VLFeat and
    ``torch.nn.functional.normalize`` do); the dtype of ``v`` is kept."""
    return v / np.maximum(np.linalg.norm(v, axis=axis, keepdims=True), 1e-12)
