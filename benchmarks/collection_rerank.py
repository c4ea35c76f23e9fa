"""Local features kept with a collection: bytes per image, what they add to indexing, and what
`lookalike search --rerank sv` costs per query (reading the candidates' features, matching, RANSAC).

    python benchmarks/collection_rerank.py --data ../shared/data --work /tmp/rerank-bench

Indexes the landmarks database (679 images) with the global descriptor ``-d`` three times:
without local features, with SIFT and with DELF (its PCA learnt from the images being indexed,
as `lookalike index --local-features delf` does). Then searches the 50 landmark queries with
``--rerank sv`` over the best ``--top`` candidates, in one process, and times one
`lookalike search` command from the shell.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from lookalike.descriptors import create, parse_overrides
from lookalike.descriptors.local.registry import create_local
from lookalike.index import Collection
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.indexing import index_paths
from lookalike.pipelines.searching import Searcher
from lookalike.sampling import evenly_spaced


def index(folder: Path, images: list[Path], descriptor, local) -> dict:
    """Index ``images`` into a new collection; wall time, and the part spent writing SQLite.
    A collection built by an earlier run is reused, with the times measured then."""
    if (folder / "index.json").exists():
        return json.loads((folder / "index.json").read_text())
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if local is not None and not local.trained:
        from lookalike.pipelines.reranking import train_local

        start = time.perf_counter()
        local = train_local(local, images, folder / f"{local.name}-pca.npz", progress=False)
        training = time.perf_counter() - start
    else:
        training = 0.0
    with Collection.create(folder / "c", descriptor, local_features=local) as collection:
        write, spent = collection.write, [0.0]

        def timed(*args, **kwargs):
            start = time.perf_counter()
            try:
                return write(*args, **kwargs)
            finally:
                spent[0] += time.perf_counter() - start

        collection.write = timed
        start = time.perf_counter()
        index_paths(collection, images, progress=False)
        wall = time.perf_counter() - start
        info = collection.info()
    result = {"wall": wall, "write": spent[0], "training": training, "info": info,
              "sqlite": (folder / "c" / "metadata.sqlite").stat().st_size}
    (folder / "index.json").write_text(json.dumps(result))
    return result


def queries(folder: Path, paths: list[Path], top: int) -> dict:
    """Per-query time of ``--rerank sv`` in one process, and of its parts: reading the candidates'
    local features, matching and RANSAC (as the verification step times them)."""
    from lookalike.rerank.spatial import VerificationTiming
    from lookalike.rerank.steps import SpatialVerification

    with Collection.open(folder / "c") as collection:
        searcher, plain = Searcher(collection, rerank="sv", rerank_top=top), Searcher(collection)
        searcher(paths[0], 10), plain(paths[0], 10)  # warm up: imports, first reads
        sv = next(s for s in searcher.steps.reranker.steps if isinstance(s, SpatialVerification))
        searcher.steps.local.seconds, sv.timing = 0.0, VerificationTiming()
        totals, plain_totals = [], []
        cpu = time.process_time()
        for path in paths:
            start = time.perf_counter()
            searcher(path, 10)
            totals.append(time.perf_counter() - start)
        cpu, plain_cpu = time.process_time() - cpu, time.process_time()
        for path in paths:
            start = time.perf_counter()
            plain(path, 10)
            plain_totals.append(time.perf_counter() - start)
        plain_cpu = time.process_time() - plain_cpu
    n = len(paths)
    return {"total": sum(totals) / n, "median": statistics.median(totals), "plain": sum(plain_totals) / n,
            "cpu": cpu / n, "plain_cpu": plain_cpu / n, "loading": searcher.steps.local.seconds / n,
            "matching": sv.timing.matching / n, "ransac": sv.timing.ransac / n}


def command(folder: Path, query: Path, rerank: bool) -> float:
    """Wall time of one `lookalike search` command, process start included (best of 3)."""
    args = [sys.executable, "-m", "lookalike", "search", str(query), "-c", str(folder / "c")]
    args += ["--rerank", "sv"] if rerank else []
    times = []
    for _ in range(3):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--work", type=Path, default=Path("/tmp/rerank-bench"))
    parser.add_argument("-d", "--descriptor", default="gem")
    parser.add_argument("-s", "--set", action="append", default=["max_side=512"], help="descriptor option")
    parser.add_argument("--local", default="none,sift,delf")
    parser.add_argument("--local-set", action="append", default=[], help="local-feature option, e.g. max_keypoints=500")
    parser.add_argument("--top", type=int, default=100)
    parser.add_argument("--queries", type=int, default=50, help="landmark queries timed (evenly spaced)")
    args = parser.parse_args()

    descriptor = create(args.descriptor)
    descriptor = create(args.descriptor, **parse_overrides(type(descriptor.config), args.set))
    protocol = load_protocol(args.data / "landmarks" / "full.json")
    images, query_paths = [Path(p) for p in protocol.database_paths()], [Path(p) for p in protocol.query_paths()]
    query_paths = evenly_spaced(query_paths, args.queries)
    print(f"{len(images)} images, {len(query_paths)} queries, {descriptor.name} {args.set}, --rerank-top {args.top}\n")
    print("| local features | keypoints / image | bytes / image (SQLite blobs) | metadata.sqlite | index wall time "
          "| of which SQLite writes | PCA training |")
    print("|---|---|---|---|---|---|---|")
    built = []
    for name in args.local.split(","):
        local = None if name == "none" else create_local(name)
        if local is not None and args.local_set:
            local = create_local(name, **parse_overrides(type(local.config), args.local_set))
        result = index(args.work / name, images, descriptor, local)
        stored = result["info"].get("local_features", {})
        print(f"| {name} | {stored.get('keypoints_per_image', 0):.0f} | {stored.get('bytes_per_image', 0):,.0f} "
              f"| {result['sqlite'] / 1e6:.1f} MB | {result['wall']:.1f} s | {result['write']:.1f} s "
              f"| {result['training']:.1f} s |", flush=True)
        if local is not None:
            built.append(name)
    print("\n| local features | ms / query, --rerank sv | median | CPU ms / query | global only (CPU) "
          "| reading features | matching | RANSAC | rest (decode, describe query, global search) "
          "| `lookalike search` command, sv / plain |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name in built:
        t = queries(args.work / name, query_paths, args.top)
        rest = t["total"] - t["loading"] - t["matching"] - t["ransac"]
        shell = command(args.work / name, query_paths[0], True), command(args.work / name, query_paths[0], False)
        print(f"| {name} | {1e3 * t['total']:.0f} | {1e3 * t['median']:.0f} | {1e3 * t['cpu']:.0f} "
              f"| {1e3 * t['plain']:.0f} ({1e3 * t['plain_cpu']:.0f}) "
              + " | ".join(f"{1e3 * v:.0f} ({100 * v / t['total']:.0f} %)" for v in
                           (t["loading"], t["matching"], t["ransac"], rest)).join(("| ", " |"))
              + f" {shell[0]:.2f} s / {shell[1]:.2f} s |", flush=True)


if __name__ == "__main__":
    main()
