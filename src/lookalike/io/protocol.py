"""Benchmark protocols: which images form the database, which are queries, which answers count.

The JSON format (documented in ``docs/protocol.md``) is the one of revisitop's ``gnd`` files, as
used in ``shared/data``: ``imlist``, ``qimlist`` and per query ``gnd`` entries with ``ok`` and
``junk`` (classic), or ``easy``, ``hard`` and ``junk`` (revisited Oxford/Paris), plus optional
``labels``, ``qattack`` and ``qfamily`` for copy detection.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lookalike.errors import ProtocolError


@dataclass
class Protocol:
    """A parsed protocol file. Image paths are relative to ``root``."""

    name: str
    root: Path
    imlist: list[str]
    qimlist: list[str]
    gnd: list[dict[str, list[int]]]
    labels: dict[str, list[Any]] = field(default_factory=dict)
    qattack: list[str] | None = None
    qfamily: list[str] | None = None

    @property
    def revisited(self) -> bool:
        """True for the revisited protocol (``easy``/``hard`` per query) of Radenović et al. 2018."""
        return "easy" in self.gnd[0]

    def database_paths(self) -> list[Path]:
        return [self.root / p for p in self.imlist]

    def query_paths(self) -> list[Path]:
        return [self.root / p for p in self.qimlist]


def load_protocol(path: str | Path, images: str | Path | None = None) -> Protocol:
    """Read and validate a protocol JSON; images default to the ``images/`` folder beside it."""
    path = Path(path)
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ProtocolError(f"{path}: no such protocol file") from None
    except (OSError, ValueError) as exc:
        raise ProtocolError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise ProtocolError(f"{path}: expected a JSON object")
    for key in ("imlist", "qimlist", "gnd"):
        if not isinstance(data.get(key), list):
            raise ProtocolError(f"{path}: missing list {key!r} (see docs/protocol.md)")
    n_db, n_q = len(data["imlist"]), len(data["qimlist"])
    if not n_q or not n_db:
        raise ProtocolError(f"{path}: {'qimlist' if not n_q else 'imlist'} is empty; a protocol needs "
                            "database images and at least one query")
    for key in ("imlist", "qimlist"):
        bad = next((i for i, name in enumerate(data[key]) if not isinstance(name, str) or not name), None)
        if bad is not None:
            raise ProtocolError(f"{path}: {key}[{bad}] is {data[key][bad]!r}, not an image path; "
                                "paths are strings relative to the image folder")
    if not all(isinstance(entry, dict) for entry in data["gnd"]):
        raise ProtocolError(f"{path}: every gnd entry should be an object with 'ok' and 'junk' lists")
    if len(data["gnd"]) != n_q:
        raise ProtocolError(f"{path}: gnd has {len(data['gnd'])} entries for {n_q} queries")
    keys = ("easy", "hard", "junk") if data["gnd"] and "easy" in data["gnd"][0] else ("ok", "junk")
    for i, entry in enumerate(data["gnd"]):
        for key in keys:
            values = entry.get(key, [] if key == "junk" else None)
            if not isinstance(values, list):
                raise ProtocolError(f"{path}: gnd[{i}] has no list {key!r}")
            if any(not isinstance(v, int) or not 0 <= v < n_db for v in values):
                raise ProtocolError(f"{path}: gnd[{i}].{key} has an index outside 0..{n_db - 1}")
    for key in ("qattack", "qfamily"):
        if key in data and len(data[key]) != n_q:
            raise ProtocolError(f"{path}: {key} has {len(data[key])} entries for {n_q} queries")
    for label, values in data.get("labels", {}).items():
        if len(values) != n_db:
            raise ProtocolError(f"{path}: labels.{label} has {len(values)} entries for {n_db} images")
    root = Path(images) if images is not None else path.parent / "images"
    if not root.is_dir():
        raise ProtocolError(f"{root}: image folder not found; pass it with --images")
    return Protocol(
        name=data.get("name", path.stem),
        root=root,
        imlist=data["imlist"],
        qimlist=data["qimlist"],
        gnd=[{k: list(e.get(k, [])) for k in keys} for e in data["gnd"]],
        labels=data.get("labels", {}),
        qattack=data.get("qattack"),
        qfamily=data.get("qfamily"),
    )
