"""The baseline of ``end_to_end.py``: describing a folder the way a user would write it by hand.

    python benchmarks/handwritten_index.py MODEL.onnx gem|cnn-fc FOLDER OUT.npy [--workers 2]

Pillow decodes (JPEG draft mode, as ``Image.thumbnail`` uses), ONNX Runtime runs the exported
backbone with one thread in each of ``--workers`` processes, numpy pools (GeM p=3 on the image at
most 1024 px, aspect kept; or the average of the feature map of the image squashed to 224 x 224,
``cnn-fc``) and L2-normalises. The vectors are saved in the order of the sorted file names. It
imports neither lookalike nor torch: only what such a script needs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
from pathlib import Path

import numpy as np

SESSION: dict = {}


def start(model: str, descriptor: str) -> None:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    SESSION["run"] = onnxruntime.InferenceSession(model, options, providers=["CPUExecutionProvider"]).run
    SESSION["descriptor"] = descriptor


def describe(path: str) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as im:
        if SESSION["descriptor"] == "cnn-fc":
            im.draft("RGB", (224, 224))
            im = im.convert("RGB").resize((224, 224), Image.Resampling.BILINEAR)
        else:
            scale = min(1.0, 1024 / max(im.size))
            size = (max(1, round(im.width * scale)), max(1, round(im.height * scale)))
            im.draft("RGB", size)
            im = im.convert("RGB")
            if im.size != size:
                im = im.resize(size, Image.Resampling.BILINEAR)
    pixels = np.asarray(im, dtype=np.float32).transpose(2, 0, 1)[None]
    features = SESSION["run"](None, {"pixels": np.ascontiguousarray(pixels)})[0][0]  # [C, h, w]
    if SESSION["descriptor"] == "cnn-fc":
        vector = features.mean(axis=(1, 2))
    else:
        vector = np.cbrt((np.maximum(features, 1e-6) ** 3).mean(axis=(1, 2)))
    return vector / max(float(np.linalg.norm(vector)), 1e-12)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("descriptor", choices=["gem", "cnn-fc"])
    parser.add_argument("folder", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    paths = sorted(str(p) for p in args.folder.rglob("*.jpg"))
    os.environ["OMP_NUM_THREADS"] = "1"
    with multiprocessing.get_context("spawn").Pool(args.workers, start, (args.model, args.descriptor)) as pool:
        vectors = np.stack(pool.map(describe, paths, chunksize=4))
    np.save(args.out, vectors.astype(np.float32))


if __name__ == "__main__":
    main()
