"""A collection on disk: a folder that holds vectors, metadata and a manifest.

Layout of ``DIR/``::

    manifest.json        format version, descriptor name and config, dimension, index structure,
                         library versions, and the sha256 (and stamp) of each kept file
    vocabulary.npz ...   files the descriptor depends on, copied in (:mod:`lookalike.index.bundle`)
    metadata.sqlite      one row per image: id, path, sha256, size, time added, vector (the truth);
                         with --local-features, also each image's keypoints and descriptors
    index-<gen>.faiss    the faiss store's search structure (:mod:`lookalike.index.faiss_store`)
    milvus.db            the Milvus store's embedded database, unless it lives on a server
                         (:mod:`lookalike.index.milvus_store`)
    lock                 held (flock) by the one process allowed to write

The vectors are searched by a vector store (:mod:`lookalike.index.store`), faiss or Milvus, chosen
when the collection is created. Its structure is a faiss factory string
(:mod:`lookalike.index.structures`), ``Flat`` by default.

Crash safety: every change is one SQLite transaction that bumps the generation; the store then
follows, and one that lags behind SQLite (a kill at the wrong moment) or was damaged is rebuilt
from the vectors in SQLite on opening, so a kill at any moment loses nothing that was committed
and never leaves half an entry. SQLite alone is always enough.

Opened read-only (the default), a collection writes nothing: no lock file, no schema, no
store file; a stale or damaged faiss file is rebuilt in memory only.
"""

from __future__ import annotations

import fcntl
import json
import os
import platform
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from lookalike import __version__
from lookalike.descriptors.base import Descriptor
from lookalike.descriptors.registry import from_spec
from lookalike.errors import CollectionError
from lookalike.index import bundle, local_store, structures
from lookalike.index import vectors as flat
from lookalike.index.metadata import Entry, Metadata
from lookalike.index.store import VectorStore, open_store, store_spec

FORMAT = "lookalike-collection"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"


