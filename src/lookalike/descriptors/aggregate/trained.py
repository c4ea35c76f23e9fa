"""The files of trained aggregation layers, read by the registered descriptors: NetVLAD's centres
and soft assignment, and the Fisher vector + MLP hybrid. Plain ``.npz`` arrays, read with
``allow_pickle=False``; numpy only, so that describing never needs the training code."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.norms import l2_normalise


def save_arrays(out: str | Path, kind: str, **arrays) -> Path:
    """Write ``arrays`` and ``kind`` to ``out`` (.npz) atomically; returns the resolved path."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(out.name + ".tmp.npz")
    np.savez(tmp, kind=kind, **arrays)
    os.replace(tmp, out)
    return out.resolve()


def read_arrays(path: str | Path, kind: str, required: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays of a ``kind`` file, checked to hold ``required``; a one-line error otherwise."""
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {key: data[key] for key in data.files}
    except (OSError, ValueError) as exc:
        raise LookalikeError(f"{path}: not a lookalike {kind} file ({exc})") from None
    missing = [key for key in ("kind", *required) if key not in arrays]
    if missing or str(arrays["kind"]) != kind:
        found = str(arrays.get("kind", "nothing"))
        raise LookalikeError(f"{path}: holds {found} (missing {', '.join(missing) or 'nothing'}), not {kind}; "
                             f"train a {kind} file")
    return arrays


def read_netvlad(path: str | Path, k: int) -> dict[str, np.ndarray]:
    """NetVLAD's ``centres (K, C)``, ``alpha`` and, once trained (``lookalike finetune -d netvlad``),
    the learnt assignment ``assign_weight (K, C)`` and ``assign_bias (K,)``."""
    arrays = read_arrays(path, "netvlad", ("k", "centres", "alpha"))
    if int(arrays["k"]) != k:
        raise LookalikeError(f"{path}: NetVLAD with k={int(arrays['k'])}, not k={k}; use -s k={int(arrays['k'])}")
    clusters, channels = arrays["centres"].shape
    if "assign_weight" in arrays and (arrays["assign_weight"].shape != (clusters, channels)
                                      or arrays.get("assign_bias", np.zeros(0)).shape != (clusters,)):
        raise LookalikeError(f"{path}: the assignment does not match {clusters} centres of {channels}-D")
    return arrays


def fvfc_project(fv: np.ndarray, model: dict[str, np.ndarray]) -> np.ndarray:
    """The Fisher vector + MLP hybrid's head (Perronnin & Larlus, CVPR 2015) on Fisher vectors
    ``(N, D)``: the learnt PCA, ``Linear -> ReLU -> Linear``, L2 normalisation; ``(N, out)`` float32."""
    reduced = (fv - model["fv_mean"]) @ model["fv_components"].T
    hidden = np.maximum(reduced @ model["w1"].T + model["b1"], 0.0)
    out = hidden @ model["w2"].T + model["b2"]
    return l2_normalise(out).astype(np.float32)
