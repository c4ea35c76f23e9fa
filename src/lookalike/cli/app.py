"""The Typer application and the options that several commands share."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

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
    Optional[int], typer.Option(help="Worker processes for decoding and describing [default: one per core].")
]
MaxPixels = Annotated[
    int, typer.Option(help="Refuse images with more pixels than this (decompression-bomb guard).")
]
Settings = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Descriptor option as key=value, repeatable, e.g. -s bins=8,8,8. "
                 "`lookalike descriptors` lists the options."),
]


def descriptor_from_options(name: str, settings: list[str] | None):
    """The descriptor ``name`` with the ``-s key=value`` settings applied."""
    from lookalike.descriptors import descriptor_class, parse_overrides

    cls = descriptor_class(name)
    return cls(**parse_overrides(cls.Config, settings or []))
