"""The web UI: server-rendered pages (Jinja, autoescaped) and a little plain JavaScript.

Pages: the collections (``/``), a collection's search page (upload or drop an image; click any
result to search from it), its results with a threshold slider, its near-duplicate groups, and
its info. Images are shown through the API's ``/file?size=`` thumbnails, by id only.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, File, Form, Query, Request, UploadFile
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from lookalike.errors import LookalikeError
from lookalike.index.duplicates import PRESETS
from lookalike.service.api import Preset, in_pool, jpeg, saved_upload, served
from lookalike.service.backend import SearchOptions

router = APIRouter(include_in_schema=False)
templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
#: longest side of the thumbnails the pages show
THUMBNAIL = 192


def page(request: Request, template: str, **context) -> HTMLResponse:
    collections = request.app.state.collections
    return templates.TemplateResponse(request, template, {"collections": collections, "thumbnail": THUMBNAIL,
                                                          **context})


@router.get("/", response_class=HTMLResponse)
def home(request: Request):
    return page(request, "home.html", infos=[c.info() for c in request.app.state.collections.values()])


@router.get("/c/{name}", response_class=HTMLResponse)
def search_page(request: Request, name: str, k: Annotated[int, Query(ge=1, le=200)] = 20):
    return page(request, "search.html", collection=served(request, name), k=k, hits=None)


@router.post("/c/{name}/search", response_class=HTMLResponse)
async def search_upload(request: Request, name: str, image: Annotated[UploadFile, File()],
                        k: Annotated[int, Form(ge=1, le=200)] = 20):
    collection = served(request, name)
    data = await image.read()
    with saved_upload(data, image.filename) as file:
        hits = await in_pool(request, collection.search_file, file, SearchOptions(k=k))
        preview = await in_pool(request, _preview, file, collection.max_pixels)
    return page(request, "search.html", collection=collection, k=k, hits=hits, query_name=image.filename or "upload",
                query_uri=preview)


@router.get("/c/{name}/similar/{ident}", response_class=HTMLResponse)
async def similar_page(request: Request, name: str, ident: int, k: Annotated[int, Query(ge=1, le=200)] = 20):
    collection = served(request, name)
    row = collection.row(ident)
    hits = await in_pool(request, collection.search_id, ident, SearchOptions(k=k))
    return page(request, "search.html", collection=collection, k=k, hits=hits, query_name=Path(row["path"]).name,
                query_id=ident)


@router.get("/c/{name}/duplicates", response_class=HTMLResponse)
async def duplicates_page(request: Request, name: str, preset: Preset | None = None,
                          threshold: Annotated[float | None, Query(ge=-1, le=1)] = None):
    collection = served(request, name)
    preset = preset or request.app.state.config.duplicates_preset
    try:
        chosen = collection.duplicate_threshold(threshold, None if threshold is not None else preset)
    except LookalikeError as exc:  # presets of another descriptor: ask for a threshold
        return page(request, "duplicates.html", collection=collection, groups=None, message=str(exc),
                    preset=None, presets=PRESETS, threshold=None)
    groups = await in_pool(request, collection.duplicates, chosen)
    return page(request, "duplicates.html", collection=collection, groups=groups,
                preset=None if threshold is not None else preset, presets=PRESETS, threshold=chosen, message=None)


@router.get("/c/{name}/info", response_class=HTMLResponse)
def info_page(request: Request, name: str):
    collection = served(request, name)
    return page(request, "info.html", collection=collection, info=collection.info())


def _preview(file: Path, max_pixels: int) -> str:
    """A ``data:`` URI of the uploaded query's thumbnail (the upload itself is not kept)."""
    from lookalike.io.images import load_image

    pixels = load_image(file, max_side=THUMBNAIL, max_pixels=max_pixels).pixels
    return "data:image/jpeg;base64," + base64.b64encode(jpeg(pixels)).decode("ascii")
