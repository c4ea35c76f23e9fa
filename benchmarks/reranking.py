"""Re-ranking on the shared benchmarks: spatial verification (SIFT, DELF), AQE, alpha-QE, DBA + QE,
diffusion and their best combination, over the best global descriptor of each dataset.

    python benchmarks/reranking.py features --data ../shared/data --cache CACHE   # once, the long part
    python benchmarks/reranking.py verify --data ../shared/data --cache CACHE     # inliers of every top 100
    python benchmarks/reranking.py table --data ../shared/data --cache CACHE      # every benchmark
    python benchmarks/reranking.py scaling --cache CACHE                          # diffusion, DBA at 1k-100k
    python benchmarks/reranking.py report --cache CACHE                           # markdown tables

``features`` describes every image once and keeps the global vectors and local features in
CACHE (npz files); ``verify`` matches each query with its global top 100 once and keeps the
inliers and tentative matches, so that ``table`` only re-ranks. Global descriptors, the best
measured in docs/benchmarks.md: GeM (eth80), GeM at 3 scales + PCA-whitening learnt on the
copydays database (landmarks), ``cnn-fc`` (copydays). DELF's PCA is learnt on other images than
the evaluated ones: eth80 on ``instance-train``'s database, landmarks on copydays', copydays on
landmarks'. Every parameter is chosen where the reported queries are not: on
``eth80/instance-train`` for the eth80 rows, and by two-fold cross-validation over the queries
for landmarks and copydays (see :func:`table`).
"""

from __future__ import annotations

import argparse
import json
import os
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
        if not hasattr(self, "_ranking"):
            self._ranking = search_all(self.database, self.queries)
        return self._ranking

    def average_precision(self, ids: np.ndarray) -> np.ndarray:
        """Per-query AP of full rankings ``ids (Q, N)``, all queries at once: the trapezoid AP
        with junk removed that :func:`evaluate_rankings` computes one query at a time."""
        if not hasattr(self, "_positive"):
            shape = (len(self.queries), len(self.database))
            self._positive, self._junk = np.zeros(shape, bool), np.zeros(shape, bool)
            for q, g in enumerate(self.protocol.gnd):
                self._positive[q, g["ok"]], self._junk[q, g["junk"]] = True, True
            self._positive &= ~self._junk  # both ok and junk: junk, as in revisitop
        hit, junk = np.take_along_axis(self._positive, ids, 1), np.take_along_axis(self._junk, ids, 1)
        ranks = np.arange(ids.shape[1])[None] - np.cumsum(junk, axis=1)  # junk-free, 0-based
        found = np.cumsum(hit, axis=1) - 1  # positives before this one
        with np.errstate(divide="ignore", invalid="ignore"):
            before = np.where(ranks == 0, 1.0, found / ranks)
            at = (found + 1) / (ranks + 1)
        return np.where(hit, (before + at) / 2, 0.0).sum(axis=1) / self._positive.sum(axis=1)


_worker: dict = {}


def _init_verifier(cache: str, dataset: str, imlist: list[str], qimlist: list[str], kind: str):
    features = load_local(Path(cache) / f"{dataset}-{kind}.npz")
    _worker["step"] = SpatialVerification(TOP).fit(local=[features[n] for n in imlist])
    _worker["queries"] = [features[n] for n in qimlist]


def _verify_queries(args) -> tuple[np.ndarray, np.ndarray]:
    rows, ids = args
    return _worker["step"].verify([_worker["queries"][r] for r in rows], ids)


def table_path(bench: Benchmark, kind: str, partial: bool = False) -> Path:
    return bench.cache / f"{bench.label.replace('/', '-')}-{kind}-top{TOP}{'.partial' if partial else ''}.npz"


