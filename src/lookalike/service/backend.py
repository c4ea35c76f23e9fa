"""The service's one adapter to the library: every call the HTTP layer makes on a collection.

The routes only parse requests and render; what they ask of a collection goes through
:class:`ServedCollection`, so that a change of the collection or search API is adjusted here.

Concurrency: searches run on a read-only :class:`~lookalike.index.Collection` from many threads
at once (faiss searches are thread-safe; SQLite serialises its calls). A write opens the
collection writable in this process (holding the folder's lock, so another writer gets 409),
commits, then swaps in a freshly opened reader: searches in flight finish on the old reader,
which is closed once the last of them lets go of it. Writes are serialised by a lock of their own
and never wait for searches.

Where later features plug in: ``rerank`` is passed to :func:`search_image` as is, so the
re-rankers it learns (spatial verification, query expansion) become available without a change
here; a text query searches the joint image-text space a collection carries
(:meth:`ServedCollection.search_text`, its model loaded once per collection generation).
"""

from __future__ import annotations

import hashlib
import shutil
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lookalike.errors import CollectionError, LookalikeError
from lookalike.index import Collection
from lookalike.io.images import DEFAULT_MAX_PIXELS, load_image
from lookalike.pipelines.duplicates import choose_threshold, collection_duplicates
from lookalike.pipelines.searching import Hit, search_image

#: folder inside a collection where uploaded images are kept (they are what the collection indexes)
UPLOADS = "uploads"


