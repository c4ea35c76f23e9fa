"""The ``lookalike`` command line: a thin shell over the library.

Every command turns its arguments into library calls and prints the result; errors the user can
fix, usage errors included, print as one line (``error: ...``) with exit code 2, never as a
traceback. Each module of this package holds the commands of one stage; importing them registers
them on :data:`app`.
"""

from __future__ import annotations

import sys

import typer

from lookalike.cli import (  # noqa: F401  (registers the commands)
    clean,
    collections,
    crossmodal,
    duplicates,
    evaluation,
    finetune,
    serve,
    training,
)
from lookalike.cli.app import app
from lookalike.errors import LookalikeError

__all__ = ["app", "main"]

#: the click that typer uses (typer >= 0.16 vendors its own copy), for its exception classes
_click = sys.modules[typer.BadParameter.__module__]


def main() -> None:
    """Entry point: run the app, turning user and usage errors into one-line messages."""
    for stream in (sys.stdout, sys.stderr):  # file names that are not UTF-8 print as their bytes
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="surrogateescape")
    try:
        code = app(standalone_mode=False)
    except _click.NoArgsIsHelpError as exc:
        exc.show()  # the help text, as plain `lookalike` or `lookalike analyze` asks for
        code = 0
    except _click.UsageError as exc:
        hint = f" (see `{exc.ctx.command_path} --help`)" if exc.ctx is not None else ""
        typer.echo(f"error: {exc.format_message()}{hint}", err=True)
        code = 2
    except _click.ClickException as exc:
        typer.echo(f"error: {exc.format_message()}", err=True)
        code = exc.exit_code
    except typer.Abort:
        typer.echo("aborted", err=True)
        code = 130
    except LookalikeError as exc:
        typer.echo(f"error: {exc}", err=True)
        code = 2
    sys.exit(code if isinstance(code, int) else 0)


if __name__ == "__main__":
    main()
