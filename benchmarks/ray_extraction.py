"""Images described per second: the local engine (worker processes) against Ray Data on a local
Ray cluster of the same cores, same descriptor, same files.

    python benchmarks/ray_extraction.py --images bench-output/service/photos/images --cpus 2

Checks that both engines give the same vectors, and prints a markdown row per engine.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lookalike.descriptors import default_descriptor
from lookalike.io.files import find_images
from lookalike.pipelines.extract import extract
from lookalike.scale.ray_extract import extract_ray


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--cpus", type=int, default=2)
    args = parser.parse_args()
    import os

    from lookalike.scale.ray_extract import LOOPBACK_ONLY

    os.environ.setdefault(LOOPBACK_ONLY, "0")  # the local cluster binds to 127.0.0.1 only
    import ray

    paths = find_images([args.images])
    descriptor = default_descriptor()
    list(extract(descriptor, paths[:2], workers=1, progress=None))  # the ONNX graph, exported once
    start = time.perf_counter()
    local = [r.vector for _, r in extract(descriptor, paths, workers=args.cpus, progress=None)]
    local_s = time.perf_counter() - start
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    start = time.perf_counter()
    remote = [r.vector for _, r in extract_ray(descriptor, paths, actors=args.cpus)]
    ray_s = time.perf_counter() - start
    ray.shutdown()
    same = max(float(np.abs(a - b).max()) for a, b in zip(local, remote))
    print(f"{len(paths)} images, {descriptor.name} {descriptor.spec()['config']['scales']}, {args.cpus} CPUs; "
          f"largest difference between the engines' vectors: {same:.2e}\n")
    print("| engine | seconds | images/s |")
    print("|---|---|---|")
    print(f"| local (worker processes) | {local_s:.1f} | {len(paths) / local_s:.1f} |")
    print(f"| ray (Ray Data, local cluster, start-up included) | {ray_s:.1f} | {len(paths) / ray_s:.1f} |")


if __name__ == "__main__":
    main()