def read_table(bench: Benchmark, kind: str) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``(ids, inliers, matches)``, each ``(Q, TOP)``: the global top candidates of each query,
    their RANSAC inlier counts and tentative matches (``-1`` for queries not verified yet, when
    only part of the table is done); ``None`` before :func:`inlier_table` has started."""
    for path in (table_path(bench, kind), table_path(bench, kind, partial=True)):
        if path.is_file():
            with np.load(path) as stored:
                return stored["ids"], stored["inliers"], stored["matches"]
    return None


def inlier_table(bench: Benchmark, kind: str, workers: int = 2, chunk: int = 50) -> None:
    """Verify every query's global top ``TOP`` in ``workers`` processes, ``chunk`` queries at a
    time in a random order, saving the part done after each chunk: an interrupted run resumes,
    and the queries done so far are a random sample (what :func:`table` evaluates on meanwhile)."""
    import multiprocessing

    if table_path(bench, kind).is_file():
        return
    ids = bench.ranking()[1][:, :TOP]
    done = read_table(bench, kind)
    inliers, matches = (np.full(ids.shape, -1, np.int64) for _ in range(2)) if done is None else done[1:]
    order = np.random.default_rng(0).permutation(len(ids))
    todo = order[inliers[order, 0] < 0]
    chunks = [(rows, ids[rows]) for rows in np.array_split(todo, max(1, -(-len(todo) // chunk)))]
    start = time.perf_counter()
    with multiprocessing.get_context("spawn").Pool(
            workers, _init_verifier, (str(bench.cache), bench.dataset, bench.protocol.imlist,
                                      bench.protocol.qimlist, kind)) as pool:
        for (rows, _), (a, m) in zip(chunks, pool.imap(_verify_queries, chunks)):
            inliers[rows], matches[rows] = a, m
            np.savez(table_path(bench, kind, partial=True), ids=ids, inliers=inliers, matches=matches)
    np.savez(table_path(bench, kind), ids=ids, inliers=inliers, matches=matches)
    table_path(bench, kind, partial=True).unlink()
    print(f"{table_path(bench, kind).name}: {time.perf_counter() - start:.0f} s", flush=True)


class CachedVerification(SpatialVerification):
    """Spatial verification whose inlier counts come from :func:`inlier_table` (same candidates:
    the global top ``TOP``), so that every chain starting with ``sv`` reuses one computation."""

    needs_local = False

    def __init__(self, table: tuple[np.ndarray, np.ndarray, np.ndarray], min_inliers: int,
                 inlier_ratio: float = 0.0, inlier_weight: float = 0.0) -> None:
        ids, inliers, matches = table
        super().__init__(ids.shape[1], min_inliers=min_inliers, inlier_ratio=inlier_ratio,
                         inlier_weight=inlier_weight)
        self.table = table

    def fit(self, database=None, ids=None, local=None):
        return self

    def verify(self, local, ids):
        known, inliers, matches = (t[:, :min(self.top, ids.shape[1])] for t in self.table)
        if np.array_equal(ids[:, :known.shape[1]], known):  # sv first in the chain: the global top
            return inliers, matches
        rows = [dict(zip(r.tolist(), zip(a.tolist(), b.tolist()))) for r, a, b in zip(known, inliers, matches)]
        pairs = np.array([[row.get(int(i), (0, 0)) for i in r[:known.shape[1]]] for row, r in zip(rows, ids)])
        return pairs[..., 0], pairs[..., 1]


def run_chain(bench: Benchmark, steps: list) -> tuple[np.ndarray, float]:
    """Per-query AP of a chain of steps, and its online CPU ms per query."""
    if not steps:
        return bench.average_precision(bench.ranking()[1]), 0.0
    ids, timing = rerank_rankings(steps, bench.database, bench.queries)
    return bench.average_precision(ids), timing["cpu_ms_per_query"]


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
            "keypoints": float(np.mean([len(f.keypoints) for f in query_local[:queries]])),
            "load_average": os.getloadavg()[0]}


def verify_all(args) -> None:
    """Inlier tables of every benchmark (and of the tuning split) with each local feature."""
    for dataset, name in (TUNE, *BENCHMARKS.values()):
        bench = Benchmark(args.data, args.cache, dataset, name)
        if dataset in args.datasets:
            for kind in ("sift", "delf"):
                if bench.has(kind):
                    inlier_table(bench, kind)


# ---- fair choice of every parameter ------------------------------------------------------------------
#: the table's columns; "best combination" is chosen among COMBINATIONS
COLUMNS = ("global", "+SV (SIFT)", "+SV (DELF)", "+AQE", "+alpha-QE", "+DBA+QE", "+diffusion")
COMBINATIONS = ("SV + verified alpha-QE", "SV + DBA+QE", "SV + diffusion", "SV + DBA + diffusion")
#: spatial verification: min_inliers, inlier_ratio, inlier_weight
SV_GRID = [(m, r, w) for w in (0.0, 0.1, 0.2, 0.5) for r in (0.0, 0.01, 0.02, 0.05, 0.1)
           for m in (6, 8, 10, 12, 15, 20, 30)]
QE_GRID = (1, 2, 3, 5, 10)
DBA_GRID = [(d, q) for d in (1, 2, 3, 5, 10) for q in (1, 2, 5, 10)]
DIFFUSION_GRID = [(k, a, kq) for k in (5, 10, 20) for a in (0.5, 0.9, 0.99) for kq in (1, 3, 5)]


def qe(k, verified_only=False):
    return QueryExpansion(k, alpha=3.0, verified_only=verified_only)


def dba(d):
    return parse_steps("dba", dba_k=d, dba_alpha=3.0)[0]


def diffusion(k, a, kq):
    return parse_steps("diffusion", diffusion_k=k, diffusion_alpha=a, kq=kq)[0]


class Chains:
    """Every chain of a benchmark by (column, parameters), and the per-query AP of each, computed
    once (the ``sv`` steps read the cached inlier tables)."""

    def __init__(self, bench: Benchmark) -> None:
        self.bench, self.ap, self.ms = bench, {}, {}
        reference = [q["ap"] for q in evaluate_rankings(bench.ranking()[1], bench.protocol)["per_query"]]
        np.testing.assert_allclose(bench.average_precision(bench.ranking()[1]), reference, atol=1e-9)
        self.tables = {kind: read_table(bench, kind) for kind in ("sift", "delf")}
        self.tables = {kind: table for kind, table in self.tables.items() if table is not None}
        #: the queries each table has verified (all, unless a run is still going)
        self.done = {kind: table[1][:, 0] >= 0 for kind, table in self.tables.items()}

    def sv(self, kind: str, config: tuple) -> CachedVerification:
        return CachedVerification(self.tables[kind], *config)

    def grid(self, column: str, chosen: dict) -> dict:
        """``{parameters: steps factory}`` of a column; the ``SV + ...`` chains start with the
        verification chosen for ``+SV (<chosen["local"]>)``."""
        if column == "global":
            return {(): list}
        if column.startswith("+SV"):
            kind = "sift" if "SIFT" in column else "delf"
            return {c: (lambda c=c: [self.sv(kind, c)]) for c in SV_GRID} if kind in self.tables else {}
        if column in ("+AQE", "+alpha-QE"):
            alpha = 3.0 if column == "+alpha-QE" else 0.0
            return {(k,): (lambda k=k: [QueryExpansion(k, alpha=alpha)]) for k in QE_GRID}
        if column == "+DBA+QE":
            return {(d, q): (lambda d=d, q=q: [dba(d), qe(q)]) for d, q in DBA_GRID}
        if column == "+diffusion":
            return {c: (lambda c=c: [diffusion(*c)]) for c in DIFFUSION_GRID}
        local = chosen["local"]

        def sv():
            return self.sv(local, chosen[f"+SV ({local.upper()})"])
        if column == "SV + verified alpha-QE":
            return {(k,): (lambda k=k: [sv(), qe(k, verified_only=True)]) for k in QE_GRID}
        if column == "SV + DBA+QE":
            return {c: (lambda c=c: [sv(), dba(c[0]), qe(c[1])]) for c in DBA_GRID}
        if column == "SV + diffusion":
            return {c: (lambda c=c: [sv(), diffusion(*c)]) for c in DIFFUSION_GRID}
        if column == "SV + DBA + diffusion":
            d = chosen["+DBA+QE"][0]
            return {c: (lambda c=c: [sv(), dba(d), diffusion(*c)]) for c in DIFFUSION_GRID}
        raise KeyError(column)

    def uses(self, column: str, chosen: dict) -> np.ndarray:
        """``(Q,)`` bool: the queries whose result in ``column`` is known (every query, except in
        the columns that read an inlier table still being computed)."""
        kind = ("sift" if "SIFT" in column else "delf") if column.startswith("+SV") else (
            chosen.get("local") if column.startswith("SV") else None)
        return self.done[kind] if kind else np.ones(len(self.bench.queries), bool)

    def score(self, column: str, config: tuple, make) -> np.ndarray:
        """Per-query AP of one chain (cached); its online CPU ms per query goes to ``self.ms``."""
        key = (column, config)
        if key not in self.ap:
            self.ap[key], self.ms[key] = run_chain(self.bench, make())
        return self.ap[key]


def choose(chains: Chains, queries: np.ndarray) -> dict:
    """Every column's parameters (and the best combination), chosen by mean AP over the
    ``queries`` (bool mask) of ``chains``' benchmark alone, one column at a time."""
    chosen: dict = {}
    for column in (*COLUMNS, *COMBINATIONS):
        grid = chains.grid(column, chosen)
        if grid:
            on = queries & chains.uses(column, chosen)
            maps = {c: chains.score(column, c, make)[on].mean() for c, make in grid.items()}
            chosen[column] = max(maps, key=maps.get)  # the first of equals: grids go from simple to strong
        if column == "+SV (DELF)":  # the local features for the chains: compared on the same queries
            on = queries & np.logical_and.reduce(list(chains.done.values()))
            sv_maps = {kind: chains.ap[(f"+SV ({kind.upper()})", chosen[f"+SV ({kind.upper()})"])][on].mean()
                       for kind in chains.tables}
            chosen["local"] = max(sv_maps, key=sv_maps.get)
    on = queries & chains.done[chosen["local"]]
    combos = {c: chains.ap[(c, chosen[c])][on].mean() for c in COMBINATIONS}
    chosen["best combination"] = max(combos, key=combos.get)
    return chosen


