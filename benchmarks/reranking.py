"""Re-ranking on the shared benchmarks: spatial verification (SIFT, DELF), AQE, alpha-QE, DBA + QE,
diffusion and their best combination, over the best global descriptor of each dataset.

    python benchmarks/reranking.py features --data ../shared/data --cache CACHE   # once, the long part
    python benchmarks/reranking.py tune --data ../shared/data --cache CACHE       # on eth80/instance-train
    python benchmarks/reranking.py table --data ../shared/data --cache CACHE      # every benchmark
    python benchmarks/reranking.py scaling --cache CACHE                          # diffusion, DBA at 1k-100k
    python benchmarks/reranking.py report --cache CACHE                           # markdown tables

``features`` describes every image once and keeps the global vectors and local features in
CACHE (npz files), so that ``table`` only re-ranks. Global descriptors, the best measured in
docs/benchmarks.md: GeM (eth80), GeM at 3 scales + PCA-whitening learnt on the copydays
database (landmarks), ``cnn-fc`` (copydays). DELF's PCA is learnt on other images than the
evaluated ones: eth80 on ``instance-train``'s database, landmarks on copydays', copydays on
landmarks'. Hyper-parameters are chosen on ``eth80/instance-train`` (see ``tune``) and kept for
every benchmark.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import create
from lookalike.descriptors.local.registry import create_local
from lookalike.descriptors.local.sift import LocalFeatures
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import describe_protocol
from lookalike.pipelines.reranking import describe_local, rerank_rankings, search_all, train_local
from lookalike.pipelines.training import train_whitening
from lookalike.rerank.spatial import VerificationTiming
from lookalike.rerank.steps import QueryExpansion, SpatialVerification, parse_steps

PROTOCOLS = {"eth80": "instance.json", "landmarks": "full.json", "copydays": "full.json"}
#: dataset whose database images teach DELF's PCA (and landmarks' whitening)
LEARN_FROM = {"eth80": ("eth80", "instance-train.json"), "landmarks": ("copydays", "full.json"),
              "copydays": ("landmarks", "full.json")}
GEM3 = {"scales": (1.0, 0.7071, 0.5)}


# ---- cache ----------------------------------------------------------------------------------------
def save_local(path: Path, names: list[str], features: list[LocalFeatures]) -> None:
    counts = np.array([len(f.keypoints) for f in features], np.int64)
    np.savez(path, names=np.array(names), counts=counts, sizes=np.array([f.size for f in features], np.int64),
             keypoints=np.concatenate([f.keypoints for f in features]).astype(np.float32),
             descriptors=np.concatenate([f.descriptors for f in features]).astype(np.float16))


def load_local(path: Path) -> dict[str, LocalFeatures]:
    with np.load(path, allow_pickle=False) as data:
        names, counts, sizes = data["names"], data["counts"], data["sizes"]
        keypoints, descriptors = data["keypoints"], data["descriptors"].astype(np.float32)
    ends = np.cumsum(counts)
    return {str(n): LocalFeatures(keypoints[e - c:e], descriptors[e - c:e], tuple(int(v) for v in s))
            for n, c, e, s in zip(names, counts, ends, sizes)}


def global_descriptor(dataset: str, data: Path, cache: Path):
    if dataset == "eth80":
        return create("gem")
    if dataset == "copydays":
        return create("cnn-fc")
    whitening = cache / "landmarks-gem3-whitening.npz"
    source, protocol = LEARN_FROM[dataset]
    if not whitening.is_file():
        train_whitening(create("gem", **GEM3), load_protocol(data / source / protocol).database_paths(),
                        whitening, shrinkage=0.1)
    return create("gem", **GEM3, whitening=str(whitening))


def features(args) -> None:
    args.cache.mkdir(parents=True, exist_ok=True)
    for dataset in args.datasets:
        protocol = load_protocol(args.data / dataset / PROTOCOLS[dataset])
        names = list(dict.fromkeys(protocol.imlist + protocol.qimlist))
        paths = [protocol.root / n for n in names]
        out = args.cache / f"{dataset}-global.npz"
        if not out.is_file():
            descriptor = global_descriptor(dataset, args.data, args.cache)
            start = time.perf_counter()
            described = describe_protocol(protocol, descriptor)
            vectors = dict(zip(protocol.imlist, described.database)) | dict(zip(protocol.qimlist, described.queries))
            np.savez(out, names=np.array(names), vectors=np.stack([vectors[n] for n in names]),
                     spec=json.dumps(descriptor.spec()), seconds=time.perf_counter() - start)
            print(f"{out}: {descriptor.name} in {time.perf_counter() - start:.0f} s", flush=True)
        for kind in ("sift", "delf"):
            out = args.cache / f"{dataset}-{kind}.npz"
            if out.is_file():
                continue
            extractor, pca = create_local(kind), args.cache / f"{dataset}-{kind}-pca.npz"
            if not extractor.trained and pca.is_file():  # learnt by an earlier run
                extractor = create_local(kind, pca=str(pca))
            elif not extractor.trained:
                source, name = LEARN_FROM[dataset]
                extractor = train_local(extractor, load_protocol(args.data / source / name).database_paths(), pca)
            start = time.perf_counter()
            local = describe_local(extractor, paths)
            seconds = time.perf_counter() - start
            save_local(out, names, local)
            (args.cache / f"{dataset}-{kind}.json").write_text(json.dumps(
                {"seconds": seconds, "images": len(paths), "spec": extractor.spec(),
                 "keypoints_per_image": float(np.mean([len(f.keypoints) for f in local]))}))
            print(f"{out}: {kind} in {seconds:.0f} s", flush=True)


# ---- evaluation ------------------------------------------------------------------------------------
BENCHMARKS = {"landmarks/full": ("landmarks", "full.json"), "copydays/full": ("copydays", "full.json"),
              "eth80/instance-test": ("eth80", "instance-test.json"), "eth80/instance": ("eth80", "instance.json")}
TUNE = ("eth80", "instance-train.json")
TOP = 100  # candidates verified per query


class Benchmark:
    """A protocol with its cached global vectors and local features (database rows, query rows)."""

    def __init__(self, data: Path, cache: Path, dataset: str, name: str) -> None:
        self.dataset, self.cache = dataset, cache
        self.protocol = load_protocol(data / dataset / name)
        self.label = f"{dataset}/{Path(name).stem}"
        with np.load(cache / f"{dataset}-global.npz", allow_pickle=False) as stored:
            row = {str(n): i for i, n in enumerate(stored["names"])}
            vectors = stored["vectors"]
            self.descriptor = json.loads(str(stored["spec"]))
        self.database = vectors[[row[n] for n in self.protocol.imlist]]
        self.queries = vectors[[row[n] for n in self.protocol.qimlist]]

    def has(self, kind: str) -> bool:
        """Whether the local features ``kind`` were extracted for this dataset."""
        return (self.cache / f"{self.dataset}-{kind}.npz").is_file()

    def local(self, kind: str) -> tuple[list[LocalFeatures], list[LocalFeatures]]:
        features = load_local(self.cache / f"{self.dataset}-{kind}.npz")
        return [features[n] for n in self.protocol.imlist], [features[n] for n in self.protocol.qimlist]

    def ranking(self) -> tuple[np.ndarray, np.ndarray]:
        return search_all(self.database, self.queries)


_worker: dict = {}


def _init_verifier(cache: str, dataset: str, imlist: list[str], qimlist: list[str], kind: str):
    features = load_local(Path(cache) / f"{dataset}-{kind}.npz")
    _worker["step"] = SpatialVerification(TOP).fit(local=[features[n] for n in imlist])
    _worker["queries"] = [features[n] for n in qimlist]


def _verify_queries(args) -> tuple[np.ndarray, np.ndarray]:
    rows, ids = args
    return _worker["step"].verify([_worker["queries"][r] for r in rows], ids)


def inlier_table(bench: Benchmark, kind: str, workers: int = 2) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(ids, inliers, matches)``, each ``(Q, TOP)``: the global top candidates of each query,
    their RANSAC inlier counts and tentative matches, computed once in ``workers`` processes and
    cached."""
    import multiprocessing

    out = bench.cache / f"{bench.label.replace('/', '-')}-{kind}-top{TOP}.npz"
    if out.is_file():
        with np.load(out) as stored:
            return stored["ids"], stored["inliers"], stored["matches"]
    ids = bench.ranking()[1][:, :TOP]
    chunks = [(rows, ids[rows]) for rows in np.array_split(np.arange(len(ids)), 8 * workers)]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(
            workers, _init_verifier, (str(bench.cache), bench.dataset, bench.protocol.imlist,
                                      bench.protocol.qimlist, kind)) as pool:
        inliers, matches = (np.concatenate(part) for part in zip(*pool.map(_verify_queries, chunks)))
    print(f"{out.name}: {time.perf_counter() - start:.0f} s", flush=True)
    np.savez(out, ids=ids, inliers=inliers, matches=matches)
    return ids, inliers, matches


