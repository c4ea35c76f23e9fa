"""Commands that learn: train."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lookalike.cli.app import (
    MaxPixels,
    Settings,
    Workers,
    app,
    descriptor_from_options,
)
from lookalike.io.images import DEFAULT_MAX_PIXELS


@app.command()
def train(
    paths: Annotated[list[Path], typer.Argument(help="Training images: files and folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the learned model (.npz).")],
    descriptor: Annotated[str, typer.Option("--descriptor", "-d", help="bow, vlad, fisher or netvlad; "
                                            "with --whiten, any descriptor.")] = "vlad",
    settings: Settings = None,
    whiten: Annotated[bool, typer.Option(
        "--whiten", help="Learn a PCA-whitening of the descriptor's vectors instead of a vocabulary.")] = False,
    dim: Annotated[int, typer.Option(min=0, help="With --whiten: dimensions kept (0 = all the data allows).")] = 0,
    shrinkage: Annotated[float, typer.Option(
        min=0.0, max=1.0,
        help="With --whiten: 0 whitens fully, 1 only rotates; in between tames weak noisy axes.")] = 0.0,
    max_images: Annotated[int, typer.Option(min=1, help="Use at most this many images (evenly spaced).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of k-means and EM.")] = 0,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Learn what a descriptor needs from training images: a vocabulary, or a whitening.

    Then use it with -s vocabulary=OUT (or -s whitening=OUT), e.g.

      lookalike train ~/paris -d vlad -s k=64 -o vlad64.npz

      lookalike index ~/photos -c photos.lookalike -d vlad -s k=64 -s vocabulary=vlad64.npz

      lookalike train ~/paris -d gem --whiten --dim 512 -o gem-white.npz

    Learn on images other than the ones you will search: a whitening learned on the searched
    images themselves fits their noise.
    """
    from lookalike.io.files import find_images
    from lookalike.pipelines import training

    wanted, found = descriptor_from_options(descriptor, settings), find_images(paths)
    if whiten:
        trained, report = training.train_whitening(wanted, found, out, dim=dim, shrinkage=shrinkage,
                                                   max_images=max_images, workers=workers,
                                                   max_pixels=max_pixels)
        typer.echo(f"learned a {report['dim']}-D whitening of {trained.name} from {report['images']} images "
                   f"in {report['describe_seconds'] + report['learn_seconds']:.1f} s; wrote {out}")
        option = "whitening"
    else:
        trained, report = training.train_descriptor(wanted, found, out, max_images=max_images,
                                                    workers=workers, max_pixels=max_pixels, seed=seed)
        typer.echo(f"learned {trained.name} (k={trained.config.k}) from {report['descriptors']:,} local "
                   f"descriptors of {report['images']} images in "
                   f"{report['describe_seconds'] + report['learn_seconds']:.1f} s; wrote {out}")
        option = "vocabulary"
    typer.echo(f"use it with: -d {trained.name} " + " ".join(
        f"-s {k}={v}" for k, v in trained.spec()["config"].items() if k in ("k", "pca", option)))
