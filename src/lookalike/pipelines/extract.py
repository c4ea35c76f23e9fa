"""Describe many image files in parallel, in order, never stopping on a bad file.

Worker processes decode and describe; the parent only collects, so decoding overlaps with the
parent's own work (writing to SQLite, adding to faiss) and both cores are busy. A worker that
runs a network gets its share of the cores as threads (``LOOKALIKE_THREADS``): on a small CPU,
independent single-threaded forward passes in two processes run 1.5x faster than one
two-threaded pass, and do not stall when another process takes a core.

Workers never re-run the caller's script: they are started with the ``__main__`` module hidden
(see :class:`_WorkerContext`), so a plain script without an ``if __name__ == "__main__":`` guard
works. A worker that cannot start is an error (:class:`WorkerError`), never an unreadable image,
and a worker exits when its parent dies (``kill -9``), on Linux at once and elsewhere within a
second.

Each file is read once, in one read: the worker hashes the bytes it decodes (``Described.sha256``),
so that indexing into an empty collection needs no separate hashing pass. Files go to the workers
a few per task (:data:`CHUNK`), which keeps the parent's share of the work near 0.2 ms per image.

With a local-feature extractor, each image is decoded once, at the larger of the two sizes the
descriptor and the extractor need, and shrunk in memory for the one that needs less.
"""

from __future__ import annotations

import atexit
import hashlib
import itertools
import multiprocessing
import multiprocessing.context
import os
import sys
import threading
import time
import types
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from tqdm import tqdm

from lookalike.descriptors.base import Descriptor
from lookalike.descriptors.registry import rebuild
from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS, DecodedImage, load_image, read_file, shrink


class Described(NamedTuple):
    vector: np.ndarray  # (D,) float32, or what ``compute`` returned
    width: int
    height: int
    local: Any = None  # LocalFeatures, when a local-feature extractor was given
    sha256: str = ""  # of the bytes decoded (read once, hashed and decoded), "" if not known
    bytes: int = 0  # their number


