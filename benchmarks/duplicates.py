"""Near-duplicate groups: the presets calibrated on copydays, and the speed on 100k vectors.

    python benchmarks/duplicates.py --data ../shared/data --cache bench-output/duplicates

Copydays: the database (100 originals + 436 distractors) and the 2,300 attacked copies are
described with the default descriptor (GeM, scales 1, 0.7071, 0.5); a true pair is two images of
the same original (the original and a copy, or two copies). Pairs are counted over the groups
`lookalike duplicates` prints (connected components), so chaining is counted against precision.
The presets are fitted on the originals of even rank (and their copies, with the even half of
the distractors) and measured on the odd half, which the fit never saw.

Synthetic: N random unit vectors in groups of near-duplicates (each copy = its original plus
noise), grouped at the `near` threshold; time, peak memory, recall of the planted pairs, and pair
recall against exact search (all pairs above the threshold that touch 2,000 sampled rows).

Above 20,000 vectors the grouping compares each vector only with the vectors of its nearest
inverted lists; copydays is small enough to be compared exactly, so the copydays table is also
given with that approximate join forced (`exact_up_to=0`): its presets must not lose precision or
recall there.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import default_descriptor
from lookalike.index.duplicates import EXACT_UP_TO, PRESETS, find_groups
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.extract import extract


def describe_copydays(data: Path, cache: Path) -> dict:
    """Vectors of the database and the queries, the original each belongs to (-1: a distractor),
    the attack family of each (`database` for the database images)."""
    file = cache / "copydays-gem3.npz"
    if file.exists():
        return dict(np.load(file))
    root = data / "copydays"
    protocol = load_protocol(root / "full.json")
    raw = json.loads((root / "full.json").read_text())
    paths = protocol.database_paths() + protocol.query_paths()
    vectors, sizes = [], []
    for path, result in extract(default_descriptor(), paths, workers=2, progress="copydays"):
        vectors.append(result.vector)
        sizes.append(result.width * result.height)
    n_db = len(protocol.database_paths())
    owner = np.array([i if kind == "original" else -1 for i, kind in enumerate(raw["labels"]["kind"])]
                     + [g["ok"][0] for g in raw["gnd"]])
    family = np.array(["database"] * n_db + raw["qfamily"])
    attack = np.array(["database"] * n_db + raw["qattack"])
    out = {"vectors": np.stack(vectors).astype(np.float32), "owner": owner, "family": family,
           "attack": attack, "pixels": np.array(sizes)}
    cache.mkdir(parents=True, exist_ok=True)
    np.savez(file, **out)
    return out


def pair_counts(groups, owner: np.ndarray) -> tuple[int, int]:
    """(pairs grouped, of which true) over predicted groups; ``owner`` -1 = an image of its own."""
    grouped = true = 0
    for g in groups:
        grouped += len(g.members) * (len(g.members) - 1) // 2
        owners = owner[g.members]
        counts = np.bincount(owners[owners >= 0]) if (owners >= 0).any() else np.zeros(0, int)
        true += int((counts * (counts - 1) // 2).sum())
    return grouped, true


def true_pairs(owner: np.ndarray) -> int:
    counts = np.bincount(owner[owner >= 0])
    return int((counts * (counts - 1) // 2).sum())


def curve(vectors, owner, pixels, thresholds, exact_up_to: int = EXACT_UP_TO) -> list[dict]:
    """Pair precision, recall and F1 of the groups at each threshold."""
    total = true_pairs(owner)
    rows = []
    for t in thresholds:
        grouped, true = pair_counts(find_groups(vectors, t, pixels, exact_up_to=exact_up_to), owner)
        precision = true / grouped if grouped else 1.0
        recall = true / total
        f1 = 2 * precision * recall / (precision + recall) if true else 0.0
        rows.append({"threshold": round(float(t), 3), "precision": precision, "recall": recall, "f1": f1})
    return rows


#: the copies `exact` must keep with their original: re-encodings at JPEG quality 30 or better
MILD = ("jpeg75", "jpeg50", "jpeg30")


def fit_presets(rows: list[dict], d: dict, mask: np.ndarray) -> dict[str, float]:
    """The presets from the fit half: ``near`` maximises pair F1; ``similar`` is the lowest
    threshold whose pair precision is still >= 0.5; ``exact`` keeps 95 % of the mild re-encodings
    with their original (the 5th percentile of their similarity, rounded down to 0.01)."""
    by_f1 = max(rows, key=lambda r: r["f1"])
    similar = min((r for r in rows if r["precision"] >= 0.5), key=lambda r: r["threshold"])
    mild = mask & np.isin(d["attack"], MILD)
    scores = (d["vectors"][mild] * d["vectors"][d["owner"][mild]]).sum(1)
    exact = np.floor(np.percentile(scores, 5) * 100) / 100
    return {"exact": round(float(exact), 2), "near": by_f1["threshold"], "similar": similar["threshold"]}


def halves(d: dict) -> tuple[np.ndarray, np.ndarray]:
    """Row masks of the fit half (even originals, their copies, even distractors) and the test half."""
    n = len(d["owner"])
    rank = np.where(d["owner"] >= 0, d["owner"], np.arange(n))  # distractors: their own row number
    fit = rank % 2 == 0
    return fit, ~fit


def per_family(vectors, owner, family, pixels, threshold) -> dict[str, float]:
    """Recall of copy-to-original pairs by attack family at ``threshold``."""
    groups = find_groups(vectors, threshold, pixels)
    label = np.full(len(vectors), -1)
    for number, g in enumerate(groups):
        label[g.members] = number
    queries = family != "database"
    joined = (label[queries] >= 0) & (label[queries] == label[owner[queries]])
    return {f: float(joined[family[queries] == f].mean()) for f in ("jpeg", "crop", "strong")}


def _reset_peak_memory() -> float:
    """Resident MB now, after resetting the process's peak to it (Linux), so that the peak read
    later is the grouping's, not that of making the vectors."""
    Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _peak_memory() -> float:
    return _status("VmHWM")


