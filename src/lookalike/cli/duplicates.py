"""``lookalike duplicates``: groups of near-duplicate images, best copy first."""

from __future__ import annotations

import csv
import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.app import MaxPixels, Settings, Workers, app, descriptor_from_options
from lookalike.errors import LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS


@app.command()
def duplicates(
    paths: Annotated[Optional[list[Path]], typer.Argument(help="Image files and folders (searched recursively).")]
    = None,
    collection: Annotated[Optional[Path], typer.Option(
        "--collection", "-c", help="Group a collection's stored images instead of PATHS.")] = None,
    threshold: Annotated[Optional[float], typer.Option(
        help="Cosine similarity above which two images are near-duplicates (overrides --preset).")] = None,
    preset: Annotated[Optional[str], typer.Option(
        help="exact (re-encodings, resizes), near (crops, colour, overlays...: the default) or similar "
        "(looser); calibrated for the default descriptor.")] = None,
    descriptor: Annotated[Optional[str], typer.Option(
        "--descriptor", "-d", help="Descriptor for PATHS [default: gem at 3 scales].")] = None,
    settings: Settings = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the groups as JSON.")] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="Print one CSV row per image (group, rank, ...).")] = False,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write an HTML page of the groups.")] = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Find groups of near-duplicate images, each with its best copy (largest resolution) first.

      lookalike duplicates ~/photos --preset near

      lookalike duplicates --collection ~/photos.lookalike --json
    """
    from lookalike.pipelines.duplicates import choose_threshold, collection_duplicates, file_duplicates

    if bool(paths) == (collection is not None):
        raise LookalikeError("give either image PATHS or --collection, not both or neither")
    if as_json and as_csv:
        raise LookalikeError("choose one of --json and --csv")
    if collection is not None:
        from lookalike.index import Collection

        if descriptor or settings:
            raise LookalikeError("--descriptor and --set apply to PATHS; a collection keeps its own descriptor")
        with Collection.open(collection) as store:
            chosen = choose_threshold(store.descriptor, threshold, preset)
            groups = collection_duplicates(store, chosen)
    else:
        from lookalike.descriptors import default_descriptor

        wanted = descriptor_from_options(descriptor, settings) if descriptor else default_descriptor()
        chosen = choose_threshold(wanted, threshold, preset)
        groups, skipped = file_duplicates(paths, wanted, chosen, workers=workers, max_pixels=max_pixels)
        for error in skipped:
            typer.echo(f"skipped {error}", err=True)

    if as_json:
        typer.echo(json.dumps({"threshold": chosen, "groups": groups}, indent=1))
    elif as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["group", "rank", "path", "width", "height", "bytes", "score"])
        for number, group in enumerate(groups, 1):
            for rank, m in enumerate(group, 1):
                writer.writerow([number, rank, m["path"], m["width"], m["height"], m["bytes"], f"{m['score']:.4f}"])
    else:
        for number, group in enumerate(groups, 1):
            typer.echo(f"group {number}: {len(group)} images")
            for m in group:
                typer.echo(f"  {m['score']:7.4f}  {m['width']}x{m['height']}  {m['path']}")
    typer.echo(f"{len(groups)} groups, {sum(len(g) for g in groups)} images, threshold {chosen}", err=True)
    if html is not None:
        from lookalike.results_page import render_groups

        html.write_text(render_groups(groups, title=f"lookalike: {len(groups)} groups of near-duplicates"))
        typer.echo(f"wrote {html}", err=True)
