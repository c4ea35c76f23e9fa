"""mAP, speed and size of the global descriptors on the shared benchmarks.

    python benchmarks/global_descriptors.py --data ../shared/data --out bench-output/global

Prints a markdown table (the one in docs/benchmarks.md), writes results.json and a per-attack
plot for copydays. Each dataset's images are described once per descriptor; eth80's instance and
category protocols share their images and vectors. For color-hist it also ranks by the exact
chi-square kernel (vectorised brute force) to measure what the kernel map's approximation costs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import create
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import describe_protocol, rank_all
from lookalike.postprocess.kernel_map import additive_kernel

DATASETS = {  # dataset -> protocols sharing one image list
    "eth80": ["instance.json", "category.json"],
    "landmarks": ["full.json"],
    "copydays": ["full.json"],
}
DESCRIPTORS = ["color-hist", "edge-hist", "gist"]


def exact_chi2_rankings(descriptor, described) -> np.ndarray:
    db = descriptor.histogram_from_vector(described.database)
    queries = descriptor.histogram_from_vector(described.queries)
    return np.argsort(-additive_kernel(queries, db, "chi2"), axis=1, kind="stable")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("bench-output/global"))
    parser.add_argument("--descriptors", nargs="+", default=DESCRIPTORS)
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--from-json", action="store_true", help="only redraw tables and plot from OUT/results.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.from_json:
        rows = json.loads((args.out / "results.json").read_text())["rows"]
        print_tables(rows)
        plot_attacks(rows, args.out / "copydays_attacks.png")
        return

    rows, results = [], {}
    for dataset, files in DATASETS.items():
        protocols = [load_protocol(args.data / dataset / f) for f in files]
        for name in args.descriptors:
            descriptor = create(name)
            described = describe_protocol(protocols[0], descriptor, workers=args.workers)
            start = time.perf_counter()
            rankings = rank_all(described.database, described.queries)
            search_ms = 1000 * (time.perf_counter() - start) / len(described.queries)
            variants = [(name, rankings)]
            if name == "color-hist":
                variants.append(("color-hist, exact chi2", exact_chi2_rankings(descriptor, described)))
            for label, ranks in variants:
                for file, protocol in zip(files, protocols):
                    key = f"{dataset}/{Path(file).stem}"
                    r = evaluate_rankings(ranks, protocol)
                    results[f"{key}|{label}"] = {k: v for k, v in r.items() if not k.startswith("_")}
                    rows.append({
                        "protocol": key, "descriptor": label, "map": r["map"], "top1": r["top1"],
                        "mp@10": r["mp@k"]["10"],
                        "ms_per_image": 1000 * described.seconds / described.images,
                        "search_ms_per_query": search_ms,
                        "bytes_per_image": 4 * descriptor.dim,
                        "skipped": len(described.skipped),
                        "per_attack": {a: v["map"] for a, v in r.get("per_attack", {}).items()},
                        "per_family": {a: v["map"] for a, v in r.get("per_family", {}).items()},
                    })
            print(f"{dataset} {name}: {described.images} images in {described.seconds:.1f} s", flush=True)

    (args.out / "results.json").write_text(json.dumps({"rows": rows, "full": results}, indent=1))
    print_tables(rows)
    plot_attacks(rows, args.out / "copydays_attacks.png")


def print_tables(rows: list[dict]) -> None:
    print("\n| protocol | descriptor | mAP | top-1 | mP@10 | ms/image | bytes/image | search ms/query |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['protocol']} | {r['descriptor']} | {r['map']:.3f} | {r['top1']:.3f} | "
              f"{r['mp@10']:.3f} | {r['ms_per_image']:.1f} | {r['bytes_per_image']:,} | "
              f"{r['search_ms_per_query']:.3f} |")
    copy_rows = [r for r in rows if r["per_attack"]]
    if not copy_rows:
        return
    attacks = list(copy_rows[0]["per_family"]) + list(copy_rows[0]["per_attack"])
    print("\n| copydays attack | " + " | ".join(r["descriptor"] for r in copy_rows) + " |")
    print("|---|" + "---|" * len(copy_rows))
    for attack in attacks:
        values = [r["per_family"].get(attack, r["per_attack"].get(attack)) for r in copy_rows]
        label = f"**{attack}** (family)" if attack in copy_rows[0]["per_family"] else attack
        print(f"| {label} | " + " | ".join(f"{v:.3f}" for v in values) + " |")


def plot_attacks(rows: list[dict], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    copy_rows = [r for r in rows if r["per_attack"]]
    if not copy_rows:
        return
    attacks = list(copy_rows[0]["per_attack"])
    fig, ax = plt.subplots(figsize=(12, 4.5), dpi=110)
    width = 0.8 / len(copy_rows)
    for i, r in enumerate(copy_rows):
        ax.bar(np.arange(len(attacks)) + i * width, [r["per_attack"][a] for a in attacks], width,
               label=f"{r['descriptor']} (mAP {r['map']:.3f})")
    ax.set_xticks(np.arange(len(attacks)) + 0.4 - width / 2, attacks, rotation=60, ha="right", fontsize=8)
    ax.set(ylabel="mAP", ylim=(0, 1.25), title="copydays: mAP per attack, global descriptors")
    ax.legend(fontsize=8, loc="upper center", ncol=len(copy_rows))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(out)
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
