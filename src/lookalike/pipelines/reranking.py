"""Re-ranking on a protocol: local features of every image once, then the steps on each ranking.

Used by ``lookalike eval --rerank sv,dba,qe,diffusion`` and by the benchmarks: the database is
in memory, so the steps of :mod:`lookalike.rerank.steps` are fitted on the protocol's database
vectors, with ids ``0..N-1`` (rows of ``imlist``), and re-rank the full ranking of each query.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors.local.registry import LocalExtractor
from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.io.protocol import Protocol
from lookalike.pipelines.extract import extract
from lookalike.sampling import evenly_spaced


def _local_sample(extractor: LocalExtractor, image: np.ndarray) -> np.ndarray:
    return extractor.training_sample(image)


def train_local(extractor: LocalExtractor, paths: list[Path], out: str | Path, *, max_images: int = 300,
                workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True
                ) -> LocalExtractor:
    """Fit an extractor that learns (DELF's PCA) on an evenly spaced subset of ``paths``; returns
    the trained extractor, whose model is saved in ``out``."""
    paths = evenly_spaced(list(paths), max_images)
    results = extract(extractor, paths, compute=_local_sample, workers=workers, max_pixels=max_pixels,
                      progress="local training sample" if progress else None)
    sample = [r.vector for _, r in results if not isinstance(r, ImageError)]
    if not sample:
        raise LookalikeError(f"none of the {len(paths)} training images could be described")
    return extractor.fit(sample, out)


def describe_local(extractor: LocalExtractor, paths: list[Path], *, workers: int | None = None,
                   max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True) -> list[LocalFeatures]:
    """Local features of each path, in order, in parallel; an unreadable image gets none."""
    empty = LocalFeatures(np.zeros((0, 4), np.float32), np.zeros((0, extractor.dim), np.float32), (1, 1))
    return [empty if isinstance(r, ImageError) else r.vector
            for _, r in extract(extractor, paths, workers=workers, max_pixels=max_pixels,
                                progress=f"local features ({extractor.name})" if progress else None)]


def protocol_local_features(protocol: Protocol, extractor: LocalExtractor, **kwargs
                            ) -> tuple[list[LocalFeatures], list[LocalFeatures], float]:
    """Local features of the database and of the queries (each distinct image once), and the
    seconds spent."""
    db_paths, q_paths = protocol.database_paths(), protocol.query_paths()
    unique = list(dict.fromkeys(db_paths + q_paths))
    start = time.perf_counter()
    features = dict(zip(unique, describe_local(extractor, unique, **kwargs)))
    return [features[p] for p in db_paths], [features[p] for p in q_paths], time.perf_counter() - start


def search_all(database: np.ndarray, queries: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Full rankings ``(scores, ids)``, both ``(Q, N)``, by exact inner product."""
    from lookalike.rerank.steps import exact_search

    return exact_search(database, queries, len(database))


def rerank_rankings(steps: list, database: np.ndarray, queries: np.ndarray, *,
                    database_local: list[LocalFeatures] | None = None,
                    query_local: list[LocalFeatures] | None = None) -> tuple[np.ndarray, dict]:
    """Rank every database vector for each query, then re-rank with ``steps``.

    Returns the re-ranked ids ``(Q, N)`` and timings: ``fit_seconds`` (offline: DBA, the
    diffusion graph), ``ms_per_query`` (online re-ranking, the first search excluded, wall
    clock), ``cpu_ms_per_query`` (the CPU time it took in this process: the wall time it would
    take alone on a core, where other work shares the machine) and the online seconds per step
    (``step_seconds``).
    """
    from lookalike.rerank.steps import Reranker

    reranker = Reranker(steps)
    start = time.perf_counter()
    reranker.fit(database, local=database_local)
    fit_seconds = time.perf_counter() - start
    fitted = dict(reranker.seconds)
    scores, ids = search_all(database, queries)
    start, cpu = time.perf_counter(), time.process_time()
    _, ids = reranker(queries, scores, ids, local=query_local)
    online, cpu = time.perf_counter() - start, time.process_time() - cpu
    timing = {"fit_seconds": fit_seconds, "ms_per_query": 1000 * online / max(1, len(queries)),
              "cpu_ms_per_query": 1000 * cpu / max(1, len(queries)),
              "step_seconds": {k: v - fitted[k] for k, v in reranker.seconds.items()}}
    return ids, timing


def prepare_local(protocol: Protocol, extractor: LocalExtractor, *, train_paths: list[Path] | None = None,
                  workers: int | None = None, max_pixels: int = DEFAULT_MAX_PIXELS, progress: bool = True
                  ) -> tuple[list[LocalFeatures], list[LocalFeatures], dict]:
    """Train the extractor if it learns and has no model (on ``train_paths``, default the database
    images; unsupervised), then describe the protocol's images."""
    report: dict = {"local_features": extractor.name}
    with tempfile.TemporaryDirectory(prefix="lookalike-") as scratch:
        if not extractor.trained:
            start = time.perf_counter()
            extractor = train_local(extractor, list(train_paths or protocol.database_paths()),
                                    Path(scratch) / f"{extractor.name}.npz", workers=workers,
                                    max_pixels=max_pixels, progress=progress)
            report["local_training_seconds"] = time.perf_counter() - start
        db, queries, seconds = protocol_local_features(protocol, extractor, workers=workers,
                                                        max_pixels=max_pixels, progress=progress)
    report["local_seconds"] = seconds
    report["keypoints_per_image"] = float(np.mean([len(f.keypoints) for f in db + queries]))
    return db, queries, report
