"""Re-ranking on the shared benchmarks: spatial verification (SIFT, DELF), AQE, alpha-QE, DBA + QE,
diffusion and their best combination, over the best global descriptor of each dataset.

    python benchmarks/reranking.py features --data ../shared/data --cache CACHE   # once, ~15 min
    python benchmarks/reranking.py table --data ../shared/data --cache CACHE      # minutes
    python benchmarks/reranking.py scaling                                        # diffusion, DBA at 1k-100k

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
from lookalike.rerank.steps import parse_steps

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
            extractor = create_local(kind)
            if not extractor.trained:
                source, name = LEARN_FROM[dataset]
                extractor = train_local(extractor, load_protocol(args.data / source / name).database_paths(),
                                        args.cache / f"{dataset}-delf-pca.npz")
            start = time.perf_counter()
            local = describe_local(extractor, paths)
            seconds = time.perf_counter() - start
            save_local(out, names, local)
            (args.cache / f"{dataset}-{kind}.json").write_text(json.dumps(
                {"seconds": seconds, "images": len(paths), "spec": extractor.spec(),
                 "keypoints_per_image": float(np.mean([len(f.keypoints) for f in local]))}))
            print(f"{out}: {kind} in {seconds:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["features", "table", "tune", "scaling"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/rerank-cache"))
    parser.add_argument("--datasets", nargs="+", default=list(PROTOCOLS))
    args = parser.parse_args()
    {"features": features}[args.command](args)


if __name__ == "__main__":
    main()
