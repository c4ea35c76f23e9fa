"""``lookalike serve``: the HTTP API and web UI over one or more collections."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.app import MaxPixels, app
from lookalike.errors import LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS


@app.command()
def serve(
    collections: Annotated[list[Path], typer.Option("--collection", "-c", help="Collection folder, repeatable.")],
    host: Annotated[str, typer.Option(help="Address to listen on; keep 127.0.0.1 unless a reverse proxy "
                                      "in front of it handles TLS and access.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    api_key: Annotated[Optional[str], typer.Option(
        help="Key that writes (uploads, removals, reindexing) must send as X-API-Key [default: the "
        "LOOKALIKE_API_KEY environment variable; unset: writes are refused].")] = None,
    threads: Annotated[int, typer.Option(help="Searches run at once [default: one per core].")] = 0,
    max_upload_bytes: Annotated[int, typer.Option(help="Refuse request bodies larger than this.")] = 20_000_000,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Serve collections over HTTP: a web UI at / and a JSON API at /api (docs at /api/docs).

      lookalike serve -c ~/photos.lookalike
    """
    try:
        import uvicorn

        from lookalike.service import ServiceConfig, create_app
        from lookalike.service.app import API_KEY_VARIABLE, bound_library_threads
    except ImportError as exc:
        raise LookalikeError(f"lookalike serve needs the serve extra ({exc.name} is missing): "
                             "pip install 'lookalike[serve]'") from None
    if threads < 0 or max_upload_bytes < 1:
        raise LookalikeError(f"--threads {threads} and --max-upload-bytes {max_upload_bytes}: need >= 0 and >= 1")
    config = ServiceConfig(collections=tuple(collections), api_key=api_key or os.environ.get(API_KEY_VARIABLE),
                           max_upload_bytes=max_upload_bytes, max_pixels=max_pixels, threads=threads)
    bound_library_threads()
    application = create_app(config)
    writes = "writes need X-API-Key" if config.api_key else "read-only (no --api-key)"
    typer.echo(f"lookalike UI: http://{host}:{port}/  (API docs: http://{host}:{port}/api/docs; {writes})")
    uvicorn.run(application, host=host, port=port, log_level="warning")
