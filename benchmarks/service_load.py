"""Throughput and latency of `lookalike serve` under 8 concurrent clients, on loopback.

    python benchmarks/service_load.py --work bench-output/service --seconds 30

Builds the demo set (scikit-image photographs and their edited copies), indexes all 120 images
with the default descriptor (GeM at 3 scales), starts `lookalike serve` on 127.0.0.1 and a free
port, then runs each scenario for --seconds with 8 clients sending requests back to back:

* more like this: GET .../images/{id}/similar (a search with a stored vector, no image decoded);
* upload search: POST .../search with a JPEG (decode, describe with GeM at 3 scales, search);
* thumbnails: GET .../images/{id}/file?size=192 (decode and re-encode a stored image).

Prints a markdown table; any non-2xx answer counts as an error.
"""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from lookalike.service.loadtest import run_load


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def build(work: Path) -> Path:
    collection = work / "collection"
    if not (collection / "manifest.json").exists():
        subprocess.run([sys.executable, "-m", "lookalike", "demo-data", str(work / "photos")], check=True)
        subprocess.run([sys.executable, "-m", "lookalike", "index", str(work / "photos" / "images"),
                        "-c", str(collection)], check=True)
    return collection


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("bench-output/service"))
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--clients", type=int, default=8)
    args = parser.parse_args()
    collection = build(args.work)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    server = subprocess.Popen([sys.executable, "-m", "lookalike", "serve", "-c", str(collection),
                               "--host", "127.0.0.1", "--port", str(port)], env={**os.environ})
    try:
        for _ in range(600):
            try:
                httpx.get(url + "/api/collections", timeout=1.0)
                break
            except httpx.HTTPError:
                time.sleep(0.1)
        name = collection.name
        ids = [r["id"] for r in httpx.post(f"{url}/api/collections/{name}/search", timeout=120, files={
            "image": ("q.jpg", next((args.work / "photos" / "images" / "queries").glob("*.jpg")).read_bytes())},
            data={"k": "100"}).json()["results"]]
        uploads = [p.read_bytes() for p in sorted((args.work / "photos" / "images" / "queries").glob("*.jpg"))[:8]]
        scenarios = {
            "more like this (k=10)": [lambda h, i=i: h.get(f"/api/collections/{name}/images/{i}/similar",
                                                           params={"k": 10}) for i in ids[:16]],
            "upload search (k=10)": [lambda h, u=u: h.post(f"/api/collections/{name}/search",
                                                           files={"image": ("q.jpg", u)}, data={"k": "10"})
                                     for u in uploads],
            "thumbnail (192 px)": [lambda h, i=i: h.get(f"/api/collections/{name}/images/{i}/file",
                                                        params={"size": 192}) for i in ids[:16]],
        }
        images = httpx.get(f"{url}/api/collections/{name}").json()["images"]
        print(f"\n{images} images, {args.clients} clients, {args.seconds:.0f} s per scenario\n")
        print("| scenario | requests | errors | requests/s | p50 (ms) | p99 (ms) |")
        print("|---|---|---|---|---|---|")
        for label, requests in scenarios.items():
            report = run_load(url, requests, clients=args.clients, seconds=args.seconds)
            print(f"| {label} | {report.requests} | {len(report.errors)} | {report.throughput:.1f} | "
                  f"{report.percentile(50):.0f} | {report.percentile(99):.0f} |", flush=True)
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
