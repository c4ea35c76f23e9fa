"""Evaluate a descriptor on a benchmark protocol: describe every image once, rank, score."""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lookalike.descriptors.base import Descriptor
from lookalike.errors import ImageError, LookalikeError
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.index import vectors as flat
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.io.protocol import Protocol
from lookalike.pipelines.extract import extract


@dataclass
class DescribedProtocol:
    """Vectors for a protocol's database and queries; failed images get zero vectors."""

    database: np.ndarray  # (N, D) float32
    queries: np.ndarray  # (Q, D) float32
    skipped: list[ImageError] = field(default_factory=list)
    seconds: float = 0.0
    images: int = 0  # distinct files described


def describe_protocol(
    protocol: Protocol, descriptor: Descriptor, *, workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True,
) -> DescribedProtocol:
    """Describe each distinct image of the protocol once (queries are often database images)."""
    db_paths, q_paths = protocol.database_paths(), protocol.query_paths()
    unique = list(dict.fromkeys(db_paths + q_paths))
    row = {p: i for i, p in enumerate(unique)}
    vectors = np.zeros((len(unique), descriptor.dim), dtype=np.float32)
    skipped = []
    start = time.perf_counter()
    results = extract(descriptor, unique, workers=workers, max_pixels=max_pixels,
                      progress=f"describing ({descriptor.name})" if progress else None)
    for i, (_, result) in enumerate(results):
        if isinstance(result, ImageError):
            skipped.append(result)
        else:
            vectors[i] = result.vector
    seconds = time.perf_counter() - start
    return DescribedProtocol(
        vectors[[row[p] for p in db_paths]], vectors[[row[p] for p in q_paths]],
        skipped, seconds, len(unique),
    )


def rank_all(database: np.ndarray, queries: np.ndarray, sparse: bool = False) -> np.ndarray:
    """Full rankings ``(Q, N)`` of database indices by inner product, best first (exact).

    ``sparse`` vectors (bag of words) go through the inverted file, which touches only the
    posting lists of each query's words.
    """
    ids = np.arange(len(database), dtype=np.int64)
    if sparse:
        from lookalike.index.inverted_file import InvertedFile

        index = InvertedFile(database.shape[1], weighting="none")
        index.add(database, ids)
        return index.search(queries, len(database))[1]
    index = flat.new_index(database.shape[1])
    index.add_with_ids(database, ids)
    return flat.search(index, queries, len(database))[1]


def evaluate_descriptor(
    protocol: Protocol, descriptor: Descriptor, *, workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True,
    train_paths: list[Path] | None = None, vocabulary_dir: str | Path | None = None,
    rerank: list | None = None, local_features=None,
) -> dict:
    """Describe, rank and score; the result of :func:`evaluate_rankings` plus timing and sizes.

    A descriptor that still needs a vocabulary is first trained on ``train_paths`` (default: the
    protocol's database images; unsupervised, no labels are used) and its model is saved in
    ``vocabulary_dir`` (default: a temporary folder, removed afterwards).

    ``rerank``: steps of :mod:`lookalike.rerank.steps` (``parse_steps("sv,qe")``) applied to
    each query's full ranking; ``local_features``: the
    :class:`~lookalike.descriptors.local.registry.LocalExtractor` that spatial verification
    needs (one that learns, DELF, is fitted on ``train_paths`` the same way). The result then
    has a ``rerank`` entry with the steps' timings.
    """
    rerank_with = (rerank, local_features, train_paths)
    if descriptor.trained:
        return _evaluate_trained(protocol, descriptor, workers, max_pixels, progress, None, rerank_with)
    from lookalike.pipelines.training import train_descriptor

    with tempfile.TemporaryDirectory(prefix="lookalike-") as scratch:
        folder = Path(vocabulary_dir or scratch)
        trained, training = train_descriptor(
            descriptor, list(train_paths or protocol.database_paths()),
            folder / f"{descriptor.name}-{protocol.name}.npz", workers=workers, max_pixels=max_pixels,
            progress=progress)
        return _evaluate_trained(protocol, trained, workers, max_pixels, progress, training, rerank_with)


def _evaluate_trained(protocol: Protocol, descriptor: Descriptor, workers: int | None, max_pixels: int,
                      progress: bool, training: dict | None, rerank_with: tuple) -> dict:
    described = describe_protocol(protocol, descriptor, workers=workers, max_pixels=max_pixels,
                                  progress=progress)
    start = time.perf_counter()
    rankings = rank_all(described.database, described.queries, descriptor.sparse)
    search_seconds = time.perf_counter() - start
    steps, extractor, train_paths = rerank_with
    reranked = None
    if steps:
        from lookalike.pipelines.reranking import prepare_local, rerank_rankings

        local, report = (None, None), {}
        if any(step.needs_local for step in steps):
            if extractor is None:
                raise LookalikeError(
                    "spatial verification needs local features: pass local_features=create_local('sift')")
            *local, report = prepare_local(protocol, extractor, train_paths=train_paths, workers=workers,
                                           max_pixels=max_pixels, progress=progress)
        before = evaluate_rankings(rankings, protocol)["map"]
        rankings, timing = rerank_rankings(steps, described.database, described.queries,
                                           database_local=local[0], query_local=local[1])
        reranked = {"steps": [type(s).__name__ for s in steps], "map_before": before, **report, **timing}
    result = evaluate_rankings(rankings, protocol)
    result.update(
        protocol=protocol.name,
        descriptor=descriptor.spec(),
        dim=descriptor.dim,
        bytes_per_image=4 * descriptor.dim,
        images_described=described.images,
        describe_seconds=described.seconds,
        ms_per_image=1000 * described.seconds / max(1, described.images),
        search_seconds=search_seconds,
        skipped=[str(e) for e in described.skipped],
        training=training,
        rerank=reranked,
        _rankings=rankings,
    )
    return result