class CachedVerification(SpatialVerification):
    """Spatial verification whose inlier counts come from :func:`inlier_table` (same candidates:
    the global top ``TOP``), so that every chain starting with ``sv`` reuses one computation."""

    needs_local = False

    def __init__(self, table: tuple[np.ndarray, np.ndarray, np.ndarray], min_inliers: int,
                 inlier_ratio: float = 0.0) -> None:
        ids, inliers, matches = table
        super().__init__(ids.shape[1], min_inliers=min_inliers, inlier_ratio=inlier_ratio)
        self.table = [dict(zip(row_ids.tolist(), zip(a.tolist(), b.tolist())))
                      for row_ids, a, b in zip(ids, inliers, matches)]

    def fit(self, database=None, ids=None, local=None):
        return self

    def verify(self, local, ids):
        top = min(self.top, ids.shape[1])
        pairs = np.array([[table.get(int(i), (0, 0)) for i in row[:top]] for table, row in zip(self.table, ids)])
        return pairs[..., 0], pairs[..., 1]


def run_chain(bench: Benchmark, steps: list) -> tuple[dict, float]:
    """Evaluate a chain of steps; returns the result and the online ms per query."""
    if not steps:
        return evaluate_rankings(bench.ranking()[1], bench.protocol), 0.0
    ids, timing = rerank_rankings(steps, bench.database, bench.queries)
    return evaluate_rankings(ids, bench.protocol), timing["cpu_ms_per_query"]