class ServiceError(LookalikeError):
    """An error with the HTTP status the service answers it with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class SearchOptions:
    """What a search request may set."""

    k: int = 10  # results wanted
    threshold: float | None = None  # drop results scoring below this
    nprobe: int | None = None  # IVF lists visited (approximate structures)
    ef_search: int | None = None  # HNSW candidate list
    k_factor: float | None = None  # refine: candidates re-scored exactly = k * k_factor
    rerank: str | None = None  # a re-ranking `lookalike search --rerank` knows
    shortlist: int = 100  # candidates re-ranked


class ServedCollection:
    """One collection as the service sees it: searches, file look-ups, and locked writes."""

    def __init__(self, name: str, path: Path, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
        self.name = name
        self.path = Path(path).resolve()
        self.max_pixels = max_pixels
        self._reader = Collection.open(self.path)
        self._write_lock = threading.Lock()
        # approximate structures take their search parameters as state: one search at a time sets them
        self._parameters_lock = threading.Lock()
        self._groups: OrderedDict = OrderedDict()  # (generation, threshold) -> duplicate groups
        self._joint_lock = threading.Lock()
        self._joint_cache: dict = {}  # the joint model and index of the current reader, for text search

    # ---- reading -------------------------------------------------------------------------
    def info(self) -> dict:
        info = self._reader.info()
        info["name"] = self.name
        return info

    def __len__(self) -> int:
        return len(self._reader)

    def search_file(self, file: Path, options: SearchOptions) -> list[Hit]:
        """Results for an image file (an upload saved to a temporary file)."""
        reader = self._reader
        with self._parameters_guard(reader):
            hits = search_image(reader, file, k=options.k, rerank=options.rerank, rerank_top=options.shortlist,
                                max_pixels=self.max_pixels, **_parameters(options))
        return _above(hits, options.threshold)

    def search_id(self, ident: int, options: SearchOptions) -> list[Hit]:
        """Results for a stored image ("more like this"), without the image itself."""
        reader = self._reader
        row = self.row(ident)
        if options.rerank is not None:  # re-rankers work from the query image
            hits = self.search_file(Path(row["path"]), replace(options, k=options.k + 1))
        else:
            vector = reader.metadata.vectors_of(np.array([ident]))
            with self._parameters_guard(reader):
                scores, ids = reader.search(vector, options.k + 1, **_parameters(options))
            rows = reader.lookup(ids[0])
            hits = [Hit(0, r["path"], float(s), int(i)) for s, i, r in zip(scores[0], ids[0], rows) if r is not None]
        hits = [h for h in hits if h.id != ident][: options.k]
        return _above([Hit(rank, h.path, h.score, h.id) for rank, h in enumerate(hits, 1)], options.threshold)

    def search_text(self, text: str, options: SearchOptions) -> list[Hit]:
        """Results for a text query: needs a collection with a joint image-text space."""
        from lookalike.pipelines.crossmodal import search_joint

        reader = self._reader
        if "joint" not in reader.manifest:
            raise ServiceError(400, f"text search is not available for collection {self.name!r}: it carries no "
                                    f"joint image-text space; add one with `lookalike reindex DIR --joint MODEL`")
        model, index = self._joint(reader)
        hits = search_joint(reader, text=text, k=min(options.k, len(reader)), model=model, index=index)
        return _above(hits, options.threshold)

    def _joint(self, reader: Collection):
        """The joint model and the joint-space index of ``reader``, loaded once per generation (the
        text encoder takes seconds to load: never once per request)."""
        from lookalike.pipelines.crossmodal import joint_index, joint_model

        key = (id(reader), reader.metadata.generation)
        with self._joint_lock:
            if self._joint_cache.get("key") != key:
                model = joint_model(reader)
                self._joint_cache = {"key": key, "value": (model, joint_index(reader, model))}
            return self._joint_cache["value"]

    def row(self, ident: int) -> dict:
        """The stored row of image ``ident``; 404 if the collection does not hold it."""
        row = self._reader.lookup(np.array([ident]))[0]
        if row is None:
            raise ServiceError(404, f"collection {self.name!r} has no image with id {ident}")
        return row

    def image_file(self, ident: int) -> Path:
        """The file of a stored image, found by id only (never from a path in a request)."""
        path = Path(self.row(ident)["path"])
        if not path.is_file():
            raise ServiceError(410, f"the file of image {ident} is gone; `lookalike update` the collection")
        return path

    def thumbnail(self, ident: int, size: int) -> np.ndarray:
        """A stored image decoded to ``[H, W, 3]`` uint8 pixels, longer side at most ``size``."""
        return load_image(self.image_file(ident), max_side=size, max_pixels=self.max_pixels).pixels

    def duplicate_threshold(self, threshold: float | None, preset: str | None) -> float:
        """``threshold``, or the preset's where the collection's descriptor is the calibrated one."""
        return choose_threshold(self._reader.descriptor, threshold, preset)

    def duplicates(self, threshold: float) -> list[list[dict]]:
        """Groups of near-duplicates (rows with a ``score`` to the best copy), best copy first."""
        reader = self._reader
        key = (reader.metadata.generation, round(threshold, 6))
        if key not in self._groups:
            self._groups[key] = collection_duplicates(reader, threshold)
            while len(self._groups) > 8:
                self._groups.popitem(last=False)
        return self._groups[key]

    # ---- writing -------------------------------------------------------------------------
    def add(self, upload: Path, suffix: str) -> dict:
        """Store an uploaded image (checked with the indexing guards) and index it.

        Returns ``{"id", "added"}``; ``added`` is false when the same bytes were stored already.
        """
        load_image(upload, max_pixels=self.max_pixels)  # refuse bad files before keeping them
        digest = hashlib.sha256(upload.read_bytes()).hexdigest()
        with self._writing() as store:
            known = store.metadata.hashes().get(digest)
            if known is not None:
                return {"id": store.metadata.id_of(known), "added": False}
            folder = self.path / UPLOADS
            folder.mkdir(exist_ok=True)
            target = folder / f"{digest[:32]}{suffix}"
            shutil.copyfile(upload, target)
            from lookalike.pipelines.indexing import index_paths

            report = index_paths(store, [target], workers=1, max_pixels=self.max_pixels, progress=False)
            if report.skipped:
                target.unlink(missing_ok=True)
                raise report.skipped[0]
            return {"id": store.metadata.id_of(str(target)), "added": True}

    def remove(self, ident: int) -> None:
        """Remove an image; an uploaded file is deleted too, any other file is left alone."""
        path = self.row(ident)["path"]
        with self._writing() as store:
            store.remove([path])
        if Path(path).parent == self.path / UPLOADS:
            Path(path).unlink(missing_ok=True)

    def reindex(self, factory: str) -> None:
        """Rebuild the search structure as ``factory`` from the stored vectors."""
        with self._writing() as store:
            store.reindex(factory)

    # ---- internals -----------------------------------------------------------------------
    @contextmanager
    def _writing(self) -> Iterator[Collection]:
        """The collection opened writable under the write lock; afterwards, a fresh reader."""
        with self._write_lock:
            try:
                store = Collection.open(self.path, writable=True)
            except CollectionError as exc:
                raise ServiceError(409, str(exc)) from None
            try:
                yield store
            finally:
                store.close()
                self._reader = Collection.open(self.path)

    def _parameters_guard(self, reader: Collection):
        return self._parameters_lock if not reader.exact and reader.factory != "Flat" else nullcontext()


def _parameters(options: SearchOptions) -> dict:
    return {"nprobe": options.nprobe, "efSearch": options.ef_search, "k_factor": options.k_factor}


def _above(hits: list[Hit], threshold: float | None) -> list[Hit]:
    return hits if threshold is None else [h for h in hits if h.score >= threshold]


def open_collections(paths: list[Path], *, max_pixels: int = DEFAULT_MAX_PIXELS) -> dict[str, ServedCollection]:
    """Open each collection folder, named by its folder name (``name-2``... when names repeat)."""
    served: dict[str, ServedCollection] = {}
    for path in paths:
        name = base = Path(path).resolve().name or "collection"
        n = 1
        while name in served:
            n += 1
            name = f"{base}-{n}"
        served[name] = ServedCollection(name, path, max_pixels=max_pixels)
    if not served:
        raise LookalikeError("no collection to serve; give one or more with -c DIR")
    return served