#: files per task sent to a worker process
CHUNK = 4

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
    if workers is not None and workers < 1:
        raise LookalikeError(f"workers={workers} should be >= 1")
    workers = default_workers() if workers is None else workers
    workers = min(workers, max(1, len(paths)))
    if workers > 1 and (where := _defined_in_main(type(descriptor), compute)):
        warnings.warn(f"{where} is defined in the __main__ script, which worker processes do not import; "
                      "describing in this process. Move it into a module to use several workers.", stacklevel=2)
        workers = 1
    bar = tqdm(total=len(paths), desc=progress, unit="img", disable=True if progress is None else None, leave=False)
    try:
        if workers == 1:
            _init(type(descriptor), descriptor.spec(), max_pixels, compute, local_spec=_spec(local))
            results: Iterator = map(_describe, paths)
        else:
            threads = max(1, default_workers() // workers)
            initargs = (type(descriptor), descriptor.spec(), max_pixels, compute, threads, os.getpid(), _spec(local))
            results = _in_processes(initargs, paths, workers)
        for path, result in zip(paths, results):
            bar.update()
            yield Path(path), result
    finally:
        bar.close()


def _in_processes(initargs: tuple, paths: Sequence, workers: int) -> Iterator:
    """Results in order from a process pool that keeps a window of files ahead of the consumer.

    Files are submitted before earlier results are consumed, so the workers go on decoding while
    the caller commits, :data:`CHUNK` files per task (one round trip through the pool costs about
    0.2 ms of CPU, 2 % of the cheapest forward pass). If a worker dies (a decoder crash, the OOM
    killer), the files that were in flight are retried one at a time in fresh pools, and a file
    that kills its worker is reported instead of stopping the run.
    """
    def new_pool() -> ProcessPoolExecutor:
        return ProcessPoolExecutor(workers, _WorkerContext(), initializer=_init, initargs=initargs)

    size = max(1, min(CHUNK, len(paths) // workers))  # a few files still go to every worker
    window = 8 * workers // size  # 8 files ahead per worker
    todo = iter(paths)
    pending: deque = deque()
    pool = new_pool()
    try:
        while True:
            while len(pending) < window and (chunk := list(itertools.islice(todo, size))):
                pending.append((chunk, _submit(pool, chunk)))
            if not pending:
                return
            chunk, future = pending.popleft()
            try:
                yield from future.result()
            except BrokenProcessPool:
                pool.shutdown(cancel_futures=True)
                in_flight = chunk + [p for c, _ in pending for p in c]
                pending.clear()
                for retry in in_flight:
                    yield _alone(new_pool, retry)
                pool = new_pool()
    finally:
        pool.shutdown(cancel_futures=True)


def _submit(pool: ProcessPoolExecutor, paths: list) -> Future:
    """``pool.submit(_describe_all, paths)``; a pool that broke since the last submit (a worker
    died meanwhile) gives a future that fails like the others, so that the files are retried."""
    try:
        return pool.submit(_describe_all, paths)
    except BrokenProcessPool as exc:
        future: Future = Future()
        future.set_exception(exc)
        return future


def _alone(new_pool, path) -> Described | ImageError:
    """Describe ``path`` in a fresh pool, after checking that a worker starts at all: a pool that
    breaks before its first file is a worker that cannot start, not a bad image."""
    with new_pool() as pool:
        try:
            pool.submit(_ready).result()
        except BrokenProcessPool:
            raise WorkerError("worker processes die while starting (out of memory, or a crash on import?); "
                              "run with --workers 1 to describe in this process") from None
        try:
            return pool.submit(_describe, path).result()
        except BrokenProcessPool:
            return ImageError(path, "unreadable", "decoding it crashed the worker process")


class WorkerError(LookalikeError):
    """A worker process that cannot start or cannot build the descriptor."""


class _WorkerContext(multiprocessing.context.SpawnContext):
    """``spawn``, with the caller's ``__main__`` hidden from the children.

    spawn, not fork: faiss's OpenMP threads in the parent make forked children unsafe. But a
    spawned child re-imports the parent's main script (by path, or by module name under
    ``python -m``) before it runs anything, and a script without a ``__main__`` guard would then
    index again inside every worker. Workers need only lookalike and the descriptor's module,
    which the parent already imported by name, so each child is started while ``sys.modules``
    holds a bare ``__main__`` that names no file and no module.
    """

    class Process(multiprocessing.context.SpawnProcess):
        @staticmethod
        def _Popen(process_obj):
            main = sys.modules.get("__main__")
            sys.modules["__main__"] = types.ModuleType("__main__")
            try:
                return multiprocessing.context.SpawnProcess._Popen(process_obj)
            finally:
                if main is not None:
                    sys.modules["__main__"] = main


def _defined_in_main(cls: type, compute: Callable | None) -> str | None:
    """The name of what the workers could not import: something defined in ``__main__``."""
    for thing in (cls, compute):
        if thing is not None and getattr(thing, "__module__", None) == "__main__":
            return thing.__qualname__
    return None


_worker: dict = {}


def decode_side(descriptor: Descriptor, local: Any = None) -> int | None:
    """The longer side to decode at for ``descriptor`` and, if given, a local-feature extractor."""
    sides = [descriptor.max_side] + ([local.max_side] if local is not None else [])
    return None if None in sides else max(sides)


def decode_for(
    path: str | Path, descriptor: Descriptor, local: Any = None, *, max_pixels: int = DEFAULT_MAX_PIXELS,
    data: bytes | None = None,
) -> DecodedImage:
    """``path`` decoded just large enough for ``descriptor`` and, if given, a local-feature
    extractor, at :func:`decode_side`. For a descriptor that squashes the image, that is the
    shorter side, reached by JPEG draft alone: the descriptor resamples once, to its square
    (shrinking a 4:3 photo to 224 x 168 first, then squashing it, blurred it: landmarks cnn-fc
    mAP 0.937 against 0.940 now and 0.945 from the full decode, docs/design.md)."""
    return load_image(path, max_side=decode_side(descriptor, local), cover=_squashes(descriptor),
                      max_pixels=max_pixels, data=data)


def describe_pixels(
    pixels: np.ndarray, descriptor: Descriptor, local: Any = None, compute: Callable | None = None
) -> tuple[Any, Any]:
    """``(vector, local features or None)`` of one image decoded by :func:`decode_for`, each
    computed on the image shrunk to the size it asks for."""
    own = pixels if _squashes(descriptor) else shrink(pixels, descriptor.max_side)
    vector = descriptor(own) if compute is None else compute(descriptor, own)
    return vector, None if local is None else local(shrink(pixels, local.max_side))


def _squashes(described: Any) -> bool:
    """Whether a descriptor squashes the image; a local-feature extractor described in its
    place (training a vocabulary, re-ranking) never does."""
    return getattr(described, "squashes", False)


def _spec(local: Any) -> dict | None:
    return None if local is None else local.spec()


def _init(cls: type[Descriptor], spec: dict, max_pixels: int, compute: Callable | None,
          threads: int | None = None, parent: int | None = None, local_spec: dict | None = None) -> None:
    """Set up this process to describe: in the caller's process, or in a worker (``parent`` set)."""
    if parent is not None:
        _exit_with_parent(parent)
        atexit.register(_exit_now)
    if threads is not None:  # a worker's share of the cores, for the libraries that use threads
        os.environ[THREADS_VARIABLE] = str(threads)
        _limit_threads(threads)
    _worker.update(max_pixels=max_pixels, compute=compute, error=None)
    try:
        from lookalike.descriptors.local.registry import local_from_spec

        _worker["descriptor"] = rebuild(cls, spec)
        _worker["local"] = None if local_spec is None else local_from_spec(local_spec)
    except Exception as exc:  # noqa: BLE001 - reported by the first task, see _describe
        if parent is None:
            raise
        _worker["error"] = f"{type(exc).__name__}: {exc}"


def _ready() -> None:
    """What a fresh pool runs first: raises if the worker could not set itself up."""
    if _worker.get("error"):
        raise WorkerError(f"a worker process could not build the descriptor ({_worker['error']})")


#: read by OpenMP and BLAS libraries when they load (OpenCV's, torch's, after this point)
THREAD_LIMIT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def _limit_threads(threads: int) -> None:
    """Bound the BLAS and OpenMP thread pools of this worker to its share of the cores: those
    already loaded (numpy's BLAS) through threadpoolctl, those loaded later through their
    variables. Without it, every worker would start one thread per core, and they would fight."""
    from threadpoolctl import threadpool_limits

    for variable in THREAD_LIMIT_VARIABLES:
        os.environ[variable] = str(threads)
    _worker["thread_limits"] = threadpool_limits(threads)  # kept: the limits hold while it lives


def _exit_now() -> None:
    """A worker's last act, once the pool has told it to stop (every result is sent by then):
    leave without Python's teardown, which takes seconds with torch and ONNX Runtime loaded
    (4-5 s of a run's wall time on a loaded 2-core machine)."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def _exit_with_parent(parent: int) -> None:
    """End this worker when ``parent`` dies, even by SIGKILL: the kernel's parent-death signal on
    Linux, and a watchdog thread that polls the parent's pid everywhere (and covers the race of a
    parent that died before the signal was armed)."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        except (OSError, AttributeError):
            pass

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=watch, name="lookalike-parent-watch", daemon=True).start()


def _describe_all(paths: list) -> list[Described | ImageError]:
    return [_describe(path) for path in paths]


def _describe(path: str | Path) -> Described | ImageError:
    _ready()
    descriptor: Descriptor = _worker["descriptor"]
    local = _worker["local"]
    try:
        data = read_file(path)
        decoded = decode_for(path, descriptor, local, max_pixels=_worker["max_pixels"], data=data)
    except ImageError as exc:
        return exc
    try:
        vector, features = describe_pixels(decoded.pixels, descriptor, local, _worker["compute"])
        return Described(vector, decoded.width, decoded.height, features, hashlib.sha256(data).hexdigest(), len(data))
    except Exception as exc:  # noqa: BLE001 - one odd image must not stop a run of thousands
        return ImageError(path, "descriptor failed", f"{type(exc).__name__}: {exc}")