def folds(protocol) -> np.ndarray:
    """Fold (0 or 1) of each query: the queries that share positives (copies of one original,
    photos of one scene) form a group, and groups alternate between folds, so that no group is
    on both sides of the split."""
    groups = [tuple(sorted(g["ok"])) for g in protocol.gnd]
    order = {g: i for i, g in enumerate(dict.fromkeys(groups))}
    return np.array([order[g] % 2 for g in groups])


def table(args) -> None:
    """Every column of every benchmark with parameters chosen fairly: eth80 rows on
    eth80/instance-train, landmarks and copydays by two-fold cross-validation over their queries
    (parameters chosen on one fold, AP reported on the other, both ways; the mAP is over all
    queries, each scored with the parameters chosen without it)."""
    if "eth80" in args.datasets:
        tune = Chains(Benchmark(args.data, args.cache, *TUNE))
        on_train = choose(tune, np.ones(len(tune.bench.queries), bool))
        print("chosen on eth80/instance-train:", on_train, flush=True)
    results = {}
    for label, (dataset, name) in BENCHMARKS.items():
        if dataset not in args.datasets:
            continue
        chains = Chains(Benchmark(args.data, args.cache, dataset, name))
        protocol, n = chains.bench.protocol, len(chains.bench.queries)
        sides = [np.ones(n, bool)] if dataset == "eth80" else [folds(protocol) == f for f in (0, 1)]
        choices = [on_train] if dataset == "eth80" else [choose(chains, ~side) for side in sides]
        columns = {}
        for column in (*COLUMNS, "best combination"):
            if column not in choices[0]:
                continue  # no local features of that kind
            ap, ms, picked, reported = np.zeros(n), [], [], np.zeros(n, bool)
            for side, chosen in zip(sides, choices):
                actual = chosen[column] if column == "best combination" else column
                config = chosen[actual]
                ap[side] = chains.score(actual, config, chains.grid(actual, chosen)[config])[side]
                reported |= side & chains.uses(actual, chosen)
                ms.append(chains.ms[(actual, config)])
                picked.append(f"{actual} {config}" if column == "best combination" else str(config))
            columns[column] = {"map": float(ap[reported].mean()), "ms": float(np.mean(ms)), "chosen": picked,
                               "queries": int(reported.sum()), "per_attack": _per_attack(protocol, ap, reported)}
            if not reported.all():  # a sample: the global ranking's mAP on the same queries, to compare
                columns[column]["global_on_same_queries"] = float(chains.ap[("global", ())][reported].mean())
            print(f"{label} {column}: {ap[reported].mean():.4f} on {reported.sum()} queries {picked}", flush=True)
        results[label] = {"descriptor": chains.bench.descriptor["name"], "columns": columns,
                          "choices": choices, "limits": limits(chains, choices, sides),
                          "sv_timing": {kind: time_verification(chains.bench, kind) for kind in chains.tables}}
        print(label, results[label]["limits"], results[label]["sv_timing"], flush=True)
    out = args.cache / "table.json"
    previous = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps(previous | results, indent=1, default=str))


