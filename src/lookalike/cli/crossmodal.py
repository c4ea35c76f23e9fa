"""Commands that link images and words: train-joint, eval-text, caption, text-encoders.

Searching a collection with words is ``lookalike search --text`` (in :mod:`lookalike.cli.collections`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.app import MaxPixels, Settings, Workers, app, descriptor_from_options
from lookalike.errors import LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS

Data = Annotated[Path, typer.Argument(help="Captioned images: a folder with images/, captions.jsonl and "
                                      "an optional split.json, or a CSV of path,caption.")]
Device = Annotated[str, typer.Option(help="Where to train and run the text encoder: cpu or cuda.")]


def _print_recalls(result: dict) -> None:
    typer.echo(f"{'':6}{'R@1':>7}{'R@5':>7}{'R@10':>7}{'median':>8}")
    for direction, label in (("t2i", "t->i"), ("i2t", "i->t")):
        r = result[direction]
        typer.echo(f"{label:6}{r['r@1']:7.3f}{r['r@5']:7.3f}{r['r@10']:7.3f}{r['median_rank']:8.1f}")


@app.command(name="train-joint")
def train_joint(
    data: Data,
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the joint model (.pt).")],
    descriptor: Annotated[str, typer.Option("--descriptor", "-d", help="Image descriptor the image head "
                                            "reads; a collection must use the same one.")] = "gem",
    settings: Settings = None,
    text: Annotated[str, typer.Option("--text", help="Text encoder: minilm or tfidf.")] = "minilm",
    method: Annotated[str, typer.Option(help="triplet (Gordo & Larlus's three losses), infonce, or cca.")] = "triplet",
    losses: Annotated[str, typer.Option(help="triplet: the losses used, comma-separated.")] = "visual,i2t,t2i",
    dim: Annotated[int, typer.Option(help="Dimension of the joint space.")] = 512,
    captions: Annotated[str, typer.Option(help="Per image and batch: one of its captions at random, or all "
                                          "of them as positives.")] = "one",
    augment: Annotated[str, typer.Option(help="none, or views: per image and batch, one of its views (a scale "
                                         "or the mirror image of a multi-scale or gem-flip descriptor) drawn at "
                                         "random instead of their sum (cca: every view as extra pairs).")] = "none",
    init: Annotated[str, typer.Option(help="Start the heads from random weights, or from the CCA solution "
                                      "(cca; linear heads of --dim at most the text dimension).")] = "random",
    ensemble: Annotated[int, typer.Option(help="Train this many pairs of heads (successive seeds) and join "
                                          "them: the cosine is their mean.")] = 1,
    hubness: Annotated[int, typer.Option(help="Hubness correction (CSLS): a candidate's score drops by half its "
                                         "mean cosine to its K nearest training items of the other modality; "
                                         "0 = off. Kept in the model (its training rows, the heads' inputs).")] = 0,
    epochs: Annotated[int, typer.Option(help="Training epochs at most.")] = 300,
    holdout: Annotated[int, typer.Option(help="Training images held out to pick the best epoch and stop "
                                         "early (0 = train on all, for all epochs).")] = 100,
    joint_set: Annotated[Optional[list[str]], typer.Option(
        "--joint-set", help="Other joint model option as key=value (margin, lr, batch_size, hidden, dropout, "
        "temperature, learn_temperature, regularisation, power, seed, ...), repeatable.")] = None,
    resume: Annotated[bool, typer.Option(help="Go on from the checkpoint OUT.ckpt of an interrupted run.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Write the loss and validation curves (PNG).")] = None,
    device: Device = "cpu",
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Learn a joint image-text space from captioned images (the train split only).

      lookalike train-joint ../shared/data/captions -d gem --text minilm -o joint.pt --plot joint.png

    The best measured (docs/benchmarks.md): -d gem-flip -s scales=1,0.7071,0.5,1.4142 --method infonce
    --captions all --augment views --init cca --dim 256 --hubness 10 --joint-set lr=0.0003
    --joint-set dropout=0.5

    Then search a collection with words: lookalike reindex DIR --joint joint.pt;
    lookalike search --text "two dogs playing in the snow" -c DIR
    """
    from lookalike.crossmodal.joint import JointConfig
    from lookalike.crossmodal.text import create_text_encoder
    from lookalike.descriptors import parse_overrides
    from lookalike.pipelines.crossmodal import train_joint as train

    options = parse_overrides(JointConfig, joint_set or [])
    config = JointConfig(**{"method": method, "dim": dim, "epochs": epochs, "captions": captions, "augment": augment,
                            "init": init, "ensemble": ensemble, "hubness": hubness,
                            "losses": tuple(s.strip() for s in losses.split(",") if s.strip()), **options})
    encoder = create_text_encoder(text, **({"device": device} if text == "minilm" else {}))
    model, report = train(data, descriptor_from_options(descriptor, settings), encoder, out, config=config,
                          holdout=holdout, resume=resume, device=device, plot=plot, workers=workers,
                          max_pixels=max_pixels)
    best = f", best epoch {report['best_epoch']} (held-out RSUM {report['validation_rsum']:.3f})" \
        if report.get("validation_rsum") is not None else ""
    typer.echo(f"trained {model.config.method} on {report['images']} images and {report['captions']} captions "
               f"in {report.get('train_seconds', 0.0):.1f} s{best}; wrote {out}")
    if plot and model.history_:
        typer.echo(f"wrote {plot}", err=True)


