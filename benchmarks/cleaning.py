"""Cleaning noisy training data by spatial verification, measured on eth80 with planted noise.

    python benchmarks/cleaning.py --data ../shared/data --out bench-output/cleaning

1. **Noise.** In ``eth80/instance-train.json`` (40 objects x 41 views; the object is the class),
   20 % of each class (8 views) is replaced, with a fixed seed: half by views of *other* training
   objects (label noise: each image still appears once, under a wrong label) and half by
   landmarks distractors (BSDS500 photos: pictures of nothing in the set).
2. **Cleaning** exactly as ``lookalike clean`` does it (SIFT, mutual nearest neighbours, affine
   RANSAC, largest component of pairs with >= 8 inliers); the precision and recall of what it
   keeps, per kind of noise, and the same at other inlier thresholds (reported, not chosen).
3. **Training** on the clean, the noisy and the cleaned set with one cheap recipe that runs on a
   CPU in minutes: the backbone stays frozen (EfficientNet-Lite0 + GeM, p=3, the registered ``gem``
   descriptor at full size), and a linear layer over its vectors (initialised to the identity,
   then L2-normalised) is trained with the triplet loss and hard negatives
   (:mod:`lookalike.train.losses`, :mod:`lookalike.train.mining`); and, cheaper still, a whitening
   learnt from the matching pairs of each set (Radenovic et al.). mAP on ``instance-test`` and
   ``category-test`` (objects never seen). Prints markdown tables, writes ``results.json``.

Descriptors and local features are cached under ``--cache``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import pickle
import time
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from lookalike.clean import CleanConfig
from lookalike.clean.cleaning import class_inliers
from lookalike.clean.verification import largest_component
from lookalike.descriptors import create
from lookalike.descriptors.local.registry import create_local
from lookalike.errors import ImageError
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.extract import extract
from lookalike.pipelines.reranking import describe_local
from lookalike.postprocess.learned_whitening import LearnedWhitening, matching_pairs
from lookalike.train.losses import triplet_loss
from lookalike.train.mining import hardest_negatives, random_positives

THRESHOLDS = (4, 8, 12, 16, 24)


def noisy_set(data: Path, fraction: float, seed: int) -> list[dict]:
    """Rows ``{path, label, truth}`` of the noisy training set; ``truth`` is the image's real object,
    or ``distractor``."""
    protocol = load_protocol(data / "eth80" / "instance-train.json")
    paths, objects = protocol.database_paths(), np.asarray(protocol.labels["object"])
    distractors = sorted((data / "landmarks" / "images" / "distractors").glob("*.jpg"))
    rng = np.random.default_rng(seed)
    classes = np.unique(objects)
    replaced = {c: rng.permutation(np.flatnonzero(objects == c))[:round(fraction * (objects == c).sum())]
                for c in classes}
    removed = np.concatenate(list(replaced.values()))
    free_distractors = list(rng.permutation(len(distractors)))
    used = set()
    rows = [{"path": paths[i], "label": objects[i], "truth": objects[i]}
            for i in range(len(paths)) if i not in set(removed.tolist())]
    for c in classes:
        slots = len(replaced[c])
        others = [i for i in rng.permutation(removed) if objects[i] != c and i not in used][:slots // 2]
        used.update(others)
        rows += [{"path": paths[i], "label": c, "truth": objects[i]} for i in others]
        rows += [{"path": distractors[free_distractors.pop()], "label": c, "truth": "distractor"}
                 for _ in range(slots - len(others))]
    return rows


def local_features(paths: list[Path], cache: Path, workers: int | None) -> list:
    file = cache / "sift-features.pkl"
    stored = pickle.loads(file.read_bytes()) if file.is_file() else {}
    missing = [p for p in dict.fromkeys(paths) if str(p) not in stored]
    if missing:
        start = time.perf_counter()
        stored.update(zip(map(str, missing), describe_local(create_local("sift"), missing, workers=workers)))
        print(f"SIFT of {len(missing)} images: {time.perf_counter() - start:.0f} s", flush=True)
        file.write_bytes(pickle.dumps(stored))
    return [stored[str(p)] for p in paths]


def gem_vectors(paths: list[Path], root: Path, cache: Path, workers: int | None) -> np.ndarray:
    """The registered ``gem`` descriptor's vectors (ONNX Runtime, full size, p=3), cached per dataset file
    under names relative to ``root``."""
    file = cache / "gem-vectors.npz"
    stored = {}
    if file.is_file():
        with np.load(file) as saved:
            stored = dict(zip(saved["names"].tolist(), saved["vectors"]))
    names = [os.path.relpath(p, root) for p in paths]
    missing = [p for p, n in zip(paths, names) if n not in stored]
    if missing:
        descriptor = create("gem", p=3.0)
        start = time.perf_counter()
        for path, result in extract(descriptor, missing, workers=workers, progress=None):
            if isinstance(result, ImageError):
                raise SystemExit(f"cannot describe {result}")
            stored[os.path.relpath(path, root)] = result.vector
        print(f"GeM of {len(missing)} images: {time.perf_counter() - start:.0f} s", flush=True)
        np.savez(file, names=np.array(list(stored)), vectors=np.stack(list(stored.values())))
    return np.stack([stored[n] for n in names]).astype(np.float32)


def measure_cleaning(rows: list[dict], features: list, cache: Path) -> dict:
    """Precision and recall of what cleaning keeps, at each inlier threshold of :data:`THRESHOLDS`.

    The inliers of every pair are computed once, with the lowest threshold (pairs with fewer
    matches cannot reach it, so RANSAC skips them): each threshold's keep mask is then exactly what
    ``clean_classes`` returns with that ``min_inliers``, and the time is an upper bound of it.
    """
    labels = np.unique([r["label"] for r in rows], return_inverse=True)[1]
    truth = np.array([r["truth"] for r in rows])
    correct = truth == np.array([r["label"] for r in rows])
    if cache.is_file():
        inliers, seconds = pickle.loads(cache.read_bytes())
    else:
        start = time.perf_counter()
        inliers = []
        for c in tqdm(np.unique(labels), desc="verifying pairs", unit="class"):
            members = np.flatnonzero(labels == c)
            config = CleanConfig(min_inliers=THRESHOLDS[0])
            inliers.append((members, class_inliers([features[i] for i in members], config)))
        seconds = time.perf_counter() - start
        cache.write_bytes(pickle.dumps((inliers, seconds)))
    categories = np.array([str(r["truth"]).rstrip("0123456789") for r in rows])
    pairs = int(sum(len(m) * (len(m) - 1) // 2 for m, _ in inliers))
    result = {"seconds": seconds, "images": len(rows), "pairs": pairs, "by_threshold": {}}
    for t in THRESHOLDS:
        k = np.zeros(len(rows), dtype=bool)
        for members, matrix in inliers:
            k[members[largest_component(matrix >= t)[0]]] = True
        result["by_threshold"][t] = {
            "kept": int(k.sum()), "precision": float(correct[k].mean()) if k.any() else float("nan"),
            "recall": float(k[correct].mean()),
            "other_objects_kept": float(k[~correct & (truth != "distractor")].mean()),
            "distractors_kept": float(k[truth == "distractor"].mean()),
            "recall_per_category": {c: float(k[correct & (categories == c)].mean())
                                    for c in sorted(set(categories[correct]))},
            "classes_left": int(len(np.unique(labels[k]))),
        }
        if t == CleanConfig().min_inliers:
            result["keep"] = k.tolist()
    return result


# ---- the cheap training: a linear layer over frozen GeM vectors -------------------------------------
def train_head(x: np.ndarray, labels: np.ndarray, *, epochs: int, queries: int, lr: float, negatives: int,
               seed: int) -> torch.nn.Linear:
    """A ``D x D`` linear layer, from the identity, trained with the triplet loss (margin 0.1): each
    epoch ``queries`` random tuples, each query with its hardest negatives (one per other class)
    among all the training vectors."""
    torch.manual_seed(seed)
    x = torch.from_numpy(x)
    labels = np.unique(labels, return_inverse=True)[1]
    head = torch.nn.Linear(x.shape[1], x.shape[1])
    with torch.no_grad():
        head.weight.copy_(torch.eye(x.shape[1]))
        head.bias.zero_()
    optimiser = torch.optim.Adam(head.parameters(), lr=lr)
    negatives = min(negatives, labels.max())
    for epoch in range(epochs):
        rng = np.random.default_rng([seed, epoch])
        chosen_queries = rng.permutation(len(x))[:queries]
        positives = random_positives(chosen_queries, labels, rng)
        with torch.no_grad():
            y = torch.nn.functional.normalize(head(x), dim=1)
        chosen = hardest_negatives(y[chosen_queries], torch.from_numpy(labels[chosen_queries]), y,
                                   torch.from_numpy(labels), negatives).numpy()
        valid = (chosen >= 0).all(axis=1) & (positives != chosen_queries)
        tuples = np.concatenate([chosen_queries[:, None], positives[:, None], chosen], axis=1)[valid]
        for batch in np.array_split(tuples, max(1, len(tuples) // 32)):
            out = torch.nn.functional.normalize(head(x[torch.from_numpy(batch.reshape(-1))]), dim=1)
            out = out.view(len(batch), batch.shape[1], -1)
            loss = triplet_loss(out[:, 0], out[:, 1], out[:, 2:], margin=0.1)
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
    return head


def test_map(vectors: np.ndarray, tests: list) -> dict:
    paths = tests[0].database_paths()
    out = {}
    for protocol in tests:
        queries = vectors[[paths.index(q) for q in protocol.query_paths()]]
        rankings = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")
        out[protocol.name] = evaluate_rankings(rankings, protocol)["map"]
    return out


def train_and_test(sets: dict, vectors: dict, tests: list, test_x: np.ndarray, args) -> dict:
    results = {"off-the-shelf": {"none": test_map(test_x, tests)}}
    print("off-the-shelf", results["off-the-shelf"], flush=True)
    for name, (paths, labels) in sets.items():
        x = np.stack([vectors[p] for p in paths])
        row = {}
        start = time.perf_counter()
        head = train_head(x, np.asarray(labels), epochs=args.epochs, queries=args.queries, lr=args.lr, negatives=5,
                          seed=args.seed)
        with torch.no_grad():
            y = torch.nn.functional.normalize(head(torch.from_numpy(test_x)), dim=1).numpy()
        row["triplet head"] = test_map(y, tests)
        row["head_seconds"] = time.perf_counter() - start
        white = LearnedWhitening(shrinkage=0.1).fit(x, matching_pairs(np.unique(labels, return_inverse=True)[1]))
        row["learned whitening"] = test_map(white.transform(test_x), tests)
        row["images"], row["classes"] = len(paths), len(set(labels))
        results[name] = row
        print(name, row, flush=True)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("bench-output/cleaning"))
    parser.add_argument("--cache", type=Path, default=None, help="features cache [default: --out]")
    parser.add_argument("--fraction", type=float, default=0.2, help="share of each class replaced by noise")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, default=10, help="of the triplet head")
    parser.add_argument("--queries", type=int, default=512, help="tuples per epoch of the triplet head")
    parser.add_argument("--lr", type=float, default=1e-4, help="of the triplet head (Adam)")
    parser.add_argument("--workers", type=int, default=None)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    cache = args.cache or args.out
    cache.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)

    rows = noisy_set(args.data, args.fraction, args.seed)
    with open(args.out / "noisy.csv", "w", newline="") as f:  # `lookalike clean noisy.csv` reads this
        csv.writer(f).writerows([("path", "label")] + [(os.path.relpath(r["path"], args.out.resolve()), r["label"])
                                                       for r in rows])
    features = local_features([r["path"] for r in rows], cache, args.workers)
    cleaning = measure_cleaning(rows, features, cache / f"inliers-{args.fraction:g}-{args.seed}.pkl")
    for t, r in cleaning["by_threshold"].items():
        print(f"min_inliers {t}: kept {r['kept']}, precision {r['precision']:.3f}, recall {r['recall']:.3f}, "
              f"other objects kept {r['other_objects_kept']:.3f}, distractors kept {r['distractors_kept']:.3f}, "
              f"classes {r['classes_left']}; recall per category {r['recall_per_category']}", flush=True)
    print(f"cleaning: {cleaning['pairs']} pairs verified in {cleaning['seconds']:.0f} s", flush=True)

    clean_protocol = load_protocol(args.data / "eth80" / "instance-train.json")
    tests = [load_protocol(args.data / "eth80" / n) for n in ("instance-test.json", "category-test.json")]
    every = list(dict.fromkeys(clean_protocol.database_paths() + [r["path"] for r in rows]))
    vectors = dict(zip(every, gem_vectors(every, args.data, cache, args.workers)))
    test_x = gem_vectors(tests[0].database_paths(), args.data, cache, args.workers)
    keep = np.asarray(cleaning.pop("keep"))
    sets = {
        "clean": (clean_protocol.database_paths(), list(clean_protocol.labels["object"])),
        "noisy": ([r["path"] for r in rows], [r["label"] for r in rows]),
        "cleaned": ([r["path"] for r, k in zip(rows, keep) if k], [r["label"] for r, k in zip(rows, keep) if k]),
    }
    training = train_and_test(sets, vectors, tests, test_x, args)
    (args.out / "results.json").write_text(json.dumps({"cleaning": cleaning, "training": training}, indent=1))

    print("\n| min inliers | kept | precision | recall | other objects kept | distractors kept | classes left |")
    print("|---|---|---|---|---|---|---|")
    for t, r in cleaning["by_threshold"].items():
        print(f"| {t} | {r['kept']} | {r['precision']:.3f} | {r['recall']:.3f} | {r['other_objects_kept']:.3f} | "
              f"{r['distractors_kept']:.3f} | {r['classes_left']} |")
    print("\n| training set | images | classes | triplet head: instance-test | category-test | "
          "learned whitening: instance-test | category-test |")
    print("|---|---|---|---|---|---|---|")
    for name, r in training.items():
        if name == "off-the-shelf":
            continue
        h, w = r["triplet head"], r["learned whitening"]
        print(f"| {name} | {r['images']} | {r['classes']} | {h['eth80-instance-test']:.3f} | "
              f"{h['eth80-category-test']:.3f} | {w['eth80-instance-test']:.3f} | {w['eth80-category-test']:.3f} |")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