def time_verification(bench: Benchmark, kind: str, queries: int = 5) -> dict:
    """Real spatial verification of the top ``TOP`` for the first ``queries`` queries: wall and
    CPU ms per query, and the share of it spent matching against RANSAC."""
    database_local, query_local = bench.local(kind)
    step = SpatialVerification(TOP).fit(local=database_local)
    ids = bench.ranking()[1][:queries, :TOP]
    step.verify(query_local[:1], ids[:1])  # warm up: imports, first allocations
    step.timing = VerificationTiming()
    step.verify(query_local[:queries], ids)
    t = step.timing
    return {"wall_ms_per_query": 1000 * (t.matching + t.ransac) / queries,
            "ms_per_query": 1000 * (t.matching_cpu + t.ransac_cpu) / queries, "matching_share": t.matching_share,
            "matching_cpu_ms": 1000 * t.matching_cpu / queries, "ransac_cpu_ms": 1000 * t.ransac_cpu / queries,
            "keypoints": float(np.mean([len(f.keypoints) for f in query_local[:queries]]))}


def verify_all(args) -> None:
    """Inlier tables of every benchmark (and of the tuning split) with each local feature."""
    for dataset, name in (TUNE, *BENCHMARKS.values()):
        bench = Benchmark(args.data, args.cache, dataset, name)
        if dataset in args.datasets:
            for kind in ("sift", "delf"):
                if bench.has(kind):
                    inlier_table(bench, kind)


