"""Build descriptors by name. Entries are imported lazily, so listing names imports nothing heavy.

A name is resolved only through code the user chose to run: the built-in table below, classes
given to :func:`register` in this process, and plugins installed as entry points of the group
``lookalike.descriptors`` (``name = "package.module:Class"`` in the plugin's ``pyproject.toml``).
Never through a module path read from a file: a collection's manifest names a descriptor, and
opening it must not import code planted beside it.
"""

from __future__ import annotations

import dataclasses
from importlib.metadata import entry_points
from typing import Any

from lookalike.descriptors.base import Descriptor
from lookalike.entries import load_entry
from lookalike.errors import LookalikeError

#: name -> "module:Class". Later descriptors (local, aggregated, deep) add their lines here.
_ENTRIES: dict[str, str] = {
    "color-hist": "lookalike.descriptors.holistic.color:ColorHistogram",
    "edge-hist": "lookalike.descriptors.holistic.edges:EdgeHistogram",
    "gist": "lookalike.descriptors.holistic.gist:Gist",
    "phash": "lookalike.descriptors.holistic.phash:PerceptualHash",
    "bow": "lookalike.descriptors.aggregate.registered:BagOfWords",
    "vlad": "lookalike.descriptors.aggregate.registered:Vlad",
    "fisher": "lookalike.descriptors.aggregate.registered:Fisher",
    "fvfc": "lookalike.descriptors.aggregate.registered:FisherMlp",
    "cnn-fc": "lookalike.descriptors.cnn.registered:OffTheShelf",
    "mac": "lookalike.descriptors.cnn.registered:Mac",
    "spoc": "lookalike.descriptors.cnn.registered:Spoc",
    "crow": "lookalike.descriptors.cnn.registered:Crow",
    "rmac": "lookalike.descriptors.cnn.registered:Rmac",
    "gem": "lookalike.descriptors.cnn.registered:Gem",
    "netvlad": "lookalike.descriptors.cnn.registered:NetVlad",
    "gem-flip": "lookalike.crossmodal.features:MirroredGem",
}


#: entry-point group through which installed packages add descriptors
PLUGIN_GROUP = "lookalike.descriptors"
_classes: dict[str, type[Descriptor]] = {}  # registered in this process

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



def register(name: str, cls: type[Descriptor]) -> None:
    """Add a descriptor class of your own under ``name``, for this process.

    Worker processes receive the class itself (it pickles by reference to the module the caller
    imported it from); a collection built with it opens where the same name is registered again,
    or installed as a plugin (entry point group ``lookalike.descriptors``).
    """
    if not (isinstance(cls, type) and issubclass(cls, Descriptor)):
        raise LookalikeError(f"register({name!r}, {cls!r}): expected a Descriptor subclass")
    _classes[name] = cls


def available() -> list[str]:
    """Names of every registered descriptor (built in, registered, installed plugins), sorted."""
    return sorted({*_ENTRIES, *_classes, *(ep.name for ep in entry_points(group=PLUGIN_GROUP))})


def descriptor_class(name: str) -> type[Descriptor]:
    """The class registered as ``name``; an unknown name lists the valid ones."""
    if name in _classes:
        return _classes[name]
    if name in _ENTRIES:
        return load_entry(_ENTRIES, name, "descriptor")
    for plugin in entry_points(group=PLUGIN_GROUP, name=name):
        cls = plugin.load()
        if not (isinstance(cls, type) and issubclass(cls, Descriptor)):
            raise LookalikeError(f"plugin {plugin.value} registered as descriptor {name!r} is not a Descriptor")
        _classes[name] = cls
        return cls
    raise LookalikeError(f"unknown descriptor {name!r}; choose one of: {', '.join(available())} "
                         f"(or install the plugin that provides it)")


def create(name: str, config: Any = None, /, **overrides: Any) -> Descriptor:
    """Build descriptor ``name`` with its default config, or ``config``, updated by ``overrides``."""
    return descriptor_class(name)(config, **overrides)


def from_spec(spec: dict[str, Any]) -> Descriptor:
    """Rebuild a descriptor from :meth:`Descriptor.spec` output, found by its registered name.

    Any other key of ``spec`` (older manifests hold a ``"class"`` path) is ignored on purpose.
    """
    if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
        raise LookalikeError(f"descriptor spec {spec!r} should be an object with a 'name'")
    return rebuild(descriptor_class(spec["name"]), spec)


def rebuild(cls: type[Descriptor], spec: dict[str, Any]) -> Descriptor:
    """An instance of ``cls`` with the config of ``spec`` (lists back to tuples)."""
    config = spec.get("config", {})
    if not isinstance(config, dict):
        raise LookalikeError(f"{spec.get('name')}: config {config!r} should be an object")
    known = {f.name for f in dataclasses.fields(cls.Config)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise LookalikeError(f"{spec.get('name')}: unknown option(s) {', '.join(unknown)} in the stored config; "
                             f"valid: {', '.join(sorted(known))}")
    return cls(cls.Config(**{k: tuple(v) if isinstance(v, list) else v for k, v in config.items()}))