def _per_attack(protocol, ap: np.ndarray, reported: np.ndarray) -> dict:
    if not protocol.qattack:
        return {}
    attacks = np.array(protocol.qattack)
    return {a: float(ap[reported & (attacks == a)].mean()) for a in dict.fromkeys(protocol.qattack)}


def limits(chains: Chains, choices: list[dict], sides: list[np.ndarray]) -> dict:
    """What bounds spatial verification: queries with a positive outside the short list, and
    the inliers and tentative matches of verified positives and of verified negatives."""
    protocol = chains.bench.protocol
    out = {}
    for kind, (ids, inliers, matches) in chains.tables.items():
        positive = np.array([[i in set(g["ok"]) for i in row] for row, g in zip(ids, protocol.gnd)])
        negative = ~positive & ~np.array([[i in set(g["junk"]) for i in row] for row, g in zip(ids, protocol.gnd)])
        done = chains.done[kind]  # the queries verified so far
        positive, negative = positive & done[:, None], negative & done[:, None]
        verified = np.zeros_like(positive)
        for side, chosen in zip(sides, choices):
            m, r, _ = chosen[f"+SV ({kind.upper()})"]
            verified[side] = (inliers[side] >= m) & (inliers[side] > r * matches[side])
        in_list = positive.any(axis=1)
        every = np.array([len(g["ok"]) for g in protocol.gnd])
        out[kind] = {
            "queries": int(done.sum()),
            "queries_with_all_positives_in_list": float(np.mean((positive.sum(axis=1) >= every)[done])),
            "queries_with_a_positive_in_list": float(in_list[done].mean()),
            "positives_verified": float(verified[positive].mean()),
            "negatives_verified_per_query": float((verified & negative).sum(axis=1).mean()),
            "median_inliers_positive": float(np.median(inliers[positive])),
            "median_inliers_verified_negative": float(np.median(inliers[verified & negative]))
            if (verified & negative).any() else 0.0,
            "median_matches_positive": float(np.median(matches[positive])),
            "median_matches_negative": float(np.median(matches[negative])),
        }
        if protocol.qattack:
            attacks = np.array(protocol.qattack)
            out[kind]["per_attack_positive_in_list"] = {
                a: float(in_list[done & (attacks == a)].mean()) for a in dict.fromkeys(protocol.qattack)}
            out[kind]["per_attack_positive_verified"] = {
                a: float(verified[positive & (attacks == a)[:, None]].mean()) for a in dict.fromkeys(protocol.qattack)}
    return out


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


