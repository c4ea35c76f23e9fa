"""Describe many image files in parallel, in order, never stopping on a bad file.

Worker processes decode and describe; the parent only collects, so decoding overlaps with the
parent's own work (writing to SQLite, adding to faiss) and both cores are busy. A worker that
runs a network gets its share of the cores as threads (``LOOKALIKE_THREADS``): on a small CPU,
independent single-threaded forward passes in two processes run 1.5x faster than one
two-threaded pass, and do not stall when another process takes a core.

With a local-feature extractor, each image is decoded once, at the larger of the two sizes the
descriptor and the extractor need, and shrunk in memory for the one that needs less.
"""

from __future__ import annotations

import multiprocessing
import os
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from lookalike.descriptors.base import Descriptor
from lookalike.descriptors.registry import from_spec
from lookalike.errors import ImageError
from lookalike.io.images import DEFAULT_MAX_PIXELS, load_image, shrink


class Described(NamedTuple):
    vector: np.ndarray  # (D,) float32, or what ``compute`` returned
    width: int
    height: int
    local: Any = None  # LocalFeatures, when a local-feature extractor was given


#: how many threads a worker process may use (a network's forward pass): its share of the cores
THREADS_VARIABLE = "LOOKALIKE_THREADS"


def default_workers() -> int:
    """One worker per core this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return os.cpu_count() or 1


def extract(
    descriptor: Descriptor,
    paths: Sequence[str | Path],
    *,
    workers: int | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    progress: str | None = "describing",
    compute: Callable | None = None,
    local: Any = None,
) -> Iterator[tuple[Path, Described | ImageError]]:
    """Yield ``(path, Described | ImageError)`` for each path, in the order given.

    Args:
        workers: processes to use; ``None`` means one per available core, ``1`` runs in-process.
        progress: label of the tqdm bar, or ``None`` for no bar.
        compute: what to compute instead of the descriptor's vector: a module-level function
            ``(descriptor, pixels) -> array`` (it must pickle by name into the workers).
        local: a local-feature extractor (``create_local``): its features of the same decoded
            image come back as ``Described.local``.
    """
    workers = default_workers() if workers is None else max(1, workers)
    workers = min(workers, max(1, len(paths)))
    bar = tqdm(total=len(paths), desc=progress, unit="img", disable=progress is None, leave=False)
    try:
        if workers == 1:
            _init(descriptor.spec(), max_pixels, compute, None, _spec(local))
            results: Iterator = map(_describe, paths)
        else:
            threads = max(1, default_workers() // workers)
            results = _in_processes((descriptor.spec(), max_pixels, compute, threads, _spec(local)), paths, workers)
        for path, result in zip(paths, results):
            bar.update()
            yield Path(path), result
    finally:
        bar.close()


def _in_processes(initargs: tuple, paths: Sequence, workers: int) -> Iterator:
    """Results in order from a process pool that keeps a window of files ahead of the consumer.

    Files are submitted before earlier results are consumed, so the workers go on decoding while
    the caller commits. If a worker dies (a decoder crash, the OOM killer), the files that were in
    flight are retried one at a time in fresh pools, and a file that kills its worker is reported
    instead of stopping the run.
    """
    # spawn, not fork: faiss's OpenMP threads in the parent make forked children unsafe
    context = multiprocessing.get_context("spawn")

    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, context, initializer=_init, initargs=initargs)

    window = 8 * workers
    todo = iter(paths)
    pending: deque = deque()
    pool = new_pool()
    try:
        while True:
            while len(pending) < window and (path := next(todo, None)) is not None:
                pending.append((path, pool.submit(_describe, path)))
            if not pending:
                return
            path, future = pending.popleft()
            try:
                yield future.result()
            except BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                in_flight = [path] + [p for p, _ in pending]
                pending.clear()
                for retry in in_flight:
                    yield _alone(new_pool, retry)
                pool = new_pool()
    finally:
        pool.shutdown(cancel_futures=True)


def _alone(new_pool, path) -> Described | ImageError:
    with new_pool() as pool:
        try:
            return pool.submit(_describe, path).result()
        except BrokenProcessPool:
            return ImageError(path, "unreadable", "decoding it crashed the worker process")


_worker: dict = {}


def decode_side(descriptor: Descriptor, local: Any = None) -> int | None:
    """The longer side to decode at for ``descriptor`` and, if given, a local-feature extractor."""
    sides = [descriptor.max_side] + ([local.max_side] if local is not None else [])
    return None if None in sides else max(sides)


def describe_pixels(
    pixels: np.ndarray, descriptor: Descriptor, local: Any = None, compute: Callable | None = None
) -> tuple[Any, Any]:
    """``(vector, local features or None)`` of one image decoded at :func:`decode_side`, each
    computed on the image shrunk to the size it asks for."""
    own = shrink(pixels, descriptor.max_side)
    vector = descriptor(own) if compute is None else compute(descriptor, own)
    return vector, None if local is None else local(shrink(pixels, local.max_side))


def _spec(local: Any) -> dict | None:
    return None if local is None else local.spec()


def _init(spec: dict, max_pixels: int, compute: Callable | None, threads: int | None = None,
          local_spec: dict | None = None) -> None:
    if threads is not None:  # a worker's share of the cores, for the libraries that use threads
        os.environ[THREADS_VARIABLE] = str(threads)
    from lookalike.descriptors.local.registry import local_from_spec

    _worker["descriptor"] = from_spec(spec)
    _worker["local"] = None if local_spec is None else local_from_spec(local_spec)
    _worker["max_pixels"] = max_pixels
    _worker["compute"] = compute


def _describe(path: str | Path) -> Described | ImageError:
    descriptor: Descriptor = _worker["descriptor"]
    local = _worker["local"]
    try:
        decoded = load_image(path, max_side=decode_side(descriptor, local), max_pixels=_worker["max_pixels"])
    except ImageError as exc:
        return exc
    try:
        vector, features = describe_pixels(decoded.pixels, descriptor, local, _worker["compute"])
        return Described(vector, decoded.width, decoded.height, features)
    except Exception as exc:  # noqa: BLE001 - one odd image must not stop a run of thousands
        return ImageError(path, "descriptor failed", f"{type(exc).__name__}: {exc}")