@app.command(name="eval-text")
def eval_text(
    data: Data,
    joint: Annotated[Optional[Path], typer.Option(help="Joint model from train-joint.")] = None,
    zero_shot: Annotated[bool, typer.Option(
        "--zero-shot", help="Instead of a joint model: the ImageNet classifier's class names, "
        "embedded by --text.")] = False,
    text: Annotated[str, typer.Option("--text", help="With --zero-shot: the text encoder.")] = "minilm",
    split: Annotated[str, typer.Option(help="The split evaluated.")] = "test",
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Also write the results as JSON.")] = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Text->image and image->text Recall@1/5/10 and median rank on the test split.

    Each test caption retrieves its image among the test images; each test image retrieves its
    captions among the test captions (the first one found counts).
    """
    from lookalike.pipelines import crossmodal

    if zero_shot == (joint is not None):
        raise LookalikeError("give either --joint MODEL or --zero-shot")
    if zero_shot:
        from lookalike.crossmodal.text import create_text_encoder

        result = crossmodal.evaluate_zero_shot(data, create_text_encoder(text), split=split, workers=workers,
                                               max_pixels=max_pixels)
    else:
        from lookalike.crossmodal.joint import JointEmbedding

        result = crossmodal.evaluate_joint(data, JointEmbedding.load(joint), split=split, workers=workers,
                                           max_pixels=max_pixels)
    typer.echo(f"{split}: {result['images']} images, {result['captions']} captions")
    _print_recalls(result)
    if json_out:
        json_out.write_text(json.dumps(result, indent=1))
        typer.echo(f"wrote {json_out}", err=True)


@app.command()
def caption(
    image: Annotated[Path, typer.Argument(help="The image.")],
    sentences: Annotated[Path, typer.Option(help="Text file: the candidate sentences, one per line.")],
    joint: Annotated[Optional[Path], typer.Option(help="Joint model from train-joint.")] = None,
    collection: Annotated[Optional[Path], typer.Option(
        "--collection", "-c", help="Or use the joint model this collection carries.")] = None,
    k: Annotated[int, typer.Option("-k", help="Sentences shown.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Image->text: rank the sentences of a file by how well they describe IMAGE."""
    from lookalike.pipelines import crossmodal

    if (joint is None) == (collection is None):
        raise LookalikeError("give either --joint MODEL or --collection DIR")
    if joint is not None:
        from lookalike.crossmodal.joint import JointEmbedding

        model = JointEmbedding.load(joint)
    else:
        from lookalike.index import Collection

        with Collection.open(collection) as store:
            model = crossmodal.joint_model(store)
    try:
        lines = sentences.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise LookalikeError(f"--sentences {sentences}: cannot read it ({exc.strerror})") from None
    ranked = crossmodal.caption_image(image, lines, model, k=k, max_pixels=max_pixels)
    if as_json:
        typer.echo(json.dumps({"image": str(image), "results": [
            {"rank": r, "score": s, "sentence": t} for r, s, t in ranked]}))
    else:
        for rank, score, sentence in ranked:
            typer.echo(f"{rank:>4}  {score:7.4f}  {sentence}")


@app.command(name="text-encoders")
def text_encoders() -> None:
    """List the text encoders and their options."""
    import dataclasses

    from lookalike.crossmodal.text import available, text_encoder_class

    for name in available():
        cls = text_encoder_class(name)
        fields = [f for f in dataclasses.fields(cls.Config) if f.name not in ("vocabulary", "idf")]
        typer.echo(f"{name}: {cls.__doc__.strip().splitlines()[0]}")
        for f in fields:
            typer.echo(f"    {f.name} = {f.default!r}")
