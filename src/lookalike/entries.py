"""Registries of classes named by ``"module:Class"`` entries, imported only when one is asked for,
so that listing names imports nothing heavy (descriptors, local features, text encoders)."""

from __future__ import annotations

import importlib

from lookalike.errors import LookalikeError


def load_entry(entries: dict[str, str], name: str, kind: str) -> type:
    """The class registered as ``name`` in ``entries``; an unknown name lists the valid ones."""
    if name not in entries:
        raise LookalikeError(f"unknown {kind} {name!r}; choose one of: {', '.join(sorted(entries))}")
    module, _, attr = entries[name].partition(":")
    return getattr(importlib.import_module(module), attr)
