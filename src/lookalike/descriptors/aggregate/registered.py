"""Registered descriptors that aggregate SIFT with a learned vocabulary: bow, vlad, fisher, and
fvfc (Fisher vectors through an MLP trained for ranking).

Each is a thin shell over the pure functions of :mod:`lookalike.descriptors.aggregate`: it
extracts SIFT (:mod:`lookalike.descriptors.local.sift`), optionally projects it by PCA, and
encodes it, over the whole image or over a 1x1 + 2x2 + 4x4 spatial pyramid. What it learns (PCA,
vocabulary or GMM, idf) lives in one ``.npz`` file named by the ``vocabulary`` option, written
by :meth:`AggregatedDescriptor.fit` (``lookalike train``), so that any process can rebuild the
descriptor from its config.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lookalike.descriptors.aggregate import (
    GaussianMixture,
    KMeansVocabulary,
    bow_encode,
    fisher_encode,
    spatial_pyramid,
    vlad_encode,
)
from lookalike.descriptors.aggregate.trained import fvfc_project
from lookalike.descriptors.base import Descriptor, DescriptorConfig
from lookalike.descriptors.local.sift import LocalFeatures, SiftConfig, extract_sift
from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise
from lookalike.postprocess.pca import PCA
from lookalike.postprocess.tfidf import idf_weights
from lookalike.sampling import evenly_spaced

PYRAMID_CELLS = 21  # 1 + 4 + 16
MAX_TRAINING_DESCRIPTORS = 200_000  # evenly spaced subset for PCA and the vocabulary
PER_IMAGE = 300  # local descriptors kept per training image: enough for k-means, bounded in memory


def _kmeans(k: int, seed: int) -> KMeansVocabulary:
    # 10 iterations are enough to settle big vocabularies, whose cost grows with k
    return KMeansVocabulary(k, seed=seed, n_iter=20 if k <= 4096 else 10)


@dataclass(frozen=True)
class AggregatedConfig(DescriptorConfig):
    vocabulary: str = ""  # learned model (.npz) from `lookalike train`; empty = not trained yet
    k: int = 64  # visual words, or GMM components
    pca: int = 0  # project SIFT to this many dimensions first (0 = keep all 128)
    pyramid: bool = False  # aggregate over a 1x1 + 2x2 + 4x4 spatial pyramid (21 cells)
    dense: bool = False  # SIFT on a grid instead of at detected keypoints
    step: int = 8  # dense grid step in pixels
    max_keypoints: int = 1000  # strongest detected keypoints kept
    root: bool = True  # RootSIFT
    max_side: int = 512  # images are shrunk to this longer side first


class AggregatedDescriptor(Descriptor):
    """Base of the SIFT-aggregating descriptors; subclasses implement ``encode`` and ``learn``."""

    kind: str  # what the model file holds: "kmeans" or "gmm"
    Config = AggregatedConfig
    file_options = ("whitening", "vocabulary")

    def validate(self) -> None:
        c = self.config
        if c.k < 1 or not 0 <= c.pca <= 128:
            raise LookalikeError(f"{self.name}: need k >= 1 and 0 <= pca <= 128, got k={c.k}, pca={c.pca}")
        if c.vocabulary and not Path(c.vocabulary).is_file():
            raise LookalikeError(
                f"{self.name}: vocabulary {c.vocabulary} not found; train one with `lookalike train`")

    @property
    def local_dim(self) -> int:
        return self.config.pca or 128

    @property
    def raw_dim(self) -> int:
        return self.cell_dim * (PYRAMID_CELLS if self.config.pyramid else 1)

    @property
    @abc.abstractmethod
    def cell_dim(self) -> int:
        """Length of one (whole-image or pyramid-cell) encoding."""

    @property
    def trained(self) -> bool:
        return bool(self.config.vocabulary)

    # ---- describing ---------------------------------------------------------------------
    def local_features(self, image: np.ndarray) -> LocalFeatures:
        c = self.config
        return extract_sift(image, SiftConfig(dense=c.dense, step=c.step, max_keypoints=c.max_keypoints,
                                              root=c.root, max_side=c.max_side))

    def project(self, x: np.ndarray) -> np.ndarray:
        model = self.model
        if "pca_components" not in model:
            return x
        return ((x - model["pca_mean"]) @ model["pca_components"].T).astype(np.float32)

    def encode_features(self, features: LocalFeatures) -> np.ndarray:
        """The image's vector from its local features (what :meth:`compute` does after SIFT)."""
        x = self.project(features.descriptors)
        if not self.config.pyramid:
            return self.encode(x)
        return spatial_pyramid(x, features.keypoints[:, :2], features.size, self.encode)

    def compute(self, image: np.ndarray) -> np.ndarray:
        return self.encode_features(self.local_features(image))

    @abc.abstractmethod
    def encode(self, x: np.ndarray) -> np.ndarray:
        """Aggregate projected local descriptors ``(T, local_dim)`` into ``(cell_dim,)`` float32."""

    # ---- learning -----------------------------------------------------------------------
    def training_sample(self, image: np.ndarray) -> np.ndarray:
        """Up to PER_IMAGE local descriptors of one image, evenly spaced (deterministic)."""
        return evenly_spaced(self.local_features(image).descriptors, PER_IMAGE)

    @property
    def model(self) -> dict[str, np.ndarray]:
        if not self.trained:
            raise LookalikeError(
                f"{self.name} needs a vocabulary: run `lookalike train IMAGES -d {self.name} --out FILE` "
                f"and pass -s vocabulary=FILE")
        path = Path(self.config.vocabulary)
        model = _load_model(str(path.resolve()), path.stat().st_mtime_ns)
        if str(model["kind"]) != self.kind or int(model["k"]) != self.config.k or int(
                model["local_dim"]) != self.local_dim:
            raise LookalikeError(
                f"{path}: holds a {model['kind']} model with k={int(model['k'])} on "
                f"{int(model['local_dim'])}-D descriptors, not {self.kind} with k={self.config.k} on "
                f"{self.local_dim}-D; train a matching one")
        return model

    def fit(self, per_image: list[np.ndarray], out: str | Path, *, seed: int = 0) -> AggregatedDescriptor:
        """Learn PCA (if asked) and the vocabulary from local descriptors, one array per training
        image; save them to ``out`` and return the descriptor that uses them."""
        sample = np.concatenate([x for x in per_image if len(x)]) if per_image else np.zeros((0, 128))
        sample = evenly_spaced(sample, MAX_TRAINING_DESCRIPTORS)
        arrays: dict[str, np.ndarray] = {}
        if self.config.pca:
            pca = PCA(self.config.pca).fit(sample)
            arrays.update(pca_mean=pca.mean_.astype(np.float32),
                          pca_components=pca.components_.astype(np.float32))
            per_image = [pca.transform(x) if len(x) else x[:, : self.config.pca] for x in per_image]
            sample = pca.transform(sample)
        arrays.update(self.learn(sample, per_image, seed))
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = out.with_name(out.name + ".tmp.npz")
        np.savez(tmp, kind=self.kind, k=self.config.k, local_dim=self.local_dim, **arrays)
        os.replace(tmp, out)
        return type(self)(self.config, vocabulary=str(out.resolve()))

    @abc.abstractmethod
    def learn(self, sample: np.ndarray, per_image: list[np.ndarray], seed: int) -> dict[str, np.ndarray]:
        """Arrays to store, learned from projected descriptors."""


