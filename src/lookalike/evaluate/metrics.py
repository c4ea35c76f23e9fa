"""Score rankings against a protocol: mAP, mP@k, mR@k, top-1, per variant and per attack."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lookalike.evaluate.ap import average_precision, plain_average_precision, positive_ranks
from lookalike.io.protocol import Protocol

#: Revisited Oxford/Paris (Radenović et al., CVPR 2018): which images count as positives and
#: which are ignored in each setup.
REVISITED = {
    "easy": (("easy",), ("junk", "hard")),
    "medium": (("easy", "hard"), ("junk",)),
    "hard": (("hard",), ("junk", "easy")),
}


def score_query(ranking: np.ndarray, ok: Sequence[int], junk: Sequence[int], ks: Sequence[int]) -> dict:
    """All per-query measures for one ranking (database indices, best first)."""
    ranks = positive_ranks(ranking, np.asarray(ok, dtype=np.int64), np.asarray(junk, dtype=np.int64))
    n_pos = len(np.setdiff1d(ok, junk))
    return {
        "ranks": ranks,
        "n_positives": n_pos,
        "ap": average_precision(ranks, n_pos),
        "ap_plain": plain_average_precision(ranks, n_pos),
        "top1": bool(len(ranks) and ranks[0] == 0),
        "precision": {k: float((ranks < k).sum() / k) for k in ks},
        "recall": {k: float((ranks < k).sum() / n_pos) if n_pos else float("nan") for k in ks},
    }


def summarise(scores: list[dict], ks: Sequence[int]) -> dict[str, Any]:
    """Means over the queries that have at least one positive (others are counted, not scored)."""
    valid = [s for s in scores if s["n_positives"] > 0]
    mean = (lambda values: float(np.mean(values)) if values else float("nan"))
    return {
        "map": mean([s["ap"] for s in valid]),
        "map_plain": mean([s["ap_plain"] for s in valid]),
        "top1": mean([s["top1"] for s in valid]),
        "mp@k": {str(k): mean([s["precision"][k] for s in valid]) for k in ks},
        "mr@k": {str(k): mean([s["recall"][k] for s in valid]) for k in ks},
        "queries": len(valid),
        "queries_without_positives": len(scores) - len(valid),
    }


def evaluate_rankings(
    rankings: Sequence[np.ndarray] | np.ndarray, protocol: Protocol, ks: Sequence[int] = (1, 5, 10)
) -> dict[str, Any]:
    """Evaluate one ranking per query (database indices, best first) on ``protocol``.

    Returns JSON-ready results: ``map`` (revisited: the medium setup), ``map_plain``, ``top1``,
    ``mp@k``, ``mr@k``, ``per_query``; ``variants`` (easy/medium/hard) for revisited protocols;
    ``per_attack`` and ``per_family`` when the protocol has ``qattack``/``qfamily``.
    """
    if len(rankings) != len(protocol.gnd):
        raise ValueError(f"{len(rankings)} rankings for {len(protocol.gnd)} queries")
    setups = REVISITED if protocol.revisited else {"main": (("ok",), ("junk",))}
    per_setup = {
        name: [
            score_query(ranking, _union(g, positive), _union(g, ignored), ks)
            for ranking, g in zip(rankings, protocol.gnd)
        ]
        for name, (positive, ignored) in setups.items()
    }
    main = per_setup["medium" if protocol.revisited else "main"]
    result: dict[str, Any] = summarise(main, ks)
    result["per_query"] = [
        {"query": q, "ap": s["ap"], "top1": s["top1"]} for q, s in zip(protocol.qimlist, main)
    ]
    if protocol.revisited:
        result["variants"] = {name: summarise(scores, ks) for name, scores in per_setup.items()}
        for name, scores in per_setup.items():
            for row, s in zip(result["per_query"], scores):
                row[f"ap_{name}"] = s["ap"]
    for key, groups in (("per_attack", protocol.qattack), ("per_family", protocol.qfamily)):
        if groups:
            result[key] = {
                group: summarise([s for s, g in zip(main, groups) if g == group], ks)
                for group in dict.fromkeys(groups)
            }
    # ranks for plots, dropped before writing JSON: overall, then per variant or query family
    result["_scores"] = main
    if protocol.revisited:
        result["_scores_by_group"] = per_setup
    elif protocol.qfamily or protocol.qattack:
        groups = protocol.qfamily or protocol.qattack
        result["_scores_by_group"] = {
            g: [s for s, q in zip(main, groups) if q == g] for g in dict.fromkeys(groups)
        }
    return result


def pr_curve(scores: list[dict], levels: int = 101) -> tuple[np.ndarray, np.ndarray]:
    """Mean interpolated precision at evenly spaced recall levels, over queries with positives."""
    recall = np.linspace(0.0, 1.0, levels)
    curves = []
    for s in scores:
        n_pos = s["n_positives"]
        if n_pos == 0:
            continue
        ranks = s["ranks"]
        found = np.arange(1, len(ranks) + 1)
        precision = found / (ranks + 1.0)
        query_recall = found / n_pos
        # interpolated precision: best precision at any recall >= the level
        best_after = np.maximum.accumulate(precision[::-1])[::-1] if len(ranks) else precision
        index = np.searchsorted(query_recall, recall - 1e-12)
        padded = np.append(best_after, 0.0)
        curves.append(padded[index])
    return recall, (np.mean(curves, axis=0) if curves else np.zeros(levels))


def _union(entry: dict[str, list[int]], keys: Sequence[str]) -> list[int]:
    return sorted({i for key in keys for i in entry.get(key, [])})