def chains(bench: Benchmark, params: dict) -> dict[str, list]:
    """The table's columns: name -> steps (the ``sv`` ones read the cached inlier tables)."""
    def sv(kind):
        return CachedVerification(*inlier_table(bench, kind), min_inliers=params[f"min_inliers_{kind}"])

    def qe(verified_only=False):
        return QueryExpansion(params["qe_k"], verified_only=verified_only)

    def alpha_qe():
        return parse_steps("qe", qe_k=params["aqe_k"], alpha=3.0)[0]

    def dba_qe():
        return parse_steps("dba,qe", dba_k=params["dba_k"], dba_alpha=3.0, qe_k=params["dba_qe_k"], alpha=3.0)

    def diffusion():
        return parse_steps("diffusion", diffusion_k=params["diffusion_k"], kq=params["kq"],
                           diffusion_alpha=params["diffusion_alpha"])[0]

    columns = {
        "global": [], "+SV (SIFT)": [sv("sift")], "+SV (DELF)": [sv("delf")] if bench.has("delf") else None,
        "+AQE": [qe()],
        "+alpha-QE": [alpha_qe()], "+DBA+QE": dba_qe(), "+diffusion": [diffusion()],
        "SV + alpha-QE": [sv(params["best_local"]), alpha_qe()],
        "SV + verified QE": [sv(params["best_local"]), qe(verified_only=True)],
        "SV + DBA+QE": [sv(params["best_local"]), *dba_qe()],
        "SV + diffusion": [sv(params["best_local"]), diffusion()],
        "DBA+QE + diffusion": [*parse_steps("dba", dba_k=params["dba_k"], dba_alpha=3.0), diffusion()],
        "SV + DBA + diffusion": [sv(params["best_local"]),
                                 *parse_steps("dba", dba_k=params["dba_k"], dba_alpha=3.0), diffusion()],
    }
    return {name: steps for name, steps in columns.items() if steps is not None}


COMBINATIONS = ("SV + alpha-QE", "SV + verified QE", "SV + DBA+QE", "SV + diffusion", "DBA+QE + diffusion",
                "SV + DBA + diffusion")


def tune(args) -> None:
    """Choose every hyper-parameter on eth80/instance-train (no test object), one family at a time."""
    bench = Benchmark(args.data, args.cache, *TUNE)
    found: dict = {}

    def best(label, candidates):
        scores = {value: run_chain(bench, make())[0]["map"] for value, make in candidates.items()}
        print(f"{label}: " + ", ".join(f"{v}: {m:.4f}" for v, m in scores.items()), flush=True)
        return max(scores, key=scores.get), scores

    print(f"global: {run_chain(bench, [])[0]['map']:.4f}")
    for kind in ("sift", "delf"):
        ids, inliers = inlier_table(bench, kind)
        found[f"min_inliers_{kind}"], _ = best(f"sv {kind} min_inliers", {
            m: (lambda m=m: [CachedVerification(ids, inliers, m)]) for m in (4, 6, 8, 12, 16, 24, 32, 64, 128)})
    found["qe_k"], _ = best("AQE k", {k: (lambda k=k: parse_steps("qe", qe_k=k)) for k in (1, 2, 3, 5, 10, 20)})
    found["aqe_k"], _ = best("alpha-QE k", {
        k: (lambda k=k: parse_steps("qe", qe_k=k, alpha=3.0)) for k in (2, 5, 10, 20, 40)})
    pairs, _ = best("DBA k, QE k (alpha 3)", {
        (d, q): (lambda d=d, q=q: parse_steps("dba,qe", dba_k=d, dba_alpha=3.0, qe_k=q, alpha=3.0))
        for d in (2, 3, 5, 10) for q in (1, 2, 5, 10)})
    found["dba_k"], found["dba_qe_k"] = pairs
    triples, _ = best("diffusion k, alpha, kq", {
        (k, a, kq): (lambda k=k, a=a, kq=kq: parse_steps("diffusion", diffusion_k=k, diffusion_alpha=a, kq=kq))
        for k in (5, 10, 20, 50) for a in (0.5, 0.9, 0.99) for kq in (1, 5)})
    found["diffusion_k"], found["diffusion_alpha"], found["kq"] = triples
    sv_maps = {kind: run_chain(bench, [CachedVerification(*inlier_table(bench, kind), found[f"min_inliers_{kind}"])])
               [0]["map"] for kind in ("sift", "delf")}
    found["best_local"] = max(sv_maps, key=sv_maps.get)
    columns = chains(bench, found)
    found["best_combination"], _ = best("combination", {name: (lambda name=name: columns[name])
                                                        for name in COMBINATIONS})
    print(json.dumps(found))
    (args.cache / "tuned.json").write_text(json.dumps(found))


