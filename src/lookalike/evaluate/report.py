"""Turn evaluation results into a printed summary, JSON and a precision-recall plot."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lookalike.evaluate.metrics import pr_curve
from lookalike.io.protocol import Protocol


def format_summary(result: dict[str, Any]) -> str:
    """A few readable lines: mAP, mP@k, mR@k, top-1, and the variant or attack breakdowns."""
    lines = [
        f"{result.get('protocol', '')}  {result['descriptor']['name']}  ({result['dim']}-D, "
        f"{result['ms_per_image']:.1f} ms/image)",
        _line("all", result),
    ]
    rerank = result.get("rerank")
    if rerank:
        lines.append(f"re-ranked by {' + '.join(rerank['steps'])}: mAP {rerank['map_before']:.4f} -> "
                     f"{result['map']:.4f}, {rerank['ms_per_query']:.1f} ms/query")
    for key in ("variants", "per_family", "per_attack"):
        for name, sub in result.get(key, {}).items():
            lines.append(_line(f"  {name}", sub))
    return "\n".join(lines)


def _line(label: str, r: dict[str, Any]) -> str:
    ps = " ".join(f"P@{k} {v:.3f}" for k, v in r["mp@k"].items())
    return f"{label:<28} mAP {r['map']:.4f}  top-1 {r['top1']:.3f}  {ps}  ({r['queries']} queries)"


def to_json(result: dict[str, Any], protocol: Protocol, save_rankings: bool = False) -> dict[str, Any]:
    """The result without internal fields; with ``rankings`` (database indices) if asked."""
    out = {k: v for k, v in result.items() if not k.startswith("_")}
    if save_rankings:
        out["rankings"] = [row.tolist() for row in result["_rankings"]]
    return out


def plot_result(result: dict[str, Any], out: str | Path) -> Path:
    """Precision-recall plot: one curve overall, plus one per family or variant when present."""
    from lookalike.evaluate.plots import plot_precision_recall

    curves = {f"all (mAP {result['map']:.3f})": pr_curve(result["_scores"])}
    groups = result.get("_scores_by_group", {})
    for name, scores in groups.items():
        curves[name] = pr_curve(scores)
    title = f"{result.get('protocol', '')} — {result['descriptor']['name']}"
    return plot_precision_recall(curves, out, title)
