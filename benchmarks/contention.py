"""Numeric kernels alone and beside a busy process: no collapse under contention.

    python benchmarks/contention.py [--repeats 15]

Times each per-image kernel (VLAD, Fisher, soft bag of words, GMM posteriors, PCA, whitening,
GeM pooling) on one image's worth of real RootSIFT descriptors (or GeM feature maps), three
ways: alone; beside a busy process that keeps one core doing BLAS work; and beside it with the
thread bound lifted (each library's default thread count), which is what lookalike did before.
VLFeat (ctypes, one thread) runs the same VLAD and Fisher encodings as the reference. Medians of
``--repeats`` runs, in milliseconds.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reference import vlfeat as vl  # noqa: E402

import lookalike.threads  # noqa: E402
from lookalike.descriptors.aggregate import (  # noqa: E402
    GaussianMixture,
    KMeansVocabulary,
    bow_encode,
    fisher_encode,
    nearest_centers,
    vlad_encode,
)
from lookalike.postprocess.pca import PCA  # noqa: E402
from lookalike.postprocess.whitening import PCAWhitening  # noqa: E402

#: one core kept busy with single-threaded matrix products until the parent closes its stdin
BUSY = ("import os, sys, threading, numpy as np; a = np.ones((400, 400)); "
        "threading.Thread(target=lambda: (sys.stdin.read(), os._exit(0)), daemon=True).start()\n"
        "while True: a @ a")


@contextmanager
def busy_core():
    env = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"}
    process = subprocess.Popen([sys.executable, "-c", BUSY], stdin=subprocess.PIPE, env=env)
    time.sleep(0.5)
    try:
        yield
    finally:
        process.stdin.close()
        process.wait(timeout=10)


@contextmanager
def unbounded():
    saved = lookalike.threads.SMALL_PROBLEM
    lookalike.threads.SMALL_PROBLEM = 0  # every problem counts as large: the libraries' defaults
    try:
        yield
    finally:
        lookalike.threads.SMALL_PROBLEM = saved


def median_ms(fn, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def sift_sample(data: Path, n_images: int) -> np.ndarray:
    from lookalike.descriptors.local.sift import extract_sift
    from lookalike.io.images import load_image

    paths = sorted((data / "landmarks" / "images").glob("*/*.jpg"))[::40][:n_images]
    return np.concatenate([extract_sift(load_image(p, max_side=512).pixels).descriptors for p in paths])


def kernels(data: Path, library) -> dict:
    training = sift_sample(data, 16)
    image = sift_sample(data, 3)[:3000]
    kmeans64 = KMeansVocabulary(64, seed=0).fit(training).centers_
    kmeans1k = KMeansVocabulary(1024, seed=0, n_iter=5).fit(training).centers_
    gmm = GaussianMixture(64, seed=0, n_iter=5).fit(training)
    pca = PCA(64, whiten=True).fit(training)
    whitening = PCAWhitening(512).fit(np.random.default_rng(0).normal(size=(3000, 1280)).astype(np.float32))
    vectors = np.random.default_rng(1).normal(size=(50, 1280)).astype(np.float32)
    out = {
        "VLAD k=64": lambda: vlad_encode(image, kmeans64, intra=True, power=0.5),
        "Fisher k=64": lambda: fisher_encode(image, gmm.means_, gmm.variances_, gmm.weights_),
        "BoW k=1024, soft 3": lambda: bow_encode(image, kmeans1k, soft=3),
        "GMM posteriors k=64": lambda: gmm.predict_proba(image),
        "PCA 128->64": lambda: pca.transform(image),
        "whitening 1280->512, 50 vectors": lambda: whitening.transform(vectors),
    }
    try:
        import torch

        from lookalike.descriptors.cnn.pooling import gem

        maps = torch.rand(1, 1280, 32, 24)
        out["GeM 1280x32x24 (torch)"] = lambda: gem(maps)
    except ImportError:
        pass
    if library is not None:
        one_hot = np.zeros((len(image), 64), np.float32)
        one_hot[np.arange(len(image)), nearest_centers(image, kmeans64)] = 1
        out["VLFeat VLAD k=64 (+ our assignment)"] = lambda: (
            nearest_centers(image, kmeans64),
            library.vlad(image, kmeans64, one_hot, vl.VLAD_NORMALIZE_COMPONENTS | vl.VLAD_SQUARE_ROOT))
        out["VLFeat Fisher k=64"] = lambda: library.fisher(image, gmm.means_, gmm.variances_, gmm.weights_,
                                                           vl.FISHER_IMPROVED)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    library = vl.load()
    if library is not None:
        library.set_threads(1)
    else:
        print("VLFeat not found (apt-get install libvlfeat-dev): its rows are left out", file=sys.stderr)
    runs = kernels(args.data, library)
    alone = {name: median_ms(fn, args.repeats) for name, fn in runs.items()}
    with busy_core():
        busy = {name: median_ms(fn, args.repeats) for name, fn in runs.items()}
        with unbounded():
            loose = {name: median_ms(fn, args.repeats) for name, fn in runs.items()}
    print("\n| kernel (one image) | alone (ms) | beside a busy core (ms) | busy, threads unbounded (ms) |"
          "\n|---|---|---|---|")
    for name in runs:
        print(f"| {name} | {alone[name]:.2f} | {busy[name]:.2f} | {loose[name]:.2f} |")


if __name__ == "__main__":
    main()
