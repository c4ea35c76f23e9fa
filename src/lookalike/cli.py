"""The ``lookalike`` command line: a thin shell over the library.

Every command turns its arguments into library calls and prints the result; errors the user can
fix print as one line (``error: ...``) with exit code 2, never as a traceback.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from lookalike.errors import LookalikeError
from lookalike.io.images import DEFAULT_MAX_PIXELS  # light: Pillow and numpy only

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
    help=(
        "Visual search: index a folder of images, then find the images that show the same object, "
        "place or copy.\n\n"
        "Typical use:\n\n"
        "  lookalike index ~/photos --collection ~/photos.lookalike --descriptor gist\n\n"
        "  lookalike search query.jpg --collection ~/photos.lookalike -k 10 --html results.html\n\n"
        "  lookalike eval data/landmarks/full.json --descriptor gist"
    ),
)

Collection_ = Annotated[Path, typer.Option("--collection", "-c", help="Collection folder.")]
Workers = Annotated[
    Optional[int], typer.Option(help="Worker processes for decoding and describing [default: one per core].")
]
MaxPixels = Annotated[
    int, typer.Option(help="Refuse images with more pixels than this (decompression-bomb guard).")
]
Settings = Annotated[
    Optional[list[str]],
    typer.Option("--set", "-s", help="Descriptor option as key=value, repeatable, e.g. -s bins=8,8,8. "
                 "`lookalike descriptors` lists the options."),
]

def _descriptor(name: str, settings: list[str] | None):
    from lookalike.descriptors import descriptor_class, parse_overrides

    cls = descriptor_class(name)
    return cls(**parse_overrides(cls.Config, settings or []))


def _index_and_report(store, paths: list[Path], **options) -> None:
    from lookalike.pipelines.indexing import index_paths

    with store:
        report = index_paths(store, paths, **options)
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
        "--descriptor", "-d", help="Descriptor for a new collection [default: gist]. "
        "An existing collection keeps its own.")] = None,
    settings: Settings = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
    batch_size: Annotated[int, typer.Option(help="Images committed per transaction.")] = 64,
    index_structure: Annotated[Optional[str], typer.Option(
        "--index", help="Search structure of a new collection, a faiss factory string: Flat (exact, the "
        "default), PCA256,Flat, PQ32, IVF1024,PQ32, OPQ32_128,IVF1024,PQ32, HNSW32; add ,RFlat to keep "
        "full vectors for exact re-scoring. `lookalike plan` suggests one.")] = None,
) -> None:
    """Add images to a collection, creating it if needed.

    Resumable: images whose content is already stored are skipped, so rerunning after an
    interruption continues where it stopped. Unusable files are reported and skipped.

    A structure that learns (IVF, PQ, PCA) is trained once enough images are stored; until then
    the collection searches exactly (`lookalike info` says so).
    """
    from lookalike.index import Collection

    if (collection / "manifest.json").exists():
        if settings and not descriptor:
            raise LookalikeError("--set needs --descriptor, to check them against the collection's")
        wanted = _descriptor(descriptor, settings) if settings else descriptor
        store = Collection.open(collection, descriptor=wanted, writable=True)
        if index_structure and index_structure != store.factory:
            store.close()
            raise LookalikeError(f"{collection} uses index {store.factory}; change it with "
                                 f"`lookalike reindex {collection} --index {index_structure}`")
    else:
        wanted = _descriptor(descriptor or "gist", settings)
        if not wanted.trained:
            from lookalike.io.files import find_images
            from lookalike.pipelines.training import train_descriptor

            typer.echo(f"{wanted.name} needs a vocabulary: learning it from the images to index", err=True)
            wanted, _ = train_descriptor(wanted, find_images(paths), collection / "vocabulary.npz",
                                         workers=workers, max_pixels=max_pixels)
        store = Collection.create(collection, wanted, index=index_structure or "Flat")
    _index_and_report(store, paths, workers=workers, batch_size=batch_size, max_pixels=max_pixels)


@app.command()
def update(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to bring up to date.")],
    collection: Collection_,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Bring a collection up to date: add new files, re-describe changed ones, drop deleted ones."""
    from lookalike.index import Collection

    _index_and_report(Collection.open(collection, writable=True), paths, workers=workers,
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


@app.command()
def search(
    queries: Annotated[list[Path], typer.Argument(help="Query image file(s).")],
    collection: Collection_,
    k: Annotated[int, typer.Option("-k", help="Number of results per query.")] = 10,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per query, one per line.")] = False,
    html: Annotated[Optional[Path], typer.Option("--html", help="Also write an HTML page of the results.")] = None,
    rerank: Annotated[Optional[str], typer.Option(help="Re-rank the short list: 'emd' (color-hist only).")] = None,
    shortlist: Annotated[int, typer.Option(help="Candidates re-ranked with --rerank.")] = 100,
    nprobe: Annotated[Optional[int], typer.Option(
        help="IVF indexes: lists visited per query (more: better recall, slower) [default: 16].")] = None,
    ef_search: Annotated[Optional[int], typer.Option(
        help="HNSW indexes: candidate list size [default: 64].")] = None,
    k_factor: Annotated[Optional[float], typer.Option(
        help="Indexes with ,RFlat: re-score k * k_factor candidates exactly [default: 4].")] = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Find the images of a collection most similar to each QUERY image."""
    from lookalike.index import Collection
    from lookalike.pipelines.searching import search_image

    searches = []
    with Collection.open(collection) as store:
        for query in queries:
            hits = search_image(store, query, k=k, rerank=rerank, shortlist=shortlist,
                                max_pixels=max_pixels, nprobe=nprobe, efSearch=ef_search, k_factor=k_factor)
            searches.append((str(query), hits))
            if as_json:
                typer.echo(json.dumps({"query": str(query), "results": [
                    {"rank": h.rank, "path": h.path, "score": h.score} for h in hits]}))
            else:
                typer.echo(f"{query}:")
                for h in hits:
                    typer.echo(f"{h.rank:>4}  {h.score:9.4f}  {h.path}")
    if html is not None:
        from lookalike.results_page import render

        html.write_text(render(searches, title=f"lookalike: {len(queries)} queries in {collection.name}"))
        typer.echo(f"wrote {html}", err=True)


@app.command()
def train(
    paths: Annotated[list[Path], typer.Argument(help="Training images: files and folders.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Where to write the learned model (.npz).")],
    descriptor: Annotated[str, typer.Option("--descriptor", "-d", help="bow, vlad, fisher or netvlad; "
                                            "with --whiten, any descriptor.")] = "vlad",
    settings: Settings = None,
    whiten: Annotated[bool, typer.Option(
        "--whiten", help="Learn a PCA-whitening of the descriptor's vectors instead of a vocabulary.")] = False,
    dim: Annotated[int, typer.Option(help="With --whiten: dimensions kept (0 = all the data allows).")] = 0,
    shrinkage: Annotated[float, typer.Option(
        help="With --whiten: 0 whitens fully, 1 only rotates; in between tames weak noisy axes.")] = 0.0,
    max_images: Annotated[int, typer.Option(help="Use at most this many images (evenly spaced).")] = 1000,
    seed: Annotated[int, typer.Option(help="Seed of k-means and EM.")] = 0,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Learn what a descriptor needs from training images: a vocabulary, or a whitening.

    Then use it with -s vocabulary=OUT (or -s whitening=OUT), e.g.

      lookalike train ~/paris -d vlad -s k=64 -o vlad64.npz

      lookalike index ~/photos -c photos.lookalike -d vlad -s k=64 -s vocabulary=vlad64.npz

      lookalike train ~/paris -d gem --whiten --dim 512 -o gem-white.npz

    Learn on images other than the ones you will search: a whitening learned on the searched
    images themselves fits their noise.
    """
    from lookalike.io.files import find_images
    from lookalike.pipelines import training

    wanted, found = _descriptor(descriptor, settings), find_images(paths)
    if whiten:
        trained, report = training.train_whitening(wanted, found, out, dim=dim, shrinkage=shrinkage,
                                                   max_images=max_images, workers=workers,
                                                   max_pixels=max_pixels)
        typer.echo(f"learned a {report['dim']}-D whitening of {trained.name} from {report['images']} images "
                   f"in {report['describe_seconds'] + report['learn_seconds']:.1f} s; wrote {out}")
        option = "whitening"
    else:
        trained, report = training.train_descriptor(wanted, found, out, max_images=max_images,
                                                    workers=workers, max_pixels=max_pixels, seed=seed)
        typer.echo(f"learned {trained.name} (k={trained.config.k}) from {report['descriptors']:,} local "
                   f"descriptors of {report['images']} images in "
                   f"{report['describe_seconds'] + report['learn_seconds']:.1f} s; wrote {out}")
        option = "vocabulary"
    typer.echo(f"use it with: -d {trained.name} " + " ".join(
        f"-s {k}={v}" for k, v in trained.spec()["config"].items() if k in ("k", "pca", option)))


@app.command(name="eval")
def evaluate(
    protocol: Annotated[Path, typer.Argument(help="Protocol JSON (docs/protocol.md).")],
    descriptor: Annotated[str, typer.Option("--descriptor", "-d", help="Descriptor name.")] = "gist",
    settings: Settings = None,
    images: Annotated[Optional[Path], typer.Option(help="Image folder [default: images/ beside the JSON].")] = None,
    json_out: Annotated[Optional[Path], typer.Option("--json", help="Write full results as JSON.")] = None,
    save_rankings: Annotated[bool, typer.Option(help="Include each query's ranking in --json output.")] = False,
    plot: Annotated[Optional[Path], typer.Option(help="Write a precision-recall plot (PNG).")] = None,
    train_images: Annotated[Optional[list[Path]], typer.Option(
        help="Images to learn a vocabulary from, for descriptors that need one and have none "
        "[default: the database images].")] = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Evaluate a descriptor on a benchmark protocol: mAP with junk removed, mP@k, mR@k, top-1."""
    from lookalike.evaluate.report import format_summary, to_json
    from lookalike.io.protocol import load_protocol
    from lookalike.pipelines.evaluation import evaluate_descriptor

    parsed = load_protocol(protocol, images)
    train_paths = None
    if train_images:
        from lookalike.io.files import find_images

        train_paths = find_images(train_images)
    result = evaluate_descriptor(parsed, _descriptor(descriptor, settings), workers=workers,
                                 max_pixels=max_pixels, train_paths=train_paths)
    for line in result["skipped"]:
        typer.echo(f"skipped {line}", err=True)
    typer.echo(format_summary(result))
    if json_out is not None:
        json_out.write_text(json.dumps(to_json(result, parsed, save_rankings), indent=1))
        typer.echo(f"wrote {json_out}", err=True)
    if plot is not None:
        from lookalike.evaluate.report import plot_result

        plot_result(result, plot)
        typer.echo(f"wrote {plot}", err=True)


@app.command()
def descriptors() -> None:
    """List the registered descriptors with their options and defaults."""
    import dataclasses

    from lookalike.descriptors import available, descriptor_class

    for name in available():
        cls = descriptor_class(name)
        typer.echo(f"{name}: {(cls.__doc__ or '').strip().splitlines()[0]}")
        for f in dataclasses.fields(cls.Config):
            typer.echo(f"    {f.name} = {f.default!r}")


@app.command()
def reindex(
    collection: Annotated[Path, typer.Argument(help="Collection folder.")],
    index_structure: Annotated[str, typer.Option("--index", help="The new faiss factory string, e.g. "
                                                 "IVF1024,PQ32 or HNSW32 (see `lookalike index --help`).")],
    train_images: Annotated[Optional[list[Path]], typer.Option(
        help="Train the structure on these images' vectors instead of the collection's own.")] = None,
    workers: Workers = None,
    max_pixels: MaxPixels = DEFAULT_MAX_PIXELS,
) -> None:
    """Rebuild a collection's search structure from its stored vectors; nothing is re-described.

      lookalike reindex ~/photos.lookalike --index IVF4096,PQ32
    """
    import numpy as np

    from lookalike.index import Collection

    with Collection.open(collection, writable=True) as store:
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
    images: Annotated[int, typer.Option(help="How many images the collection will hold.")],
    dim: Annotated[int, typer.Option(help="Descriptor dimension (`lookalike info` or `descriptors`).")],
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
def info(collection: Annotated[Path, typer.Argument(help="Collection folder.")]) -> None:
    """Describe a collection: size, descriptor, index, storage."""
    from lookalike.index import Collection

    with Collection.open(collection) as store:
        details = store.info()
        if store.rebuilt:
            details["note"] = "the search index was stale (interrupted run?) and was rebuilt from SQLite"
    typer.echo(json.dumps(details, indent=1))


@app.command(name="demo-data")
def demo_data(out: Annotated[Path, typer.Argument(help="Folder to write the demo set into.")]) -> None:
    """Write the demo set: scikit-image's photographs, edited copies as queries, and a protocol."""
    from lookalike.io.demo_photos import build_demo_set

    typer.echo(f"wrote {build_demo_set(out)}")


analyze = typer.Typer(no_args_is_help=True, help="Analyses of descriptors and their data.")
app.add_typer(analyze, name="analyze")


@analyze.command()
def dimensionality(
    descriptors: Annotated[Optional[Path], typer.Option(
        help="Your descriptors: an (N, D) .npy file, or a collection folder.")] = None,
    out: Annotated[Path, typer.Option(help="Folder for the plots.")] = Path("dimensionality"),
) -> None:
    """The curse of dimensionality: distance concentration of uniform data against your descriptors,
    over dimensions 2 to 2048, and the PCA energy spectrum of your descriptors."""
    import numpy as np

    from lookalike.evaluate import dimensionality as dims

    real = None
    if descriptors is not None:
        if descriptors.is_dir():
            from lookalike.index import Collection

            with Collection.open(descriptors) as store:
                real = store.metadata.vectors()[1]
        else:
            try:
                real = np.load(descriptors)
            except (OSError, ValueError) as exc:
                raise LookalikeError(f"{descriptors}: not a .npy array ({exc})") from None
    curves = dims.concentration_curves(real)
    energy = dims.pca_energy(real) if real is not None else None
    for path in dims.plot(curves, energy, out, label=descriptors.name if descriptors else "descriptors"):
        typer.echo(f"wrote {path}", err=True)
    for line in dims.interpret(curves, energy):
        typer.echo(line)


def main() -> None:
    """Entry point: run the app, turning user errors into one-line messages."""
    try:
        app()  # handles --help, usage errors (exit 2) and Ctrl-C itself
    except LookalikeError as exc:
        typer.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
