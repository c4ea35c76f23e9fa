"""Learned PCA-whitening of global descriptors (Jégou & Chum, ECCV 2012; used after R-MAC and GeM).

Centre, rotate onto the principal axes, divide each axis by its standard deviation and
L2-normalise. Whitening evens out the over-represented directions (the "burstiness" of
co-occurring activations) so that the inner product weighs every axis alike. Learn it on an
independent image set: learned on the database it fits the noise of the very images searched.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise
from lookalike.postprocess.pca import PCA
from lookalike.threads import threads_for


class PCAWhitening:
    """``(N, D) -> (N, n_components)`` L2-normalised whitened rows.

    Args:
        n_components: output dimension (0 = as many as the data allows: ``min(D, N - 1)``).
        shrinkage: in [0, 1]; each eigenvalue is replaced by ``(1 - s) lambda + s mean(lambda)``,
            which pulls the whitening towards a plain rotation and keeps the weak, noisy axes from
            being blown up. 0 is full whitening, 1 is PCA without whitening.
    """

    kind = "pca-whitening"  # the tag of its file; every kind loads as a PCAWhitening (mean, projection)

    def __init__(self, n_components: int = 0, *, shrinkage: float = 0.0) -> None:
        if n_components < 0 or not 0.0 <= shrinkage <= 1.0:
            raise LookalikeError(
                f"PCA-whitening needs n_components >= 0 and 0 <= shrinkage <= 1, got {n_components}, {shrinkage}")
        self.n_components = n_components
        self.shrinkage = shrinkage

    def fit(self, x: np.ndarray) -> PCAWhitening:
        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or len(x) < 2:
            raise LookalikeError(f"PCA-whitening needs at least 2 training vectors (N, D), got {x.shape}")
        limit = min(x.shape[1], len(x) - 1)
        n = self.n_components or limit
        if n > limit:
            raise LookalikeError(
                f"cannot learn {n} whitened dimensions from {len(x)} vectors of {x.shape[1]} values "
                f"(at most {limit}); use more training images or fewer dimensions")
        pca = PCA(n).fit(x)
        variances = pca.explained_variance_
        variances = (1 - self.shrinkage) * variances + self.shrinkage * variances.mean()
        self.mean_ = pca.mean_.astype(np.float32)
        # rows of the projection already divided by the standard deviation along them
        self.projection_ = (pca.components_ / np.sqrt(np.maximum(variances, 1e-12))[:, None]).astype(np.float32)
        return self

    @property
    def dim(self) -> int:
        return self.projection_.shape[0]

    def transform(self, x: np.ndarray) -> np.ndarray:
        if not hasattr(self, "projection_"):
            raise LookalikeError("PCA-whitening is not fitted yet; call fit()")
        x = np.asarray(x, dtype=np.float32)
        if x.ndim != 2 or x.shape[1] != self.projection_.shape[1]:
            raise LookalikeError(f"whitening expects (N, {self.projection_.shape[1]}) rows, got {x.shape}")
        with threads_for(x.size * len(self.projection_)):
            y = (x - self.mean_) @ self.projection_.T
        return np.ascontiguousarray(l2_normalise(y), dtype=np.float32)

    def save(self, path: str | Path) -> None:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez(tmp, kind=self.kind, mean=self.mean_, projection=self.projection_,
                 shrinkage=self.shrinkage)
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: str | Path) -> PCAWhitening:
        path = Path(path)
        if not path.is_file():
            raise LookalikeError(f"whitening {path} not found; learn one with `lookalike train --whiten`")
        return _load(str(path.resolve()), path.stat().st_mtime_ns)


# learned-whitening: LearnedWhitening, from matching pairs; applied the same way
WHITENING_KINDS = ("pca-whitening", "learned-whitening")


@lru_cache(maxsize=8)
def _load(path: str, mtime: int) -> PCAWhitening:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data.get("kind", "")) not in WHITENING_KINDS:
                raise ValueError("no whitening arrays")
            whitening = PCAWhitening(shrinkage=float(data["shrinkage"]))
            whitening.mean_, whitening.projection_ = data["mean"], data["projection"]
    except (OSError, ValueError, KeyError) as exc:
        raise LookalikeError(f"{path}: not a lookalike whitening file ({exc})") from None
    whitening.n_components = whitening.dim
    return whitening