def oracle(bench: Benchmark, params: dict) -> dict:
    """The best of a small grid of chains and parameters chosen on this benchmark itself: an
    optimistic bound that shows how much tuning on the test data would add (not a fair result)."""
    grid = {}
    for m in (8, 12, 16, 24):
        grid[f"SV {params['best_local']} min_inliers={m}"] = lambda m=m: [
            CachedVerification(*inlier_table(bench, params["best_local"]), min_inliers=m)]
    for k in (10, 20):
        for a in (0.5, 0.9):
            for kq in (1, 3):
                name = f"diffusion k={k} alpha={a} kq={kq}"
                grid[name] = lambda k=k, a=a, kq=kq: parse_steps("diffusion", diffusion_k=k, diffusion_alpha=a, kq=kq)
                for m in (12, 16):
                    grid[f"SV {params['best_local']} min_inliers={m} + {name}"] = lambda k=k, a=a, kq=kq, m=m: [
                        CachedVerification(*inlier_table(bench, params["best_local"]), min_inliers=m),
                        *parse_steps("diffusion", diffusion_k=k, diffusion_alpha=a, kq=kq)]
    results = {}
    for name, make in grid.items():
        result, ms = run_chain(bench, make())
        results[name] = {"map": result["map"], "ms": ms,
                         "per_attack": {a: r["map"] for a, r in result.get("per_attack", {}).items()}}
    best = max(results, key=lambda n: results[n]["map"])
    print(f"{bench.label} oracle: {best} {results[best]['map']:.4f}", flush=True)
    return {"best": best, **results[best]}


def table(args) -> None:
    params = json.loads((args.cache / "tuned.json").read_text())
    results: dict = {}
    for label, (dataset, name) in BENCHMARKS.items():
        if dataset not in args.datasets:
            continue
        bench = Benchmark(args.data, args.cache, dataset, name)
        columns = chains(bench, params)
        results[label] = {"descriptor": bench.descriptor["name"], "columns": {}}
        for column, steps in columns.items():
            result, ms = run_chain(bench, steps)
            results[label]["columns"][column] = {
                "map": result["map"], "ms": ms,
                "per_attack": {a: r["map"] for a, r in result.get("per_attack", {}).items()}}
            print(f"{label} {column}: {result['map']:.4f} ({ms:.1f} ms/query)", flush=True)
        results[label]["oracle"] = oracle(bench, params)
        results[label]["sv_timing"] = {kind: time_verification(bench, kind) for kind in ("sift", "delf")
                                       if bench.has(kind)}
        print(label, results[label]["sv_timing"], flush=True)
    out = args.cache / "table.json"
    previous = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps(previous | results, indent=1))


