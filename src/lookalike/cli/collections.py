"""Commands on collections: index, update, remove, search, info, reindex, plan."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.cli.app import (
    Alpha,
    Collection_,
    DbaK,
    DiffusionAlpha,
    DiffusionK,
    InlierRatio,
    InlierWeight,
    Kq,
    MaxPixels,
    MinInliers,
    QeK,
    QeVerified,
    RerankTop,
    Settings,
    SvModel,
    Truncate,
    Workers,
    app,
    check_output,
    descriptor_from_options,
)
from lookalike.errors import ImageError, LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS

Joint = Annotated[Optional[Path], typer.Option(
    help="A joint image-text model (lookalike train-joint) to copy into the collection, so that "
    "`search --text` works; its image descriptor must be the collection's.")]


def _refresh_joint(store, joint: Path | None = None) -> None:
    """Add the joint space ``joint``, or bring the collection's own up to date (torch loads only then)."""
    if joint is not None or "joint" in store.manifest:
        from lookalike.pipelines.crossmodal import attach_joint, refresh_joint

        if joint is not None:
            attach_joint(store, joint)
        else:
            refresh_joint(store)


class Store(str, Enum):
    """Where a new collection's vectors are searched (:mod:`lookalike.index.store`)."""

    faiss = "faiss"
    milvus = "milvus"


class Engine(str, Enum):
    """Where ``index`` describes images (checked before anything is created)."""

    local = "local"
    ray = "ray"


def _index_and_report(store, paths: list[Path], joint: Path | None = None, **options) -> None:
    from lookalike.pipelines.indexing import index_paths

    with store:
        report = index_paths(store, paths, **options)
        _refresh_joint(store, joint)
        for error in report.skipped:
            typer.echo(f"skipped {error}", err=True)
        for path, stored in report.duplicates:
            typer.echo(f"duplicate {path}: same content as {stored}", err=True)
        typer.echo(report.summary())
        typer.echo(f"{store.path}: {len(store)} images")


@app.command()
def index(
    paths: Annotated[list[Path], typer.Argument(help="Image files and folders (searched recursively).")],
    collection: Collection_,
    descriptor: Annotated[Optional[str], typer.Option(
        "--descriptor", "-d", help="Descriptor for a new collection [default: gem at scales 1, 0.7071, 0.5, "
        "the best general one measured; needs the deep extra]. An existing collection keeps its own.")] = None,
    settings: Settings = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    batch_size: Annotated[int, typer.Option(min=1, help="Images committed per transaction, at most (a "
                                            "transaction is also committed every 2 seconds).")] = 1024,
    index_structure: Annotated[Optional[str], typer.Option(
        "--index", help="Search structure of a new collection, a faiss factory string: Flat (exact, the "
        "default), PCA256,Flat, PQ32, IVF1024,PQ32, OPQ32_128,IVF1024,PQ32, HNSW32; add ,RFlat to keep "
        "full vectors for exact re-scoring. `lookalike plan` suggests one.")] = None,
    engine: Annotated[Engine, typer.Option(help="Where images are described: local (worker processes) or ray "
                                           "(a Ray cluster, extra scale).")] = Engine.local,
    address: Annotated[Optional[str], typer.Option(help="Ray cluster address for --engine ray, e.g. "
                                                   "ray://head:10001 [default: a local cluster].")] = None,
    joint: Joint = None,
    local_features: Annotated[Optional[str], typer.Option(
        help="Also store every image's local features (sift or delf) in a new collection, for "
        "`search --rerank sv`.")] = None,
    local_set: Annotated[Optional[list[str]], typer.Option(
        help="Local-feature option as key=value, repeatable, e.g. max_keypoints=500.")] = None,
    vector_store: Annotated[Store, typer.Option(
        "--store", help="Where a new collection's vectors are searched: faiss (in the folder) or milvus (extra "
        "scale: embedded milvus-lite in the folder, or the server of --milvus-uri).")] = Store.faiss,
    milvus_uri: Annotated[Optional[str], typer.Option(
        help="Milvus server for --store milvus, e.g. http://milvus:19530 [default: milvus-lite in the "
        "folder].")] = None,
) -> None:
    """Add images to a collection, creating it if needed.

    Resumable: images whose content is already stored are skipped, so rerunning after an
    interruption continues where it stopped. Unusable files are reported and skipped.

    A structure that learns (IVF, PQ, PCA) is trained once enough images are stored; until then
    the collection searches exactly (`lookalike info` says so).
    """
    from lookalike.descriptors import default_descriptor
    from lookalike.index import Collection

    if (collection / "manifest.json").exists():
        if settings and not descriptor:
            raise LookalikeError("--set needs --descriptor, to check them against the collection's")
        wanted = descriptor_from_options(descriptor, settings) if settings else descriptor
        store = Collection.open(collection, descriptor=wanted, writable=True, local_features=local_features)
        if index_structure and index_structure != store.factory:
            store.close()
            raise LookalikeError(f"{collection} uses index {store.factory}; change it with "
                                 f"`lookalike reindex {collection} --index {index_structure}`")
        kept = store.manifest.get("store", {"kind": "faiss"})
        if (vector_store != Store.faiss or milvus_uri) and (kept["kind"], kept.get("uri")) != (
                vector_store.value, milvus_uri):
            store.close()
            raise LookalikeError(f"{collection} keeps its vectors in {kept['kind']}; the store is chosen when a "
                                 "collection is created: drop --store and --milvus-uri, or use a new --collection")
    else:
        from lookalike.index.store import store_spec
        from lookalike.index.structures import check_builds

        if settings and not descriptor:
            raise LookalikeError("--set needs --descriptor (the default is gem -s scales=1,0.7071,0.5)")
        wanted = descriptor_from_options(descriptor, settings) if descriptor else default_descriptor()
        check_builds(index_structure or ("BFlat" if wanted.binary else "Flat"), wanted.dim)  # before any commit
        store_spec(vector_store.value, milvus_uri, index_structure or "Flat")
        if not wanted.trained:
            from lookalike.io.files import find_images
            from lookalike.pipelines.training import train_descriptor

            typer.echo(f"{wanted.name} needs a vocabulary: learning it from the images to index", err=True)
            wanted, _ = train_descriptor(wanted, find_images(paths), collection / "vocabulary.npz",
                                         workers=workers, max_pixels=max_pixels)
        local = _local_extractor(local_features, local_set, paths, collection, workers=workers,
                                 max_pixels=max_pixels) if local_features else None
        store = Collection.create(collection, wanted, index=index_structure, local_features=local,
                                  store=vector_store.value, milvus_uri=milvus_uri)
    _index_and_report(store, paths, joint, workers=workers, batch_size=batch_size, max_pixels=max_pixels,
                      engine=engine.value, address=address)