class Collection:
    """Images described by one descriptor, searchable by inner product.

    Use :meth:`create`, :meth:`open` or :meth:`open_or_create`; close it (or use ``with``) to save
    the search structure. Opened ``writable``, it holds an exclusive lock on the folder.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], writable: bool, *, new: bool = False) -> None:
        self.path = path
        self.manifest = manifest
        files = manifest.setdefault(bundle.FILES, {})
        stamped = bundle.check(path, files, manifest.setdefault(bundle.STAMPS, {}))
        # the kept files by absolute path: right from any directory, and in worker processes
        self.descriptor: Descriptor = from_spec(bundle.resolve_descriptor(path, manifest["descriptor"], files))
        self.dim: int = manifest["dim"]
        self.factory: str = manifest.get("index", "Flat")
        self.writable = writable
        self._lock = _acquire_lock(path) if writable else None
        if stamped and writable:  # so that later opens need not hash the kept files again
            _write_json_atomically(path / MANIFEST, manifest)
        self.metadata = Metadata(path / "metadata.sqlite", self.dim, readonly=not writable, new=new)
        self.store: VectorStore = open_store(self)

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, descriptor: Descriptor, *, index: str | None = None,
               local_features: Any = None, store: str = "faiss", milvus_uri: str | None = None) -> Collection:
        """Make a new, empty collection at ``path`` (a missing or empty folder) whose search
        structure is the faiss factory string ``index`` (default: exact, ``BFlat`` for a binary
        descriptor); with ``local_features`` (an extractor from :func:`create_local`), every
        image's local features are stored too. ``store`` is ``faiss`` or ``milvus`` (embedded in
        the folder, or on the server at ``milvus_uri``)."""
        path = Path(path)
        store_entry = store_spec(store, milvus_uri, index)
        index = index or ("BFlat" if descriptor.binary else "Flat")
        if structures.is_binary(index) and not descriptor.binary:
            raise CollectionError(f"index {index} stores sign bits, for binary descriptors such as phash; "
                                  f"{descriptor.name} needs a float structure such as Flat")
        structures.check_builds(index, descriptor.dim)  # a bad string fails before anything is written
        if (path / MANIFEST).exists():
            raise CollectionError(f"{path}: a collection already exists here")
        # what an interrupted creation leaves, and a vocabulary learned for this collection
        leftovers = {MANIFEST + ".tmp", "vocabulary.npz", "vocabulary.npz.tmp", *_local_files(local_features)}
        kept = type(descriptor).file_options  # copies an interrupted creation made, as <option>.<suffix>
        if path.exists() and (not path.is_dir() or any(
                p.name not in leftovers and p.name.split(".")[0] not in kept for p in path.iterdir())):
            raise CollectionError(f"{path}: not an empty folder; choose a new --collection path")
        path.mkdir(parents=True, exist_ok=True)
        files: dict[str, str] = {}
        spec = bundle.keep_descriptor_files(path, descriptor.spec(), type(descriptor).file_options, files)
        local_spec = _keep_local_files(path, local_features, files)
        manifest = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "descriptor": spec,
            bundle.FILES: files,
            "dim": descriptor.dim,
            "metric": "inner_product",
            "index": index,
            "store": store_entry,
            **({"local_features": local_spec} if local_spec is not None else {}),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "versions": _versions(),
        }
        _write_json_atomically(path / MANIFEST, manifest)
        return cls(path, manifest, writable=True, new=True)

    @classmethod
    def open(
        cls, path: str | Path, *, descriptor: Descriptor | str | None = None, writable: bool = False,
        local_features: str | None = None,
    ) -> Collection:
        """Open an existing collection, checking its format and, if given, its descriptor and the
        name of its local features."""
        path = Path(path)
        manifest = _read_manifest(path)
        if descriptor is not None:
            _check_descriptor(path, manifest, descriptor)
        if local_features is not None:
            _check_local_features(path, manifest, local_features)
        return cls(path, manifest, writable)

    @classmethod
    def open_or_create(cls, path: str | Path, descriptor: Descriptor) -> Collection:
        """Open ``path`` for writing if it holds a collection of ``descriptor``, else create one."""
        path = Path(path)
        if (path / MANIFEST).exists():
            return cls.open(path, descriptor=descriptor, writable=True)
        return cls.create(path, descriptor)

    # ---- reading -------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.store)

    @property
    def exact(self) -> bool:
        """True while a structure that needs training searches exactly, waiting for vectors."""
        return self.store.exact

    @property
    def rebuilt(self) -> bool:
        """True when the store was stale or damaged on opening and had to be rebuilt from SQLite."""
        return self.store.rebuilt

    @property
    def damaged(self) -> str | None:
        """Which store file did not match its checksum on opening, if one did not."""
        return self.store.damaged

    def search(self, x: np.ndarray, k: int = 10, *, within: np.ndarray | None = None, nprobe: int | None = None,
               efSearch: int | None = None, k_factor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """faiss-style search: ``x (N, D)`` float32 -> ``(scores, ids)``, each ``(N, k)``.

        ``within`` (ids) restricts the search to those images. ``nprobe`` (IVF lists visited),
        ``efSearch`` (HNSW candidate list) and ``k_factor`` (refine: candidates re-scored exactly
        = ``k * k_factor``) apply to this call only; unset, they are the store's defaults
        (:data:`lookalike.index.faiss_store.DEFAULT_SEARCH`). Setting one the structure lacks is
        an error.
        """
        return self.store.search(flat.as_matrix(x, self.dim), k, within=within, nprobe=nprobe, efSearch=efSearch,
                                 k_factor=k_factor)

    @property
    def local_extractor(self):
        """The extractor of the local features stored with each image, or ``None``."""
        spec = self.manifest.get("local_features")
        if spec is None:
            return None
        from lookalike.descriptors.local.registry import local_from_spec

        return local_from_spec(bundle.resolve_descriptor(self.path, spec, self.manifest[bundle.FILES]))

    def local_features(self, ids: Iterable[int]) -> list:
        """Stored ``LocalFeatures`` of ``ids`` (one SQLite query), ``None`` where an id has none."""
        return local_store.load(self.metadata.db, ids)

    def lookup(self, ids: np.ndarray) -> list[dict | None]:
        """Metadata rows (id, path, sha256, bytes, width, height, added) for ``ids``."""
        return self.metadata.lookup(np.asarray(ids))

    def info(self) -> dict[str, Any]:
        """What a user wants to know about the collection, as JSON-ready data."""
        details = {
            "path": str(self.path),
            "images": len(self),
            "descriptor": self.manifest["descriptor"],
            "dim": self.dim,
            "index": self.factory,
            "index_state": self.store.state(),
            "store": self.manifest.get("store", {"kind": "faiss"}),
            **self.store.info(),
            "metadata_bytes": (self.path / "metadata.sqlite").stat().st_size,
            "generation": self.metadata.generation,
            "created": self.manifest["created"],
            "format_version": self.manifest["format_version"],
            "versions": self.manifest["versions"],
            "files": self.manifest[bundle.FILES],
            **{key: self.manifest[key] for key in ("joint",) if key in self.manifest},
        }
        if "local_features" in self.manifest:
            stored = local_store.stats(self.metadata.db)
            per_image = 1 / max(1, stored["images"])
            details["local_features"] = {
                "extractor": self.manifest["local_features"], "images": stored["images"],
                "keypoints_per_image": stored["keypoints"] * per_image, "bytes_per_image": stored["bytes"] * per_image}
        return details

    # ---- writing -------------------------------------------------------------------------
    def write(self, add: Iterable[Entry] = (), remove_paths: Iterable[str] = ()) -> list[int]:
        """Add entries and remove paths in one atomic step; return the new ids."""
        self._require_writable()
        add = list(add)
        keeps_local = "local_features" in self.manifest
        for e in add:
            if e.vector.shape != (self.dim,):
                raise CollectionError(
                    f"{e.path}: vector of shape {e.vector.shape}, collection expects ({self.dim},)"
                )
            if (e.local is not None) != keeps_local:
                raise CollectionError(f"{e.path}: local features {'missing' if keeps_local else 'given'}; "
                                      f"this collection {'keeps' if keeps_local else 'keeps no'} local features")
        added, removed = self.metadata.write(add, remove_paths)
        self.store.update(added, np.stack([e.vector for e in add]).astype(np.float32) if add else None, removed)
        return added

    def train_index(self, vectors: np.ndarray) -> None:
        """Train the structure on ``vectors`` (N, D), a training set of the user's, and rebuild it."""
        self._require_writable()
        if self.factory == "Flat":
            raise CollectionError(f"{self.path}: a Flat index learns nothing; reindex it with another structure")
        self.store.train(flat.as_matrix(vectors, self.dim, "training vectors"))

    def reindex(self, factory: str, training: np.ndarray | None = None) -> None:
        """Change the search structure to ``factory``, rebuilt from the stored vectors (and trained
        on ``training``, if given, else on them)."""
        self._require_writable()
        structures.check_builds(factory, self.dim)
        self.store.check_structure(factory)
        self.factory = self.manifest["index"] = factory
        _write_json_atomically(self.path / MANIFEST, self.manifest)
        if training is not None and factory != "Flat":
            training = flat.as_matrix(training, self.dim, "training vectors")
        self.store.reindex(factory, training if factory != "Flat" else None)

    def move(self, moves: Iterable[tuple[str, str]]) -> int:
        """Give stored images new paths (``(old, new)`` pairs, which may trade places); their
        vectors and ids stay, so nothing is re-described. Returns how many moved."""
        self._require_writable()
        return self.metadata.move(moves)

    def set_manifest(self, **items: Any) -> None:
        """Record ``items`` (JSON data) in the manifest, atomically."""
        self._require_writable()
        self.manifest.update(items)
        _write_json_atomically(self.path / MANIFEST, self.manifest)

    def remove(self, paths: Iterable[str]) -> int:
        """Remove images by stored path; return how many were removed."""
        before = len(self)
        self.write(remove_paths=paths)
        return before - len(self)

    def save(self) -> None:
        """Make the store durable for the current generation (the faiss file, or a Milvus flush)."""
        self._require_writable()
        self.store.save()

    def close(self) -> None:
        if self.writable:
            self.save()
        self.store.close()
        self.metadata.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals -----------------------------------------------------------------------
    def _require_writable(self) -> None:
        if not self.writable:
            raise CollectionError(f"{self.path}: opened read-only")


