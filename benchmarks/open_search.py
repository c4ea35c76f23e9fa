"""Collections that open instantly, and a CLI search of one image in under a second (issue 14, part 2).

    python benchmarks/open_search.py --data DATA --work DIR [--runs 5] [--baseline-src OTHER/src]

DATA is the folder of the benchmark sets (``eth80/``, ``landmarks/``); DIR keeps the collections
between runs. Three tables:

1. ``Collection.open`` of a 10,000-image collection of 1,280-D GeM-sized vectors (synthetic: the
   vectors' values do not matter to opening), in a fresh process after its imports, and again
   in the same process. Medians of ``--runs`` processes, wall and CPU milliseconds.
2. ``python -m lookalike search q.jpg -c DIR`` as a user types it, whole process: on collections
   of 100 real eth80 images described by the default descriptor (GeM at three scales) and by
   ``-d gem``, and on the 10,000-image one; queries an eth80 image (256 x 256, not in the
   collection) and a landmarks photograph (1,024 px). Cold: the first search with an empty
   model cache (it exports the ONNX graph, with torch); warm: every later one (median).
   Each run also says whether the process imported torch.
3. With ``--baseline-src``, the same warm searches and opens run from another checkout (e.g.
   the main branch before this change), in the same run.

The CLI runs with its default threads. As floors, ``python -c pass`` and ``python -m lookalike
--version`` (the interpreter, Typer and the command tree, no command) are timed too.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SYNTHETIC = 10_000

#: runs the CLI as ``python -m lookalike`` would, then says on stderr whether torch was imported
CLI = ("import runpy, sys\nsys.argv = ['lookalike', *sys.argv[1:]]\n"
       "try:\n    runpy.run_module('lookalike', run_name='__main__')\n"
       "finally:\n    print('TORCH', 'torch' in sys.modules, file=sys.stderr)")

#: the command line's own start: Python, Typer and the command tree, with no command to run
CLI_VERSION = ["-m", "lookalike", "--version"]

#: opens a collection twice in a fresh process, printing wall and CPU seconds of each open
OPEN = ("import sys, time, json\nfrom lookalike.index import Collection\nimport faiss, numpy\nout = []\n"
        "for _ in range(2):\n    w, c = time.perf_counter(), time.process_time()\n"
        "    Collection.open(sys.argv[1]).close()\n"
        "    out.append((time.perf_counter() - w, time.process_time() - c))\nprint(json.dumps(out))")


def environment(src: Path, cache: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONDONTWRITEBYTECODE", "PYTHONPATH")}
    return {**env, "PYTHONPATH": str(src), "LOOKALIKE_CACHE": str(cache)}


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float, str]:
    """Wall and CPU seconds (user + system, of the child) of one process, and its stderr."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr}")
    return wall, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime, done.stderr


def synthetic_collection(folder: Path, src: Path, cache: Path) -> Path:
    """A 10k-image Flat collection of random unit vectors, declared as gem (1,280-D)."""
    if (folder / "manifest.json").exists():
        return folder
    script = f"""
import numpy as np
from lookalike.descriptors import create
from lookalike.index import Collection
from lookalike.index.metadata import Entry
rng = np.random.default_rng(0)
with Collection.create({str(folder)!r}, create("gem", scales=(1.0, 0.7071, 0.5))) as c:
    for start in range(0, {SYNTHETIC}, 1000):
        x = rng.standard_normal((1000, 1280)).astype(np.float32)
        x /= np.linalg.norm(x, axis=1, keepdims=True)
        c.write(Entry(f"/synthetic/{{i:06d}}.jpg", f"{{i:064x}}", 30000, 256, 256, v)
                for i, v in zip(range(start, start + 1000), x))
"""
    subprocess.run([sys.executable, "-c", script], env=environment(src, cache), check=True)
    return folder


def real_collection(folder: Path, images: list[Path], options: list[str], src: Path, cache: Path) -> Path:
    if not (folder / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "lookalike", "index", *map(str, images), "-c", str(folder), *options],
                       env=environment(src, cache), check=True, capture_output=True)
    return folder


def median(values: list[float]) -> float:
    return statistics.median(values) * 1e3


