"""mAP, speed and size of bag of words, VLAD, Fisher vectors and a spatial pyramid on SIFT.

    python benchmarks/local_aggregation.py --data ../shared/data --out bench-output/local

SIFT (RootSIFT, at most 1,000 detected keypoints on the image shrunk to 512 px) is extracted
once per dataset, in parallel; each variant then learns its vocabulary on the database images
(unsupervised: up to 300 descriptors per image, at most 200k) and encodes every image from the
same features. Prints markdown tables and writes results.json and a plot of mAP against k.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import create
from lookalike.descriptors.aggregate.registered import PER_IMAGE
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import rank_all
from lookalike.pipelines.extract import extract
from lookalike.sampling import evenly_spaced

DATASETS = {"eth80": "instance.json", "landmarks": "full.json", "copydays": "full.json"}
VARIANTS = [  # label, descriptor, options
    ("bow k=16", "bow", dict(k=16)),
    ("bow k=64", "bow", dict(k=64)),
    ("bow k=1k", "bow", dict(k=1000)),
    ("bow k=20k", "bow", dict(k=20000)),
    ("vlad k=16", "vlad", dict(k=16)),
    ("vlad k=64", "vlad", dict(k=64)),
    ("fisher k=16", "fisher", dict(k=16)),
    ("fisher k=64", "fisher", dict(k=64)),
    ("vlad k=16 pca64 pyramid", "vlad", dict(k=16, pca=64, pyramid=True)),
]


def local_features(descriptor, pixels):
    return descriptor.local_features(pixels)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("bench-output/local"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS))
    parser.add_argument("--variants", nargs="+", default=[v[0] for v in VARIANTS],
                        help="labels of the variants to run; results merge into OUT/results.json")
    parser.add_argument("--from-json", action="store_true", help="only redraw tables and plot")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "results.json"
    rows = json.loads(saved.read_text())["rows"] if saved.exists() else []
    if not args.from_json:
        variants = [v for v in VARIANTS if v[0] in args.variants]
        for dataset in args.datasets:
            label = f"{dataset}/{Path(DATASETS[dataset]).stem}"
            new = run_dataset(args.data / dataset / DATASETS[dataset], label, args.out, variants)
            done = {(r["protocol"], r["variant"]) for r in new}
            rows = [r for r in rows if (r["protocol"], r["variant"]) not in done] + new
            saved.write_text(json.dumps({"rows": rows}, indent=1))
    order = {v[0]: i for i, v in enumerate(VARIANTS)}
    rows.sort(key=lambda r: (list(DATASETS).index(r["protocol"].split("/")[0]), order.get(r["variant"], 99)))
    print_table(rows)
    plot(rows, args.out / "map_vs_k.png")


def run_dataset(protocol_file: Path, label: str, out: Path, variants: list) -> list[dict]:
    protocol = load_protocol(protocol_file)
    db_paths, q_paths = protocol.database_paths(), protocol.query_paths()
    unique = list(dict.fromkeys(db_paths + q_paths))
    start = time.perf_counter()
    features = {p: r.vector for p, r in
                extract(create("vlad"), unique, progress=f"SIFT {label}", compute=local_features)}
    sift_ms = 1000 * (time.perf_counter() - start) / len(unique)
    counts = [len(f.descriptors) for f in features.values()]
    print(f"{label}: SIFT of {len(unique)} images, {np.mean(counts):.0f} keypoints each, "
          f"{sift_ms:.1f} ms/image (both cores)", flush=True)
    training = [evenly_spaced(features[p].descriptors, PER_IMAGE) for p in db_paths]
    rows = []
    for name, kind, options in variants:
        start = time.perf_counter()
        descriptor = create(kind, **options).fit(training, out / f"{label.replace('/', '-')}-{name.replace(' ', '_')}.npz")
        train_s = time.perf_counter() - start
        start = time.perf_counter()
        vectors = {p: descriptor.encode_features(features[p]) for p in unique}
        encode_ms = 1000 * (time.perf_counter() - start) / len(unique)
        rankings = rank_all(np.stack([vectors[p] for p in db_paths]), np.stack([vectors[p] for p in q_paths]),
                            descriptor.sparse)
        result = evaluate_rankings(rankings, protocol)
        nonzero = np.mean([np.count_nonzero(v) for v in vectors.values()])
        rows.append({"protocol": label, "variant": name, "map": result["map"], "top1": result["top1"],
                     "dim": descriptor.dim, "nonzero": float(nonzero), "train_s": train_s,
                     "sift_ms": sift_ms, "encode_ms": encode_ms,
                     "per_family": {k: v["map"] for k, v in result.get("per_family", {}).items()}})
        print(f"  {name}: mAP {result['map']:.3f}, train {train_s:.1f} s, encode {encode_ms:.1f} ms/image",
              flush=True)
    return rows


def print_table(rows: list[dict]) -> None:
    print("\n| protocol | variant | mAP | top-1 | dim | non-zeros | bytes/image (float32) | vocabulary training s | encode ms/image |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['protocol']} | {r['variant']} | {r['map']:.3f} | {r['top1']:.3f} | {r['dim']:,} | "
              f"{r['nonzero']:,.0f} | {4 * r['dim']:,} | {r['train_s']:.1f} | {r['encode_ms']:.1f} |")
    families = [r for r in rows if r["per_family"]]
    if families:
        names = list(families[0]["per_family"])
        print("\n| copydays variant | " + " | ".join(names) + " |\n|---|" + "---|" * len(names))
        for r in families:
            print(f"| {r['variant']} | " + " | ".join(f"{r['per_family'][n]:.3f}" for n in names) + " |")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    fig, axes = plt.subplots(1, len(protocols), figsize=(4.2 * len(protocols), 3.8), dpi=110, squeeze=False)
    for ax, protocol in zip(axes[0], protocols):
        for method, marker in (("bow", "o"), ("vlad", "s"), ("fisher", "^")):
            points = [(int(r["variant"].split("k=")[1].split()[0].replace("k", "000")), r["map"])
                      for r in rows if r["protocol"] == protocol and r["variant"].startswith(method)
                      and "pyramid" not in r["variant"]]
            if points:
                ks, maps = zip(*sorted(points))
                ax.plot(ks, maps, marker=marker, label=method)
        ax.set(xscale="log", xlabel="k (words or Gaussians)", ylabel="mAP", title=protocol)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
