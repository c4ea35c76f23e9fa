"""Fine-tuning for retrieval on eth80: off-the-shelf GeM against GeM fine-tuned with each loss.

    python benchmarks/finetune.py all --data ../shared/data --out bench-output/finetune --device cuda
    python benchmarks/finetune.py cpu-speed --data ../shared/data --out bench-output/finetune

``train`` fine-tunes EfficientNet-Lite0 + GeM on ``eth80/instance-train.json`` only (the object is
the class; 20% of the objects are held out as validation), with the classification loss and with
the contrastive and triplet losses, each with hard-negative mining and with random negatives. The
learning rate is chosen among ``--lrs`` on the validation objects with contrastive + mining and
used for every loss; each run keeps its best validation epoch. Nothing looks at the test split.

``evaluate`` describes the eth80 test and train images with the registered ``gem`` descriptor and
``-s weights=MODEL`` (ONNX Runtime, full 256 x 256 images, as ``lookalike eval`` does), and
reports mAP and top-1 on ``instance-test`` and ``category-test``: raw, after a PCA-whitening
learned on the train images (unsupervised), and after a whitening learned from the train images'
matching pairs (same object; Radenović et al.). Prints markdown tables, writes results.json.

``cpu-speed`` times a few training steps on the CPU (images/s of forward + backward).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import torch

from lookalike.descriptors import create
from lookalike.errors import ImageError
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.extract import extract
from lookalike.postprocess.learned_whitening import LearnedWhitening, matching_pairs
from lookalike.postprocess.whitening import PCAWhitening
from lookalike.train import FinetuneConfig, Finetuner
from lookalike.train.data import read_labelled

RUNS = {  # name -> (loss, mining)
    "contrastive+mining": ("contrastive", True),
    "contrastive, random negatives": ("contrastive", False),
    "triplet+mining": ("triplet", True),
    "triplet, random negatives": ("triplet", False),
    "classification": ("classification", False),
}
TESTS = ("instance-test.json", "category-test.json")
WHITENINGS = ("none", "PCA (unsupervised)", "learned (pairs)")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def train(args) -> dict:
    images, _ = read_labelled(args.data / "eth80" / "instance-train.json", "object")
    common = dict(epochs=args.epochs, queries=args.queries, negatives=args.negatives, pool=args.pool,
                  batch=args.batch, resolution=args.resolution, device=args.device, seed=args.seed)
    reports: dict = {}

    def run(name: str, loss: str, mining: bool, lr: float) -> dict:
        config = FinetuneConfig(loss=loss, mining=mining, lr=lr, **common)
        start = time.perf_counter()
        report = Finetuner(config, weights=args.weights).fit(images, args.out / f"{slug(name)}-lr{lr:g}.pt",
                                                             progress=False)
        report["seconds"] = time.perf_counter() - start
        report["model"] = str(args.out / f"{slug(name)}-lr{lr:g}.pt")
        (args.out / f"{slug(name)}-lr{lr:g}.json").write_text(json.dumps(report, indent=1))
        print(f"{name} lr={lr:g}: val mAP {report['val_map']:.3f} at epoch {report['best_epoch']} "
              f"({report['history'][0]['val_map']:.3f} before), {report['seconds']:.0f} s", flush=True)
        return report

    summary: dict = {"lr_search": {}, "runs": reports}

    def save() -> None:
        (args.out / "training.json").write_text(json.dumps(summary, indent=1))

    for lr in args.lrs:
        summary["lr_search"][f"{lr:g}"] = run("contrastive+mining", "contrastive", True, lr)["val_map"]
        save()
    lr = summary["lr"] = float(max(summary["lr_search"], key=summary["lr_search"].get))
    reports["contrastive+mining"] = json.loads((args.out / f"{slug('contrastive+mining')}-lr{lr:g}.json").read_text())
    for name, (loss, mining) in RUNS.items():
        if name not in reports:
            reports[name] = run(name, loss, mining, lr)
            save()
    summary["best"] = max(reports, key=lambda k: reports[k]["val_map"])  # chosen on validation, not test
    save()
    return summary


def describe(descriptor, paths: list[Path], workers: int | None) -> np.ndarray:
    vectors = np.zeros((len(paths), descriptor.raw_dim), dtype=np.float32)
    for i, (path, result) in enumerate(extract(descriptor, paths, workers=workers, progress=None)):
        if isinstance(result, ImageError):
            raise SystemExit(f"cannot describe {result}")
        vectors[i] = result.vector
    return vectors


def evaluate(args, models: dict[str, str]) -> dict:
    root = args.data / "eth80"
    tests = [load_protocol(root / name) for name in TESTS]
    train_protocol = load_protocol(root / "instance-train.json")
    test_paths, train_paths = tests[0].database_paths(), train_protocol.database_paths()
    assert all(t.database_paths() == test_paths for t in tests)
    objects = np.asarray(train_protocol.labels["object"])
    results = {}
    for name, weights in models.items():
        descriptor = create("gem", weights=weights, engine=args.engine)
        start = time.perf_counter()
        database = describe(descriptor, test_paths, args.workers)
        seconds = time.perf_counter() - start
        train_vectors = describe(descriptor, train_paths, args.workers)
        whitenings = {"none": None,
                      "PCA (unsupervised)": PCAWhitening(shrinkage=args.shrinkage).fit(train_vectors),
                      "learned (pairs)": LearnedWhitening(shrinkage=args.shrinkage).fit(
                          train_vectors, matching_pairs(objects))}
        rows = {}
        for white, transform in whitenings.items():
            vectors = database if transform is None else transform.transform(database)
            for protocol in tests:
                queries = vectors[[test_paths.index(q) for q in protocol.query_paths()]]
                rankings = np.argsort(-(queries @ vectors.T), axis=1, kind="stable")
                scores = evaluate_rankings(rankings, protocol)
                rows[f"{protocol.name}|{white}"] = {"map": scores["map"], "top1": scores["top1"]}
        results[name] = {"p": descriptor.p, "ms_per_image": 1000 * seconds / len(test_paths), "scores": rows}
        print(name, {k: round(v["map"], 3) for k, v in rows.items()}, flush=True)
        (args.out / "results.json").write_text(json.dumps({"evaluation": results}, indent=1))
    return results


def cpu_speed(args) -> dict:
    images, _ = read_labelled(args.data / "eth80" / "instance-train.json", "object")
    config = FinetuneConfig(loss="contrastive", epochs=1, queries=args.cpu_queries, negatives=args.negatives,
                            pool=args.cpu_queries * 4, batch=args.batch, resolution=args.resolution, seed=args.seed)
    start = time.perf_counter()
    report = Finetuner(config, weights=args.weights).fit(images, args.out / "cpu-speed.pt", progress=False)
    row = report["history"][-1]
    speed = {"threads": torch.get_num_threads(), "resolution": args.resolution,
             "images_per_second": row["images_per_second"], "train_seconds": row["train_seconds"],
             "mining_seconds": row["mining_seconds"], "seconds": time.perf_counter() - start,
             "load_average": os.getloadavg(), "cores": os.cpu_count()}
    print(speed)
    (args.out / "cpu-speed.json").write_text(json.dumps(speed, indent=1))
    return speed


def print_tables(results: dict, training: dict | None) -> None:
    for white in WHITENINGS:
        print(f"\nwhitening: {white}\n")
        print("| model | instance-test mAP | top-1 | category-test mAP | top-1 |")
        print("|---|---|---|---|---|")
        for name, r in results.items():
            s = r["scores"]
            i, c = s[f"eth80-instance-test|{white}"], s[f"eth80-category-test|{white}"]
            print(f"| {name} | {i['map']:.3f} | {i['top1']:.3f} | {c['map']:.3f} | {c['top1']:.3f} |")
    if training:
        print("\n| run | best epoch | val mAP (before) | p | train images/s | minutes |")
        print("|---|---|---|---|---|---|")
        for name, r in training["runs"].items():
            ips = np.mean([h["images_per_second"] for h in r["history"] if "images_per_second" in h])
            print(f"| {name} | {r['best_epoch']} | {r['val_map']:.3f} ({r['history'][0]['val_map']:.3f}) | "
                  f"{_p(r)} | {ips:.0f} | {r['seconds'] / 60:.1f} |")


def plot_runs(training: dict, folder: Path) -> Path:
    """Validation mAP per epoch of every run, in one figure."""
    from lookalike.evaluate.plots import _pyplot

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    for name, report in training["runs"].items():
        rows = [h for h in report["history"] if "val_map" in h]
        ax.plot([h["epoch"] for h in rows], [h["val_map"] for h in rows], "o-", markersize=3, label=name)
    ax.set(xlabel="epoch (0 = ImageNet weights)", ylabel="validation mAP (8 held-out train objects)",
           title="eth80 instance-train: fine-tuning EfficientNet-Lite0 + GeM")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    folder.mkdir(parents=True, exist_ok=True)
    fig.savefig(folder / "finetune_validation.png")
    plt.close(fig)
    return folder / "finetune_validation.png"


def _p(report: dict) -> str:
    best = next(h for h in report["history"] if h["epoch"] == report["best_epoch"])
    return f"{best.get('p', 3.0):.2f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=("train", "evaluate", "all", "cpu-speed"))
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--out", type=Path, default=Path("bench-output/finetune"))
    parser.add_argument("--weights", default="", help="starting weights (default: the packaged ImageNet ones)")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--queries", type=int, default=300)
    parser.add_argument("--negatives", type=int, default=5)
    parser.add_argument("--pool", type=int, default=800)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--resolution", type=int, default=224)
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-5, 3e-5, 1e-4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--engine", default="onnx")
    parser.add_argument("--model", action="append", default=[], help="NAME=FILE: also evaluate this model")
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--shrinkage", type=float, default=0.1, help="of both whitenings")
    parser.add_argument("--plots", type=Path, default=None, help="folder of the training plots [default: --out]")
    parser.add_argument("--cpu-queries", type=int, default=16)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "cpu-speed":
        cpu_speed(args)
        return
    training = None
    if args.stage in ("train", "all"):
        training = train(args)
    elif (args.out / "training.json").is_file():
        training = json.loads((args.out / "training.json").read_text())
    if training:
        plot_runs(training, args.plots or args.out)
    if args.stage in ("evaluate", "all"):
        models = {"off-the-shelf GeM (p=3)": args.weights or ""}
        models.update({name: r["model"] for name, r in (training or {"runs": {}})["runs"].items()})
        models.update(dict(item.split("=", 1) for item in args.model))
        results = evaluate(args, models)
        print_tables(results, training)


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
