"""mAP of the deep global descriptors on the shared benchmarks, beside each other.

    python benchmarks/deep_descriptors.py --data ../shared/data --out bench-output/deep

EfficientNet-Lite0 (ImageNet weights, ONNX Runtime) runs once per image at full resolution (longer
side at most 1024, aspect ratio kept), in lookalike's extraction workers; every pooling
(MAC, SPoC, CroW, R-MAC, GeM p=3, NetVLAD) is then computed from that same feature map with the
functions the descriptors use. GeM is also run at three scales (1, 1/sqrt 2, 1/2). NetVLAD's
centres come from k-means on the dataset's own database features (unsupervised, untrained
otherwise). GeM + whitening learns its PCA-whitening on a *different* dataset's database
images (landmarks <- copydays, copydays <- landmarks, eth80 <- both). ``cnn-fc`` runs the
squashed 224 x 224 input through the pipeline on its own. A check at the end evaluates ``gem``
through ``lookalike eval``'s code path and must give the same mAP.

Prints markdown tables and writes results.json.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from lookalike.descriptors import create
from lookalike.descriptors.aggregate.registered import PER_IMAGE
from lookalike.descriptors.cnn import crow, gem, mac, rmac, spoc
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.evaluation import evaluate_descriptor, rank_all
from lookalike.pipelines.extract import extract
from lookalike.postprocess.whitening import PCAWhitening
from lookalike.sampling import evenly_spaced

DATASETS = {"eth80": ["instance.json", "category.json"], "landmarks": ["full.json"], "copydays": ["full.json"]}
WHITEN_FROM = {"landmarks": ["copydays"], "copydays": ["landmarks"], "eth80": ["landmarks", "copydays"]}
SCALES = (1.0, 0.7071, 0.5)
POOLINGS = {"mac": mac, "spoc": spoc, "crow": crow, "rmac": rmac, "gem": gem}
NETVLAD_K = 16
SHRINKAGES = (0.0, 0.1, 0.3)


def maps_and_multiscale_gem(descriptor, pixels: np.ndarray) -> dict:
    """One image's scale-1 feature map (float16) and its GeM vector at every scale (in a worker)."""
    maps = [descriptor.feature_map(scaled) for scaled in descriptor.prepare(pixels)]
    return {"map": maps[0].half(),
            "gem_scales": [torch.nn.functional.normalize(gem(m[None]), dim=1)[0].numpy() for m in maps]}


