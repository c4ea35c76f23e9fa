"""A collection on disk: a folder that holds vectors, metadata and a manifest.

Layout of ``DIR/``::

    manifest.json        format version, descriptor name and config, dimension, index structure,
                         library versions, and the sha256 of each kept file
    vocabulary.npz ...   files the descriptor depends on, copied in (:mod:`lookalike.index.bundle`)
    metadata.sqlite      one row per image: id, path, sha256, size, time added, vector (the truth);
                         with --local-features, also each image's keypoints and descriptors
    index-<gen>.faiss    the search structure, valid for SQLite generation <gen>
    trained.faiss        a structure that learns (IVF, PQ, PCA), trained and still empty
    lock                 held (flock) by the one process allowed to write

The structure is a faiss factory string (:mod:`lookalike.index.structures`), ``Flat`` by default.
One that must be trained waits for enough vectors (or :meth:`Collection.train_index`); until
then the collection searches exactly, and says so in :meth:`Collection.info`.

Crash safety: every change is one SQLite transaction that bumps the generation. The faiss file
is saved atomically (write, fsync, rename) under the generation it reflects. On opening, a
missing or older faiss file is rebuilt from the vectors in SQLite, so a kill at any moment loses
nothing that was committed and never leaves half an entry. SQLite also keeps the sha256 of each
faiss file: one that was overwritten or truncated is rebuilt from SQLite too, so SQLite alone
is always enough.

Opened read-only (the default), a collection writes nothing: no lock file, no schema, no
faiss file; a stale or damaged faiss file is rebuilt in memory only.
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
from lookalike.sampling import evenly_spaced

FORMAT = "lookalike-collection"
FORMAT_VERSION = 1
MANIFEST = "manifest.json"
TRAINED = "trained.faiss"
#: vectors a structure is trained on, at most (evenly spaced over the collection)
TRAINING_SAMPLE = 100_000
#: search parameters used unless a query sets its own (faiss's defaults, nprobe=1 and
#: efSearch=16, trade too much recall for speed)
DEFAULT_SEARCH = {"nprobe": 16, "efSearch": 64, "k_factor": 4}
#: what the exact structure looks like (built here, or by the factory from "Flat")
EXACT = ("IndexIDMap2(IndexFlatIP)", "IndexIDMap2(IndexFlat)")
#: prefix of the ``state`` keys that hold "<sha256> <size> <mtime_ns>" of a faiss file, by file name
CHECKSUM = "sha256 "


class Collection:
    """Images described by one descriptor, searchable by inner product.

    Use :meth:`create`, :meth:`open` or :meth:`open_or_create`; close it (or use ``with``) to save
    the search structure. Opened ``writable``, it holds an exclusive lock on the folder.
    """

    def __init__(self, path: Path, manifest: dict[str, Any], writable: bool, *, new: bool = False) -> None:
        self.path = path
        self.manifest = manifest
        files = manifest.setdefault(bundle.FILES, {})
        bundle.check(path, files)
        # the kept files by absolute path: right from any directory, and in worker processes
        self.descriptor: Descriptor = from_spec(bundle.resolve_descriptor(path, manifest["descriptor"], files))
        self.dim: int = manifest["dim"]
        self.factory: str = manifest.get("index", "Flat")
        self.writable = writable
        self._lock = _acquire_lock(path) if writable else None
        self.metadata = Metadata(path / "metadata.sqlite", self.dim, readonly=not writable, new=new)
        self.rebuilt = False  # True when the faiss file was stale or damaged and had to be rebuilt
        self.damaged: str | None = None  # which faiss file did not match its checksum
        self._index = self._load_index()
        self._saved_generation = self.metadata.generation if not self.rebuilt else -1

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def create(cls, path: str | Path, descriptor: Descriptor, *, index: str | None = None,
               local_features: Any = None) -> Collection:
        """Make a new, empty collection at ``path`` (a missing or empty folder) whose search
        structure is the faiss factory string ``index`` (default: exact, ``BFlat`` for a binary
        descriptor); with ``local_features`` (an extractor from :func:`create_local`), every
        image's local features are stored too."""
        path = Path(path)
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
        return int(self._index.ntotal)

    @property
    def _index(self):
        return self._structure

    @_index.setter
    def _index(self, index) -> None:
        """Use ``index`` from now on, and note what searching it needs."""
        self._structure = index
        self._exact = self.factory != "Flat" and structures.describe(index) in EXACT
        applicable = set() if self._exact else structures.parameters_of(index)
        self._defaults = {k: v for k, v in DEFAULT_SEARCH.items() if k in applicable}
        self._parameters: dict = {}  # what is set on the structure now

    @property
    def exact(self) -> bool:
        """True while a structure that needs training searches exactly, waiting for vectors."""
        return self._exact

    def search(self, x: np.ndarray, k: int = 10, *, nprobe: int | None = None, efSearch: int | None = None,
               k_factor: float | None = None) -> tuple[np.ndarray, np.ndarray]:
        """faiss-style search: ``x (N, D)`` float32 -> ``(scores, ids)``, each ``(N, k)``.

        ``nprobe`` (IVF lists visited), ``efSearch`` (HNSW candidate list) and ``k_factor``
        (refine: candidates re-scored exactly = ``k * k_factor``) apply to this call only; unset,
        they are :data:`DEFAULT_SEARCH`. Setting one the structure lacks is an error.
        """
        given = (nprobe, efSearch, k_factor) != (None, None, None)
        if not self._exact and (given or self._parameters != self._defaults):  # else nothing to set
            wanted = dict(self._defaults)
            wanted.update((name, value) for name, value in
                          (("nprobe", nprobe), ("efSearch", efSearch), ("k_factor", k_factor)) if value is not None)
            changed = {name: value for name, value in wanted.items() if self._parameters.get(name) != value}
            structures.set_search_parameters(self._structure, **changed)
            self._parameters.update(changed)
        return flat.search(self._structure, x, k, self.dim)

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
        index_files = list(self.path.glob("index-*.faiss"))
        details = {
            "path": str(self.path),
            "images": len(self),
            "descriptor": self.manifest["descriptor"],
            "dim": self.dim,
            "index": self.factory,
            "index_state": self._state(),
            "bytes_per_image": structures.bytes_per_vector("Flat" if self.exact else self.factory, self.dim),
            "index_file_bytes": sum(f.stat().st_size for f in index_files),
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

    def _state(self) -> str:
        if self.factory == "Flat":
            return "exact inner product"
        if structures.is_binary(self.factory):
            return "exact Hamming distance over sign bits"
        if self.exact:
            return (f"exact search until {structures.training_size(self.factory):,} vectors are stored to train "
                    f"{self.factory} on (now {len(self):,}), or `lookalike reindex --train-images`")
        return f"trained: {structures.describe(self._index)}"

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
        rebuild = False
        if removed:
            try:
                self._index.remove_ids(np.asarray(removed, dtype=np.int64))
            except RuntimeError:  # HNSW and refine cannot remove
                rebuild = True
        # enough vectors now to train the structure?
        rebuild = rebuild or (self.exact and len(self) + len(added) >= structures.training_size(self.factory))
        if rebuild:  # from SQLite, which already holds this write's additions
            self._index = self._rebuild()
        elif added:
            self._index.add_with_ids(
                np.stack([e.vector for e in add]).astype(np.float32), np.asarray(added, dtype=np.int64))
        return added

    def train_index(self, vectors: np.ndarray) -> None:
        """Train the structure on ``vectors`` (N, D), a training set of the user's, and rebuild it."""
        self._require_writable()
        if self.factory == "Flat":
            raise CollectionError(f"{self.path}: a Flat index learns nothing; reindex it with another structure")
        self._train(structures.build(self.factory, self.dim), flat.as_matrix(vectors, self.dim, "training vectors"))
        self._index = self._rebuild()

    def reindex(self, factory: str, training: np.ndarray | None = None) -> None:
        """Change the search structure to ``factory``, rebuilt from the stored vectors (and trained
        on ``training``, if given, else on them)."""
        self._require_writable()
        structures.check_builds(factory, self.dim)
        (self.path / TRAINED).unlink(missing_ok=True)
        self.factory = self.manifest["index"] = factory
        _write_json_atomically(self.path / MANIFEST, self.manifest)
        if training is not None and factory != "Flat":
            self.train_index(training)
        else:
            self._index = self._rebuild()

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
        """Write the faiss file for the current generation, if it changed, and drop older ones."""
        self._require_writable()
        generation = self.metadata.generation
        target = self.path / f"index-{generation}.faiss"
        if generation == self._saved_generation and target.exists():
            return
        self.metadata.set_state(_checksum(target, flat.write_atomically(self._index, target)),
                                drop_prefix=CHECKSUM + "index-")
        for old in [*self.path.glob("index-*.faiss"), *self.path.glob("index-*.faiss.tmp")]:
            if old != target:
                old.unlink(missing_ok=True)
        self._saved_generation = generation

    def close(self) -> None:
        if self.writable:
            self.save()
        self.metadata.close()
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> Collection:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals -----------------------------------------------------------------------
    def _load_index(self):
        current = self.path / f"index-{self.metadata.generation}.faiss"
        if current.exists():
            index = self._read_checked(current)
            if index is not None:
                return index
            self.damaged = current.name
        # Stale, missing or damaged (an interrupted run, a new collection, a file overwritten or
        # cut short): rebuild from SQLite.
        index = self._rebuild()
        self.rebuilt = index.ntotal > 0 or self.damaged is not None
        return index

    def _read_checked(self, file: Path):
        """The faiss index in ``file``, or None if it does not match the checksum kept in SQLite.

        The bytes are hashed only when the file's size or modification time changed since it was
        saved (overwriting or truncating a file changes them), so that opening a big collection
        does not cost a pass over its index at every search.
        """
        binary = structures.is_binary(self.factory)
        recorded = self.metadata.get_state(CHECKSUM + file.name)
        if recorded is None:  # saved before checksums were kept: trusted if faiss can read it
            return flat.read(file, binary=binary)
        digest, *stamp = str(recorded).split()
        stat = file.stat()
        unchanged = stamp == [str(stat.st_size), str(stat.st_mtime_ns)]
        return flat.read(file, None if unchanged else digest, binary=binary)

    def _rebuild(self):
        """The structure holding every stored vector: trained if it can be, else exact."""
        ids, vectors = self.metadata.vectors()
        self._saved_generation = -1
        index = self._empty(vectors)
        if len(ids):
            index.add_with_ids(vectors, ids)
        return index

    def _empty(self, vectors: np.ndarray):
        if self.factory == "Flat":
            return flat.new_index(self.dim)
        if (self.path / TRAINED).exists():
            trained = self._read_checked(self.path / TRAINED)
            if trained is not None and trained.ntotal == 0:
                return trained
            self.damaged = TRAINED  # retrained below, and replaced if writable
        index = structures.build(self.factory, self.dim)
        if index.is_trained:  # HNSW, or Flat behind a fixed transform: nothing to learn
            return self._train(index, vectors[:0])
        needed = structures.training_size(self.factory)
        if len(vectors) < needed:
            return flat.new_index(self.dim)
        return self._train(index, evenly_spaced(vectors, max(needed, TRAINING_SAMPLE)))

    def _train(self, index, vectors: np.ndarray):
        if len(vectors):
            index.train(vectors)
        if self.writable:  # kept, so that rebuilding after a crash or a removal does not retrain
            self.metadata.set_state(_checksum(self.path / TRAINED, flat.write_atomically(index, self.path / TRAINED)))
        return index

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


def _checksum(file: Path, digest: str) -> dict[str, str]:
    """The ``state`` entry that records the faiss file just written with sha256 ``digest``."""
    stat = file.stat()
    return {CHECKSUM + file.name: f"{digest} {stat.st_size} {stat.st_mtime_ns}"}


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
