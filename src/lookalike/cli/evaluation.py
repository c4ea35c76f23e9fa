"""Commands that measure: eval, descriptors, analyze, and the demo set."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.app import (
    Alpha,
    DbaK,
    DiffusionAlpha,
    DiffusionK,
    InlierRatio,
    InlierWeight,
    Kq,
    MaxPixels,
    MinInliers,
    QeK,
    QeVerified,
    RerankTop,
    Settings,
    SvModel,
    Truncate,
    Workers,
    app,
    check_output,
    descriptor_from_options,
)
from lookalike.errors import LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS


@app.command(name="eval")
def evaluate(
    protocol: Annotated[Path, typer.Argument(help="Protocol JSON (docs/protocol.md).")],
    descriptor: Annotated[str, typer.Option("--descriptor", "-d", help="Descriptor name.")] = "gist",
    settings: Settings = None,
    images: Annotated[Optional[Path], typer.Option(help="Image folder [default: images/ beside the JSON].")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write full results as JSON.")] = None,
    save_rankings: Annotated[bool, typer.Option(help="Include each query's ranking in --json output.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Write a precision-recall plot (PNG).")] = None,
    train_images: Annotated[Optional[list[Path]], typer.Option(
        help="Images to learn a vocabulary from, for descriptors that need one and have none "
        "[default: the database images].")] = None,
    rerank: Annotated[Optional[str], typer.Option(
        help="Re-rank each ranking with these steps, in order: sv (spatial verification, needs "
        "--local-features), dba, qe, diffusion; e.g. sv,dba,qe,diffusion.")] = None,
    local_features: Annotated[Optional[str], typer.Option(
        help="Local features for sv: sift or delf (delf learns its PCA from --train-images, "
        "default the database images).")] = None,
    local_set: Annotated[Optional[list[str]], typer.Option(
        help="Local-feature option as key=value, repeatable, e.g. max_keypoints=500.")] = None,
    rerank_top: RerankTop = None,
    min_inliers: MinInliers = None,
    inlier_ratio: InlierRatio = None,
    inlier_weight: InlierWeight = None,
    sv_model: SvModel = None,
    qe_k: QeK = None,
    alpha: Alpha = None,
    qe_verified: QeVerified = None,
    dba_k: DbaK = None,
    diffusion_k: DiffusionK = None,
    diffusion_alpha: DiffusionAlpha = None,
    kq: Kq = None,
    truncate: Truncate = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Evaluate a descriptor on a benchmark protocol: mAP with junk removed, mP@k, mR@k, top-1;
    optionally after re-ranking (--rerank)."""
    from lookalike.evaluate.report import format_summary, to_json
    from lookalike.io.protocol import load_protocol
    from lookalike.pipelines.evaluation import evaluate_descriptor

    check_output(json_out, "--json")
    check_output(plot, "--plot")
    parsed = load_protocol(protocol, images)
    train_paths = None
    if train_images:
        from lookalike.io.files import find_images

        train_paths = find_images(train_images)
    steps, extractor = None, None
    if rerank:
        from lookalike.rerank.steps import parse_steps

        steps = parse_steps(rerank, local_features=local_features is not None, rerank_top=rerank_top,
                            min_inliers=min_inliers, inlier_ratio=inlier_ratio, inlier_weight=inlier_weight,
                            sv_model=sv_model, qe_k=qe_k, alpha=alpha,
                            qe_verified=qe_verified, dba_k=dba_k, diffusion_k=diffusion_k,
                            diffusion_alpha=diffusion_alpha, kq=kq, truncate=truncate)
    if local_features:
        from lookalike.descriptors import parse_overrides
        from lookalike.descriptors.local.registry import local_class

        cls = local_class(local_features)
        extractor = cls(**parse_overrides(cls.Config, local_set or []))
    result = evaluate_descriptor(parsed, descriptor_from_options(descriptor, settings), workers=workers,
                                 max_pixels=max_pixels, train_paths=train_paths, rerank=steps,
                                 local_features=extractor)
    for line in result["skipped"]:
        typer.echo(f"skipped {line}", err=True)
    typer.echo(format_summary(result))
    if json_out is not None:
        json_out.write_text(json.dumps(to_json(result, parsed, save_rankings), indent=1))
        typer.echo(f"wrote {json_out}", err=True)
    if plot is not None:
        from lookalike.evaluate.report import plot_result

        plot_result(result, plot)
        typer.echo(f"wrote {plot}", err=True)


@app.command()
def descriptors() -> None:
    """List the registered descriptors: dimension, when to use each, options and defaults."""
    from lookalike.descriptors import available, descriptor_class

    for name in available():
        cls = descriptor_class(name)
        typer.echo(f"{name} ({_dimension(cls)}): {cls.advice or (cls.__doc__ or '').strip().splitlines()[0]}")
        for f in dataclasses.fields(cls.Config):
            typer.echo(f"    {f.name} = {f.default!r}")


def _dimension(cls) -> str:
    """The dimension with default options, and what it depends on."""
    try:
        descriptor = cls()
        dim = descriptor.dim
    except (LookalikeError, ImportError) as exc:  # a deep descriptor without the [deep] extra
        return f"dimension unknown here: {exc}"
    if "vocabulary" in {f.name for f in dataclasses.fields(cls.Config)}:
        return f"{dim}-D with k={descriptor.config.k}; grows with the vocabulary size k"
    return f"{dim}-D"


@app.command(name="demo-data")
def demo_data(out: Annotated[Path, typer.Argument(help="Folder to write the demo set into.")]) -> None:
    """Write the demo set: scikit-image's photographs, edited copies as queries, and a protocol."""
    from lookalike.io.demo_photos import build_demo_set

    typer.echo(f"wrote {build_demo_set(out)}")


analyze = typer.Typer(no_args_is_help=True, help="Analyses of descriptors and their data.")
app.add_typer(analyze, name="analyze")


@analyze.command()
def dimensionality(
    descriptors: Annotated[Optional[Path], typer.Option(
        help="Your descriptors: an (N, D) .npy file, or a collection folder.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the plots.")] = Path("dimensionality"),
) -> None:
    """The curse of dimensionality: distance concentration of uniform data against your descriptors,
    over dimensions 2 to 2048, and the PCA energy spectrum of your descriptors."""
    import numpy as np

    from lookalike.evaluate import dimensionality as dims

    real = None
    if descriptors is not None:
        if descriptors.is_dir():
            from lookalike.index import Collection

            with Collection.open(descriptors) as store:
                real = store.metadata.vectors()[1]
        else:
            try:
                real = np.load(descriptors, allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise LookalikeError(f"{descriptors}: not a .npy array ({exc})") from None
    curves = dims.concentration_curves(real)
    energy = dims.pca_energy(real) if real is not None else None
    for path in dims.plot(curves, energy, out, label=descriptors.name if descriptors else "descriptors"):
        typer.echo(f"wrote {path}", err=True)
    for line in dims.interpret(curves, energy):
        typer.echo(line)
