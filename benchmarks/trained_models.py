"""The other trainable models of the course on eth80, trained on frozen backbone features:
NetVLAD (triplet loss), the Fisher-vector + MLP hybrid, and DELF's learned attention.

    python benchmarks/trained_models.py features --data ../shared/data --cache CACHE   # once, the long part
    python benchmarks/trained_models.py netvlad --data ../shared/data --cache CACHE
    python benchmarks/trained_models.py fvfc --data ../shared/data --cache CACHE
    python benchmarks/trained_models.py delf --data ../shared/data --cache CACHE --rerank-cache RERANK

``features`` runs the networks once over the 3,280 eth80 images and keeps what training and
evaluation read: EfficientNet-Lite0's last feature map of each 256 x 256 image (what ``gem`` and
``netvlad`` pool), DELF's block-10 maps at its three scales, and the Fisher vectors of dense
SIFT under a GMM learnt on ``instance-train``. Training uses ``instance-train.json`` only (the
object is the class; 20% of the objects are held out to choose the epoch); results are on
``instance-test`` and ``category-test``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch

from lookalike.io.images import load_image
from lookalike.io.protocol import load_protocol

ETH80 = ("instance-train.json", "instance-test.json", "category-test.json")


def all_names(data: Path) -> list[str]:
    return load_protocol(data / "eth80" / "instance.json").imlist


# ---- features --------------------------------------------------------------------------------------
FISHER = {"k": 64, "pca": 64, "dense": True}  # Perronnin & Larlus: dense SIFT, PCA-reduced to 64-D


def features(args) -> None:
    if args.part in ("maps", "all"):
        feature_maps(args)
    if args.part in ("fisher", "all"):
        fisher_vectors(args)


def fisher_vectors(args) -> None:
    """The improved Fisher vectors (8,192-D) of every eth80 image, the GMM learnt on instance-train."""
    from lookalike.descriptors import create
    from lookalike.pipelines.evaluation import describe_protocol
    from lookalike.pipelines.training import train_descriptor

    out = args.cache / "eth80-fisher.npz"
    if out.is_file():
        return
    start = time.perf_counter()
    train = load_protocol(args.data / "eth80" / "instance-train.json")
    fisher, report = train_descriptor(create("fisher", **FISHER), train.database_paths(),
                                      args.cache / "eth80-fisher-gmm.npz", max_images=len(train.imlist),
                                      workers=args.workers)
    protocol = load_protocol(args.data / "eth80" / "instance.json")
    described = describe_protocol(protocol, fisher, workers=args.workers)
    np.savez(out, names=np.array(protocol.imlist), vectors=described.database, spec=json.dumps(fisher.spec()),
             seconds=time.perf_counter() - start, describe_seconds=described.seconds)
    print(f"{out}: {time.perf_counter() - start:.0f} s ({report})", flush=True)


def feature_maps(args) -> None:
    from lookalike.descriptors.cnn.engine import load_engine
    from lookalike.descriptors.cnn.inputs import scaled_inputs
    from lookalike.descriptors.cnn.local import DelfConfig, delf_engine

    torch.set_num_threads(args.threads)
    args.cache.mkdir(parents=True, exist_ok=True)
    root = args.data / "eth80" / "images"
    names = all_names(args.data)
    out = args.cache / "eth80-maps.npz"
    if not out.is_file():
        engine = load_engine("efficientnet-lite0", "", "auto", args.threads)
        delf = DelfConfig()
        runner, _, _ = delf_engine(delf.backbone, delf.block, delf.engine, args.threads)
        last, local = [], {s: [] for s in delf.scales}
        start = time.perf_counter()
        for i, name in enumerate(names):
            image = load_image(root / name).pixels
            last.append(engine(scaled_inputs(image, 1024, (1.0,))[0][None])[0].numpy().astype(np.float16))
            for scale, pixels in zip(delf.scales, scaled_inputs(image, delf.max_side, delf.scales)):
                local[scale].append(runner(pixels[None])[0].numpy().astype(np.float16))
            if i % 200 == 0:
                print(f"{i}/{len(names)} {time.perf_counter() - start:.0f} s", flush=True)
        np.savez(out, names=np.array(names), last=np.stack(last),
                 **{f"block_scale{s}": np.stack(m) for s, m in local.items()},
                 seconds=time.perf_counter() - start)
        print(f"{out}: {time.perf_counter() - start:.0f} s", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["features", "netvlad", "fvfc", "delf"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/trained-models"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--part", choices=["maps", "fisher", "all"], default="all")
    args = parser.parse_args()
    {"features": features}[args.command](args)


if __name__ == "__main__":
    main()
