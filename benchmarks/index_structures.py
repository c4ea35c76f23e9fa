"""Index structures: memory against accuracy and speed, on real descriptors and at scale.

    python benchmarks/index_structures.py real --data ../shared/data     # 1. mAP against bytes
    python benchmarks/index_structures.py synthetic --n 1000000 --dim 128  # 2. and 4.
    python benchmarks/index_structures.py overhead                        # 3.
    python benchmarks/index_structures.py tables                          # print all tables, plots

1. GeM (EfficientNet-Lite0, 1,280-D) of landmarks and eth80, stored in each structure (trained on
   the database vectors themselves) and ranked in full: mAP against bytes per image.
2. Synthetic clustered vectors (a mixture of 1,000 Gaussians, so that neighbours mean something):
   recall@1 and recall@10 against exact search, queries per second in batches of 1,000 and one
   query at a time, build (train + add) time and bytes per vector, at 10k, 100k and ``--n``
   vectors: the scaling table and the recall/speed Pareto plot.
3. The same search through a lookalike collection and through the raw faiss index it holds.

Results go to OUT/<part>.json; plots to OUT/*.png.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import faiss
import numpy as np

from lookalike.descriptors import create
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.index import structures
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import describe_protocol

REAL = ["Flat", "PCA256,Flat", "PCA128,Flat", "PCA64,Flat", "PQ64", "PQ32", "PQ16", "PQ8",
        "IVF{nlist},PQ32", "IVF{nlist},PQ16", "OPQ32_256,IVF{nlist},PQ32", "OPQ16_128,IVF{nlist},PQ16"]
# OPQ is left to part 1: training it on 100,000 vectors takes tens of minutes on this CPU
SYNTHETIC = ["Flat", "HNSW32", "IVF{nlist},Flat", "IVF{nlist},SQ8", "IVF{nlist},PQ{m}", "IVF{nlist},PQ{m2}",
             "IVF{nlist},PQ{m2},RFlat"]
SEARCH = [  # (parameter, values) swept for each structure that has it
    ("nprobe", (1, 4, 16, 64)),
    ("efSearch", (16, 64, 256)),
]


# ---- 1. real descriptors ---------------------------------------------------------------------
def real(args) -> None:
    rows = []
    for dataset, file in (("landmarks", "full.json"), ("eth80", "instance.json")):
        protocol = load_protocol(args.data / dataset / file)
        described = describe_protocol(protocol, create("gem"), progress=True)
        db, queries = described.database, described.queries
        nlist = max(4, int(np.sqrt(len(db))) // 2)
        for template in REAL:
            factory = template.format(nlist=nlist)
            start = time.perf_counter()
            index = structures.build(factory, db.shape[1])
            if not index.is_trained:
                index.train(db)
            index.add_with_ids(db, np.arange(len(db), dtype=np.int64))
            build_s = time.perf_counter() - start
            if "IVF" in factory:
                structures.set_search_parameters(index, nprobe=nlist)  # every list: only the codes err
            _, ranking = index.search(queries, len(db))
            result = evaluate_rankings(ranking, protocol)
            rows.append({"protocol": protocol.name, "factory": factory, "map": result["map"],
                         "bytes": structures.bytes_per_vector(factory, db.shape[1]) - 8, "build_s": build_s})
            print(f"{protocol.name:16s} {factory:28s} mAP {result['map']:.3f}  "
                  f"{rows[-1]['bytes']:6.0f} B/image  build {build_s:.1f} s", flush=True)
    (args.out / "real.json").write_text(json.dumps(rows, indent=1))


# ---- 2. synthetic, at scale ------------------------------------------------------------------
def mixture(n: int, dim: int, seed: int, components: int = 1000) -> np.ndarray:
    """``n`` L2-normalised points of a mixture of ``components`` Gaussians of random scales."""
    rng = np.random.default_rng(0)  # the same mixture for database and queries
    centres = rng.normal(size=(components, dim)).astype(np.float32)
    spread = rng.uniform(0.3, 0.8, components).astype(np.float32)
    draw = np.random.default_rng(seed)
    out = np.empty((n, dim), np.float32)
    for start in range(0, n, 100_000):
        which = draw.integers(0, components, min(100_000, n - start))
        block = centres[which] + spread[which, None] * draw.normal(size=(len(which), dim)).astype(np.float32)
        out[start:start + len(which)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def synthetic(args) -> None:
    saved = args.out / "synthetic.json"
    rows = json.loads(saved.read_text()) if saved.exists() else []
    queries = mixture(1000, args.dim, seed=1)
    for n in args.sizes or (10_000, 100_000, args.n):
        data = mixture(n, args.dim, seed=2)
        exact = faiss.IndexFlatIP(args.dim)
        exact.add(data)
        truth = exact.search(queries, 10)[1]
        del exact
        m, m2 = args.dim // 4, args.dim // 8  # 4 and 8 dimensions per sub-quantizer
        nlist = 2 ** int(round(np.log2(4 * np.sqrt(n))))
        for template in SYNTHETIC:
            factory = template.format(nlist=nlist, m=m, m2=m2)
            if factory.startswith("HNSW") and n * args.dim > args.max_hnsw:
                continue
            rows = [r for r in rows if (r["n"], r["dim"], r["factory"]) != (n, args.dim, factory)]
            rows += measure(factory, data, queries, truth, n)
            saved.write_text(json.dumps(rows, indent=1))


def measure(factory: str, data: np.ndarray, queries: np.ndarray, truth: np.ndarray, n: int) -> list[dict]:
    dim = data.shape[1]
    start = time.perf_counter()
    index = structures.build(factory, dim)
    if not index.is_trained:
        index.train(data[np.linspace(0, n - 1, min(n, 100_000)).astype(np.int64)])
    train_s = time.perf_counter() - start
    index.add_with_ids(data, np.arange(n, dtype=np.int64))
    build_s = time.perf_counter() - start
    size = len(faiss.serialize_index(index))
    settings = [dict()]
    for name, values in SEARCH:
        if name in structures.parameters_of(index):
            settings = [dict(s, **{name: v}) for s in settings for v in values]
    rows = []
    for setting in settings:
        structures.set_search_parameters(index, **setting)
        start = time.perf_counter()
        _, found = index.search(queries, 10)
        batch_qps = len(queries) / (time.perf_counter() - start)
        singles = queries[:200]
        start = time.perf_counter()
        for q in singles:
            index.search(q[None], 10)
        latency_ms = 1000 * (time.perf_counter() - start) / len(singles)
        recall1 = float(np.mean(found[:, 0] == truth[:, 0]))
        recall10 = float(np.mean([len(set(f) & set(t)) / 10 for f, t in zip(found, truth)]))
        rows.append({"n": n, "dim": dim, "factory": factory, "search": setting, "recall@1": recall1,
                     "recall@10": recall10, "batch_qps": batch_qps, "latency_ms": latency_ms,
                     "train_s": train_s, "build_s": build_s, "bytes_per_vector": size / n})
        print(f"n={n:>9,} d={dim} {factory:28s} {json.dumps(setting):18s} R@1 {recall1:.3f} R@10 {recall10:.3f} "
              f"{batch_qps:8.0f} q/s batch {latency_ms:7.2f} ms/query  build {build_s:6.1f} s  "
              f"{size / n:7.1f} B/vector", flush=True)
    return rows


# ---- 3. the library's overhead -----------------------------------------------------------------
def overhead(args) -> None:
    import tempfile

    from lookalike.index import Collection
    from lookalike.index.metadata import Entry

    data, queries = mixture(100_000, 128, seed=2), mixture(1000, 128, seed=1)
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        for factory in ("Flat", "IVF1024,PQ32", "HNSW32"):
            store = Collection.create(Path(folder) / factory.replace(",", "_"), create("edge-hist"), index=factory)
            store.write(Entry(f"/{i}", f"{i}", 0, 0, 0, v) for i, v in enumerate(data))
            raw = store._index  # the very faiss index the collection searches
            for label, batch in (("batch of 1000", queries), ("one query", queries[:300])):
                timings = {"lookalike": [], "faiss": []}
                for _ in range(3):
                    for who, run in (("lookalike", lambda q: store.search(q, 10)),
                                     ("faiss", lambda q: raw.search(q, 10))):
                        start = time.perf_counter()
                        if label == "one query":
                            for q in batch:
                                run(q[None])
                        else:
                            run(batch)
                        timings[who].append(time.perf_counter() - start)
                ratio = min(timings["faiss"]) / min(timings["lookalike"])
                rows.append({"factory": factory, "mode": label, "lookalike_s": min(timings["lookalike"]),
                             "faiss_s": min(timings["faiss"]), "ratio": ratio})
                print(f"{factory:14s} {label:14s} faiss {min(timings['faiss']):.4f} s, lookalike "
                      f"{min(timings['lookalike']):.4f} s: speed ratio {ratio:.3f}", flush=True)
            store.close()
    (args.out / "overhead.json").write_text(json.dumps(rows, indent=1))


# ---- tables and plots --------------------------------------------------------------------------
def tables(args) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    if (args.out / "real.json").exists():
        rows = json.loads((args.out / "real.json").read_text())
        print("\n| protocol | structure | bytes/image | mAP |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r['protocol']} | `{r['factory']}` | {r['bytes']:.0f} | {r['map']:.3f} |")
        protocols = list(dict.fromkeys(r["protocol"] for r in rows))
        fig, axes = plt.subplots(1, len(protocols), figsize=(6 * len(protocols), 4.2), dpi=110, squeeze=False)
        for ax, protocol in zip(axes[0], protocols):
            mine = [r for r in rows if r["protocol"] == protocol]
            for family, colour in (("PCA", "C0"), ("OPQ", "C3"), ("IVF", "C2"), ("PQ", "C1"), ("Flat", "k")):
                points = [r for r in mine if r["factory"].startswith(family)]
                mine = [r for r in mine if r not in points]
                ax.scatter([r["bytes"] for r in points], [r["map"] for r in points], color=colour, label=family)
                for r in points:
                    ax.annotate(r["factory"].replace(",Flat", ""), (r["bytes"], r["map"]), fontsize=6,
                                xytext=(3, 3), textcoords="offset points")
            ax.set(xscale="log", xlabel="bytes per image (codes, without ids)", ylabel="mAP",
                   title=f"GeM 1280-D on {protocol}: mAP against memory")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.out / "map_vs_bytes.png")
    if (args.out / "synthetic.json").exists():
        rows = json.loads((args.out / "synthetic.json").read_text())
        print("\n| n | d | structure | search | R@1 | R@10 | batch q/s | ms/query | build s | bytes/vector |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            setting = ", ".join(f"{k}={v}" for k, v in r["search"].items())
            print(f"| {r['n']:,} | {r['dim']} | `{r['factory']}` | {setting} | {r['recall@1']:.3f} | "
                  f"{r['recall@10']:.3f} | {r['batch_qps']:,.0f} | {r['latency_ms']:.2f} | {r['build_s']:.1f} | "
                  f"{r['bytes_per_vector']:.0f} |")
        family = lambda factory: re.sub(r"IVF\d+", "IVF(4 sqrt n)", factory)  # noqa: E731
        defaults = [r for r in rows if r["search"] in ({}, {"nprobe": 16}, {"efSearch": 64})]
        for dim in sorted({r["dim"] for r in rows}):
            mine = [r for r in defaults if r["dim"] == dim]
            sizes = sorted({r["n"] for r in mine})
            print(f"\n| d={dim}: ms/query, memory, R@10 | " + " | ".join(f"n={n:,}" for n in sizes) + " |")
            print("|---|" + "---|" * len(sizes))
            for structure in dict.fromkeys(family(r["factory"]) for r in mine):
                cells = []
                for n in sizes:
                    match = [r for r in mine if family(r["factory"]) == structure and r["n"] == n]
                    cells.append(f"{match[0]['latency_ms']:.2f} ms, {match[0]['bytes_per_vector'] * n / 1e6:,.0f} MB, "
                                 f"{match[0]['recall@10']:.2f}" if match else "")
                print(f"| `{structure}` | " + " | ".join(cells) + " |")
        largest = max(r["n"] for r in rows)
        dims = sorted({r["dim"] for r in rows if r["n"] == largest})
        fig, axes = plt.subplots(1, len(dims), figsize=(6.5 * len(dims), 4.5), dpi=110, squeeze=False)
        for ax, dim in zip(axes[0], dims):
            mine = [r for r in rows if r["n"] == largest and r["dim"] == dim]
            for i, factory in enumerate(dict.fromkeys(r["factory"] for r in mine)):
                points = sorted((r["recall@10"], r["batch_qps"]) for r in mine if r["factory"] == factory)
                ax.plot(*zip(*points), marker="o", color=f"C{i}", label=factory)
            ax.set(yscale="log", xlabel="recall@10", ylabel="queries / second (batches of 1000)",
                   title=f"{largest:,} vectors, d={dim}")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(args.out / "pareto.png")
    if (args.out / "overhead.json").exists():
        print("\n| structure | queries | raw faiss s | lookalike s | speed ratio |\n|---|---|---|---|---|")
        for r in json.loads((args.out / "overhead.json").read_text()):
            print(f"| `{r['factory']}` | {r['mode']} | {r['faiss_s']:.4f} | {r['lookalike_s']:.4f} | {r['ratio']:.3f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("part", choices=["real", "synthetic", "overhead", "tables"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("bench-output/index"))
    parser.add_argument("--n", type=int, default=1_000_000)
    parser.add_argument("--sizes", type=int, nargs="+", help="database sizes [default: 10k, 100k, N]")
    parser.add_argument("--dim", type=int, default=128)
    parser.add_argument("--max-hnsw", type=float, default=2e8, help="skip HNSW above n * dim (build time)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    {"real": real, "synthetic": synthetic, "overhead": overhead, "tables": tables}[args.part](args)


if __name__ == "__main__":
    main()