def _read_manifest(path: Path) -> dict[str, Any]:
    file = path / MANIFEST
    if not file.exists():
        raise CollectionError(
            f"{path}: not a lookalike collection (no {MANIFEST}); create one with `lookalike index`"
        )
    try:
        manifest = json.loads(file.read_text())
    except (OSError, ValueError) as exc:
        raise CollectionError(f"{file}: unreadable manifest ({exc})") from None
    if manifest.get("format") != FORMAT:
        raise CollectionError(f"{file}: not a lookalike collection manifest")
    version = manifest.get("format_version", 0)
    if version > FORMAT_VERSION:
        raise CollectionError(
            f"{path}: collection format version {version} is newer than this lookalike "
            f"({__version__}) supports ({FORMAT_VERSION}); upgrade lookalike to open it"
        )
    return manifest


def _check_descriptor(path: Path, manifest: dict[str, Any], descriptor: Descriptor | str) -> None:
    stored = manifest["descriptor"]
    name = descriptor if isinstance(descriptor, str) else descriptor.name
    if name != stored["name"]:
        raise CollectionError(
            f"{path}: built with descriptor {stored['name']!r}, not {name!r}; "
            f"omit --descriptor or choose another --collection"
        )
    if not isinstance(descriptor, Descriptor):
        return
    files = manifest.get(bundle.FILES, {})
    bundle.check(path, files)
    if _by_content(descriptor) != _by_content(from_spec(bundle.resolve_descriptor(path, stored, files))):
        raise CollectionError(
            f"{path}: built with {stored['name']} config {stored['config']}, "
            f"not {descriptor.spec()['config']}; use the same options or another --collection"
        )


