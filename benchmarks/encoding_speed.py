"""VLAD and Fisher encoding speed against VLFeat (ctypes), same data, same run.

    python benchmarks/encoding_speed.py [--threads 1]

Encodes real RootSIFT descriptors from landmarks photos (or random data with --random) with
vocabularies of k = 16, 64 and 256, and reports descriptors per second. VLFeat's VLAD needs an
assignment matrix, which is computed outside its timing, so VLFeat's VLAD time excludes the
nearest-centre search that ours includes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.reference import vlfeat as vl  # noqa: E402

from lookalike.descriptors.aggregate import (  # noqa: E402
    GaussianMixture,
    KMeansVocabulary,
    fisher_encode,
    nearest_centers,
    vlad_encode,
)


def best_of(fn, repeats: int = 5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def sift_sample(data: Path, n_images: int) -> np.ndarray:
    from lookalike.descriptors.local.sift import extract_sift
    from lookalike.io.images import load_image

    paths = sorted((data / "landmarks" / "images").glob("*/*.jpg"))[::40][:n_images]
    return np.concatenate([extract_sift(load_image(p, max_side=512).pixels).descriptors for p in paths])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data")
    parser.add_argument("--threads", type=int, default=1, help="threads for VLFeat and BLAS")
    parser.add_argument("--random", action="store_true", help="random data instead of SIFT")
    args = parser.parse_args()
    library = vl.load()
    if library is None:
        sys.exit("VLFeat not found: apt-get install libvlfeat-dev")
    library.set_threads(args.threads)
    if args.random:
        x = np.random.default_rng(0).normal(size=(20000, 128)).astype(np.float32)
        training = x
    else:
        x = sift_sample(args.data, 8)
        training = sift_sample(args.data, 16)
    image = x[:2000]  # one image's worth of descriptors
    print(f"{len(image)} descriptors of {image.shape[1]} dims per encoding; threads={args.threads}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}")
    print("\n| encoding | k | lookalike (desc/s) | VLFeat (desc/s) | VLFeat + assignment (desc/s) | ours / VLFeat |"
          "\n|---|---|---|---|---|---|")
    for k in (16, 64, 256):
        centers = KMeansVocabulary(k, seed=0).fit(training).centers_
        one_hot = np.zeros((len(image), k), np.float32)
        one_hot[np.arange(len(image)), nearest_centers(image, centers)] = 1
        ours = best_of(lambda: vlad_encode(image, centers, intra=True, power=0.5))
        theirs = best_of(lambda: library.vlad(image, centers, one_hot,
                                              vl.VLAD_NORMALIZE_COMPONENTS | vl.VLAD_SQUARE_ROOT))
        assign = best_of(lambda: nearest_centers(image, centers))
        print(f"| VLAD | {k} | {len(image) / ours:,.0f} | {len(image) / theirs:,.0f} | "
              f"{len(image) / (theirs + assign):,.0f} | {(theirs + assign) / ours:.2f} (with assignment) |")
        gmm = GaussianMixture(k, seed=0, n_iter=5).fit(training)
        ours = best_of(lambda: fisher_encode(image, gmm.means_, gmm.variances_, gmm.weights_))
        theirs = best_of(lambda: library.fisher(image, gmm.means_, gmm.variances_, gmm.weights_,
                                                vl.FISHER_IMPROVED))
        print(f"| Fisher | {k} | {len(image) / ours:,.0f} | {len(image) / theirs:,.0f} | - | {theirs / ours:.2f} |")


if __name__ == "__main__":
    main()
