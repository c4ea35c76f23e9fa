"""The ``lookalike`` command line: a thin shell over the library.

Every command turns its arguments into library calls and prints the result; errors the user can
fix print as one line (``error: ...``) with exit code 2, never as a traceback. Each module of this
package holds the commands of one stage; importing them registers them on :data:`app`.
"""

from __future__ import annotations

import sys

import typer

from lookalike.cli import collections, evaluation, finetune, training  # noqa: F401  (registers the commands)
from lookalike.cli.app import app
from lookalike.errors import LookalikeError

__all__ = ["app", "main"]


def main() -> None:
    """Entry point: run the app, turning user errors into one-line messages."""
    try:
        app()  # handles --help, usage errors (exit 2) and Ctrl-C itself
    except LookalikeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