def _by_content(descriptor: Descriptor) -> dict[str, Any]:
    """The descriptor's config with each file it depends on named by its sha256, not its path."""
    config = dict(descriptor.spec()["config"])
    for option in type(descriptor).file_options:
        if config.get(option) and Path(config[option]).is_file():
            config[option] = bundle.sha256_of(config[option])
    return config


#: options of local-feature extractors that name a learned file, copied into the collection
LOCAL_FILE_OPTIONS = ("pca", "attention")


def _local_files(extractor: Any) -> dict[str, str]:
    """``{name inside the collection: option}`` of the learned files ``extractor`` reads."""
    if extractor is None:
        return {}
    config = extractor.spec()["config"]
    return {f"{extractor.name}-{option}{Path(config[option]).suffix}": option
            for option in LOCAL_FILE_OPTIONS if config.get(option)}


def _keep_local_files(folder: Path, extractor: Any, files: dict[str, str]) -> dict | None:
    """The extractor's spec with its learned files kept in ``folder`` (:func:`bundle.keep`; the
    spec names them relative to it and ``files`` records their sha256)."""
    if extractor is None:
        return None
    spec = extractor.spec()
    config = dict(spec["config"])
    for name, option in _local_files(extractor).items():
        config[option] = bundle.keep(folder, config[option], name, files)
    return {**spec, "config": config}


def _check_local_features(path: Path, manifest: dict[str, Any], name: str) -> None:
    stored = manifest.get("local_features", {}).get("name")
    if stored != name:
        has = f"keeps {stored} local features" if stored else "was created without local features"
        raise CollectionError(f"{path} {has}, not {name}; they cannot change after creation: index into a new "
                              f"--collection with --local-features {name}")


def _acquire_lock(path: Path):
    handle = open(path / "lock", "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        raise CollectionError(
            f"{path}: another process is writing this collection; wait for it to finish"
        ) from None
    return handle


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w") as f:
        json.dump(data, f, indent=2)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _versions() -> dict[str, str]:
    import faiss

    return {
        "lookalike": __version__,
        "python": platform.python_version(),
        "numpy": np.__version__,
        "faiss": faiss.__version__,
    }