def open_times(collection: Path, src: Path, cache: Path, runs: int) -> dict[str, float]:
    first, again = [], []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", OPEN, str(collection)], env=environment(src, cache),
                             capture_output=True, text=True, check=True).stdout
        (w1, c1), (w2, c2) = json.loads(out)
        first.append((w1, c1))
        again.append((w2, c2))
    return {"first wall": median([w for w, _ in first]), "first cpu": median([c for _, c in first]),
            "again wall": median([w for w, _ in again]), "again cpu": median([c for _, c in again])}


def search_times(query: Path, collection: Path, src: Path, cache: Path, runs: int) -> tuple[float, float, bool]:
    walls, cpus, torch = [], [], False
    for _ in range(runs):
        wall, cpu, err = timed([sys.executable, "-c", CLI, "search", str(query), "-c", str(collection), "-k", "5"],
                               environment(src, cache))
        walls.append(wall)
        cpus.append(cpu)
        torch |= "TORCH True" in err
    return median(walls), median(cpus), torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="folder holding eth80/ and landmarks/")
    parser.add_argument("--work", type=Path, required=True, help="where the collections are kept between runs")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline-src", type=Path, help="another checkout's src/ to time the same way")
    args = parser.parse_args()
    src = ROOT / "src"
    args.work.mkdir(parents=True, exist_ok=True)
    cache = args.work / "model-cache"  # warm: kept between runs, so that the graph is exported once
    eth80 = sorted((args.data / "eth80" / "images").rglob("*.jpg"))
    images, query = eth80[::32][:100], eth80[1]  # 100 views of all 80 objects; a view not among them
    photo = sorted((args.data / "landmarks" / "images").rglob("*.jpg"))[0]
    collections = {
        "100 eth80, default (gem x3 scales)": real_collection(args.work / "eth80-default", images, [], src, cache),
        "100 eth80, -d gem": real_collection(args.work / "eth80-gem", images, ["-d", "gem"], src, cache),
        f"{SYNTHETIC:,} synthetic, gem x3": synthetic_collection(args.work / "synthetic-10k", src, cache),
    }
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores\n")
    print("| floor of a process | wall | cpu |\n|---|---|---|")
    for what, command in (("`python -c pass`", ["-c", "pass"]), ("`python -m lookalike --version`", CLI_VERSION)):
        runs = [timed([sys.executable, *command], environment(src, cache))[:2] for _ in range(args.runs)]
        print(f"| {what} | {median([w for w, _ in runs]):.0f} | {median([c for _, c in runs]):.0f} |")
    print()

    sources = {"this checkout": src, **({"baseline": args.baseline_src.resolve()} if args.baseline_src else {})}
    print(f"## Collection.open, {SYNTHETIC:,} images x 1,280-D (median of {args.runs} processes, ms)\n")
    print("| code | first open in a process: wall | cpu | next open: wall | cpu |\n|---|---|---|---|---|")
    for label, code in sources.items():
        t = open_times(collections[f"{SYNTHETIC:,} synthetic, gem x3"], code, cache, args.runs)
        columns = ("first wall", "first cpu", "again wall", "again cpu")
        print(f"| {label} | " + " | ".join(f"{t[k]:.0f}" for k in columns) + " |")

    print(f"\n## `python -m lookalike search q -c DIR -k 5`, whole process (warm: median of {args.runs}, ms)\n")
    print("| code | collection | query | cold wall | cold cpu | warm wall | warm cpu | torch imported |")
    print("|---|---|---|---|---|---|---|---|")
    for label, code in sources.items():
        for name, collection in collections.items():
            for what, q in (("eth80 256 px", query), ("landmark 1024 px", photo)):
                cold = "-", "-"
                if label == "this checkout" and name.endswith("default (gem x3 scales)") and what.startswith("eth80"):
                    empty = Path(tempfile.mkdtemp(dir=args.work))  # no cached graph: the first use exports it
                    w, c, _ = timed([sys.executable, "-c", CLI, "search", str(q), "-c", str(collection)],
                                    environment(code, empty))
                    shutil.rmtree(empty)
                    cold = f"{w * 1e3:.0f}", f"{c * 1e3:.0f}"
                wall, cpu, torch = search_times(q, collection, code, cache, args.runs)
                print(f"| {label} | {name} | {what} | {cold[0]} | {cold[1]} | {wall:.0f} | {cpu:.0f} | "
                      f"{'yes' if torch else 'no'} |")


if __name__ == "__main__":
    main()
