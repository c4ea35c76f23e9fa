"""The FastAPI application: configuration, error handling, limits, and the two routers.

Every error leaves as JSON ``{"error": message, "status": code}``, never as a traceback: user
errors (:class:`~lookalike.errors.LookalikeError`) as 400 (an image over the pixel limit as 413),
missing things as 404, a collection another process is writing as 409, and anything unexpected
as a bare 500 (its details go to the server log only).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS

#: environment variable read for the API key when ``--api-key`` is not given
API_KEY_VARIABLE = "LOOKALIKE_API_KEY"
HERE = Path(__file__).parent
log = logging.getLogger("lookalike.service")


@dataclass(frozen=True)
class ServiceConfig:
    """How the service runs."""

    collections: tuple[Path, ...]  # collection folders served, each named by its folder name
    api_key: str | None = None  # needed by every write (X-API-Key header); None = writes refused
    max_upload_bytes: int = 20_000_000  # a bigger request body is refused with 413
    max_pixels: int = DEFAULT_MAX_PIXELS  # uploads and stored images above this are refused (413)
    threads: int = 0  # searches run at once (each single-threaded under `lookalike serve`); 0 = one per core
    duplicates_preset: str = "near"  # threshold of the UI's near-duplicates page unless one is chosen


def create_app(config: ServiceConfig):
    """A FastAPI app serving ``config.collections`` (opened now, read-only until a write)."""
    import anyio
    from fastapi import FastAPI
    from fastapi.exceptions import RequestValidationError
    from fastapi.staticfiles import StaticFiles
    from starlette.exceptions import HTTPException

    from lookalike.service import api, pages
    from lookalike.service.backend import ServiceError, open_collections

    threads = config.threads or _cores()
    app = FastAPI(title="lookalike", version=_version(), summary="Visual search over lookalike collections.",
                  docs_url="/api/docs", redoc_url=None, openapi_url="/api/openapi.json")
    app.state.config = config
    app.state.collections = open_collections(list(config.collections), max_pixels=config.max_pixels)
    app.state.limiter = anyio.CapacityLimiter(threads)
    app.include_router(api.router)
    app.include_router(pages.router)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")

    @app.exception_handler(ServiceError)
    async def service_error(request, exc: ServiceError):
        return error_response(exc.status, str(exc))

    @app.exception_handler(ImageError)
    async def image_error(request, exc: ImageError):
        return error_response(413 if exc.reason == "too large" else 400, f"{exc.reason}: {exc.detail}")

    @app.exception_handler(LookalikeError)
    async def user_error(request, exc: LookalikeError):
        return error_response(400, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(request, exc: HTTPException):
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def invalid_request(request, exc: RequestValidationError):
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        return error_response(422, problems or "invalid request")

    @app.exception_handler(Exception)
    async def unexpected(request, exc: Exception):
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return error_response(500, "internal error (see the server log)")

    app.add_middleware(_BodyLimit, limit=config.max_upload_bytes)
    app.add_middleware(_SecurityHeaders)
    return app


def error_response(status: int, message: str):
    from fastapi.responses import JSONResponse

    return JSONResponse({"error": message, "status": status}, status_code=status)


class _BodyLimit:
    """Refuses request bodies over ``limit`` bytes (plus room for the multipart framing) with 413,
    whether the client announces the length or streams it."""

    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit + 64 * 1024

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        too_big = f"request body over {self.limit - 64 * 1024:,} bytes; send a smaller image"
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await error_response(413, too_big)(scope, receive, send)
        seen = 0

        async def counted():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.limit:
                from lookalike.service.backend import ServiceError

                raise ServiceError(413, too_big)
            return message

        await self.app(scope, counted, send)


class _SecurityHeaders:
    """No inline scripts, nothing from elsewhere, no content sniffing, no framing."""

    HEADERS = [
        (b"content-security-policy", b"default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
                                     b"frame-ancestors 'none'"),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
    ]

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        async def with_headers(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        await self.app(scope, receive, with_headers)


def bound_library_threads() -> None:
    """One thread per search inside faiss, BLAS, torch and ONNX Runtime: concurrency comes from
    running several searches at once, and nested pools would oversubscribe the cores. Called by
    ``lookalike serve`` for its whole process (so not by :func:`create_app`, which tests call)."""
    os.environ["LOOKALIKE_THREADS"] = "1"  # read by the CNN engines when they are built
    import faiss

    faiss.omp_set_num_threads(1)
    try:
        from threadpoolctl import threadpool_limits

        threadpool_limits(1)
    except ImportError:  # numpy's BLAS then keeps its own default
        pass


def _cores() -> int:
    from lookalike.pipelines.extract import default_workers

    return default_workers()


def _version() -> str:
    from lookalike import __version__

    return __version__
