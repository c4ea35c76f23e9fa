"""The picture of a training run: loss and validation mAP per epoch."""

from __future__ import annotations

from pathlib import Path


def plot_training(history: list[dict], out: str | Path, title: str = "") -> Path:
    """Write a PNG of the training loss (left axis) and validation mAP (right axis) per epoch."""
    from lookalike.evaluate.plots import _pyplot

    plt = _pyplot()
    fig, left = plt.subplots(figsize=(6, 4), dpi=120)
    trained = [row for row in history if "loss" in row]
    left.plot([r["epoch"] for r in trained], [r["loss"] for r in trained], "o-", color="tab:red", label="loss")
    left.set(xlabel="epoch", ylabel="training loss (mean per step)", title=title)
    left.grid(alpha=0.3)
    validated = [row for row in history if "val_map" in row]
    if validated:
        right = left.twinx()
        right.plot([r["epoch"] for r in validated], [r["val_map"] for r in validated], "s-", color="tab:blue",
                   label="validation mAP")
        right.set_ylabel("validation mAP (held-out classes)")
        fig.legend(loc="lower center", ncol=2, fontsize=8, bbox_to_anchor=(0.5, 0.0))
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out)
    plt.close(fig)
    return out
