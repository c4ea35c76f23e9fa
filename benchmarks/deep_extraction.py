"""Extraction speed of the deep descriptors: the whole pipeline against the bare forward pass.

    python benchmarks/deep_extraction.py --data ../shared/data --out bench-output/extraction

On real photos (the landmarks database, mixed sizes), for eager torch and ONNX Runtime, single-
and multi-scale, images per second of

* the bare forward pass, run the way the pipeline runs it: one single-threaded engine per core,
  each in its own process, on images decoded and resized beforehand (each input shape seen once
  before timing), started together;
* one engine using every core in one process (what a batch-oriented design would do);
* the pipeline: ``extract`` from files to vectors, decoding, resizing, forward pass, pooling and
  normalisation in the worker processes, results collected in order by the parent. Its rate is
  counted from the first result to the last: starting the workers (importing torch, opening the
  ONNX session: a few seconds, once per run) is reported apart.

pipeline / bare says what input handling costs; the goal is at least 0.9. Each number is the best
of ``--repeat`` runs, as this machine's speed drifts by 10-20% from minute to minute. Writes
results.json and speed.png.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import create
from lookalike.descriptors.cnn.engine import default_threads
from lookalike.io.images import load_image
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.extract import THREADS_VARIABLE, extract
from lookalike.sampling import evenly_spaced

SETTINGS = [  # label, descriptor, options
    ("cnn-fc 224x224", "cnn-fc", {}),
    ("gem 512 px, 1 scale", "gem", dict(max_side=512)),
    ("gem 512 px, 3 scales", "gem", dict(max_side=512, scales=(1.0, 0.7071, 0.5))),
    ("gem 1024 px, 1 scale", "gem", dict(max_side=1024)),
]


def forward_seconds(descriptor, paths: list, barrier=None) -> float:
    """Decode and prepare ``paths`` (untimed), then time the engine alone on them."""
    prepared = [descriptor.prepare(load_image(p, max_side=descriptor.max_side).pixels) for p in paths]
    engine = descriptor.engine
    for scales in prepared:  # both engines prepare their kernels once per input shape
        for pixels in scales:
            engine(pixels[None])
    if barrier is not None:
        barrier.wait()
    start = time.perf_counter()
    for scales in prepared:
        for pixels in scales:
            engine(pixels[None])
    return time.perf_counter() - start


def _share(args) -> float:
    spec, paths = args
    from lookalike.descriptors.registry import from_spec

    return forward_seconds(from_spec(spec), paths, _BARRIER["barrier"])


_BARRIER: dict = {}


def _init(barrier, threads: int) -> None:
    os.environ[THREADS_VARIABLE] = str(threads)
    _BARRIER["barrier"] = barrier


def bare_in_processes(descriptor, paths: list, workers: int) -> float:
    """Images per second of ``workers`` single-process engines running side by side."""
    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers)
    shares = [paths[i::workers] for i in range(workers)]
    with context.Pool(workers, _init, (barrier, max(1, default_threads() // workers))) as pool:
        seconds = pool.map(_share, [(descriptor.spec(), share) for share in shares])
    return len(paths) / max(seconds)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("bench-output/extraction"))
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--engines", nargs="+", default=["onnx", "torch"])
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--from-json", action="store_true")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "results.json"
    workers = default_threads()
    if not args.from_json:
        paths = evenly_spaced(load_protocol(args.data / "landmarks" / "full.json").database_paths(), args.images)
        rows = []
        for label, name, options in SETTINGS:
            for engine in args.engines:
                descriptor = create(name, engine=engine, **options)
                bare, one, pipeline, startup = 0.0, 0.0, 0.0, np.inf
                for _ in range(args.repeat):
                    bare = max(bare, bare_in_processes(descriptor, paths, workers))
                    one = max(one, len(paths) / forward_seconds(descriptor, paths))
                    start = time.perf_counter()
                    results = extract(descriptor, paths, workers=workers, progress=None)
                    next(results)
                    first = time.perf_counter()
                    for _ in results:
                        pass
                    pipeline = max(pipeline, (len(paths) - 1) / (time.perf_counter() - first))
                    startup = min(startup, first - start)
                rows.append({"setting": label, "engine": engine, "workers": workers, "bare_ips": bare,
                             "one_process_ips": one, "pipeline_ips": pipeline, "startup_s": startup})
                print(f"{label:24s} {engine:5s}: bare {bare:6.1f} img/s ({workers} processes), "
                      f"{one:6.1f} (1 process, {workers} threads), pipeline {pipeline:6.1f} after a "
                      f"{startup:.1f} s start, pipeline / bare {pipeline / bare:.2f}", flush=True)
        saved.write_text(json.dumps({"images": len(paths), "rows": rows}, indent=1))
    rows = json.loads(saved.read_text())["rows"]
    print_table(rows)
    plot(rows, args.out / "speed.png")


def print_table(rows: list[dict]) -> None:
    print("\n| setting | engine | bare forward, a process per core | bare forward, one process | "
          "pipeline | pipeline / bare | pipeline start, s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['setting']} | {r['engine']} | {r['bare_ips']:.1f} | {r['one_process_ips']:.1f} | "
              f"{r['pipeline_ips']:.1f} | {r['pipeline_ips'] / r['bare_ips']:.2f} | {r['startup_s']:.1f} |")


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = list(dict.fromkeys(r["setting"] for r in rows))
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    fig, ax = plt.subplots(figsize=(8, 3.8), dpi=110)
    width = 0.8 / (2 * len(engines))
    for e, engine in enumerate(engines):
        for k, (key, hatch) in enumerate((("bare_ips", ""), ("pipeline_ips", "//"))):
            values = [max((r[key] for r in rows if r["setting"] == s and r["engine"] == engine), default=0)
                      for s in settings]
            offset = (2 * e + k) * width - 0.4 + width / 2
            ax.bar(np.arange(len(settings)) + offset, values, width, hatch=hatch,
                   color=f"C{e}", edgecolor="white", label=f"{engine} {'bare forward' if k == 0 else 'pipeline'}")
    ax.set_xticks(np.arange(len(settings)), settings, fontsize=8)
    ax.set(ylabel="images / second", yscale="log", title="EfficientNet-Lite0 on 2 cores: pipeline vs bare forward")
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main()
