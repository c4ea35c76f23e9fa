"""The joint space at its best on the captions test split, against CCA on the same features.

What the training images chose (docs/benchmarks.md, "Closing the gap"): ``gem-flip`` at 4 scales
(GeM of each photo and of its mirror image), every caption of an image a positive
(``captions=all``), an ensemble of InfoNCE heads, and the hubness correction (CSLS, k=10). The
table gives CCA on those features, the Gordo & Larlus triplet model (captions=all) with each of
its three losses removed in turn, InfoNCE one caption per image / all captions / an ensemble, then
CCA and the ensemble refit on all 800 training images, each without and with the hubness
correction; the recall on 200 of the training images themselves (the fit), and the held-out
curve of the best model. The refit best model is saved as ``<cache>/joint-best.pt``. As in
``benchmarks/crossmodal.py``, 700 images fit, 100 (evenly spaced) choose, and the test split is
read only for each row's final numbers.

    python benchmarks/crossmodal_features.py --only captions --cache bench-output/crossmodal
    python benchmarks/crossmodal_features.py --only captions --mirror --cache bench-output/crossmodal
    python benchmarks/crossmodal_best.py --cache bench-output/crossmodal
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from crossmodal import CCA_GRID, INFONCE, TRIPLET, fmt
from crossmodal_features import SCALES, cached, caption_images
from lookalike.crossmodal.joint import JointEmbedding
from lookalike.crossmodal.metrics import text_image_retrieval
from lookalike.crossmodal.text import create_text_encoder
from lookalike.descriptors import create
from lookalike.io.captions import load_captions
from lookalike.pipelines.crossmodal import caption_documents, holdout_indices

#: what `train-joint -d gem-flip ... --method infonce --captions all --ensemble 5 --hubness 10` trains
BEST = {**INFONCE, "captions": "all", "ensemble": 5, "hubness": 10}
#: every model keeps its training rows, so that each row is measured with and without the correction
HUBNESS = 10


def gem_flip(plain: np.ndarray, mirror: np.ndarray) -> np.ndarray:
    """``gem-flip`` at the 4 scales from the cached per-scale GeM vectors of the photos and their mirrors."""
    v = plain[:, :, 0].sum(1) + mirror[:, :, 0].sum(1)
    return (v / np.linalg.norm(v, axis=1, keepdims=True)).astype(np.float32)


def main(data: Path, cache: Path, out: Path, ensemble: int) -> list[dict]:
    paths = caption_images(data)
    plain, mirror = cached("captions", paths, cache), cached("captions", paths, cache, mirror=True)
    assert plain["pooled"].shape[1] == len(SCALES)
    image = gem_flip(plain["pooled"], mirror["pooled"])
    everything = load_captions(data / "captions")
    row_of = {p: i for i, p in enumerate(everything.paths)}
    train, test = load_captions(data / "captions", "train"), load_captions(data / "captions", "test")
    fit_idx, held_idx = holdout_indices(len(train), 100)
    fit, held = train.subset(fit_idx), train.subset(held_idx)
    seen = fit.subset(np.linspace(0, len(fit) - 1, 200).round().astype(int))  # 200 of the fitted images
    minilm_file = cache / "minilm-captions.npy"
    if not minilm_file.is_file():
        np.save(minilm_file, create_text_encoder("minilm").encode(everything.captions))
    minilm_all = np.load(minilm_file)
    caption_row = {(everything.paths[o], c): j for j, (c, o) in enumerate(zip(everything.captions, everything.owner))}

    def pairs(split):
        texts = minilm_all[[caption_row[(split.paths[o], c)] for c, o in zip(split.captions, split.owner)]]
        return image[[row_of[p] for p in split.paths]], texts, split.owner

    def recall(model, split, hubness=False):
        x, t, owner = pairs(split)
        x, t = model.encode_images(x), model.encode_texts(t)
        if not hubness:
            return text_image_retrieval(x, t, owner)
        return text_image_retrieval(x, t, owner, image_penalties=model.image_penalties(x),
                                    text_penalties=model.text_penalties(t))

    specs = {"image_spec": create("gem-flip", scales=SCALES).spec(), "text_spec": create_text_encoder("minilm").spec()}

    def train_on(options, split, validation=None):
        x, t, owner = pairs(split)
        start = time.perf_counter()
        model = JointEmbedding(**{"hubness": HUBNESS, **options}, **specs)
        model.fit(x, t, owner, caption_vectors=caption_documents(split), validation=validation, progress=False)
        return model, time.perf_counter() - start

    results = []

    def report(name, model, seconds, held_out=True):
        for hubness in (False, True):
            label = f"{name}, hubness correction" if hubness else name
            result = {"name": label, "test": recall(model, test, hubness), "train_seconds": seconds,
                      "held_out_rsum": recall(model, held, hubness)["rsum"] if held_out else None,
                      "best_epoch": model.report_.get("best_epoch")}
            results.append(result)
            held_cell = f"{result['held_out_rsum']:.2f}" if held_out else ""
            print(f"| {label} | {fmt(result['test'])} | {held_cell} | {seconds:.0f} |", flush=True)
        return model

    print("| method (lite0 gem-flip 4 scales + minilm) | t->i R@1 | R@5 | R@10 | med | i->t R@1 | R@5 | R@10 | med "
          "| held-out RSUM | train s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    best_cca = max(CCA_GRID, key=lambda options: recall(train_on(options, fit)[0], held)["rsum"])
    report(f"CCA (dim {best_cca['dim']}, ridge {best_cca['regularisation']}, power {best_cca['power']:.0f})",
           *train_on(best_cca, fit))
    validation = {"validation": pairs(held)}
    all_captions = {**TRIPLET, "captions": "all"}
    for name, options in [("triplet, all captions: visual + i2t + t2i", all_captions),
                          ("triplet, all captions, without visual", {**all_captions, "losses": ("i2t", "t2i")}),
                          ("triplet, all captions, without i2t", {**all_captions, "losses": ("visual", "t2i")}),
                          ("triplet, all captions, without t2i", {**all_captions, "losses": ("visual", "i2t")}),
                          ("InfoNCE, one caption per image", INFONCE),
                          ("InfoNCE, all captions", {**INFONCE, "captions": "all"})]:
        report(name, *train_on(options, fit, **validation))
    best = report(f"InfoNCE, all captions, ensemble of {ensemble}",
                  *train_on({**BEST, "ensemble": ensemble}, fit, **validation))
    seen_result = recall(best, seen, hubness=True)
    print(f"| (the same, hubness correction, on 200 of its own 700 training images) | {fmt(seen_result)} | | |")
    results.append({"name": "best model on 200 training images", "train": seen_result})
    epochs = int(np.median([m["best_epoch"] for m in best.report_["members"]]))
    report("CCA, refit on all 800", *train_on(best_cca, train), held_out=False)
    refit = report(f"InfoNCE, all captions, ensemble of {ensemble}, refit on all 800 ({epochs} epochs)",
                   *train_on({**BEST, "ensemble": ensemble, "epochs": epochs}, train), held_out=False)
    refit.save(cache / "joint-best.pt")  # a real model: `lookalike eval-text DATA --joint` reproduces the row
    from lookalike.crossmodal.training import plot_history

    plot_history(best.history_, out / "crossmodal_training_best.png",
                 title="InfoNCE, all captions, gem-flip 4 scales + MiniLM: 700 train, 100 held out")
    return results


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--cache", type=Path, default=Path("bench-output/crossmodal"))
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs" / "img")
    parser.add_argument("--ensemble", type=int, default=BEST["ensemble"])
    args = parser.parse_args()
    output = main(args.data, args.cache, args.out, args.ensemble)
    (args.cache / "results-captions-best.json").write_text(json.dumps(output, indent=1))