def _status(field: str) -> float:
    line = next(line for line in Path("/proc/self/status").read_text().splitlines() if line.startswith(field))
    return int(line.split()[1]) / 1024


def synthetic(n: int, dim: int, threshold: float) -> dict:
    """Group ``n`` random unit vectors of which a tenth are noisy copies (cosine about 0.91) of
    others; run in a process of its own so that its peak memory is its own."""
    rng = np.random.default_rng(0)
    copies = n // 10
    x = rng.standard_normal((n, dim), dtype=np.float32)
    source = rng.choice(n - copies, copies, replace=False)
    x[n - copies:] = x[source] + 0.45 * rng.standard_normal((copies, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    before = _reset_peak_memory()
    wall, cpu = time.perf_counter(), time.process_time()
    groups = find_groups(x, threshold)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    peak = _peak_memory()  # before the exact check below
    label = np.full(n, -1)
    for number, g in enumerate(groups):
        label[g.members] = number
    found = (label[n - copies:] >= 0) & (label[n - copies:] == label[source])
    # pair recall against exact search: every pair above the threshold that touches 2,000 sampled
    # rows (found by brute force), and the share of them the groups join
    sample = rng.choice(n, 2000, replace=False)
    rows, cols = np.nonzero(x[sample] @ x.T > threshold)
    rows, keep = sample[rows], sample[rows] != cols
    joined = (label[rows[keep]] >= 0) & (label[rows[keep]] == label[cols[keep]])
    return {"pair_recall": float(joined.mean()), "exact_pairs": int(keep.sum()),
            "n": n, "dim": dim, "wall_s": wall, "cpu_s": cpu, "vectors_mb": x.nbytes / 1e6,
            "before_mb": before, "peak_mb": peak,
            "groups": len(groups), "planted_found": float(found.mean())}


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/duplicates"))
    parser.add_argument("--synthetic", type=int, nargs="*", default=[100_000], help="sizes of the synthetic runs")
    parser.add_argument("--one-synthetic", type=int, nargs=2, metavar=("N", "DIM"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one_synthetic:
        print(json.dumps(synthetic(*args.one_synthetic, PRESETS["near"])))
        raise SystemExit
    d = describe_copydays(args.data, args.cache)
    fit, test = halves(d)
    thresholds = np.round(np.arange(0.50, 0.995, 0.01), 3)
    fitted = fit_presets(curve(d["vectors"][fit], d["owner"][fit], d["pixels"][fit], thresholds), d, fit)
    print("presets fitted on the even half:", fitted, " (shipped:", PRESETS, ")")
    print("\n| preset | threshold | split | pair precision | pair recall | jpeg | crop | strong |")
    print("|---|---|---|---|---|---|---|---|")
    report = {"fitted": fitted, "rows": []}
    for name, t in PRESETS.items():
        for split, mask in (("fit (even)", fit), ("held out (odd)", test), ("all", np.ones_like(fit))):
            owner = d["owner"][mask]
            # owners index the database rows; renumber them within the split
            x, pixels, family = d["vectors"][mask], d["pixels"][mask], d["family"][mask]
            (row,) = curve(x, owner, pixels, [t])
            rows_of = np.full(len(mask), -1)
            rows_of[np.flatnonzero(mask)] = np.arange(mask.sum())
            local_owner = np.where(owner >= 0, rows_of[np.maximum(owner, 0)], -1)
            recall = per_family(x, local_owner, family, pixels, t)
            print(f"| {name} | {t} | {split} | {row['precision']:.3f} | {row['recall']:.3f} | "
                  f"{recall['jpeg']:.3f} | {recall['crop']:.3f} | {recall['strong']:.3f} |")
            report["rows"].append({"preset": name, "split": split, **row, **recall})
    print("\nThe same presets with the inverted-file join forced (as above 20,000 vectors), all images:")
    print("\n| preset | threshold | pair precision (exact) | pair precision (join) | pair recall (exact) | "
          "pair recall (join) |")
    print("|---|---|---|---|---|---|")
    for name, t in PRESETS.items():
        (exact,) = curve(d["vectors"], d["owner"], d["pixels"], [t])
        (joined,) = curve(d["vectors"], d["owner"], d["pixels"], [t], exact_up_to=0)
        print(f"| {name} | {t} | {exact['precision']:.3f} | {joined['precision']:.3f} | {exact['recall']:.3f} | "
              f"{joined['recall']:.3f} |")
        report["rows"].append({"preset": name, "split": "all, inverted-file join", **joined})
    print("\n| vectors | dim | wall s | CPU s | vectors (MB) | process before (MB) | peak (MB) | groups | "
          "planted copies found | pair recall vs exact |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in args.synthetic:
        for dim in (256, 1280):
            out = subprocess.run([sys.executable, __file__, "--one-synthetic", str(n), str(dim)], check=True,
                                 capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            print(f"| {r['n']:,} | {dim} | {r['wall_s']:.1f} | {r['cpu_s']:.1f} | {r['vectors_mb']:.0f} | "
                  f"{r['before_mb']:.0f} | {r['peak_mb']:.0f} | {r['groups']:,} | {r['planted_found']:.4f} | "
                  f"{r['pair_recall']:.4f} ({r['exact_pairs']}) |")
            report["rows"].append(r)
    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / "results.json").write_text(json.dumps(report, indent=1))