def normalise(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def describe_dataset(dataset: str, data: Path, out: Path) -> dict:
    protocols = [load_protocol(data / dataset / f) for f in DATASETS[dataset]]
    db_paths, q_paths = protocols[0].database_paths(), protocols[0].query_paths()
    unique = list(dict.fromkeys(db_paths + q_paths))
    row = {p: i for i, p in enumerate(unique)}
    vectors: dict[str, np.ndarray] = {}

    start = time.perf_counter()
    fc = dict(extract(create("cnn-fc"), unique, progress=f"cnn-fc {dataset}"))
    vectors["cnn-fc"] = np.stack([fc[p].vector for p in unique])
    fc_s = time.perf_counter() - start

    start = time.perf_counter()
    descriptor = create("gem", scales=SCALES)
    described = dict(extract(descriptor, unique, progress=f"feature maps {dataset}", compute=maps_and_multiscale_gem))
    maps_s = time.perf_counter() - start
    print(f"{dataset}: {len(unique)} images; cnn-fc {fc_s:.0f} s, three-scale feature maps {maps_s:.0f} s", flush=True)

    maps = [described[p].vector["map"] for p in unique]
    for name, pool in POOLINGS.items():
        vectors[name] = np.concatenate([normalise(pool(m[None].float()).numpy()) for m in maps])
    scales = np.stack([described[p].vector["gem_scales"] for p in unique])  # [N, S, C]
    vectors["gem multi-scale"] = normalise(scales.sum(axis=1))

    start = time.perf_counter()
    netvlad = create("netvlad", k=NETVLAD_K)
    training = [evenly_spaced(maps[row[p]].flatten(1).T.float().numpy(), PER_IMAGE) for p in db_paths]
    netvlad = netvlad.fit(training, out / f"netvlad-{dataset}.npz")
    layer = netvlad.layer
    with torch.inference_mode():
        vectors["netvlad"] = np.concatenate([layer(m[None].float()).numpy() for m in maps])
    print(f"  netvlad k={NETVLAD_K}: k-means and pooling {time.perf_counter() - start:.0f} s", flush=True)
    return {"protocols": protocols, "unique": unique, "row": row, "vectors": vectors,
            "db": [row[p] for p in db_paths], "queries": [row[p] for p in q_paths],
            "seconds": {"cnn-fc": fc_s, "maps": maps_s}}


def score(described: dict, name: str, vectors: np.ndarray) -> list[dict]:
    rankings = rank_all(vectors[described["db"]], vectors[described["queries"]], False)
    rows = []
    for protocol in described["protocols"]:
        result = evaluate_rankings(rankings, protocol)
        rows.append({"protocol": protocol.name, "descriptor": name, "map": result["map"], "top1": result["top1"],
                     "dim": vectors.shape[1],
                     "per_family": {k: v["map"] for k, v in result.get("per_family", {}).items()}})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--out", type=Path, default=Path("bench-output/deep"))
    parser.add_argument("--from-json", action="store_true", help="only print the tables from OUT/results.json")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    saved = args.out / "results.json"
    if not args.from_json:
        described = {d: describe_dataset(d, args.data, args.out) for d in DATASETS}
        rows = []
        for dataset, d in described.items():
            for name, vectors in d["vectors"].items():
                rows += score(d, name, vectors)
            sources = WHITEN_FROM[dataset]
            training = np.concatenate([described[s]["vectors"]["gem"][described[s]["db"]] for s in sources])
            for shrinkage in SHRINKAGES:
                whitening = PCAWhitening(shrinkage=shrinkage).fit(training)
                name = f"gem + whitening (from {'+'.join(sources)}, shrinkage {shrinkage})"
                rows += score(d, name, whitening.transform(d["vectors"]["gem"]))
        seconds = {dataset: d["seconds"] | {"images": len(d["unique"])} for dataset, d in described.items()}
        saved.write_text(json.dumps({"rows": rows, "seconds": seconds}, indent=1))
        landmarks = described["landmarks"]["protocols"][0]
        check = evaluate_descriptor(landmarks, create("gem"), progress=False)
        expected = next(r["map"] for r in rows if r["protocol"] == landmarks.name and r["descriptor"] == "gem")
        print(f"check: lookalike eval landmarks -d gem: mAP {check['map']:.4f} (benchmark {expected:.4f}), "
              f"{check['ms_per_image']:.0f} ms/image")
    print_tables(json.loads(saved.read_text())["rows"])


def print_tables(rows: list[dict]) -> None:
    protocols = list(dict.fromkeys(r["protocol"] for r in rows))
    names = list(dict.fromkeys(r["descriptor"] for r in rows))
    table = {(r["protocol"], r["descriptor"]): r for r in rows}
    print("\n| descriptor | dim | " + " | ".join(protocols) + " |\n|---|---|" + "---|" * len(protocols))
    for name in names:
        dim = next(r["dim"] for r in rows if r["descriptor"] == name)
        print(f"| {name} | {dim:,} | " + " | ".join(
            f"{table[(p, name)]['map']:.3f}" if (p, name) in table else "" for p in protocols) + " |")
    families = [r for r in rows if r["per_family"]]
    if families:
        columns = list(families[0]["per_family"])
        print("\n| copydays | " + " | ".join(columns) + " |\n|---|" + "---|" * len(columns))
        for r in families:
            print(f"| {r['descriptor']} | " + " | ".join(f"{r['per_family'][c]:.3f}" for c in columns) + " |")


if __name__ == "__main__":
    main()
