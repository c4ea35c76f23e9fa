"""Indexing speed end to end: ``lookalike index`` against a hand-written script and the bare network.

    python benchmarks/end_to_end.py --data ../shared/data --limit 160 --rounds 3

For each dataset (eth80: 256 x 256 JPEGs; landmarks: JPEGs up to 1024 px) and each descriptor
(``gem``, ``cnn-fc``), images per second of

* **index**: ``python -m lookalike index FOLDER -c NEW -d NAME`` as a user runs it (default
  engine and workers), timed from launch to exit: start-up, scanning, hashing, decoding, the
  forward pass, pooling, SQLite and faiss included;
* **hand-written**: ``handwritten_index.py`` (Pillow -> ONNX Runtime -> numpy pooling, 2 processes
  of 1 thread), also from launch to exit;
* **bare**: the forward pass alone, 2 processes x 1 ONNX Runtime thread started together, on
  images decoded and resized beforehand (untimed), from the first image to the last.

Both commands are also run on 2 images of the same set: their time is the fixed cost of a run
(starting Python and the workers, loading the network), reported apart, and the rate beyond it,
``(N - 2) / (time on N - time on 2)``, is the steady rate that the per-image work sets.

The three run interleaved in each round (their order rotates from round to round), so that a
change of load on a shared machine hits them alike; each rate is the median over the rounds, and
the ratios are those of the medians. ``--limit`` takes the same evenly spaced subset of each
database for all three. The load average and the CPU seconds of each run are recorded beside the
wall time. The script also checks that the hand-written vectors are the ones lookalike stores.
Writes ``docs/img/end_to_end.png`` and the raw rounds as JSON.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from lookalike.io.protocol import load_protocol
from lookalike.sampling import evenly_spaced

HERE = Path(__file__).resolve().parent
DATASETS = {"eth80": "instance.json", "landmarks": "full.json"}
DESCRIPTORS = ("gem", "cnn-fc")
VARIANTS = ("index", "hand-written", "bare")
WORKERS = 2
START_IMAGES = 2  # a run on this many images measures the fixed cost (one per worker)


def subset(data: Path, dataset: str, limit: int | None, folder: Path) -> list[Path]:
    """Symbolic links ``00000.jpg``... to an evenly spaced subset of the database, in ``folder``,
    and the first 2 of them in ``folder``-start."""
    paths = load_protocol(data / dataset / DATASETS[dataset]).database_paths()
    paths = evenly_spaced(sorted(Path(p) for p in paths), limit) if limit else sorted(Path(p) for p in paths)
    for where, some in ((folder, paths), (start_folder(folder), paths[:START_IMAGES])):
        where.mkdir(parents=True)
        for i, path in enumerate(some):
            (where / f"{i:05d}.jpg").symlink_to(path.resolve())
    return [p.resolve() for p in paths]


def start_folder(folder: Path) -> Path:
    return folder.with_name(folder.name + "-start")


def timed(command: list[str], env: dict) -> tuple[float, float]:
    """(wall seconds, CPU seconds of the command and all its processes)."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-3000:]}")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def run_index(folder: Path, name: str, work: Path, env: dict) -> tuple[float, float]:
    collection = work / f"collection-{name}"
    shutil.rmtree(collection, ignore_errors=True)
    return timed([sys.executable, "-m", "lookalike", "index", str(folder), "-c", str(collection), "-d", name], env)


def run_handwritten(folder: Path, name: str, model: Path, work: Path, env: dict) -> tuple[float, float]:
    command = [sys.executable, str(HERE / "handwritten_index.py"), str(model), name, str(folder),
               str(work / f"handwritten-{name}.npy"), "--workers", str(WORKERS)]
    return timed(command, env)


# ---- the bare forward pass -------------------------------------------------------------------
def _bare_share(spec: dict, model: str, paths: list, barrier) -> tuple[float, float]:
    """Decode and prepare ``paths`` (untimed), then time the forward pass alone: (wall, CPU) seconds."""
    import onnxruntime

    from lookalike.descriptors.registry import from_spec
    from lookalike.pipelines.extract import decode_for

    descriptor = from_spec(spec)
    inputs = [np.ascontiguousarray(descriptor.prepare(decode_for(p, descriptor).pixels)[0]
                                   .astype(np.uint8)[None]) for p in paths]
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    run = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run
    run(None, {"pixels": inputs[0].astype(np.float32)})
    barrier.wait()
    wall, cpu = time.perf_counter(), time.process_time()
    for pixels in inputs:
        run(None, {"pixels": pixels.astype(np.float32)})
    return time.perf_counter() - wall, time.process_time() - cpu


