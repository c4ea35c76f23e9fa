"""Commands that fine-tune a network: finetune."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.app import Settings, Workers, app, descriptor_from_options


@app.command()
def finetune(
    source: Annotated[Path, typer.Argument(help="Labelled training images: a protocol json with `labels`, "
                                           "a CSV of path,label, or a folder with one sub-folder per class "
                                           "(--loss sscd: any folder of images, no labels).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The model file to write (.pt).")],
    descriptor: Annotated[str, typer.Option("--descriptor", "-d", help=(
        "What to train: gem (backbone and GeM pooling), or, the network frozen, netvlad (the NetVLAD "
        "layer), fvfc (an MLP over Fisher vectors of SIFT) or delf (DELF's attention head)."))] = "gem",
    settings: Settings = None,
    loss: Annotated[Optional[str], typer.Option(help="contrastive, triplet, classification, or sscd (self-"
                                                "supervised for copy detection, no labels needed) [default: "
                                                "contrastive for gem, triplet for netvlad and fvfc; delf "
                                                "always trains with classification].")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="Epochs; the best one on the held-out classes is kept "
                                                  "[default: 10 for gem, 20 for the others].")] = None,
    queries: Annotated[int, typer.Option(help="Tuples (query, positive, negatives) per epoch; sscd: images "
                                         "per epoch, two edited copies each.")] = 300,
    negatives: Annotated[int, typer.Option(help="Negatives per tuple, each of another class.")] = 5,
    mining: Annotated[bool, typer.Option(help="Hard negatives mined every epoch (else random ones).")] = True,
    pool: Annotated[int, typer.Option(help="Images described every epoch to mine negatives from.")] = 800,
    margin: Annotated[float, typer.Option(help="0 = 0.75 for contrastive, 0.1 for triplet.")] = 0.0,
    batch: Annotated[int, typer.Option(help="Tuples per optimiser step; sscd: images (0 = 8; sscd: 32).")] = 0,
    lr: Annotated[Optional[float], typer.Option(help="Adam learning rate [default: 1e-4 for gem's backbone "
                                                "(its p: 10x), 1e-3 for the others].")] = None,
    resolution: Annotated[int, typer.Option(help="Training images are squashed to this square side "
                                            "(not fvfc, which describes them as they are).")] = 224,
    label: Annotated[str, typer.Option(help="Protocol json: which of its labels is the class "
                                       "[default: the one with the most classes].")] = "",
    val_fraction: Annotated[float, typer.Option(help="Share of the classes (sscd: of the images) held out to "
                                                "pick the epoch.")] = 0.2,
    trainable_blocks: Annotated[int, typer.Option(help="sscd: only the backbone's last N blocks learn "
                                                  "(0 = all); a few make CPU training affordable.")] = 0,
    entropy_weight: Annotated[float, typer.Option(help="sscd: weight of the entropy regulariser.")] = 1.0,
    device: Annotated[str, typer.Option(help="cpu or cuda.")] = "cpu",
    threads: Annotated[int, typer.Option(help="CPU threads of torch (0 = its default).")] = 0,
    seed: Annotated[int, typer.Option(help="Seeds the split, the tuples and new layers.")] = 0,
    resume: Annotated[bool, typer.Option(help="Continue from OUT.checkpoint (same settings).")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Loss and validation mAP plot [default: OUT.png].")] = None,
    whitening: Annotated[Optional[Path], typer.Option(
        help="Also learn a whitening from the matching pairs of SOURCE with the fine-tuned model (.npz).")] = None,
    whitening_dim: Annotated[int, typer.Option(help="With --whitening: dimensions kept (0 = all).")] = 0,
    whitening_shrinkage: Annotated[float, typer.Option(
        help="With --whitening: 0 whitens fully; more keeps weak axes from being blown up.")] = 0.1,
    workers: Workers = None,
) -> None:
    """Fine-tune a descriptor for retrieval on labelled images.

    Each epoch draws tuples of a query, an image of the same class and hard negatives (the
    images of other classes most similar to the query, one per class), and trains with a ranking
    loss; a share of the classes is held out to pick the best epoch. Then use the model with
    every command, e.g.

      lookalike finetune data/eth80/instance-train.json --label object -o eth80.pt

      lookalike index ~/photos -c photos.lookalike -d gem -s weights=eth80.pt

    netvlad, fvfc and delf train only a head over a frozen network (minutes on a CPU) and write
    the file their descriptor reads (it prints how to use it): -d netvlad -s vocabulary=OUT.npz,
    -d fvfc -s vocabulary=OUT.npz, --local-features delf --local-set attention=OUT.pt.

    Without labels, --loss sscd trains for copy detection: two strongly edited copies of each
    image must find each other among the copies of the others (SSCD, Pizzi et al. CVPR 2022).
    """
    import torch

    from lookalike.errors import LookalikeError
    from lookalike.pipelines.finetuning import finetune as run
    from lookalike.pipelines.finetuning import learn_whitening_from_labels
    from lookalike.pipelines.head_training import HEADS
    from lookalike.train import FinetuneConfig

    if descriptor not in ("gem", *HEADS):
        raise LookalikeError(f"finetune trains gem, netvlad, fvfc or delf, not {descriptor!r}")
    if threads:
        torch.set_num_threads(threads)
    if descriptor in HEADS:
        if whitening:
            raise LookalikeError(f"--whitening is learnt with -d gem; for {descriptor} use `lookalike train --whiten`")
        if loss == "sscd":
            raise LookalikeError(f"--loss sscd trains -d gem, not the {descriptor} head")
        _train_head(descriptor, source, out, settings, loss=loss, epochs=epochs, queries=queries,
                    negatives=negatives, mining=mining, pool=pool, margin=margin, batch=batch or 8, lr=lr,
                    resolution=resolution, label=label, val_fraction=val_fraction, seed=seed, resume=resume,
                    plot=plot, device=device, workers=workers)
        return
    base = descriptor_from_options(descriptor, settings)
    common = dict(backbone=base.config.backbone, weights=base.config.weights, resume=resume,
                  plot=plot or out.with_suffix(".png"))
    epochs = 10 if epochs is None else epochs
    if loss == "sscd":
        from lookalike.pipelines.selfsupervised import train_selfsupervised
        from lookalike.train.selfsup import SelfSupervisedConfig

        if whitening:
            raise LookalikeError("--whitening learns from matching pairs, which need labels: not with --loss sscd")
        config = SelfSupervisedConfig(epochs=epochs, images=queries, batch=batch or 32, lr=lr or 1e-4,
                                      resolution=resolution, trainable_blocks=trainable_blocks,
                                      entropy_weight=entropy_weight, p=base.p, val_fraction=val_fraction, seed=seed,
                                      device=device)
        report = train_selfsupervised(source, out, config, **common)
        held = f"{report['val_images']} images held out"
    else:
        config = FinetuneConfig(loss=loss or "contrastive", epochs=epochs, queries=queries, negatives=negatives,
                                mining=mining, pool=pool, margin=margin, batch=batch or 8, lr=lr or 1e-4,
                                resolution=resolution, p=base.p, val_fraction=val_fraction, seed=seed, device=device)
        report = run(source, out, config, label=label, **common)
        held = f"{report['val_classes']} classes held out"
    last = report["history"][-1] if report["history"] else {}
    typer.echo(f"trained on {report['input']}; {held}")
    if report["val_map"] is not None:
        typer.echo(f"best epoch {report['best_epoch']}: validation mAP {report['val_map']:.3f} "
                   f"(before training {report['history'][0]['val_map']:.3f})")
    if "images_per_second" in last:
        typer.echo(f"{last['images_per_second']:.1f} training images/s on {device}; "
                   f"{report['seconds']:.0f} s in all")
    typer.echo(f"wrote {out} and {report['plot']}")
    option = f"-s weights={out}"
    if whitening:
        _, white = learn_whitening_from_labels(type(base)(base.config, weights=str(out)), source, whitening,
                                               label=label, dim=whitening_dim, shrinkage=whitening_shrinkage,
                                               workers=workers)
        typer.echo(f"learned a {white['dim']}-D whitening from {white['pairs']:,} matching pairs of "
                   f"{white['images']} images; wrote {whitening}")
        option += f" -s whitening={whitening}"
    typer.echo(f"use it with: -d gem {option}")


def _train_head(model: str, source: Path, out: Path, settings, *, loss, epochs, lr, device, plot, resume,
                resolution, label, workers, **options) -> None:
    from lookalike.errors import LookalikeError
    from lookalike.pipelines.head_training import train_head
    from lookalike.train.frozen import HeadConfig

    if device != "cpu":
        raise LookalikeError(f"-d {model} trains a small head on the CPU; drop --device {device}")
    if model == "delf":
        from lookalike.descriptors import parse_overrides
        from lookalike.descriptors.local.registry import local_class

        cls = local_class("delf")
        base = cls(**parse_overrides(cls.Config, settings or []))
        if loss not in (None, "classification"):
            raise LookalikeError(f"-d delf trains its attention with the classification loss, not {loss!r}")
    else:
        base = descriptor_from_options(model, settings)
    defaults = HeadConfig()
    config = HeadConfig(loss=loss or ("classification" if model == "delf" else defaults.loss),
                        epochs=defaults.epochs if epochs is None else epochs, lr=lr or defaults.lr, **options)
    report = train_head(model, source, out, config, base, label=label, resolution=resolution, resume=resume,
                        plot=plot or out.with_suffix(".png"), workers=workers)
    typer.echo(f"trained on {report['input']}; {report['val_classes']} classes held out")
    if report["val_map"] is not None:
        typer.echo(f"best epoch {report['best_epoch']}: validation mAP {report['val_map']:.3f} "
                   f"(before training {report['history'][0]['val_map']:.3f})")
    typer.echo(f"{report['seconds']:.0f} s in all; wrote {out} and {report['plot']}")
    typer.echo(f"use it with: {report['use']}")
