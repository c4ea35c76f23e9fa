"""Does EMD re-ranking of a short list help colour histograms? mAP and cost per query.

    python benchmarks/emd_rerank.py --data ../shared/data --shortlist 50

Ranks landmarks (and the first copydays queries of each attack family) by color-hist with the
chi-square kernel map, then re-scores the best ``--shortlist`` by the Earth Mover's Distance.
"""

from __future__ import annotations

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import create
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import describe_protocol, rank_all
from lookalike.rerank.emd import emd_rerank


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--shortlist", type=int, default=50)
    parser.add_argument("--copydays-queries", type=int, default=150, help="copydays queries used (spread over attacks)")
    args = parser.parse_args()

    descriptor = create("color-hist")
    centers = descriptor.bin_centers()
    landmarks = load_protocol(args.data / "landmarks" / "full.json")
    copydays = load_protocol(args.data / "copydays" / "full.json")
    keep = np.linspace(0, len(copydays.qimlist) - 1, args.copydays_queries).astype(int)
    copydays = dataclasses.replace(
        copydays, qimlist=[copydays.qimlist[i] for i in keep], gnd=[copydays.gnd[i] for i in keep],
        qattack=[copydays.qattack[i] for i in keep], qfamily=[copydays.qfamily[i] for i in keep])

    print("| protocol | ranking | mAP | top-1 | ms/query |\n|---|---|---|---|---|")
    for name, protocol in (("landmarks/full", landmarks), (f"copydays ({len(keep)} queries)", copydays)):
        described = describe_protocol(protocol, descriptor, progress=False)
        rankings = rank_all(described.database, described.queries)
        base = evaluate_rankings(rankings, protocol)
        db_hists = descriptor.histogram_from_vector(described.database)
        q_hists = descriptor.histogram_from_vector(described.queries)
        start = time.perf_counter()
        reranked = rankings.copy()
        for i, ranking in enumerate(rankings):
            head = ranking[: args.shortlist]
            _, order = emd_rerank(q_hists[i], db_hists[head], head, centers)
            reranked[i, : args.shortlist] = order
        ms = 1000 * (time.perf_counter() - start) / len(rankings)
        emd = evaluate_rankings(reranked, protocol)
        print(f"| {name} | chi2 kernel map | {base['map']:.3f} | {base['top1']:.3f} | - |")
        print(f"| {name} | + EMD on top {args.shortlist} | {emd['map']:.3f} | {emd['top1']:.3f} | {ms:.0f} |")


if __name__ == "__main__":
    main()