def report(args) -> None:
    """Markdown tables from the cached results (what docs/benchmarks.md shows)."""
    results = {label: result for label, result in json.loads((args.cache / "table.json").read_text()).items()
               if "choices" in result}  # not those of an older version of this script
    names = (*COLUMNS, "best combination")
    print("| benchmark | global | +SV (SIFT) | +SV (deep local) | +AQE | +alpha-QE | +DBA+QE | +diffusion "
          "| best combination |\n|---|---|---|---|---|---|---|---|---|")
    for label, result in results.items():
        columns, sv = result["columns"], result["sv_timing"]
        ms = {name: c["ms"] for name, c in columns.items()}
        for kind in sv:
            ms[f"+SV ({kind.upper()})"] = sv[kind]["ms_per_query"]
        ms["best combination"] += sv[result["choices"][0]["local"]]["ms_per_query"]

        def cell(name, attack=None):
            if name not in columns:
                return "not measured"
            c = columns[name]
            value = c["map"] if attack is None else c["per_attack"][attack]
            text = f"{value:.3f}" + (f" ({ms[name]:.0f} ms)" if attack is None and ms[name] >= 0.5 else "")
            if attack is None and "global_on_same_queries" in c:
                text += f", {c['queries']} queries (global on them: {c['global_on_same_queries']:.3f})"
            return text
        print(f"| {label} ({result['descriptor']}) | " + " | ".join(cell(n) for n in names) + " |")
        for attack in sorted(columns["global"]["per_attack"]):
            print(f"| copydays {attack} | " + " | ".join(cell(n, attack) for n in names) + " |")
    print("\n| benchmark | +SV (SIFT) | +SV (deep local) | +AQE | +alpha-QE | +DBA+QE | +diffusion "
          "| best combination |\n|---|---|---|---|---|---|---|---|")
    for label, result in results.items():
        print(f"| {label} | " + " | ".join(" / ".join(result["columns"][n]["chosen"]) if n in result["columns"]
                                          else "-" for n in names[1:]) + " |")
    print("\n| benchmark | local features | CPU ms/query | matching CPU ms | RANSAC CPU ms | share matching "
          "| query keypoints | wall ms (load) |\n|---|---|---|---|---|---|---|---|")
    for label, result in results.items():
        for kind, t in result["sv_timing"].items():
            print(f"| {label} | {kind} | {t['ms_per_query']:.0f} | {t['matching_cpu_ms']:.0f} "
                  f"| {t['ransac_cpu_ms']:.0f} | {t['matching_share']:.2f} | {t['keypoints']:.0f} "
                  f"| {t['wall_ms_per_query']:,.0f} ({t['load_average']:.0f}) |")
    print()
    for label, result in results.items():
        print(label, json.dumps(result["limits"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["features", "verify", "table", "scaling", "report"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/rerank-cache"))
    parser.add_argument("--datasets", nargs="+", default=list(PROTOCOLS))
    parser.add_argument("--dim", type=int, default=128, help="scaling: vector dimension")
    args = parser.parse_args()
    args.cache.mkdir(parents=True, exist_ok=True)
    commands = {"features": features, "verify": verify_all, "table": table, "scaling": scaling, "report": report}
    commands[args.command](args)


if __name__ == "__main__":
    main()
