"""Self-supervised training for copy detection (SSCD) against off-the-shelf descriptors, on copydays.

    python benchmarks/selfsup.py prepare --data ../shared/data --out bench-output/selfsup
    lookalike finetune bench-output/selfsup/unlabelled.csv --loss sscd -o bench-output/selfsup/sscd.pt \\
        --epochs 2 --queries 384 --batch 32 --resolution 160 --trainable-blocks 4 --lr 1e-4 --entropy-weight 1 \\
        --val-fraction 0.05 --threads 1
    lookalike eval ../shared/data/copydays/full.json -d gem --json bench-output/selfsup/gem.json
    lookalike eval ../shared/data/copydays/full.json -d cnn-fc --json bench-output/selfsup/cnn-fc.json
    lookalike eval ../shared/data/copydays/full.json -d gem -s weights=bench-output/selfsup/sscd.pt \\
        --json bench-output/selfsup/sscd.json
    python benchmarks/selfsup.py table "cnn-fc=bench-output/selfsup/cnn-fc.json" \\
        "GeM=bench-output/selfsup/gem.json" "GeM, SSCD-trained=bench-output/selfsup/sscd.json"

``prepare`` lists the training images: no copydays image, only eth80's training objects
(``instance-train``, 1,640 images) and the 500 landmarks distractors (BSDS500), as a CSV whose
labels training ignores. ``table`` prints mAP per copydays attack and family from the JSON that
``lookalike eval --json`` writes, one column per descriptor.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
from pathlib import Path

from lookalike.io.protocol import load_protocol


def prepare(data: Path, out: Path) -> Path:
    paths = load_protocol(data / "eth80" / "instance-train.json").database_paths()
    paths += sorted((data / "landmarks" / "images" / "distractors").glob("*.jpg"))
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "unlabelled.csv", "w", newline="") as f:
        csv.writer(f).writerows([("path", "label")] + [(os.path.relpath(p.resolve(), out.resolve()), "-")
                                                       for p in paths])
    print(f"{len(paths)} training images listed in {out / 'unlabelled.csv'}")
    return out / "unlabelled.csv"


def table(results: dict[str, dict]) -> None:
    names = list(results)
    rows = {"all (mAP)": [r["map"] for r in results.values()]}
    for group in ("per_family", "per_attack"):
        keys = sorted(set().union(*(r.get(group, {}) for r in results.values())))
        for key in keys:
            label = f"**{key}** (family)" if group == "per_family" else key
            rows[label] = [r.get(group, {}).get(key, {}).get("map", float("nan")) for r in results.values()]
    print("| copydays | " + " | ".join(names) + " |")
    print("|---|" + "---|" * len(names))
    for label, values in rows.items():
        best = max(values)
        print(f"| {label} | " + " | ".join(f"**{v:.3f}**" if v == best else f"{v:.3f}" for v in values) + " |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("prepare", "table"))
    parser.add_argument("results", nargs="*", help="table: NAME=EVAL.json, one per column")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("bench-output/selfsup"))
    args = parser.parse_args()
    if args.stage == "prepare":
        prepare(args.data, args.out)
    else:
        table({name: json.loads(Path(file).read_text()) for name, file in (r.split("=", 1) for r in args.results)})


if __name__ == "__main__":
    main()