def _local_extractor(name: str, settings: list[str] | None, paths: list[Path], collection: Path, **options):
    """The local-feature extractor of a new collection; one that learns (DELF's PCA) learns from
    the images to index, into the collection folder."""
    from lookalike.descriptors import parse_overrides
    from lookalike.descriptors.local.registry import local_class

    cls = local_class(name)
    local = cls(**parse_overrides(cls.Config, settings or []))
    if not local.trained:
        from lookalike.io.files import find_images
        from lookalike.pipelines.reranking import train_local

        typer.echo(f"{local.name} needs a PCA: learning it from the images to index", err=True)
        local = train_local(local, find_images(paths), collection / f"{local.name}-pca.npz", **options)
    return local


@app.command()
def update(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to bring up to date.")],
    collection: Collection_,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Bring a collection up to date: add new files, re-describe changed ones, drop deleted ones."""
    from lookalike.index import Collection

    _index_and_report(Collection.open(collection, writable=True), paths, None, workers=workers,
                      max_pixels=max_pixels, prune=True)


@app.command()
def remove(
    paths: Annotated[list[Path], typer.Argument(help="Stored files, or folders whose images to remove.")],
    collection: Collection_,
) -> None:
    """Remove images from a collection (the files themselves are not touched)."""
    from lookalike.index import Collection

    with Collection.open(collection, writable=True) as store:
        targets = []
        for path in paths:
            absolute = str(path.resolve())
            targets += store.metadata.under(absolute) if path.is_dir() else [absolute]
        typer.echo(f"removed {store.remove(targets)} images; {len(store)} left")
        _refresh_joint(store)


@app.command()
def search(
    queries: Annotated[Optional[list[Path]], typer.Argument(help="Query image file(s).")] = None,
    collection: Collection_ = ...,
    k: Annotated[int, typer.Option(
        "-k", min=1, help="Number of results per query (at most the collection's size).")] = 10,
    text: Annotated[Optional[str], typer.Option(
        "--text", help="Search with words in the collection's joint space; with query images, the words "
        "modify each image query (e.g. --text 'at night').")] = None,
    text_weight: Annotated[float, typer.Option(help="Weight of --text against a query image.")] = 1.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per query, one per line.")] = False,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write an HTML page of the results.")] = None,
    rerank: Annotated[Optional[str], typer.Option(help=(
        "Re-rank the best --rerank-top: 'emd' (color-hist only), or steps applied in order among sv (spatial "
        "verification; the collection needs --local-features), qe (query expansion), dba (database-side "
        "augmentation), diffusion, e.g. sv,qe or dba,qe."))] = None,
    rerank_top: RerankTop = None,
    min_inliers: MinInliers = None,
    inlier_ratio: InlierRatio = None,
    inlier_weight: InlierWeight = None,
    sv_model: SvModel = None,
    qe_k: QeK = None,
    alpha: Alpha = None,
    qe_verified: QeVerified = None,
    dba_k: DbaK = None,
    diffusion_k: DiffusionK = None,
    diffusion_alpha: DiffusionAlpha = None,
    kq: Kq = None,
    truncate: Truncate = None,
    nprobe: Annotated[Optional[int], typer.Option(
        min=1, help="IVF indexes: lists visited per query (more: better recall, slower) [default: 16].")] = None,
    ef_search: Annotated[Optional[int], typer.Option(
        min=1, help="HNSW indexes: candidate list size [default: 64].")] = None,
    k_factor: Annotated[Optional[float], typer.Option(
        min=1.0, help="Indexes with ,RFlat: re-score k * k_factor candidates exactly [default: 4].")] = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Find the images of a collection most similar to each QUERY image, to --text, or to both.

      lookalike search photo.jpg -c photos.lookalike

      lookalike search q.jpg -c photos.lookalike --rerank sv,qe --html results.html

      lookalike search --text "two dogs playing in the snow" -c photos.lookalike

      lookalike search photo.jpg --text "at night" -c photos.lookalike

    A query that cannot be read is reported and the others are searched; the exit code is then 2.
    """
    from lookalike.index import Collection
    from lookalike.pipelines.searching import Searcher

    if not queries and text is None:
        raise LookalikeError("give query images, --text, or both")
    if text is not None and rerank:
        raise LookalikeError("--rerank re-scores visual results; it does not apply to --text searches")
    check_output(html, "--html")
    searches, failed = [], []
    with Collection.open(collection) as store:
        if text is None:
            options = {"min_inliers": min_inliers, "inlier_ratio": inlier_ratio, "inlier_weight": inlier_weight,
                       "sv_model": sv_model, "qe_k": qe_k, "alpha": alpha,
                       "qe_verified": qe_verified, "dba_k": dba_k, "diffusion_k": diffusion_k,
                       "diffusion_alpha": diffusion_alpha, "kq": kq, "truncate": truncate}
            searcher = Searcher(store, rerank=rerank, rerank_top=rerank_top or 100, max_pixels=max_pixels,
                                matches=html is not None, options=options, nprobe=nprobe, efSearch=ef_search,
                                k_factor=k_factor)
        for query in queries or [None]:
            try:
                if text is not None:
                    from lookalike.pipelines.crossmodal import search_joint

                    hits = search_joint(store, text=text, query=query, text_weight=text_weight, k=k,
                                        max_pixels=max_pixels)
                    query = f"{query} + {text!r}" if query is not None else repr(text)
                else:
                    hits = searcher(query, k)
            except ImageError as exc:
                typer.echo(f"error: {exc}", err=True)
                failed.append(query)
                continue
            searches.append((str(query), hits))
            if as_json:
                typer.echo(json.dumps({"query": str(query), "results": [
                    {"rank": h.rank, "path": h.path, "score": h.score,
                     **({"inliers": h.inliers} if h.inliers is not None else {})} for h in hits]}))
            else:
                typer.echo(f"{query}:")
                for h in hits:
                    inliers = "" if h.inliers is None else f"  {h.inliers:>4} inliers"
                    typer.echo(f"{h.rank:>4}  {h.score:9.4f}{inliers}  {h.path}")
    if html is not None:
        from lookalike.results_page import render

        html.write_text(render(searches, title=f"lookalike: {len(searches)} queries in {collection.name}"),
                        encoding="utf-8", errors="backslashreplace")
        typer.echo(f"wrote {html}", err=True)
    if failed:
        raise typer.Exit(2)


@app.command("rerank-prepare")
def rerank_prepare(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    rerank: Annotated[str, typer.Option(help="The steps that will be used, e.g. dba,qe,diffusion.")] = "dba,diffusion",
    dba_k: DbaK = None,
    diffusion_k: DiffusionK = None,
) -> None:
    """Compute what dba and diffusion keep with a collection (the augmented vectors, the kNN graph)
    ahead of the first search that needs them; they are recomputed after the collection changes."""
    from lookalike.index import Collection
    from lookalike.pipelines.collection_rerank import prepare

    with Collection.open(collection, writable=True) as store:
        files = prepare(store, rerank, dba_k=dba_k, diffusion_k=diffusion_k)
    typer.echo(f"{collection}: " + (", ".join(files) + " up to date" if files else "nothing to prepare for "
                                    f"--rerank {rerank} (only dba and diffusion keep state)"))


@app.command()
def reindex(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    index_structure: Annotated[Optional[str], typer.Option("--index", help="The new faiss factory string, e.g. "
                                                 "IVF1024,PQ32 or HNSW32 (see `lookalike index --help`).")] = None,
    joint: Joint = None,
    train_images: Annotated[Optional[list[Path]], typer.Option(
        help="Train the structure on these images' vectors instead of the collection's own.")] = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Rebuild a collection's search structure, or add a joint space, from its stored vectors;
    nothing is re-described.

      lookalike reindex ~/photos.lookalike --index IVF4096,PQ32

      lookalike reindex ~/photos.lookalike --joint joint.pt
    """
    import numpy as np

    from lookalike.index import Collection

    if index_structure is None and joint is None:
        raise LookalikeError("give --index STRUCTURE, --joint MODEL, or both")
    with Collection.open(collection, writable=True) as store:
        if joint is not None:
            from lookalike.pipelines.crossmodal import attach_joint

            model = attach_joint(store, joint)
            typer.echo(f"{collection}: joint space of {len(store)} images ({model.config.method}, "
                       f"{model.dim}-D, text: {model.text_spec.get('name')})")
        if index_structure is None:
            return
        training = None
        if train_images:
            from lookalike.io.files import find_images
            from lookalike.pipelines.training import describe_all

            training, _ = describe_all(store.descriptor, find_images(train_images), progress="training vectors",
                                       workers=workers, max_pixels=max_pixels)
            if not training:
                raise LookalikeError("none of the --train-images could be described")
        store.reindex(index_structure, None if training is None else np.stack(training))
        details = store.info()
    typer.echo(f"{collection}: {details['images']} images, index {details['index']} ({details['index_state']}), "
               f"about {details['bytes_per_image']:.0f} bytes per image in memory")


@app.command()
def plan(
    images: Annotated[int, typer.Option(min=1, help="How many images the collection will hold.")],
    dim: Annotated[int, typer.Option(min=1, help="Descriptor dimension (`lookalike info` or `descriptors`).")],
    ram: Annotated[str, typer.Option(help="Memory for the index, e.g. 8GB, 500MB.")] = "8GB",
) -> None:
    """Suggest an index structure for a collection size and a RAM budget, and say why."""
    from lookalike.index.structures import choose

    choice = choose(images, dim, _bytes(ram))
    typer.echo(choice.reason)
    typer.echo(f"use it with: lookalike index ... --index {choice.factory}")


def _bytes(text: str) -> float:
    units = {"kb": 1e3, "mb": 1e6, "gb": 1e9, "tb": 1e12, "b": 1.0}
    lowered = text.strip().lower()
    for unit, factor in units.items():
        if lowered.endswith(unit):
            try:
                return float(lowered[: -len(unit)]) * factor
            except ValueError:
                break
    raise LookalikeError(f"--ram {text!r}: write a size such as 8GB or 500MB")


@app.command()
def info(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print everything as JSON.")] = False,
) -> None:
    """Describe a collection: size, descriptor, index, storage."""
    from lookalike.index import Collection

    with Collection.open(collection) as store:
        details = store.info()
        if store.damaged:
            details["note"] = (f"{store.damaged} did not match its checksum (damaged or overwritten); the search "
                               "index was rebuilt from SQLite in memory: run `lookalike reindex` to save it")
        elif store.rebuilt:
            details["note"] = "the search index was stale (interrupted run?) and was rebuilt from SQLite"
    typer.echo(json.dumps(details, indent=1) if as_json else _summary(details))


def _summary(details: dict) -> str:
    """``lookalike info`` for people: a few lines, the numbers that matter first."""
    config = details["descriptor"]["config"]
    options = ", ".join(f"{k}={','.join(map(str, v)) if isinstance(v, list) else v}"
                        for k, v in config.items() if v not in ("", None))
    versions = details["versions"]
    lines = [
        f"{details['path']}: {details['images']:,} images",
        f"descriptor: {details['descriptor']['name']} ({details['dim']}-D; {options})",
        f"index: {details['index']}, {details['index_state']}; about {details['bytes_per_image']:.0f} bytes "
        "per image in memory",
        f"on disk: index {_size(details['index_file_bytes'])}, metadata {_size(details['metadata_bytes'])} "
        f"(generation {details['generation']})",
    ]
    if details["files"]:
        lines.append("kept files: " + ", ".join(f"{name} (sha256 {digest[:12]})"
                                                for name, digest in details["files"].items()))
    lines.append(f"created {details['created']} by lookalike {versions.get('lookalike')} "
                 f"(faiss {versions.get('faiss')}, format {details['format_version']})")
    if "note" in details:
        lines.append(f"note: {details['note']}")
    return "\n".join(lines)


def _size(n: float) -> str:
    for unit in ("bytes", "kB", "MB"):
        if n < 1000:
            return f"{n:.0f} {unit}" if unit == "bytes" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"
