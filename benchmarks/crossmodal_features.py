"""Frozen image features of the cross-modal benchmarks, computed once and cached.

One forward pass per image and scale gives every pooling at once: GeM (p=3), average and max of
the last feature map, each L2-normalised per scale, so that any multi-scale combination equals
what the registered descriptor computes (``normalize(sum of per-scale vectors)``). The raw
average-pooled vector of the 224 x 224 squashed image (what the ImageNet classifier reads) is
kept too, for the zero-shot bridge. ``--mirror`` describes the mirror images (left-right flip)
the same way, into ``<name>-mirror.npz``: with the plain ones they give ``gem-flip``.

    python benchmarks/crossmodal_features.py --data ../shared/data --cache bench-output/crossmodal
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

SCALES = (1.0, 0.7071, 0.5, 1.4142)
POOLINGS = ("gem", "mean", "max")


def arguments(doc: str, plots: bool = False) -> argparse.ArgumentParser:
    """The options of the cross-modal benchmarks: ``--data``, ``--cache`` and, with ``plots``, ``--out``."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path("bench-output/crossmodal"))
    if plots:
        parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    return parser


def caption_images(data: Path) -> list[Path]:
    """The 1,000 caption photos, in the order of ``captions.jsonl``."""
    with open(data / "captions" / "captions.jsonl") as f:
        return [data / "captions" / "images" / json.loads(line)["image"] for line in f if line.strip()]


def eth80_images(data: Path) -> list[Path]:
    """The category-train then category-test database images of eth80."""
    paths = []
    for split in ("category-train.json", "category-test.json"):
        with open(data / "eth80" / split) as f:
            paths += [data / "eth80" / "images" / p for p in json.load(f)["imlist"]]
    return paths


def describe(paths: list[Path], backbone: str = "efficientnet-lite0", scales=SCALES,
             mirror: bool = False) -> dict[str, np.ndarray]:
    from lookalike.descriptors import create
    from lookalike.descriptors.cnn import pooling
    from lookalike.io import load_image

    gem = create("gem", scales=scales, threads=1, backbone=backbone)
    fc = create("cnn-fc", threads=1, backbone=backbone)
    pooled = np.zeros((len(paths), len(scales), len(POOLINGS), gem.raw_dim), np.float32)
    classifier_input = np.zeros((len(paths), gem.raw_dim), np.float32)
    for i, path in enumerate(tqdm(paths, desc="features", mininterval=10)):
        pixels = load_image(path).pixels
        if mirror:
            pixels = np.ascontiguousarray(pixels[:, ::-1])
        for s, prepared in enumerate(gem.prepare(pixels)):
            fmap = gem.feature_map(prepared)[None]
            vectors = torch.cat([pooling.gem(fmap, 3.0), fmap.mean(dim=(2, 3)), pooling.mac(fmap)])
            pooled[i, s] = torch.nn.functional.normalize(vectors, dim=1).numpy()
        classifier_input[i] = fc.feature_map(fc.prepare(pixels)[0]).mean(dim=(1, 2)).numpy()
    return {"pooled": pooled, "classifier_input": classifier_input}


def cached(name: str, paths: list[Path], cache: Path, backbone: str = "efficientnet-lite0",
           mirror: bool = False) -> dict[str, np.ndarray]:
    """The features of ``paths`` (or of their mirror images), from ``cache/<name>[-<backbone>][-mirror].npz``
    or computed and saved there."""
    stem = name if backbone == "efficientnet-lite0" else f"{name}-{backbone}"
    file = cache / (f"{stem}-mirror.npz" if mirror else f"{stem}.npz")
    if not file.is_file():
        cache.mkdir(parents=True, exist_ok=True)
        # the larger network, at the first three scales only: it costs 3x more per pixel
        features = describe(paths, backbone, SCALES if backbone == "efficientnet-lite0" else SCALES[:3], mirror)
        np.savez(file.with_suffix(".tmp.npz"), names=np.array([str(p) for p in paths]), **features)
        file.with_suffix(".tmp.npz").rename(file)
    with np.load(file) as data:
        return {k: data[k] for k in data.files}


if __name__ == "__main__":
    parser = arguments(__doc__)
    parser.add_argument("--backbone", default="efficientnet-lite0")
    parser.add_argument("--only", choices=("captions", "eth80"))
    parser.add_argument("--mirror", action="store_true", help="describe the mirror images (for gem-flip)")
    args = parser.parse_args()
    for name, paths in (("captions", caption_images(args.data)), ("eth80", eth80_images(args.data))):
        if args.only in (None, name):
            features = cached(name, paths, args.cache, args.backbone, args.mirror)
            print(name, {k: v.shape for k, v in features.items()})
