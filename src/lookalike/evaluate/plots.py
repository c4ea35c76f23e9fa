"""Plots of evaluation results (matplotlib, extra ``[plot]``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lookalike.errors import LookalikeError


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise LookalikeError(
            "plots need matplotlib: pip install 'lookalike[plot]'"
        ) from None
    return plt


def plot_precision_recall(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], out: str | Path, title: str = ""
) -> Path:
    """Write a PNG with one precision-recall curve per entry of ``curves`` (label -> recall, precision)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5), dpi=120)
    for label, (recall, precision) in curves.items():
        ax.plot(recall, precision, label=label, linewidth=1.8)
    ax.set(xlabel="recall", ylabel="precision (interpolated, mean over queries)", xlim=(0, 1),
           ylim=(0, 1.02), title=title)
    ax.grid(alpha=0.3)
    if len(curves) > 1:
        ax.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
