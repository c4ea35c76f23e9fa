"""Run a backbone's forward pass: eager torch, or ONNX Runtime on a graph exported once and cached.

On a small CPU, ONNX Runtime runs EfficientNet-Lite0 about 3-4x faster than eager torch (see
``docs/benchmarks.md``), so ``auto`` picks it whenever ``onnxruntime`` is installed. The graph
is exported from the very same torch module, with dynamic batch and image sizes, into
``$LOOKALIKE_CACHE/onnx`` (default ``~/.cache/lookalike``), named by the backbone's weights digest.

Both engines map ``[B, 3, H, W]`` float32 pixels to the feature map ``[B, C, h, w]`` as a numpy
array. The ONNX engine imports torch only to export the graph the first time: once the file is
cached, it starts its session on the first image it is given, and a process that only searches
never loads torch (``docs/design.md``, "Collections that open instantly").
"""

from __future__ import annotations

import importlib.util
import os
import tempfile
import warnings
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lookalike.descriptors.cnn.catalog import cache_dir, weights_key
from lookalike.errors import LookalikeError

if TYPE_CHECKING:
    from lookalike.descriptors.cnn.backbone import Backbone

ENGINES = ("auto", "onnx", "torch")
OPSET = 17


def default_threads() -> int:
    """``$LOOKALIKE_THREADS`` (a worker process's share of the cores), else one per core."""
    if os.environ.get("LOOKALIKE_THREADS", "").isdigit():
        return max(1, int(os.environ["LOOKALIKE_THREADS"]))
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


class TorchEngine:
    """Eager torch, channels-last (faster convolutions on CPU), no autograd."""

    name = "torch"

    def __init__(self, backbone: Backbone, threads: int) -> None:
        import torch

        torch.set_num_threads(threads)
        self.backbone = backbone.to(memory_format=torch.channels_last)

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(pixels).contiguous(memory_format=torch.channels_last)
            return self.backbone(x).contiguous().numpy()


class OnnxEngine:
    """ONNX Runtime on the exported graph of the backbone named ``key`` (see :func:`onnx_file`);
    ``build`` makes the torch module, called only if the graph must be exported. The session
    starts on the first call."""

    name = "onnx"

    def __init__(self, key: str, build: Callable[[], Backbone], threads: int) -> None:
        self.key, self.build, self.threads = key, build, threads
        self._session = None

    @property
    def session(self):
        if self._session is None:
            import onnxruntime

            options = onnxruntime.SessionOptions()
            options.intra_op_num_threads = self.threads
            options.inter_op_num_threads = 1
            options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
            # idle threads sleep instead of spinning: a spinning thread takes a core from the others
            # (and from other processes) between operators; with no spinning a one-image search costs
            # 10-15% less CPU on a busy machine (docs/design.md, "Collections that open instantly")
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
            path = onnx_file(self.key) or export_onnx(self.build())
            self._session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        return self._session

    def __call__(self, pixels: np.ndarray) -> np.ndarray:
        return self.session.run(None, {"pixels": pixels})[0]


def onnx_file(key: str) -> Path | None:
    """The cached graph of the backbone ``key``, or ``None`` before its first export. Any torch
    version's export will do: each computes the same network from the same weights."""
    found = sorted((cache_dir() / "onnx").glob(f"{key}-opset{OPSET}-torch*.onnx"))
    return found[-1] if found else None


def export_onnx(backbone: Backbone) -> Path:
    """The cached ONNX file of ``backbone``, exported on first use (atomically)."""
    import torch

    path = cache_dir() / "onnx" / f"{backbone.key}-opset{OPSET}-torch{torch.__version__.split('+')[0]}.onnx"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    sample = torch.rand(1, 3, 64, 64) * 255
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the TorchScript exporter announces its deprecation
            torch.onnx.export(
                backbone, (sample,), tmp, input_names=["pixels"], output_names=["features"],
                dynamic_axes={"pixels": {0: "batch", 2: "height", 3: "width"},
                              "features": {0: "batch", 2: "rows", 3: "columns"}},
                opset_version=OPSET, dynamo=False)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def onnx_available() -> bool:
    """Whether ONNX Runtime and the ``onnx`` package the exporter writes with are installed."""
    return all(importlib.util.find_spec(name) is not None for name in ("onnxruntime", "onnx"))


@lru_cache(maxsize=4)
def load_engine(backbone: str, weights: str, engine: str = "auto", threads: int = 0):
    """A cached engine running ``backbone`` (see :func:`load_backbone`) with ``threads`` threads
    (0 = :func:`default_threads`). The ONNX engine builds nothing until its first image."""
    if engine not in ENGINES:
        raise LookalikeError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    if engine == "onnx" and not onnx_available():
        raise LookalikeError("engine=onnx needs onnxruntime and onnx: pip install onnxruntime onnx "
                             "(or lookalike[deep])")
    threads = threads or default_threads()

    def build() -> Backbone:
        from lookalike.descriptors.cnn.backbone import load_backbone

        return load_backbone(backbone, weights)

    if engine == "torch" or (engine == "auto" and not onnx_available()):
        return TorchEngine(build(), threads)
    return OnnxEngine(weights_key(backbone, weights), build, threads)
