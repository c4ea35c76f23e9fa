"""Cross-modal retrieval on the captions test split and semantic retrieval on eth80 category-test.

Captions (Flickr8k, 800 train / 200 test images, 5 captions each): text->image and image->text
Recall@1/5/10 and median rank of chance, the zero-shot bridge through ImageNet class names, CCA
(tf-idf and MiniLM) and the trained joint embeddings (Gordo & Larlus's three triplet losses, each
removed in turn, and symmetric InfoNCE). 100 of the 800 training images are held out (evenly
spaced, as ``lookalike train-joint --holdout 100``) to choose the hyper-parameters and the epoch;
the test split is only read for the final numbers.

eth80 (category-train to learn, category-test to report): mAP of text queries ("a dog", "a red
fruit", "a vehicle"...) over the 1,640 test images, and of image->image category retrieval
(the category-test protocol) with the raw descriptor, the image head trained without the visual
loss, and with it.

Image features come from ``benchmarks/crossmodal_features.py`` (computed once, cached); they equal
the registered ``gem`` descriptor with the scales named in the tables.

    python benchmarks/crossmodal.py --data ../shared/data --cache bench-output/crossmodal
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from crossmodal_features import SCALES, arguments, cached, caption_images, eth80_images
from lookalike.crossmodal.joint import JointEmbedding
from lookalike.crossmodal.metrics import text_image_retrieval
from lookalike.crossmodal.text import create_text_encoder
from lookalike.crossmodal.zeroshot import ZeroShotBridge
from lookalike.evaluate.ap import average_precision, positive_ranks
from lookalike.evaluate.metrics import evaluate_rankings
from lookalike.io.captions import load_captions
from lookalike.io.protocol import load_protocol
from lookalike.pipelines.crossmodal import caption_documents, holdout_indices

#: the GeM variants compared, per backbone (the larger network was described at three scales only)
GEM = {"efficientnet-lite0": {"gem 1 scale": (1.0,), "gem 4 scales": SCALES},
       "efficientnet-lite2": {"gem 1 scale": (1.0,), "gem 3 scales": SCALES[:3]}}
#: the joint models' hyper-parameters, chosen on the held-out training images (docs/benchmarks.md)
TRIPLET = {"method": "triplet", "lr": 3e-4, "dropout": 0.3, "epochs": 300, "patience": 30}
INFONCE = {"method": "infonce", "lr": 3e-4, "dropout": 0.3, "epochs": 300, "patience": 30}
CCA_GRID = [{"method": "cca", "dim": d, "regularisation": r, "power": p}
            for d in (128, 256) for r in (0.1, 0.3) for p in (2.0, 4.0)]
ETH80_QUERIES = {  # text query -> categories it should find
    "a dog": ["dog"], "a horse": ["horse"], "a cow": ["cow"], "a car": ["car"], "a cup": ["cup"],
    "an apple": ["apple"], "a pear": ["pear"], "a tomato": ["tomato"],
    "a red fruit": ["apple", "tomato"], "a vehicle": ["car"], "an animal": ["cow", "dog", "horse"],
    "a fruit or a vegetable": ["apple", "pear", "tomato"], "something to drink from": ["cup"],
}
ETH80_TEMPLATES = ("a {}", "a photo of a {}", "a picture of a {}")


def gem_vectors(pooled: np.ndarray, scales: tuple[float, ...]) -> np.ndarray:
    """The multi-scale GeM descriptor (what ``gem -s scales=...`` computes) from the cached per-scale vectors."""
    v = pooled[:, [SCALES.index(s) for s in scales], 0].sum(1)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def logits(classifier_input: np.ndarray, backbone: str = "efficientnet-lite0") -> np.ndarray:
    import torch

    from lookalike.descriptors.cnn.backbone import load_backbone

    with torch.no_grad():
        return load_backbone(backbone).classifier(torch.from_numpy(classifier_input)).numpy()


def fmt(result: dict) -> str:
    cells = [f"{result[d][k]:.3f}" for d in ("t2i", "i2t") for k in ("r@1", "r@5", "r@10")]
    return (f"{cells[0]} | {cells[1]} | {cells[2]} | {result['t2i']['median_rank']:.0f} | "
            f"{cells[3]} | {cells[4]} | {cells[5]} | {result['i2t']['median_rank']:.0f}")


def captions_benchmark(data: Path, cache: Path, out: Path, backbone: str, refit_epochs: int = 0) -> list[dict]:
    """The captions table; with ``refit_epochs``, also CCA and InfoNCE refit on all 800 training images
    (CCA's grid point chosen on the held-out images as in the table, InfoNCE for that many epochs:
    the best epoch of the held-out run)."""
    features = cached("captions", caption_images(data), cache, backbone)
    variants = GEM[backbone]
    short = backbone.removeprefix("efficientnet-")
    everything = load_captions(data / "captions")
    row_of = {p: i for i, p in enumerate(everything.paths)}
    train, test = load_captions(data / "captions", "train"), load_captions(data / "captions", "test")
    fit_idx, held_idx = holdout_indices(len(train), 100)
    fit, held = train.subset(fit_idx), train.subset(held_idx)
    minilm_file = cache / "minilm-captions.npy"
    if not minilm_file.is_file():
        np.save(minilm_file, create_text_encoder("minilm").encode(everything.captions))
    minilm_all = np.load(minilm_file)
    caption_row = {(everything.paths[o], c): j for j, (c, o) in enumerate(zip(everything.captions, everything.owner))}

    def rows(split):
        return np.array([row_of[p] for p in split.paths])

    def minilm(split):
        return minilm_all[[caption_row[(split.paths[o], c)] for c, o in zip(split.captions, split.owner)]]

    tfidf = create_text_encoder("tfidf").fit(fit.captions)
    texts = {"minilm": {s: minilm(d) for s, d in (("fit", fit), ("held", held), ("test", test))},
             "tfidf": {s: tfidf.encode(d.captions) for s, d in (("fit", fit), ("held", held), ("test", test))}}
    documents = caption_documents(fit)
    results, chosen_cca = [], {}

    def evaluate(name, model, image, text, seconds=0.0, extra=None):
        held_result = text_image_retrieval(model.encode_images(image[rows(held)]),
                                           model.encode_texts(texts[text]["held"]), held.owner)
        test_result = text_image_retrieval(model.encode_images(image[rows(test)]),
                                           model.encode_texts(texts[text]["test"]), test.owner)
        results.append({"name": name, "test": test_result, "held_out_rsum": held_result["rsum"],
                        "train_seconds": seconds, **(extra or {})})
        print(f"| {name} | {fmt(test_result)} | {held_result['rsum']:.2f} | {seconds:.0f} |", flush=True)
        return held_result["rsum"]

    def fit_model(options, image, text, **fit_options):
        start = time.perf_counter()
        model = JointEmbedding(**options).fit(image[rows(fit)], texts[text]["fit"], fit.owner,
                                              caption_vectors=documents, progress=False, **fit_options)
        return model, time.perf_counter() - start

    print("| method | t->i R@1 | R@5 | R@10 | med | i->t R@1 | R@5 | R@10 | med | held-out RSUM | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    rng = np.random.default_rng(0)
    chance = text_image_retrieval(rng.standard_normal((200, 64)), rng.standard_normal((1000, 64)), test.owner)
    results.append({"name": "chance (random vectors)", "test": chance})
    print(f"| chance (random vectors) | {fmt(chance)} | | |")
    bridge = ZeroShotBridge(create_text_encoder("minilm"), top=5)
    zero = text_image_retrieval(bridge.encode_images(logits(features["classifier_input"][rows(test)], backbone)),
                                texts["minilm"]["test"], test.owner)
    results.append({"name": "zero-shot: ImageNet classes + MiniLM", "test": zero})
    print(f"| zero-shot: ImageNet classes ({short}) + MiniLM (top 5) | {fmt(zero)} | | |", flush=True)

    for feature_name, scales in variants.items():
        feature_name = f"{short} {feature_name}"
        image = gem_vectors(features["pooled"], scales)
        for text in ("tfidf", "minilm"):
            # CCA's dimension, ridge and power: the best on the held-out images
            def held_rsum(options, image=image, text=text):
                model = fit_model(options, image, text)[0]
                return text_image_retrieval(model.encode_images(image[rows(held)]),
                                            model.encode_texts(texts[text]["held"]), held.owner)["rsum"]

            best = chosen_cca[text] = max(CCA_GRID, key=held_rsum)
            model, seconds = fit_model(best, image, text)
            evaluate(f"CCA, {feature_name} + {text} (dim {best['dim']}, ridge {best['regularisation']}, "
                     f"power {best['power']:.0f})", model, image, text, seconds)
    feature_name, scales = list(variants.items())[-1]
    image = gem_vectors(features["pooled"], scales)
    validation = {"validation": (image[rows(held)], texts["minilm"]["held"], held.owner)}
    best_history = None
    for name, options in [("triplet: visual + i2t + t2i", TRIPLET),
                          ("triplet without visual", {**TRIPLET, "losses": ("i2t", "t2i")}),
                          ("triplet without i2t", {**TRIPLET, "losses": ("visual", "t2i")}),
                          ("triplet without t2i", {**TRIPLET, "losses": ("visual", "i2t")}),
                          ("symmetric InfoNCE", INFONCE)]:
        model, seconds = fit_model(options, image, "minilm", **validation)
        evaluate(f"{name}, {short} {feature_name} + minilm", model, image, "minilm", seconds,
                 {"best_epoch": model.report_["best_epoch"], "epochs": model.report_["epochs"]})
        if best_history is None:
            best_history = model.history_
    if refit_epochs:
        everything_rows, everything_texts = rows(train), minilm(train)
        refits = [("CCA", chosen_cca["minilm"]), ("symmetric InfoNCE", {**INFONCE, "epochs": refit_epochs})]
        for name, options in refits:
            start = time.perf_counter()
            model = JointEmbedding(**options).fit(image[everything_rows], everything_texts, train.owner,
                                                  caption_vectors=caption_documents(train), progress=False)
            seconds = time.perf_counter() - start
            test_result = text_image_retrieval(model.encode_images(image[rows(test)]),
                                               model.encode_texts(texts["minilm"]["test"]), test.owner)
            name = f"{name}, refit on all 800, {short} {feature_name} + minilm"
            results.append({"name": name, "test": test_result, "train_seconds": seconds})
            print(f"| {name} | {fmt(test_result)} | | {seconds:.0f} |", flush=True)
    from lookalike.crossmodal.training import plot_history

    plot_history(best_history, out / f"crossmodal_training_{short}.png",
                 title=f"triplet (three losses), {short} {feature_name} + MiniLM: 700 train, 100 held out")
    return results


def eth80_benchmark(data: Path, cache: Path) -> dict:
    features = cached("eth80", eth80_images(data), cache)
    train_protocol = load_protocol(data / "eth80" / "category-train.json")
    test_protocol = load_protocol(data / "eth80" / "category-test.json")
    n_train = len(train_protocol.imlist)
    image = gem_vectors(features["pooled"], (1.0,))
    train_x, test_x = image[:n_train], image[n_train:]
    train_categories = train_protocol.labels["category"]
    test_categories = np.array(test_protocol.labels["category"])
    captions = [t.format(c) for c in train_categories for t in ETH80_TEMPLATES]
    owner = np.repeat(np.arange(n_train), len(ETH80_TEMPLATES))
    minilm = create_text_encoder("minilm")
    caption_rows = minilm.encode(captions)
    documents = create_text_encoder("tfidf", min_df=1).fit(captions).encode(train_categories)
    documents /= np.linalg.norm(documents, axis=1, keepdims=True)
    queries = minilm.encode(list(ETH80_QUERIES))

    def text_map(image_rows, query_rows):
        order = np.argsort(-(query_rows @ image_rows.T), axis=1, kind="stable")
        aps = {}
        for (query, wanted), ranking in zip(ETH80_QUERIES.items(), order):
            ok = np.flatnonzero(np.isin(test_categories, wanted))
            aps[query] = average_precision(positive_ranks(ranking, ok, np.zeros(0, np.int64)), len(ok))
        return float(np.mean(list(aps.values()))), aps

    def image_map(database):
        """mAP of the category-test protocol; its queries are database images."""
        index = {p: i for i, p in enumerate(test_protocol.imlist)}
        queries = database[[index[p] for p in test_protocol.qimlist]]
        return evaluate_rankings(np.argsort(-(queries @ database.T), axis=1, kind="stable"), test_protocol)["map"]

    report = {"image_map": {"gem (before any training)": image_map(test_x)}, "text_map": {}, "per_query": {}}
    bridge = ZeroShotBridge(minilm, top=5)
    report["text_map"]["zero-shot: ImageNet classes + MiniLM"], report["per_query"]["zero-shot"] = text_map(
        bridge.encode_images(logits(features["classifier_input"][n_train:])), queries)
    for name, options in [("CCA", {"method": "cca", "dim": 64, "regularisation": 0.3, "power": 4.0}),
                          ("joint, i2t + t2i (no visual loss)", {**TRIPLET, "losses": ("i2t", "t2i"), "epochs": 40}),
                          ("joint, visual + i2t + t2i", {**TRIPLET, "epochs": 40})]:
        start = time.perf_counter()
        model = JointEmbedding(**options).fit(train_x, caption_rows, owner, caption_vectors=documents, progress=False)
        seconds = time.perf_counter() - start
        projected = model.encode_images(test_x)
        report["text_map"][name], report["per_query"][name] = text_map(projected, model.encode_texts(queries))
        report["image_map"][f"{name}: image head"] = image_map(projected)
        report.setdefault("train_seconds", {})[name] = seconds
    print("\n| eth80 category-test | text queries mAP | image->image mAP |\n|---|---|---|")
    print(f"| gem (no training) | | {report['image_map']['gem (before any training)']:.3f} |")
    for name, value in report["text_map"].items():
        image_value = report["image_map"].get(f"{name}: image head")
        print(f"| {name} | {value:.3f} | {'' if image_value is None else f'{image_value:.3f}'} |")
    print("\nper text query AP:")
    for query in ETH80_QUERIES:
        print(f"  {query:28}" + "  ".join(f"{k[:24]:>24}={v[query]:.3f}" for k, v in report["per_query"].items()))
    return report


if __name__ == "__main__":
    parser = arguments(__doc__, plots=True)
    parser.add_argument("--only", choices=("captions", "eth80"))
    parser.add_argument("--backbone", choices=tuple(GEM), default="efficientnet-lite0",
                        help="the network of the captions benchmark's image features")
    parser.add_argument("--refit-epochs", type=int, default=0,
                        help="also refit CCA and InfoNCE (this many epochs) on all 800 training images")
    args = parser.parse_args()
    output = {}
    if args.only in (None, "captions"):
        output["captions"] = captions_benchmark(args.data, args.cache, args.out, args.backbone, args.refit_epochs)
    if args.only in (None, "eth80"):
        output["eth80"] = eth80_benchmark(args.data, args.cache)
    (args.cache / f"results-{args.only or 'all'}-{args.backbone}.json").write_text(json.dumps(output, indent=1))