def _bare_worker(args) -> tuple[float, float]:
    return _bare_share(*args, _BARRIER["barrier"])


_BARRIER: dict = {}


def _bare_init(barrier) -> None:
    os.environ["OMP_NUM_THREADS"] = "1"
    _BARRIER["barrier"] = barrier


def run_bare(paths: list[Path], spec: dict, model: Path) -> tuple[float, float]:
    """(wall seconds of the slower process, CPU seconds of both) for ``paths`` split over the workers."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(WORKERS)
    shares = [[str(p) for p in paths[i::WORKERS]] for i in range(WORKERS)]
    with context.Pool(WORKERS, _bare_init, (barrier,)) as pool:
        times = pool.map(_bare_worker, [(spec, str(model), share) for share in shares])
    return max(t[0] for t in times), sum(t[1] for t in times)


# ---- checks, table, plot ---------------------------------------------------------------------
def agreement(work: Path, name: str, paths: list[Path], dim: int) -> float:
    """The smallest cosine between the hand-written vector and the one lookalike stored, per image."""
    from lookalike.index.metadata import Metadata

    metadata = Metadata(work / f"collection-{name}" / "metadata.sqlite", dim, readonly=True)
    ids_by_path = {str(p): metadata.id_of(str(p)) for p in paths}
    stored = metadata.vectors_of(np.array([ids_by_path[str(p)] for p in paths]))
    metadata.close()
    mine = np.load(work / f"handwritten-{name}.npy")
    return float(np.min(np.sum(stored * mine, axis=1)))


def print_tables(rows: list[dict]) -> None:
    print_table(rows)
    print("\n| dataset | descriptor | start-up s: index, hand-written | steady img/s: index, hand-written | "
          "steady index / hand-written | steady index / bare |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        start, steady = r["start_s"], r["steady_per_s"]
        print(f"| {r['dataset']} | {r['descriptor']} | {start['index']:.1f}, {start['hand-written']:.1f} | "
              f"{steady['index']:.1f}, {steady['hand-written']:.1f} | {steady['index'] / steady['hand-written']:.2f} | "
              f"{steady['index'] / r['images_per_s']['bare']:.2f} |")


def print_table(rows: list[dict]) -> None:
    print("\n| dataset | descriptor | images | index, img/s | hand-written, img/s | bare forward, img/s | "
          "index / hand-written | index / bare | CPU s per image: index, hand-written, bare |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        ips = r["images_per_s"]
        cpu = r["cpu_per_image"]
        print(f"| {r['dataset']} | {r['descriptor']} | {r['images']} | {ips['index']:.1f} | "
              f"{ips['hand-written']:.1f} | {ips['bare']:.1f} | {ips['index'] / ips['hand-written']:.2f} | "
              f"{ips['index'] / ips['bare']:.2f} | {cpu['index'] * 1e3:.0f} ms, {cpu['hand-written'] * 1e3:.0f} ms, "
              f"{cpu['bare'] * 1e3:.0f} ms |")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = [f"{r['dataset']}\n{r['descriptor']}" for r in rows]
    fig, ax = plt.subplots(figsize=(7, 3.6), dpi=110)
    width = 0.8 / len(VARIANTS)
    for k, variant in enumerate(VARIANTS):
        values = [r["images_per_s"][variant] for r in rows]
        ax.bar(np.arange(len(rows)) + (k - 1) * width, values, width, label=variant, color=f"C{k}")
        if variant == "index":
            for x, r in enumerate(rows):
                ax.annotate(f"{r['images_per_s']['index'] / r['images_per_s']['bare']:.2f} of bare",
                            (x - width, r["images_per_s"]["index"]), ha="center", va="bottom", fontsize=7)
    ax.set_xticks(np.arange(len(rows)), labels, fontsize=8)
    ax.set(ylabel="images / second", title=f"lookalike index, a hand-written script, the bare forward pass\n"
           f"({rows[0]['images']} images per set, 2 shared cores, medians of the rounds)")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    print(f"wrote {path}")


def summarise(rounds: list[dict]) -> list[dict]:
    rows = []
    for dataset, name in dict.fromkeys((r["dataset"], r["descriptor"]) for r in rounds):
        mine = [r for r in rounds if r["dataset"] == dataset and r["descriptor"] == name]
        images = mine[0]["images"]
        rows.append({
            "dataset": dataset, "descriptor": name, "images": images,
            "images_per_s": {v: images / statistics.median(r[v][0] for r in mine) for v in VARIANTS},
            "start_s": {v: statistics.median(r[f"{v} start"][0] for r in mine) for v in VARIANTS[:2]},
            "steady_per_s": {v: (images - START_IMAGES) / statistics.median(r[v][0] - r[f"{v} start"][0] for r in mine)
                             for v in VARIANTS[:2]},
            "cpu_per_image": {v: statistics.median(r[v][1] for r in mine) / images for v in VARIANTS},
            "agreement": min(r["agreement"] for r in mine),
            "load": [r["load"] for r in mine],
        })
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=HERE.parents[1] / "shared" / "data")
    parser.add_argument("--limit", type=int, default=None, help="images per dataset (evenly spaced subset)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=list(DATASETS))
    parser.add_argument("--descriptors", nargs="+", default=list(DESCRIPTORS), choices=list(DESCRIPTORS))
    parser.add_argument("--plot", type=Path, default=HERE.parent / "docs" / "img" / "end_to_end.png")
    parser.add_argument("--json", type=Path, default=Path("bench-output/end_to_end.json"))
    parser.add_argument("--from-json", action="store_true", help="only print and plot saved results")
    args = parser.parse_args()

    if not args.from_json:
        from lookalike.descriptors import create
        from lookalike.descriptors.cnn.backbone import load_backbone
        from lookalike.descriptors.cnn.engine import export_onnx

        model = export_onnx(load_backbone("efficientnet-lite0", ""))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p))
        rounds = []
        with tempfile.TemporaryDirectory(prefix="end-to-end-") as tmp:
            work = Path(tmp)
            folders = {d: work / d for d in args.datasets}
            paths = {d: subset(args.data, d, args.limit, folders[d]) for d in args.datasets}
            for round_ in range(args.rounds):
                order = VARIANTS[round_ % 3:] + VARIANTS[:round_ % 3]
                for dataset in args.datasets:
                    for name in args.descriptors:
                        descriptor = create(name)
                        result = {"round": round_, "dataset": dataset, "descriptor": name,
                                  "images": len(paths[dataset]), "load": os.getloadavg()[0]}
                        for variant in order:
                            if variant == "index":
                                result["index start"] = run_index(start_folder(folders[dataset]), name, work, env)
                                result[variant] = run_index(folders[dataset], name, work, env)
                            elif variant == "hand-written":
                                result["hand-written start"] = run_handwritten(
                                    start_folder(folders[dataset]), name, model, work, env)
                                result[variant] = run_handwritten(folders[dataset], name, model, work, env)
                            else:
                                result[variant] = run_bare(paths[dataset], descriptor.spec(), model)
                        result["agreement"] = agreement(work, name, paths[dataset], descriptor.dim)
                        rounds.append(result)
                        n = result["images"]
                        print(f"round {round_} {dataset:9s} {name:6s} load {result['load']:.1f}: " + ", ".join(
                            f"{v} {n / result[v][0]:.1f} img/s ({result[v][1] / n * 1e3:.0f} CPU ms/img)"
                            for v in VARIANTS) + f"; min cosine hand-written/index {result['agreement']:.4f}",
                            flush=True)
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(rounds, indent=1))
    rounds = json.loads(args.json.read_text())
    rows = summarise(rounds)
    print_tables(rows)
    loads = [r["load"] for r in rounds]
    print(f"\nload average (1 min) at the start of each measurement: {min(loads):.1f} to {max(loads):.1f} "
          f"on {os.cpu_count()} cores")
    plot(rows, args.plot)


if __name__ == "__main__":
    main()
