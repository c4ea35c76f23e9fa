"""Visual vocabularies learned from local descriptors: k-means centres and a diagonal GMM.

Both are scikit-learn-style estimators: ``__init__`` stores parameters, ``fit`` validates its
input and sets the learned attributes (trailing underscore), ``save``/``load`` round-trip them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.descriptors.aggregate.checks import local_descriptors
from lookalike.descriptors.aggregate.fisher import gmm_log_joint, gmm_posteriors
from lookalike.descriptors.aggregate.vlad import nearest_centers
from lookalike.errors import LookalikeError


def _check_training(x: np.ndarray, k: int, per_center: int) -> np.ndarray:
    x = local_descriptors(x)
    if k < 1:
        raise LookalikeError(f"n_clusters={k} should be >= 1")
    if len(x) < k * per_center:
        raise LookalikeError(
            f"n_samples={len(x)} should be >= {per_center} * n_clusters={k * per_center}; "
            "describe more training images or choose a smaller vocabulary"
        )
    if not np.isfinite(x).all():
        raise LookalikeError("training descriptors contain NaN or infinity")
    return x


def _not_fitted(estimator: object, attribute: str) -> None:
    if not hasattr(estimator, attribute):
        raise LookalikeError(f"{type(estimator).__name__} is not fitted yet; call fit() or load()")


class KMeansVocabulary:
    """k visual words learned by k-means (faiss), for bag of words and VLAD.

    Sivic & Zisserman, "Video Google", ICCV 2003. Any k from 1 to 65,536 and more; faiss trains
    on at most ``max_points_per_centroid * k`` sampled descriptors.
    """

    def __init__(self, n_clusters: int = 64, *, n_iter: int = 20, n_redo: int = 1, seed: int = 0,
                 max_points_per_centroid: int = 256) -> None:
        self.n_clusters = n_clusters
        self.n_iter = n_iter
        self.n_redo = n_redo  # restarts from random centres; the lowest-error run is kept
        self.seed = seed
        self.max_points_per_centroid = max_points_per_centroid

    def fit(self, x: np.ndarray) -> KMeansVocabulary:
        import faiss

        x = _check_training(x, self.n_clusters, 1)
        kmeans = faiss.Kmeans(x.shape[1], self.n_clusters, niter=self.n_iter, nredo=self.n_redo,
                              seed=self.seed,
                              max_points_per_centroid=self.max_points_per_centroid, verbose=False)
        kmeans.train(x)
        self.centers_ = np.ascontiguousarray(kmeans.centroids, dtype=np.float32)
        return self

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Nearest word ``(T,)`` int64 of each descriptor."""
        _not_fitted(self, "centers_")
        return nearest_centers(local_descriptors(x, self.centers_.shape[1]), self.centers_).astype(np.int64)

    def save(self, path: str | Path) -> None:
        _not_fitted(self, "centers_")
        np.savez(path, kind="kmeans", centers=self.centers_, seed=self.seed, n_iter=self.n_iter)

    @classmethod
    def load(cls, path: str | Path) -> KMeansVocabulary:
        data = _load(path, "kmeans")
        vocabulary = cls(len(data["centers"]), n_iter=int(data["n_iter"]), seed=int(data["seed"]))
        vocabulary.centers_ = data["centers"].astype(np.float32)
        return vocabulary


class GaussianMixture:
    """Diagonal-covariance GMM fitted by EM from a k-means start, for Fisher vectors.

    Perronnin et al., CVPR 2010. Each EM step is a few matrix products (posteriors in matrix form);
    variances are floored at ``variance_floor`` times the data's mean variance, as VLFeat does.
    """

    def __init__(self, n_components: int = 64, *, n_iter: int = 30, tol: float = 1e-4, seed: int = 0,
                 variance_floor: float = 1e-3) -> None:
        self.n_components = n_components
        self.n_iter = n_iter
        self.tol = tol
        self.seed = seed
        self.variance_floor = variance_floor

    def fit(self, x: np.ndarray) -> GaussianMixture:
        x = _check_training(x, self.n_components, 2)
        xd = x.astype(np.float64)
        floor = max(self.variance_floor * float(xd.var(axis=0).mean()), 1e-10)
        start = KMeansVocabulary(self.n_components, seed=self.seed).fit(x)
        labels = start.transform(x)
        q = np.zeros((len(x), self.n_components))
        q[np.arange(len(x)), labels] = 1.0
        previous = -np.inf
        for iteration in range(self.n_iter + 1):
            self._maximise(xd, q, floor)
            if iteration == self.n_iter:
                break
            q, log_likelihood = self._expect(xd)
            if log_likelihood - previous < self.tol * abs(log_likelihood):
                break
            previous = log_likelihood
        self.n_iter_ = iteration
        return self

    def _maximise(self, x: np.ndarray, q: np.ndarray, floor: float) -> None:
        mass = q.sum(axis=0) + 1e-10
        means = (q.T @ x) / mass[:, None]
        variances = (q.T @ (x * x)) / mass[:, None] - means * means
        self.means_ = means
        self.variances_ = np.maximum(variances, floor)
        self.weights_ = mass / mass.sum()

    def _expect(self, x: np.ndarray) -> tuple[np.ndarray, float]:
        q = gmm_posteriors(x, self.means_, self.variances_, self.weights_)
        return q, self.score(x)

    def score(self, x: np.ndarray) -> float:
        """Mean log-likelihood per descriptor."""
        _not_fitted(self, "means_")
        log_joint = gmm_log_joint(x, self.means_, self.variances_, self.weights_)
        top = log_joint.max(axis=1, keepdims=True)
        return float((top[:, 0] + np.log(np.exp(log_joint - top).sum(axis=1))).mean())

    def predict_proba(self, x: np.ndarray) -> np.ndarray:
        """Posteriors ``(T, K)``."""
        _not_fitted(self, "means_")
        return gmm_posteriors(local_descriptors(x, self.means_.shape[1]), self.means_, self.variances_,
                              self.weights_)

    def save(self, path: str | Path) -> None:
        _not_fitted(self, "means_")
        np.savez(path, kind="gmm", means=self.means_, variances=self.variances_, weights=self.weights_,
                 seed=self.seed)

    @classmethod
    def load(cls, path: str | Path) -> GaussianMixture:
        data = _load(path, "gmm")
        gmm = cls(len(data["means"]), seed=int(data["seed"]))
        gmm.means_, gmm.variances_, gmm.weights_ = data["means"], data["variances"], data["weights"]
        return gmm


def _load(path: str | Path, kind: str) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            if str(data["kind"]) != kind:
                raise LookalikeError(f"{path}: holds a {data['kind']} model, not a {kind} one")
            return {key: data[key] for key in data.files}
    except (OSError, KeyError, ValueError) as exc:
        raise LookalikeError(f"{path}: not a saved vocabulary ({exc})") from None
