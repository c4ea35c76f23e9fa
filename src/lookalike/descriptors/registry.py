"""Build descriptors by name. Entries are imported lazily, so listing names imports nothing heavy."""

from __future__ import annotations

import importlib
from typing import Any

from lookalike.descriptors.base import Descriptor
from lookalike.errors import LookalikeError

#: name -> "module:Class". Later descriptors (local, aggregated, deep) add their lines here.
_ENTRIES: dict[str, str] = {
    "color-hist": "lookalike.descriptors.holistic.color:ColorHistogram",
    "edge-hist": "lookalike.descriptors.holistic.edges:EdgeHistogram",
    "gist": "lookalike.descriptors.holistic.gist:Gist",
    "bow": "lookalike.descriptors.aggregate.registered:BagOfWords",
    "vlad": "lookalike.descriptors.aggregate.registered:Vlad",
    "fisher": "lookalike.descriptors.aggregate.registered:Fisher",
    "cnn-fc": "lookalike.descriptors.cnn.registered:OffTheShelf",
    "mac": "lookalike.descriptors.cnn.registered:Mac",
    "spoc": "lookalike.descriptors.cnn.registered:Spoc",
    "crow": "lookalike.descriptors.cnn.registered:Crow",
    "rmac": "lookalike.descriptors.cnn.registered:Rmac",
    "gem": "lookalike.descriptors.cnn.registered:Gem",
    "netvlad": "lookalike.descriptors.cnn.registered:NetVlad",
}


#: what ``lookalike index`` and ``lookalike duplicates`` use without ``--descriptor``: GeM at three
#: scales, the best general descriptor measured (docs/benchmarks.md, "Deep global descriptors"). The
#: whitened GeM did better on landmarks but needs a whitening learnt on data that may be shipped,
#: and none exists yet (docs/design.md, "Defaults for a newcomer").
DEFAULT_NAME = "gem"
DEFAULT_SETTINGS: dict[str, Any] = {"scales": (1.0, 0.7071, 0.5)}


def default_descriptor() -> Descriptor:
    """The descriptor a new collection gets when the user names none (needs the ``deep`` extra)."""
    import importlib.util

    if importlib.util.find_spec("torch") is None:
        raise LookalikeError("the default descriptor (gem at 3 scales) needs the deep extra: install a CPU torch, "
                             "then pip install 'lookalike[deep]'; or choose one with --descriptor, e.g. gist")
    return create(DEFAULT_NAME, **DEFAULT_SETTINGS)


def register(name: str, target: str | type[Descriptor]) -> None:
    """Add a descriptor of your own: ``target`` is the class or its ``"module:Class"`` path.

    The class must be importable by that path, so that worker processes can rebuild it.
    """
    if not isinstance(target, str):
        target = f"{target.__module__}:{target.__qualname__}"
    _ENTRIES[name] = target


def available() -> list[str]:
    """Names of every registered descriptor, sorted."""
    return sorted(_ENTRIES)


def descriptor_class(name: str) -> type[Descriptor]:
    """The class registered as ``name``; an unknown name lists the valid ones."""
    if name not in _ENTRIES:
        raise LookalikeError(f"unknown descriptor {name!r}; choose one of: {', '.join(available())}")
    return _import(_ENTRIES[name])


def _import(target: str) -> type[Descriptor]:
    module, _, attr = target.partition(":")
    return getattr(importlib.import_module(module), attr)


def create(name: str, config: Any = None, /, **overrides: Any) -> Descriptor:
    """Build descriptor ``name`` with its default config, or ``config``, updated by ``overrides``."""
    return descriptor_class(name)(config, **overrides)


def from_spec(spec: dict[str, Any]) -> Descriptor:
    """Rebuild a descriptor from :meth:`Descriptor.spec` output.

    A name registered in another process (a plugin) is found by the class path in the spec.
    """
    if spec["name"] not in _ENTRIES and "class" in spec:
        cls = _import(spec["class"])
    else:
        cls = descriptor_class(spec["name"])
    config = {k: tuple(v) if isinstance(v, list) else v for k, v in spec["config"].items()}
    return cls(cls.Config(**config))
