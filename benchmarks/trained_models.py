"""The other trainable models of the course on eth80, trained on frozen backbone features:
NetVLAD (triplet loss), the Fisher-vector + MLP hybrid, and DELF's learned attention.

    python benchmarks/trained_models.py features --data ../shared/data --cache CACHE   # once, the long part
    python benchmarks/trained_models.py netvlad --data ../shared/data --cache CACHE
    python benchmarks/trained_models.py fvfc --data ../shared/data --cache CACHE
    python benchmarks/trained_models.py delf --data ../shared/data --cache CACHE --rerank-cache RERANK

``features`` runs the networks once over the 3,280 eth80 images and keeps what training and
evaluation read: EfficientNet-Lite0's last feature map of each 256 x 256 image (what ``gem`` and
``netvlad`` pool), DELF's block-10 maps at its three scales, and the Fisher vectors of SIFT
under a GMM learnt on ``instance-train``. Training uses ``instance-train.json`` only (the
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
#: SIFT at detected keypoints (about 20 per eth80 image), PCA-reduced to 64-D, 32 Gaussians: a
#: 4,096-D Fisher vector. Perronnin & Larlus (and the fvfc default) use dense SIFT, which costs
#: 0.5 s of CPU per 256 x 256 image here (1,860 descriptors), too much for this session's CPU share.
FISHER = {"k": 32, "pca": 64, "dense": False}
FISHER_TRAIN_IMAGES = 600  # evenly spaced instance-train images whose SIFT teaches the PCA and the GMM


def features(args) -> None:
    if args.part in ("maps", "all"):
        feature_maps(args)
    if args.part in ("fisher", "all"):
        fisher_vectors(args)


def fisher_vectors(args) -> None:
    """The improved Fisher vectors (4,096-D) of every eth80 image, the GMM learnt on instance-train."""
    from lookalike.descriptors import create
    from lookalike.pipelines.evaluation import describe_protocol
    from lookalike.pipelines.training import train_descriptor

    out = args.cache / "eth80-fisher.npz"
    if out.is_file():
        return
    start = time.perf_counter()
    train = load_protocol(args.data / "eth80" / "instance-train.json")
    fisher, report = train_descriptor(create("fisher", **FISHER), train.database_paths(),
                                      args.cache / "eth80-fisher-gmm.npz", max_images=FISHER_TRAIN_IMAGES,
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
            last.append(engine(scaled_inputs(image, 1024, (1.0,))[0][None])[0].astype(np.float16))
            for scale, pixels in zip(delf.scales, scaled_inputs(image, delf.max_side, delf.scales)):
                local[scale].append(runner(pixels[None])[0].astype(np.float16))
            if i % 200 == 0:
                print(f"{i}/{len(names)} {time.perf_counter() - start:.0f} s", flush=True)
        np.savez(out, names=np.array(names), last=np.stack(last),
                 **{f"block_scale{s}": np.stack(m) for s, m in local.items()},
                 seconds=time.perf_counter() - start)
        print(f"{out}: {time.perf_counter() - start:.0f} s", flush=True)


# ---- shared --------------------------------------------------------------------------------------
class Eth80:
    """The cached inputs of one kind, the training images with their object labels, and the tests."""

    def __init__(self, args, array: str, file: str = "eth80-maps.npz") -> None:
        from lookalike.train.data import read_labelled

        with np.load(args.cache / file, allow_pickle=False) as stored:
            self.row = {str(n): i for i, n in enumerate(stored["names"])}
            self.inputs = torch.from_numpy(stored[array])
        self.images, _ = read_labelled(args.data / "eth80" / "instance-train.json", "object")
        root = args.data / "eth80" / "images"
        self.train_rows = torch.tensor([self.row[str(p.relative_to(root))] for p in self.images.paths])
        self.tests = {name: load_protocol(args.data / "eth80" / name) for name in ETH80[1:]}

    def train_inputs(self) -> torch.Tensor:
        return self.inputs[self.train_rows]

    def evaluate(self, describe) -> dict:
        """mAP and top-1 of ``describe`` (inputs ``[N, ...]`` -> ``[N, D]`` numpy) on each test."""
        from lookalike.evaluate.metrics import evaluate_rankings
        from lookalike.pipelines.evaluation import rank_all

        out = {}
        for name, protocol in self.tests.items():
            database = describe(self.inputs[torch.tensor([self.row[n] for n in protocol.imlist])])
            queries = describe(self.inputs[torch.tensor([self.row[n] for n in protocol.qimlist])])
            result = evaluate_rankings(rank_all(database, queries), protocol)
            out[Path(name).stem] = {"map": result["map"], "top1": result["top1"]}
        return out


def by_head(head):
    from lookalike.train.frozen import embed_inputs

    return lambda x: embed_inputs(head, x).numpy()


def train_runs(args, make_head, inputs, images, **config) -> tuple[dict, dict]:
    """Train one head per learning rate of ``--lrs``; the best on the held-out train objects wins."""
    from lookalike.train.frozen import HeadConfig, fit_head

    runs = {}
    for lr in args.lrs:
        head = make_head()
        start, cpu = time.perf_counter(), time.process_time()
        report = fit_head(head, inputs, images, HeadConfig(lr=lr, seed=args.seed, **config), progress=True)
        report.update(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu)
        runs[lr] = (head, report)
        print(f"lr {lr:g}: validation mAP {report['val_map']:.4f} at epoch {report['best_epoch']} "
              f"(before {report['history'][0]['val_map']:.4f}), {report['seconds']:.0f} s", flush=True)
    best = max(runs, key=lambda lr: runs[lr][1]["val_map"])
    return runs[best], {f"{lr:g}": r for lr, (_, r) in runs.items()}


def save_results(args, name: str, results: dict) -> None:
    out = args.cache / "results.json"
    previous = json.loads(out.read_text()) if out.is_file() else {}
    out.write_text(json.dumps(previous | {name: results}, indent=1))
    for row, values in results["table"].items():
        print(f"| {row} | " + " | ".join(f"{values[t]['map']:.3f} / {values[t]['top1']:.3f}"
                                          for t in ("instance-test", "category-test")) + " |")


# ---- NetVLAD -------------------------------------------------------------------------------------
def netvlad(args) -> None:
    from lookalike.descriptors import create
    from lookalike.descriptors.cnn.registered import netvlad_from_file
    from lookalike.train.data import split_classes
    from lookalike.train.heads import save_netvlad

    torch.set_num_threads(args.threads)
    eth = Eth80(args, "last")
    inputs = eth.train_inputs()
    kmeans = args.cache / f"netvlad-k{args.k}-kmeans.npz"
    if not kmeans.is_file():  # the existing initialisation, on the training objects' maps
        rows, _ = split_classes(eth.images, 0.2, args.seed)
        create("netvlad", k=args.k).fit([inputs[i].float().flatten(1).T.numpy() for i in rows], kmeans)
    table = {f"untrained (k-means, k={args.k})": eth.evaluate(by_head(netvlad_from_file(kmeans, args.k).eval()))}
    (head, report), runs = train_runs(args, lambda: netvlad_from_file(kmeans, args.k), inputs, eth.images,
                                      epochs=args.epochs, queries=args.queries, pool=args.pool)
    table["trained, triplet + hard negatives"] = eth.evaluate(by_head(head))
    alpha = float(np.load(kmeans)["alpha"])
    save_netvlad(head, alpha, args.cache / f"netvlad-k{args.k}-trained.npz", report)
    save_results(args, "netvlad", {"table": table, "runs": runs, "best_lr": report["training"]["lr"]})


# ---- Fisher vector + MLP -------------------------------------------------------------------------
def fvfc(args) -> None:
    """Trained through the command's own function on the cached Fisher vectors; evaluated with the
    saved files' head (:func:`fvfc_project`, what the ``fvfc`` descriptor runs)."""
    from lookalike.descriptors import create
    from lookalike.descriptors.aggregate.trained import fvfc_project, read_arrays
    from lookalike.pipelines.head_training import train_fvfc_on_vectors
    from lookalike.postprocess.pca import PCA
    from lookalike.train.data import split_classes
    from lookalike.train.frozen import HeadConfig

    torch.set_num_threads(args.threads)
    eth = Eth80(args, "vectors", "eth80-fisher.npz")
    vectors = eth.inputs.numpy()
    train = vectors[eth.train_rows.numpy()]
    rows, _ = split_classes(eth.images, 0.2, args.seed)
    pca = PCA(args.reduce).fit(train[rows])  # the same PCA as the hybrid's

    def normalised(x):
        return x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)

    table = {f"Fisher vector ({vectors.shape[1]:,}-D)": eth.evaluate(lambda x: x.numpy()),
             f"Fisher vector + PCA {args.reduce}": eth.evaluate(lambda x: normalised(pca.transform(x.numpy())))}
    descriptor = create("fvfc", **FISHER, reduce=args.reduce)
    gmm = create("fisher", **FISHER, vocabulary=str(args.cache / "eth80-fisher-gmm.npz")).model
    runs = {}
    for lr in [0.0, *args.lrs]:  # 0: no epoch, the MLP as initialised
        out = args.cache / f"fvfc-lr{lr:g}.npz"
        config = HeadConfig(lr=lr or 1e-3, epochs=args.epochs if lr else 0, queries=args.queries, pool=args.pool,
                            seed=args.seed)
        start, cpu = time.perf_counter(), time.process_time()
        report = train_fvfc_on_vectors(train, eth.images, gmm, out, config, descriptor)
        report.update(seconds=time.perf_counter() - start, cpu_seconds=time.process_time() - cpu)
        model = read_arrays(out, "fvfc", ())
        runs[lr] = report
        label = "+ MLP, untrained (random init)" if not lr else f"+ MLP trained, lr {lr:g}"
        table[label] = eth.evaluate(lambda x: fvfc_project(x.numpy(), model))
        print(f"{label}: validation mAP {report['val_map']:.4f} at epoch {report['best_epoch']}, "
              f"{report['seconds']:.0f} s", flush=True)
    best = max(args.lrs, key=lambda lr: runs[lr]["val_map"])
    table["+ MLP trained, triplet + hard negatives (best on validation)"] = table[f"+ MLP trained, lr {best:g}"]
    save_results(args, "fvfc", {"table": table, "runs": {f"{lr:g}": r for lr, r in runs.items()},
                                "best_lr": best})


