"""What the registries of components (descriptors, local features, text encoders) share: classes
named by ``"module:Class"`` entries, imported only when one is asked for (so that listing names
imports nothing heavy), and configs built from a frozen dataclass and keyword overrides."""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any

from lookalike.errors import LookalikeError


def load_entry(entries: dict[str, str], name: str, kind: str) -> type:
    """The class registered as ``name`` in ``entries``; an unknown name lists the valid ones."""
    if name not in entries:
        raise LookalikeError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(entries))}")
    module, _, attr = entries[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def configure(owner: str, config_type: type, config: Any, overrides: dict[str, Any]) -> Any:
    """``config`` (default: ``config_type()``) with ``overrides`` applied; ``owner`` names the
    component in the error an unknown option or a config of the wrong type raises."""
    config = config_type() if config is None else config
    if not isinstance(config, config_type):
        raise LookalikeError(f"{owner}: config must be a {config_type.__name__}")
    fields = {f.name for f in dataclasses.fields(config_type)}
    unknown = sorted(set(overrides) - fields)
    if unknown:
        raise LookalikeError(f"{owner}: unknown option(s) {', '.join(unknown)}; "
                             f"valid: {', '.join(sorted(fields)) or 'none'}")
    return dataclasses.replace(config, **overrides)
