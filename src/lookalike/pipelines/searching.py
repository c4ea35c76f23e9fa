"""Search a collection with image files: describe the queries, search, optionally re-rank."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from lookalike.errors import LookalikeError
from lookalike.index.collection import Collection
from lookalike.io.images import DEFAULT_MAX_PIXELS, load_image

RERANKERS = ("emd",)


@dataclass
class Hit:
    rank: int
    path: str
    score: float
    id: int


def search_image(
    collection: Collection, query: str | Path, *, k: int = 10, rerank: str | None = None,
    shortlist: int = 100, max_pixels: int = DEFAULT_MAX_PIXELS, **parameters,
) -> list[Hit]:
    """The ``k`` stored images most similar to the image file ``query`` (``k`` is capped at the
    collection's size).

    ``parameters`` (``nprobe``, ``efSearch``, ``k_factor``) tune an approximate index for this query.
    ``rerank="emd"`` re-scores the best ``shortlist`` by Earth Mover's Distance between colour
    histograms (``color-hist`` collections only); scores are then ``-EMD``.
    """
    if k < 1 or shortlist < 1:
        raise LookalikeError(f"k={k} and shortlist={shortlist} should be >= 1")
    # faiss allocates k results per query: no more than the collection holds
    k, shortlist = min(k, max(1, len(collection))), min(shortlist, max(1, len(collection)))
    descriptor = collection.descriptor
    decoded = load_image(query, max_side=descriptor.max_side, max_pixels=max_pixels)
    vector = descriptor(decoded.pixels)
    if rerank is None:
        scores, ids = collection.search(vector[None], k, **parameters)
    elif rerank == "emd":
        if not hasattr(descriptor, "histogram_from_vector"):
            raise LookalikeError(f"--rerank emd needs a color-hist collection, not {descriptor.name}")
        from lookalike.rerank.emd import emd_rerank

        _, ids = collection.search(vector[None], max(k, shortlist), **parameters)
        ids = ids[0][ids[0] >= 0]
        candidates = descriptor.histogram_from_vector(collection.metadata.vectors_of(ids))
        scores, ids = emd_rerank(descriptor.histogram(decoded.pixels), candidates, ids,
                                 descriptor.bin_centers())
        scores, ids = scores[None, :k], ids[None, :k]
    else:
        raise LookalikeError(f"unknown re-ranking {rerank!r}; choose one of: {', '.join(RERANKERS)}")
    rows = collection.lookup(ids[0])
    return [
        Hit(rank, row["path"], float(score), int(ident))
        for rank, (score, ident, row) in enumerate(zip(scores[0], ids[0], rows), start=1)
        if row is not None
    ]
