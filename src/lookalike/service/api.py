"""The JSON API under ``/api``: search, "more like this", collection info, duplicates, writes.

Routes only parse and answer; the work is done by :mod:`lookalike.service.backend` in the
app's thread pool (``app.state.limiter`` bounds how many run at once).
"""

from __future__ import annotations

import hmac
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Literal

import anyio
from fastapi import APIRouter, Depends, File, Form, Header, Query, Request, UploadFile
from fastapi.responses import FileResponse, Response
from pydantic import BaseModel, Field

from lookalike.index.duplicates import PRESETS
from lookalike.io.files import IMAGE_EXTENSIONS
from lookalike.service.backend import SearchOptions, ServedCollection, ServiceError


class Error(BaseModel):
    error: str = Field(description="what went wrong, and how to fix it")
    status: int = Field(description="the HTTP status code")


#: every error the API answers, documented in the OpenAPI schema
ERRORS = {400: "bad input, or a feature the collection does not have", 401: "missing or wrong X-API-Key",
          403: "writes are disabled on this server", 404: "no such collection, image or route",
          409: "another process is writing the collection", 410: "the image's file is gone",
          413: "request body or image too large", 422: "a parameter out of range or of the wrong type"}
router = APIRouter(prefix="/api", responses={code: {"model": Error, "description": text}
                                             for code, text in ERRORS.items()})
Preset = Literal[tuple(PRESETS)]  # type: ignore[valid-type]  (the schema lists the library's presets)


# ---- response models (they make the OpenAPI schema) --------------------------------------------
class Result(BaseModel):
    rank: int
    id: int
    score: float
    name: str = Field(description="file name")
    path: str = Field(description="stored path of the file")


class Results(BaseModel):
    collection: str
    results: list[Result]


class CollectionSummary(BaseModel):
    name: str
    images: int
    descriptor: str
    index: str


class ImageInfo(BaseModel):
    id: int
    name: str = Field(description="file name")
    path: str = Field(description="stored path of the file")
    width: int
    height: int
    bytes: int = Field(description="file size")
    sha256: str
    added: float = Field(description="unix time it was indexed")


class Member(ImageInfo):
    score: float = Field(description="similarity to the group's best copy")


class Duplicates(BaseModel):
    collection: str
    threshold: float
    groups: list[list[Member]] = Field(description="best copy (largest resolution) first")


class Added(BaseModel):
    id: int
    added: bool = Field(description="false when the same bytes were stored already")


class Reindex(BaseModel):
    index: str = Field(description="faiss factory string, e.g. Flat, HNSW32, IVF1024,PQ32", max_length=200)


# ---- helpers ---------------------------------------------------------------------------------
def served(request: Request, name: str) -> ServedCollection:
    collections = request.app.state.collections
    if name not in collections:
        raise ServiceError(404, f"no collection {name!r}; served: {', '.join(collections)}")
    return collections[name]


async def in_pool(request: Request, function, *args):
    """Run CPU-bound work in the app's bounded thread pool."""
    return await anyio.to_thread.run_sync(lambda: function(*args), limiter=request.app.state.limiter)


def require_key(request: Request, x_api_key: Annotated[str | None, Header()] = None) -> None:
    """Writes need the operator's key in ``X-API-Key``, compared in constant time."""
    expected = request.app.state.config.api_key
    if not expected:
        raise ServiceError(403, "writes are disabled: start `lookalike serve` with --api-key or LOOKALIKE_API_KEY")
    if x_api_key is None or not hmac.compare_digest(x_api_key.encode(), expected.encode()):
        raise ServiceError(401, "missing or wrong X-API-Key header")


@contextmanager
def saved_upload(data: bytes, filename: str | None):
    """The uploaded bytes in a temporary file (decoded from there with the indexing guards)."""
    if not data:
        raise ServiceError(400, "the uploaded file is empty")
    with tempfile.NamedTemporaryFile(suffix=upload_suffix(filename)) as handle:
        handle.write(data)
        handle.flush()
        yield Path(handle.name)


def upload_suffix(filename: str | None) -> str:
    """The upload's extension if it is an image one, else none (the decoder reads the content)."""
    suffix = Path(filename or "").suffix.lower()
    return suffix if suffix in IMAGE_EXTENSIONS else ""


def options(k: int, threshold: float | None, nprobe: int | None, ef_search: int | None, k_factor: float | None,
            rerank: str | None, shortlist: int) -> SearchOptions:
    return SearchOptions(k=k, threshold=threshold, nprobe=nprobe, ef_search=ef_search, k_factor=k_factor,
                         rerank=rerank or None, shortlist=shortlist)


def results(collection: ServedCollection, hits) -> Results:
    return Results(collection=collection.name, results=[
        Result(rank=h.rank, id=h.id, score=h.score, name=Path(h.path).name, path=h.path) for h in hits])


# ---- reading ---------------------------------------------------------------------------------
@router.get("/collections", response_model=list[CollectionSummary], summary="The collections served")
def list_collections(request: Request) -> list[CollectionSummary]:
    out = []
    for collection in request.app.state.collections.values():
        info = collection.info()
        out.append(CollectionSummary(name=collection.name, images=info["images"],
                                     descriptor=info["descriptor"]["name"], index=info["index"]))
    return out


@router.get("/collections/{name}", summary="A collection's size, descriptor, index and storage")
def collection_info(request: Request, name: str) -> dict:
    return served(request, name).info()