@lru_cache(maxsize=8)
def _load_model(path: str, mtime: int) -> dict[str, np.ndarray]:
    try:
        with np.load(path, allow_pickle=False) as data:
            return {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise LookalikeError(f"{path}: not a lookalike vocabulary ({exc})") from None


@dataclass(frozen=True)
class BowConfig(AggregatedConfig):
    k: int = 1000  # visual words
    soft: int = 1  # words each descriptor votes for (1 = hard assignment)


class BagOfWords(AggregatedDescriptor):
    """Bag of visual words with tf-idf (Sivic & Zisserman, "Video Google", ICCV 2003).

    The vector is the L2-normalised tf-idf histogram of visual words, idf learned on the training
    images, so its inner product is the tf-idf cosine. It is sparse: evaluation ranks it through
    the inverted file (:class:`lookalike.index.inverted_file.InvertedFile`).
    """

    name = "bow"
    advice = "same object or place under viewpoint change; sparse, needs a vocabulary"
    kind = "kmeans"
    Config = BowConfig
    sparse = True

    @property
    def cell_dim(self) -> int:
        return self.config.k

    def encode(self, x: np.ndarray) -> np.ndarray:
        model = self.model
        counts = bow_encode(x, model["centers"], soft=self.config.soft)
        return l2_normalise(counts / max(float(counts.sum()), 1e-12) * model["idf"]).astype(np.float32)

    def learn(self, sample, per_image, seed):
        vocabulary = _kmeans(self.config.k, seed).fit(sample)
        counts = np.stack([np.bincount(vocabulary.transform(x), minlength=self.config.k) if len(x)
                           else np.zeros(self.config.k) for x in per_image])
        return {"centers": vocabulary.centers_, "idf": idf_weights(counts)}


@dataclass(frozen=True)
class VladConfig(AggregatedConfig):
    intra: bool = True  # intra-normalisation (Arandjelović & Zisserman 2013)
    power: float = 1.0  # signed power normalisation exponent (1 = none, 0.5 = square root)


class Vlad(AggregatedDescriptor):
    """VLAD of SIFT (Jégou et al., CVPR 2010), intra-normalised by default (CVPR 2013).

    Output: ``k * local_dim`` values (times 21 with ``pyramid``), L2-normalised.
    """

    name = "vlad"
    advice = "same object or place, compact; needs a vocabulary (lookalike train)"
    kind = "kmeans"
    Config = VladConfig

    @property
    def cell_dim(self) -> int:
        return self.config.k * self.local_dim

    def encode(self, x: np.ndarray) -> np.ndarray:
        power = None if self.config.power == 1.0 else self.config.power
        return vlad_encode(x, self.model["centers"], intra=self.config.intra, power=power)

    def learn(self, sample, per_image, seed):
        return {"centers": _kmeans(self.config.k, seed).fit(sample).centers_}


@dataclass(frozen=True)
class FisherConfig(AggregatedConfig):
    improved: bool = True  # signed square root and L2 normalisation (Perronnin et al. ECCV 2010)


class Fisher(AggregatedDescriptor):
    """Fisher vector of SIFT under a diagonal GMM (Perronnin et al., CVPR 2010).

    Output: ``2 * k * local_dim`` values (times 21 with ``pyramid``): gradients with respect to the
    means, then the variances.
    """

    name = "fisher"
    advice = "like vlad, a little better per dimension; needs a GMM (lookalike train)"
    kind = "gmm"
    Config = FisherConfig

    @property
    def cell_dim(self) -> int:
        return 2 * self.config.k * self.local_dim

    def encode(self, x: np.ndarray) -> np.ndarray:
        m = self.model
        return fisher_encode(x, m["means"], m["variances"], m["weights"], improved=self.config.improved)

    def learn(self, sample, per_image, seed):
        gmm = GaussianMixture(self.config.k, seed=seed).fit(sample)
        return {"means": gmm.means_.astype(np.float32), "variances": gmm.variances_.astype(np.float32),
                "weights": gmm.weights_.astype(np.float32)}


@dataclass(frozen=True)
class FvfcConfig(FisherConfig):
    vocabulary: str = ""  # the trained hybrid (.npz) from `lookalike finetune -d fvfc`
    pca: int = 64  # SIFT projected to 64-D first, as in Perronnin & Larlus
    dense: bool = True  # SIFT on a grid (every `step` pixels, 2 sizes)
    reduce: int = 512  # the Fisher vector is PCA-reduced to this many dimensions
    hidden: int = 1024  # units of the MLP's hidden layer
    out: int = 256  # output dimensions


class FisherMlp(Fisher):
    """Fisher vector + fully connected layers (Perronnin & Larlus, "Fisher vectors meet neural
    networks: a hybrid classification architecture", CVPR 2015), trained for retrieval.

    The improved Fisher vector of dense SIFT (PCA-reduced to 64-D), PCA-reduced to ``reduce``
    dimensions (unsupervised), then ``Linear -> ReLU -> Linear`` trained with a ranking loss on
    labelled images (``lookalike finetune -d fvfc``); output ``out`` values, L2-normalised.
    """

    name = "fvfc"
    advice = "Fisher vectors + an MLP trained on your labelled images (lookalike finetune -d fvfc)"
    kind = "fvfc"
    Config = FvfcConfig

    def validate(self) -> None:
        super().validate()
        c = self.config
        if min(c.reduce, c.hidden, c.out) < 1:
            raise LookalikeError(f"fvfc: need reduce, hidden, out >= 1, got {c.reduce}, {c.hidden}, {c.out}")

    @property
    def raw_dim(self) -> int:
        return self.config.out

    @property
    def fisher(self) -> Fisher:
        """The plain Fisher-vector descriptor this hybrid starts from (same SIFT and GMM options),
        untrained and unwhitened: the GMM is learnt anew with the MLP."""
        common = {f.name: getattr(self.config, f.name) for f in dataclasses.fields(FisherConfig)}
        return Fisher(FisherConfig(**common | {"vocabulary": "", "whitening": ""}))

    @property
    def model(self) -> dict[str, np.ndarray]:
        if not self.trained:
            raise LookalikeError("fvfc needs a trained model: run `lookalike finetune LABELLED -d fvfc -o fvfc.npz` "
                                 "and pass -s vocabulary=fvfc.npz")
        model = super().model
        c = self.config
        shapes = (model["fv_components"].shape[0], model["w1"].shape[0], model["w2"].shape[0])
        if shapes != (c.reduce, c.hidden, c.out):
            raise LookalikeError(f"{c.vocabulary}: an fvfc model with reduce, hidden, out = {shapes}, not "
                                 f"{(c.reduce, c.hidden, c.out)}; pass the matching -s options")
        return model

    def encode_features(self, features: LocalFeatures) -> np.ndarray:
        return fvfc_project(super().encode_features(features)[None], self.model)[0]

    def fit(self, per_image, out, *, seed: int = 0):
        raise LookalikeError("fvfc learns from labelled images: run `lookalike finetune LABELLED -d fvfc -o fvfc.npz`")