# ---- DELF attention ------------------------------------------------------------------------------
SV_MIN_INLIERS = (4, 6, 8, 12, 16, 24, 32, 64, 128)  # the grid benchmarks/reranking.py tunes
#: 1000 keeps all 441 positions of a 256 px image at 3 scales, so the attention chooses nothing there:
#: that row is the re-ranking benchmark's own (its features and inlier tables are copied)
KEYPOINTS = {"norm": (1000, 300, 100), "learnt": (300, 100)}


def delf(args) -> None:
    """Train the attention head on instance-train's scale-1 maps, then verify the GeM top 100 with
    DELF features kept by the feature norm or by the learnt attention, with the re-ranking
    benchmark's own machinery (``benchmarks/reranking.py``); the inlier threshold and the number of
    keypoints are chosen on instance-train, the result read on instance-test."""
    import shutil
    import sys

    from lookalike.descriptors.cnn.local import AttentionHead, Delf, save_attention
    from lookalike.train.heads import AttentionPooling

    sys.path.insert(0, str(Path(__file__).parent))
    import reranking  # the re-ranking benchmark: its cache layout, inlier tables and chains

    torch.set_num_threads(args.threads)
    eth = Eth80(args, "block_scale1.0")
    head_file = args.cache / "delf-attention.pt"
    results = {}
    if not head_file.is_file():
        (pooling, report), runs = train_runs(args, lambda: AttentionPooling(AttentionHead(112, args.hidden)),
                                             eth.train_inputs(), eth.images, loss="classification",
                                             epochs=args.epochs, queries=args.queries)
        save_attention(pooling.head, head_file, {"backbone": "efficientnet-lite0", "block": 10, "training": report})
        results["runs"] = runs
    config = Delf().config
    with np.load(args.cache / "eth80-maps.npz", allow_pickle=False) as stored:
        names = [str(n) for n in stored["names"]]
        maps = [torch.from_numpy(stored[f"block_scale{s}"]) for s in config.scales]
    pca = args.rerank_cache / "eth80-delf-pca.npz"  # learnt on instance-train by benchmarks/reranking.py
    table = {}
    for attention, counts in KEYPOINTS.items():
        for count in counts:
            folder = args.cache / f"sv-delf-{attention}-{count}"
            folder.mkdir(exist_ok=True)
            if count == 1000:
                for name in ("eth80-delf.npz", "eth80-instance-train-delf-inliers.npz",
                             "eth80-instance-test-delf-inliers.npz"):
                    if not (folder / name).is_file():
                        shutil.copy(args.rerank_cache / name, folder / name)
            if not (folder / "eth80-delf.npz").is_file():
                extractor = Delf(pca=str(pca), max_keypoints=count,
                                 attention=str(head_file) if attention == "learnt" else "")
                features = []
                for row in range(len(names)):
                    # as raw_features: original pixels per input pixel, the input being round(256 s) wide
                    per_scale = [(m[row].float(), 256 / round(256 * s), 256 / round(256 * s))
                                 for m, s in zip(maps, config.scales)]
                    keypoints, raw, _ = extractor.select(per_scale, 16)
                    features.append(extractor.reduce(keypoints, raw, (256, 256)))
                reranking.save_local(folder / "eth80-delf.npz", names, features)
            if not (folder / "eth80-global.npz").is_file():
                shutil.copy(args.rerank_cache / "eth80-global.npz", folder / "eth80-global.npz")
            row = {}
            for split in ("instance-train.json", "instance-test.json"):
                bench = reranking.Benchmark(args.data, folder, "eth80", split)
                ids, inliers = reranking.inlier_table(bench, "delf", workers=args.workers)
                row[split] = {m: reranking.run_chain(bench, [reranking.CachedVerification(ids, inliers, m)])[0]["map"]
                              for m in SV_MIN_INLIERS}
                row[split]["global"] = reranking.run_chain(bench, [])[0]["map"]
            table[f"{attention}, {count} keypoints"] = row
            print(attention, count, {s: max(v.values()) for s, v in row.items()}, flush=True)
    for attention in KEYPOINTS:  # choose the keypoints and the threshold on instance-train
        label, m = max(((label, m) for label in table if label.startswith(attention) for m in SV_MIN_INLIERS),
                       key=lambda lm: table[lm[0]]["instance-train.json"][lm[1]])
        results[f"{attention}: chosen on instance-train"] = {
            "variant": label, "min_inliers": m, "train": table[label]["instance-train.json"][m],
            "test": table[label]["instance-test.json"][m]}
    results["table"] = table
    out = args.cache / "delf-results.json"
    out.write_text(json.dumps(results, indent=1))
    print(json.dumps({k: v for k, v in results.items() if k != "table"}, indent=1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["features", "netvlad", "fvfc", "delf"])
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--cache", type=Path, default=Path("bench-output/trained-models"))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--part", choices=["maps", "fisher", "all"], default="all")
    parser.add_argument("--lrs", type=float, nargs="+", default=[1e-3, 1e-4])
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--pool", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--k", type=int, default=16, help="NetVLAD clusters")
    parser.add_argument("--reduce", type=int, default=512, help="Fisher vectors PCA-reduced to this")
    parser.add_argument("--hidden", type=int, default=512, help="units of DELF's attention head")
    parser.add_argument("--rerank-cache", type=Path, default=Path("bench-output/reranking"),
                        help="the cache of benchmarks/reranking.py features (GeM vectors, DELF's PCA)")
    args = parser.parse_args()
    {"features": features, "netvlad": netvlad, "fvfc": fvfc, "delf": delf}[args.command](args)


if __name__ == "__main__":
    main()
