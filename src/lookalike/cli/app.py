"""The Typer application and the options that several commands share."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.errors import LookalikeError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help=(
        "Visual search: index a folder of images, then find the images that show the same object, "
        "place or copy.\n\n"
        "Typical use:\n\n"
        "  lookalike index ~/photos --collection ~/photos.lookalike\n\n"
        "  lookalike search query.jpg --collection ~/photos.lookalike -k 10 --html results.html\n\n"
        "  lookalike duplicates ~/photos --preset near\n\n"
        "  lookalike serve --collection ~/photos.lookalike\n\n"
        "  lookalike eval data/landmarks/full.json --descriptor gist"
    ),
)

Collection_ = Annotated[Path, typer.Option("--collection", "-c", help="Collection folder.")]
Workers = Annotated[
    Optional[int], typer.Option(min=1, help="Worker processes for decoding and describing [default: one per core].")
]
MaxPixels = Annotated[
    int, typer.Option(min=1, help="Refuse images with more pixels than this (decompression-bomb guard).")
]
Settings = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Descriptor option as key=value, repeatable, e.g. -s bins=8,8,8. "
                 "`lookalike descriptors` lists the options."),
]

# ---- re-ranking options, shared by `search` and `eval` (`None`: the step's default) ---------------
RerankTop = Annotated[Optional[int], typer.Option(
    "--rerank-top", "--shortlist", min=1, help="Candidates re-ranked per query (sv, emd) [100].")]
MinInliers = Annotated[Optional[int], typer.Option(min=1, help="sv: inliers that make a match [8].")]
InlierRatio = Annotated[Optional[float], typer.Option(
    min=0.0, max=1.0, help="sv: also need more inliers than this share of the tentative matches [0].")]
InlierWeight = Annotated[Optional[float], typer.Option(
    min=0.0, help="sv: sort by global score + w * log(1 + inliers beyond chance), not by inliers [0].")]
SvModel = Annotated[Optional[str], typer.Option(
    "--sv-model", "--model", help="sv: geometric model fitted by RANSAC, affine or homography [affine].")]
QeK = Annotated[Optional[int], typer.Option(min=1, help="qe: neighbours averaged into the query [2].")]
Alpha = Annotated[Optional[float], typer.Option(
    min=0.0, help="qe: weights similarity^alpha; 0 = average QE, 3 = alpha-QE [0].")]
QeVerified = Annotated[Optional[bool], typer.Option(
    "--qe-verified", help="qe: expand with spatially verified images only (after sv).")]
DbaK = Annotated[Optional[int], typer.Option(min=1, help="dba: neighbours, the vector itself included [2].")]
DiffusionK = Annotated[Optional[int], typer.Option(min=1, help="diffusion: neighbours in the kNN graph [50].")]
DiffusionAlpha = Annotated[Optional[float], typer.Option(min=0.0, max=1.0, help="diffusion: alpha in (0, 1) [0.99].")]
Kq = Annotated[Optional[int], typer.Option(min=1, help="diffusion: database items seeding a query [10].")]
Truncate = Annotated[Optional[int], typer.Option(
    min=0, help="diffusion: only over each query's top N (0 = the whole database) [0].")]


def descriptor_from_options(name: str, settings: list[str] | None):
    """The descriptor ``name`` with the ``-s key=value`` settings applied."""
    from lookalike.descriptors import descriptor_class, parse_overrides

    cls = descriptor_class(name)
    return cls(**parse_overrides(cls.Config, settings or []))


def _version(value: bool) -> None:
    if value:
        from lookalike import __version__

        typer.echo(f"lookalike {__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
) -> None:
    """Visual search: index a folder of images, then find the images that show the same object,
    place or copy."""


def check_output(path: Path | None, option: str) -> None:
    """Refuse, before any work, an output file whose folder is missing or not writable."""
    if path is None:
        return
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise LookalikeError(f"{option} {path}: is a folder; give a file name")
    if not folder.is_dir():
        raise LookalikeError(f"{option} {path}: folder {folder} does not exist; create it first")
    if not os.access(folder, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise LookalikeError(f"{option} {path}: not writable; choose another place")
