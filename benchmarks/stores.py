"""The faiss and Milvus vector stores on the same vectors: recall@10, query time, insert rate.

    python benchmarks/stores.py --data ../shared/data --cache bench-output/stores

Each store is driven through its :class:`~lookalike.index.store.VectorStore` interface, the
code a collection uses: vectors are committed to SQLite in batches of 5,000 and the store
follows each batch (`update`), then is made durable (`save`: the faiss file, or a Milvus flush)
and opened for search. The insert rate counts the store's own work only (the SQLite writes,
the same for both, are left out); it includes training (faiss trains an IVF once enough vectors
are stored; Milvus trains and builds its index when the data is flushed and loaded). Queries are
searched one at a time, as the service does; recall@10 is against exact inner-product search
done with numpy. Milvus runs embedded (milvus-lite, no server), in this process.

Data sets:
* synthetic: 100,000 + 1,000 query vectors (``--queries``: fewer) of 256-d, drawn around 2,000 random centres (so
  that neighbours exist, unlike uniform random vectors) and L2-normalised;
* SIFT: 100,000 + 1,000 real SIFT descriptors (128-d, L2-normalised) of copydays' photographs,
  taken evenly over the 1.9 million the local-feature benchmarks extract (cached file
  ``copydays-sift.npz`` of benchmarks/reranking.py; skipped without it);
* copydays GeM: the real collection of `lookalike duplicates`' calibration, 2,836 GeM vectors
  (1,280-d); the 2,300 attacked copies query the 536 database images (skipped without its cache).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from lookalike.index import structures
from lookalike.index.metadata import Entry, Metadata
from lookalike.index.store import open_store, store_spec

BATCH = 5_000
K = 10


def synthetic(n: int = 100_000, queries: int = 1_000, dim: int = 256, centres: int = 2_000):
    rng = np.random.default_rng(0)
    middle = rng.standard_normal((centres, dim), dtype=np.float32)
    x = middle[rng.integers(0, centres, n + queries)] + 0.6 * rng.standard_normal((n + queries, dim), dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x[:n], x[n:]


def sift(cache: Path, n: int = 100_000, queries: int = 1_000):
    file = cache / "copydays-sift.npz"
    if not file.exists():
        return None
    descriptors = np.load(file)["descriptors"]
    rows = np.linspace(0, len(descriptors) - 1, n + queries).astype(np.int64)
    x = descriptors[rows].astype(np.float32)
    x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    is_query = np.arange(len(x)) % 101 == 0  # queries spread over all photographs, never in the database
    return np.ascontiguousarray(x[~is_query][:n]), np.ascontiguousarray(x[is_query][:queries])


def copydays_gem(cache: Path):
    file = cache / "copydays-gem3.npz"
    if not file.exists():
        return None
    d = np.load(file)
    database = d["family"] == "database"
    return np.ascontiguousarray(d["vectors"][database]), np.ascontiguousarray(d["vectors"][~database])


def build(folder: Path, kind: str, factory: str, database: np.ndarray):
    """A store of ``kind`` holding ``database``, built batch by batch; returns it and the seconds
    (wall, CPU) the store itself spent."""
    dim = database.shape[1]
    folder.mkdir(parents=True)
    metadata = Metadata(folder / "metadata.sqlite", dim, new=True)
    owner = SimpleNamespace(path=folder, dim=dim, factory=factory, writable=True, metadata=metadata,
                            manifest={"store": store_spec(kind, None, factory)})
    wall = cpu = 0.0
    store = open_store(owner)
    for start in range(0, len(database), BATCH):
        block = database[start:start + BATCH]
        added, _ = metadata.write(Entry(f"/{start + i}", f"{start + i}", 1, 1, 1, v) for i, v in enumerate(block))
        w, c = time.perf_counter(), time.process_time()
        store.update(added, block, [])
        wall, cpu = wall + time.perf_counter() - w, cpu + time.process_time() - c
    w, c = time.perf_counter(), time.process_time()
    store.save()
    store.close()
    store = open_store(owner)  # searchable: Milvus loads (and indexes) what was flushed
    store.search(database[:1], K)
    return store, metadata, wall + time.perf_counter() - w, cpu + time.process_time() - c


def measure(name: str, database: np.ndarray, queries: np.ndarray, configs, work: Path) -> list[dict]:
    truth = np.argsort(-(queries @ database.T), axis=1)[:, :K] + 1  # SQLite ids start at 1
    rows = []
    for factory, parameters in configs:
        for kind in ("faiss", "milvus"):
            store, metadata, wall, cpu = build(work / f"{name}-{kind}-{factory}", kind, factory, database)
            found = np.empty((len(queries), K), dtype=np.int64)
            w, c = time.perf_counter(), time.process_time()
            for i, q in enumerate(queries):
                found[i] = store.search(q[None], K, **parameters)[1][0]
            w, c = time.perf_counter() - w, time.process_time() - c
            recall = np.mean([len(set(a) & set(b)) / K for a, b in zip(found.tolist(), truth.tolist())])
            row = {"data": name, "n": len(database), "dim": database.shape[1], "store": kind, "index": factory,
                   "parameters": parameters, "recall_at_10": float(recall), "query_ms": 1000 * w / len(queries),
                   "query_cpu_ms": 1000 * c / len(queries), "insert_per_s": len(database) / wall,
                   "insert_per_cpu_s": len(database) / cpu, "build_wall_s": wall,
                   "bytes_per_vector": structures.bytes_per_vector(factory, database.shape[1])}
            rows.append(row)
            print(f"| {name} | {kind} | {factory} | {_params(parameters)} | {recall:.3f} | {row['query_ms']:.2f} | "
                  f"{row['query_cpu_ms']:.2f} | {row['insert_per_s']:,.0f} | {row['insert_per_cpu_s']:,.0f} |",
                  flush=True)
            store.close()
            metadata.close()
    return rows


def _params(parameters: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in parameters.items()) or "-"


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/stores"),
                        help="folder holding copydays-sift.npz and copydays-gem3.npz (from benchmarks/reranking.py "
                             "and benchmarks/duplicates.py), and the results")
    parser.add_argument("--queries", type=int, default=1_000, help="queries per data set")
    args = parser.parse_args()
    large = [("Flat", {}), ("IVF1024,Flat", {"nprobe": 16}), ("HNSW32", {"efSearch": 64})]
    sets = [("synthetic", synthetic(queries=args.queries), large),
            ("SIFT", sift(args.cache, queries=args.queries), large),
            ("copydays GeM", copydays_gem(args.cache), [("Flat", {}), ("IVF16,Flat", {"nprobe": 4}),
                                                         ("HNSW32", {"efSearch": 64})])]
    print("| data | store | index | search | recall@10 | query ms | query CPU ms | inserts/s | inserts/CPU-s |")
    print("|---|---|---|---|---|---|---|---|---|")
    results = []
    with tempfile.TemporaryDirectory() as work:
        for name, vectors, configs in sets:
            if vectors is not None:
                database, queries = vectors
                results += measure(name, database, queries[:args.queries], configs, Path(work))
    args.cache.mkdir(parents=True, exist_ok=True)
    (args.cache / "stores.json").write_text(json.dumps(results, indent=1))