@router.post("/collections/{name}/search", response_model=Results,
             summary="Search by an uploaded image (or by text, for collections with a text encoder)")
async def search(
    request: Request, name: str,
    image: Annotated[UploadFile, File(description="the query image")] = None,
    text: Annotated[str | None, Form(max_length=1000, description="a text query (cross-modal collections)")] = None,
    k: Annotated[int, Form(ge=1, le=1000)] = 10,
    threshold: Annotated[float | None, Form(ge=-1e6, le=1e6)] = None,
    nprobe: Annotated[int | None, Form(ge=1, le=65536)] = None,
    ef_search: Annotated[int | None, Form(ge=1, le=65536)] = None,
    k_factor: Annotated[float | None, Form(ge=1, le=1000)] = None,
    rerank: Annotated[str | None, Form(max_length=100)] = None,
    shortlist: Annotated[int, Form(ge=1, le=10000)] = 100,
) -> Results:
    collection = served(request, name)
    wanted = options(k, threshold, nprobe, ef_search, k_factor, rerank, shortlist)
    if text:
        if image is not None:
            raise ServiceError(400, "send an image or a text, not both")
        return results(collection, await in_pool(request, collection.search_text, text, wanted))
    if image is None:
        raise ServiceError(400, "send the query image as the multipart field 'image' (or a 'text')")
    data = await image.read()
    with saved_upload(data, image.filename) as file:
        return results(collection, await in_pool(request, collection.search_file, file, wanted))


@router.get("/collections/{name}/images/{ident}/similar", response_model=Results,
            summary="More like this: search with a stored image")
async def similar(
    request: Request, name: str, ident: int,
    k: Annotated[int, Query(ge=1, le=1000)] = 10,
    threshold: Annotated[float | None, Query(ge=-1e6, le=1e6)] = None,
    nprobe: Annotated[int | None, Query(ge=1, le=65536)] = None,
    ef_search: Annotated[int | None, Query(ge=1, le=65536)] = None,
    k_factor: Annotated[float | None, Query(ge=1, le=1000)] = None,
    rerank: Annotated[str | None, Query(max_length=100)] = None,
    shortlist: Annotated[int, Query(ge=1, le=10000)] = 100,
) -> Results:
    collection = served(request, name)
    wanted = options(k, threshold, nprobe, ef_search, k_factor, rerank, shortlist)
    return results(collection, await in_pool(request, collection.search_id, ident, wanted))


@router.get("/collections/{name}/images/{ident}", response_model=ImageInfo, summary="A stored image's metadata")
def image_info(request: Request, name: str, ident: int) -> ImageInfo:
    row = served(request, name).row(ident)
    return ImageInfo(**row, name=Path(row["path"]).name)


@router.get("/collections/{name}/images/{ident}/file", summary="A stored image's file, or a JPEG thumbnail",
            response_class=Response, responses={200: {"content": {"image/*": {}}}})
async def image_file(
    request: Request, name: str, ident: int,
    size: Annotated[int | None, Query(ge=16, le=1024, description="longest side of a JPEG thumbnail")] = None,
):
    collection = served(request, name)
    if size is None:
        return FileResponse(collection.image_file(ident), headers={"Cache-Control": "private, max-age=3600"})
    pixels = await in_pool(request, collection.thumbnail, ident, size)
    return Response(jpeg(pixels), media_type="image/jpeg", headers={"Cache-Control": "private, max-age=3600"})


def jpeg(pixels) -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


@router.get("/collections/{name}/duplicates", response_model=Duplicates,
            summary="Groups of near-duplicates, best copy first")
async def duplicates(
    request: Request, name: str,
    preset: Preset | None = None,
    threshold: Annotated[float | None, Query(ge=-1, le=1, description="overrides the preset (which only "
                                             "collections of the default descriptor have)")] = None,
) -> Duplicates:
    collection = served(request, name)
    chosen = collection.duplicate_threshold(threshold, preset or request.app.state.config.duplicates_preset)
    groups = await in_pool(request, collection.duplicates, chosen)
    return Duplicates(collection=name, threshold=chosen, groups=[
        [Member(**{**m, "name": Path(m["path"]).name}) for m in group] for group in groups])


# ---- writing (API key) -----------------------------------------------------------------------
@router.post("/collections/{name}/images", response_model=Added, status_code=201,
             dependencies=[Depends(require_key)], summary="Add an uploaded image (kept in the collection folder)")
async def add_image(request: Request, name: str, image: Annotated[UploadFile, File()]) -> Added:
    collection = served(request, name)
    data = await image.read()
    with saved_upload(data, image.filename) as file:
        return Added(**await in_pool(request, collection.add, file, upload_suffix(image.filename) or ".img"))


@router.delete("/collections/{name}/images/{ident}", dependencies=[Depends(require_key)],
               summary="Remove an image (an uploaded file is deleted, any other file is left alone)")
async def remove_image(request: Request, name: str, ident: int) -> dict:
    collection = served(request, name)
    await in_pool(request, collection.remove, ident)
    return {"removed": ident}


@router.post("/collections/{name}/reindex", dependencies=[Depends(require_key)],
             summary="Rebuild the search structure from the stored vectors")
async def reindex(request: Request, name: str, body: Reindex) -> dict:
    collection = served(request, name)
    await in_pool(request, collection.reindex, body.index)
    return collection.info()
