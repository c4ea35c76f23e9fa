"""Near-duplicate groups: the presets calibrated on copydays, and the speed on 100k vectors.

    python benchmarks/duplicates.py --data ../shared/data --cache bench-output/duplicates

Copydays: the database (100 originals + 436 distractors) and the 2,300 attacked copies are
described with the default descriptor (GeM, scales 1, 0.7071, 0.5); a true pair is two images of
the same original (the original and a copy, or two copies). Pairs are counted over the groups
`lookalike duplicates` prints (connected components), so chaining is counted against precision.
The presets are fitted on the originals of even rank (and their copies, with the even half of
the distractors) and measured on the odd half, which the fit never saw.

Synthetic: N random unit vectors in groups of near-duplicates (each copy = its original plus
noise), grouped at the `near` threshold; time, peak memory and recall of the planted pairs.
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import default_descriptor
from lookalike.index.duplicates import PRESETS, find_groups
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


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/duplicates"))
    parser.add_argument("--describe-only", action="store_true")
    args = parser.parse_args()
    t = time.time()
    d = describe_copydays(args.data, args.cache)
    print(f"described {len(d['vectors'])} images in {time.time() - t:.0f} s")
