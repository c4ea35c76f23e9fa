"""Describe image files on a Ray cluster with Ray Data, in the order given.

The paths become a Ray dataset; ``map_batches`` runs :class:`DescribeBatch`, a class-based
actor that rebuilds the descriptor once from its spec and describes each file with the very code
the local engine runs (:func:`lookalike.pipelines.extract._describe`), so both engines give the
same vectors and the same per-file errors. The driver collects the results and yields them like
:func:`lookalike.pipelines.extract.extract`; writing the collection stays local.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np

from lookalike.descriptors.base import Descriptor
from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import Described

#: with "0", Ray runs a local cluster on 127.0.0.1 only (its switch for single-machine clusters)
LOOPBACK_ONLY = "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"


class DescribeBatch:
    """Ray Data actor: one descriptor per actor, a batch of paths per call."""

    def __init__(self, cls: type[Descriptor], spec: dict, max_pixels: int, threads: int) -> None:
        from lookalike.pipelines import extract

        extract._init(cls, spec, max_pixels, None, threads)
        self._describe = extract._describe

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``{"index", "path"}`` -> ``{"index", "vector", "width", "height", "reason", "detail"}``;
        a file that fails has an empty ``vector`` and its :class:`ImageError` reason and detail."""
        out: dict[str, list] = {"index": [], "vector": [], "width": [], "height": [], "reason": [], "detail": []}
        for index, path in zip(batch["index"], batch["path"]):
            result = self._describe(str(path))
            failed = isinstance(result, ImageError)
            out["index"].append(int(index))
            out["vector"].append(np.zeros(0, np.float32) if failed else np.asarray(result.vector, np.float32))
            out["width"].append(0 if failed else result.width)
            out["height"].append(0 if failed else result.height)
            out["reason"].append(result.reason if failed else "")
            out["detail"].append(result.detail if failed else "")
        vectors = np.empty(len(out["vector"]), dtype=object)
        vectors[:] = out["vector"]
        return {**{k: np.array(v) for k, v in out.items() if k != "vector"}, "vector": vectors}


def extract_ray(
    descriptor: Descriptor, paths: Sequence[str | Path], *, address: str | None = None, actors: int | None = None,
    batch_size: int = 16, max_pixels: int = DEFAULT_MAX_PIXELS,
) -> Iterator[tuple[Path, Described | ImageError]]:
    """Yield ``(path, Described | ImageError)`` for each path, in the order given, described on
    the Ray cluster at ``address`` (``None``: a local one, or the one ``ray.init`` already joined).

    Args:
        actors: describing actors, each holding one descriptor [default: one per cluster CPU].
        batch_size: paths per actor call.
    """
    if address is None:
        # a cluster started here binds to loopback, not the machine's network address (read by
        # Ray when it is first imported)
        os.environ.setdefault(LOOPBACK_ONLY, "0")
    try:
        import ray
    except ImportError:
        raise LookalikeError("--engine ray needs the scale extra: pip install 'lookalike[scale]'") from None
    if not paths:
        return
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    logging.getLogger("ray.data").setLevel(logging.WARNING)  # its progress lines, once per second
    actors = actors or max(1, int(ray.cluster_resources().get("CPU", 1)))
    dataset = ray.data.from_items([{"index": i, "path": str(p)} for i, p in enumerate(paths)])
    described = dataset.map_batches(DescribeBatch, fn_constructor_args=(type(descriptor), descriptor.spec(), max_pixels, 1),
                                    batch_size=batch_size, batch_format="numpy", concurrency=actors, num_cpus=1)
    results: list = [None] * len(paths)
    for batch in described.iter_batches(batch_format="numpy", batch_size=None):
        for i, vector, width, height, reason, detail in zip(batch["index"], batch["vector"], batch["width"],
                                                             batch["height"], batch["reason"], batch["detail"]):
            path = Path(paths[int(i)])
            results[int(i)] = (ImageError(path, str(reason), str(detail)) if reason
                               else Described(np.asarray(vector, np.float32), int(width), int(height)))
    for path, result in zip(paths, results):
        yield Path(path), result
