"""Commands that clean training data: clean."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.app import MaxPixels, MinInliers, SvModel, Workers, app, check_output
from lookalike.io.images import DEFAULT_MAX_PIXELS


@app.command()
def clean(
    source: Annotated[Path, typer.Argument(help="Labelled training images: a protocol json with `labels`, "
                                           "a CSV of path,label, or a folder with one sub-folder per class.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="The cleaned CSV of path,label to write.")],
    local_features: Annotated[str, typer.Option(help="Local features matched inside each class: sift or delf.")]
    = "sift",
    local_set: Annotated[Optional[list[str]], typer.Option(
        help="Local-feature option as key=value, repeatable, e.g. max_keypoints=500.")] = None,
    min_inliers: MinInliers = None,
    sv_model: SvModel = None,
    label: Annotated[str, typer.Option(help="Protocol json: which of its labels is the class "
                                       "[default: the one with the most classes].")] = "",
    report: Annotated[Optional[Path], typer.Option(
        help="Also write kept/dropped per class as CSV [default: OUT with .classes.csv].")] = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Clean noisy labelled images: keep, in each class, the images that spatial verification links.

    Inside each class every pair of images is matched with local features and verified with
    RANSAC; the largest connected component of verified pairs is kept (Gordo et al. ECCV 2016).
    Train on the result, e.g.

      lookalike clean photos-by-landmark/ -o cleaned.csv

      lookalike finetune cleaned.csv -o model.pt
    """
    from lookalike.clean import CleanConfig
    from lookalike.descriptors import parse_overrides
    from lookalike.descriptors.local.registry import local_class
    from lookalike.pipelines.cleaning import clean as run

    report = report or out.with_name(out.stem + ".classes.csv")
    check_output(out, "--out")
    check_output(report, "--report")
    options = {k: v for k, v in {"min_inliers": min_inliers, "model": sv_model}.items() if v is not None}
    config = CleanConfig(**options)
    local_options = parse_overrides(local_class(local_features).Config, local_set or [])
    result = run(source, out, config, local_features=local_features, local_options=local_options, label=label,
                 report=report, workers=workers, max_pixels=max_pixels)
    width = max(len("class"), *(len(row["class"]) for row in result["classes"]))
    typer.echo(f"{'class':<{width}}  images  kept  dropped  verified pairs  components")
    for row in result["classes"]:
        typer.echo(f"{row['class']:<{width}}  {row['images']:>6}  {row['kept']:>4}  {row['dropped']:>7}  "
                   f"{row['verified_pairs']:>14}  {row['components']:>10}")
    typer.echo(f"kept {result['kept']} of {result['images']} images ({result['input']}) in "
               f"{result['seconds']:.0f} s; wrote {out} and {report}")