def clustered(n: int, dim: int, seed: int = 0) -> np.ndarray:
    """``n`` L2-normalised vectors from a mixture of ``n / 50`` Gaussians (so neighbours mean something)."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(max(1, n // 50), dim)).astype(np.float32)
    x = centres[rng.integers(0, len(centres), n)] + 0.5 * rng.normal(size=(n, dim)).astype(np.float32)
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def scaling(args) -> None:
    """Offline cost, memory and ms per query of diffusion (full and truncated), DBA and QE on
    synthetic clustered vectors; 20 queries each, one at a time (as a search serves them)."""
    from lookalike.rerank.steps import DatabaseAugmentation, Diffusion, QueryExpansion

    rows = []
    for n in (1_000, 10_000, 100_000):
        database, queries = clustered(n, args.dim), clustered(20, args.dim, seed=1)
        start = time.process_time()
        full = Diffusion(50, kq=10).fit(database)
        build = time.process_time() - start
        graph_bytes = sum(a.nbytes for a in (full.affinity_.data, full.affinity_.indices, full.affinity_.indptr))
        scores, ids = search_all(database, queries)
        k = min(n, 3000)  # what a search would hand over: the top few thousand
        scores, ids = scores[:, :k], ids[:, :k]
        timings = {}
        start = time.process_time()
        dba = DatabaseAugmentation(2, alpha=3.0).fit(database)
        dba_fit = time.process_time() - start
        # QE and DBA re-rank what a search returns (100); diffusion the top few thousand
        for label, step, truncate, top in (
                ("diffusion", full, 0, k), ("diffusion truncated 2000", full, 2000, k),
                ("alpha-QE k=2", QueryExpansion(2, alpha=3.0).fit(database), 0, 100), ("DBA search", dba, 0, 100)):
            step.truncate = truncate  # a call-time parameter: the fitted graph is the same
            start = time.process_time()  # CPU time: the machine is shared, see run_chain
            for q in range(len(queries)):
                step(queries[q:q + 1], scores[q:q + 1, :top], ids[q:q + 1, :top])
            timings[label] = 1000 * (time.process_time() - start) / len(queries)
        rows.append({"n": n, "graph_build_s": build, "graph_mb": graph_bytes / 1e6,
                     "edges_per_node": full.affinity_.nnz / n, "dba_fit_s": dba_fit, **timings})
        print(rows[-1], flush=True)
    (args.cache / "scaling.json").write_text(json.dumps(rows, indent=1))


COLUMNS = ("global", "+SV (SIFT)", "+SV (DELF)", "+AQE", "+alpha-QE", "+DBA+QE", "+diffusion")


def report(args) -> None:
    """Markdown tables from the cached results (what docs/benchmarks.md shows)."""
    results = json.loads((args.cache / "table.json").read_text())
    params = json.loads((args.cache / "tuned.json").read_text())
    best = params["best_combination"]
    print("| benchmark | " + " | ".join(COLUMNS) + f" | best: {best} | best on this data |")
    print("|---" * (len(COLUMNS) + 3) + "|")
    rows = []
    for label, result in results.items():
        columns = result["columns"]
        sv_ms = {kind: t["ms_per_query"] for kind, t in result["sv_timing"].items()}
        ms = {name: c["ms"] for name, c in columns.items()}
        for kind, name in (("sift", "+SV (SIFT)"), ("delf", "+SV (DELF)")):
            if kind in sv_ms:
                ms[name] = sv_ms[kind]
        for name in columns:
            if name.startswith("SV "):
                ms[name] = columns[name]["ms"] + sv_ms[params["best_local"]]

        def cell(name):
            if name not in columns:
                return "not measured"
            return f"{columns[name]['map']:.3f}" + (f" ({ms[name]:.0f} ms)" if ms[name] else "")
        oracle = result["oracle"]
        columns[oracle["best"]], ms[oracle["best"]] = oracle, oracle["ms"] + (
            sv_ms.get(params["best_local"], 0.0) if oracle["best"].startswith("SV") else 0.0)
        top = max((n for n in columns), key=lambda n: columns[n]["map"])
        rows.append(f"| {label} ({result['descriptor']}) | " + " | ".join(cell(n) for n in COLUMNS)
                    + f" | {cell(best)} | {cell(top)}: {top} |")
        if "copydays" in label:
            attacks = sorted(columns["global"]["per_attack"])
            for attack in attacks:
                values = [f"{columns[n]['per_attack'][attack]:.3f}" if n in columns else "-" for n in (*COLUMNS, best)]
                rows.append(f"| copydays {attack} | " + " | ".join(values)
                            + f" | {columns[top]['per_attack'][attack]:.3f} |")
    print("\n".join(rows))
    print()
    print("| benchmark | local features | CPU ms/query, 100 candidates | wall ms (shared machine) "
          "| share matching | query keypoints |")
    print("|---|---|---|---|---|---|")
    for label, result in results.items():
        for kind, t in result["sv_timing"].items():
            print(f"| {label} | {kind} | {t['ms_per_query']:.0f} | {t['wall_ms_per_query']:.0f} "
                  f"| {t['matching_share']:.2f} | {t['keypoints']:.0f} |")
    scaling = json.loads((args.cache / "scaling.json").read_text())
    print()
    print("| database | graph build s | graph MB | edges/node | diffusion ms/query | truncated (2,000) ms/query "
          "| alpha-QE ms/query | DBA fit s | DBA search ms/query |")
    print("|---" * 9 + "|")
    for r in scaling:
        print(f"| {r['n']:,} | {r['graph_build_s']:.2f} | {r['graph_mb']:.1f} | {r['edges_per_node']:.1f} "
              f"| {r['diffusion']:.1f} | {r['diffusion truncated 2000']:.1f} | {r['alpha-QE k=2']:.2f} "
              f"| {r['dba_fit_s']:.2f} | {r['DBA search']:.2f} |")
    print()
    print(json.dumps(params))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["features", "verify", "tune", "table", "scaling", "report"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/rerank-cache"))
    parser.add_argument("--datasets", nargs="+", default=list(PROTOCOLS))
    parser.add_argument("--dim", type=int, default=128, help="scaling: vector dimension")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    {"features": features, "verify": verify_all, "tune": tune, "table": table, "scaling": scaling, "report": report}[args.command](args)


if __name__ == "__main__":
    main()
