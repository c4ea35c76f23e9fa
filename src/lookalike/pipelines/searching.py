"""Search a collection with image files: describe the queries, search, optionally re-rank.

Re-ranking is ``emd`` (colour histograms) or a chain of the steps of :mod:`lookalike.rerank.steps`
(``sv``, ``qe``, ``dba``, ``diffusion``) fitted on the collection
(:class:`~lookalike.pipelines.collection_rerank.CollectionReranker`). A query is decoded once for
its vector and, for ``sv``, its local features.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from lookalike.errors import LookalikeError
from lookalike.index.collection import Collection
from lookalike.io.images import DEFAULT_MAX_PIXELS
from lookalike.pipelines.extract import decode_for, describe_pixels


class InlierMatches(NamedTuple):
    """The matches that one transform explains, between a query and a verified result."""

    query: np.ndarray  # (M, 2) float32 x, y in pixels of the image the query's features came from
    result: np.ndarray  # (M, 2) float32 x, y in pixels of the image the result's features came from
    query_size: tuple[int, int]  # (width, height) of those images
    result_size: tuple[int, int]


@dataclass
class Hit:
    rank: int
    path: str
    score: float  # global similarity, or what the last re-ranking step scored
    id: int
    inliers: int | None = None  # RANSAC inliers, for the candidates spatial verification looked at
    matches: InlierMatches | None = None  # with ``matches=True``, for verified results


class Searcher:
    """Searches ``collection`` with image files, re-ranking with ``rerank`` (``"emd"`` or steps such
    as ``"sv,qe"``); fitted once, for any number of queries.

    Args:
        rerank_top: candidates re-ranked (the global search returns ``max(k, rerank_top)``).
        options: options of the steps (``qe_k``, ``alpha``, ``sv_model`` ...; see
            :func:`lookalike.rerank.steps.parse_steps`); ``None`` values keep the defaults.
        matches: also give each verified hit its inlier matches (for drawing them).
        parameters: ``nprobe``, ``efSearch``, ``k_factor`` for an approximate index.
    """

    def __init__(self, collection: Collection, *, rerank: str | None = None, rerank_top: int = 100,
                 max_pixels: int = DEFAULT_MAX_PIXELS, matches: bool = False,
                 options: dict[str, Any] | None = None, **parameters: Any) -> None:
        if rerank_top < 1:
            raise LookalikeError(f"rerank_top={rerank_top} should be >= 1")
        self.collection = collection
        self.rerank, self.top, self.max_pixels, self.matches = rerank, rerank_top, max_pixels, matches
        self.parameters = parameters
        self.steps = None
        self.local = None
        if rerank is not None and "emd" in rerank.split(",") and rerank.strip() != "emd":
            raise LookalikeError(f"--rerank {rerank!r}: emd re-ranks alone; use --rerank emd, or steps among "
                                 "sv, qe, dba, diffusion")
        if rerank is not None and rerank != "emd":
            from lookalike.pipelines.collection_rerank import CollectionReranker

            options = {k: v for k, v in (options or {}).items() if v is not None}
            self.steps = CollectionReranker(collection, rerank, rerank_top=rerank_top, **options)
            if self.steps.reranker.needs_local:
                self.local = collection.local_extractor
        elif rerank == "emd" and not hasattr(collection.descriptor, "histogram_from_vector"):
            raise LookalikeError(f"--rerank emd needs a color-hist collection, not {collection.descriptor.name}")

    def __call__(self, query: str | Path, k: int = 10) -> list[Hit]:
        """The ``k`` best stored images for the image file ``query`` (at most the collection's size)."""
        if k < 1:
            raise LookalikeError(f"k={k} should be >= 1")
        descriptor = self.collection.descriptor
        decoded = decode_for(query, descriptor, self.local, max_pixels=self.max_pixels)
        vector, local = describe_pixels(decoded.pixels, descriptor, self.local)
        depth = k if self.rerank is None else max(k, self.top)
        depth = min(depth, max(1, len(self.collection)))  # faiss allocates depth results per query
        scores, ids = self.collection.search(vector[None], depth, **self.parameters)
        inliers: dict[int, int] = {}
        if self.rerank == "emd":
            scores, ids = self._emd(decoded.pixels, ids)
        elif self.steps is not None:
            scores, ids, inliers = self.steps(vector, local, scores, ids)
        scores, ids = scores[0, :k], ids[0, :k]
        hits = [Hit(rank, row["path"], float(score), int(ident), inliers.get(int(ident)))
                for rank, (score, ident, row) in enumerate(zip(scores, ids, self.collection.lookup(ids)), start=1)
                if row is not None]
        if self.matches and inliers:
            self._add_matches(local, hits)
        return hits

    def _emd(self, pixels: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        from lookalike.rerank.emd import emd_rerank

        descriptor = self.collection.descriptor
        ids = ids[0][ids[0] >= 0]
        candidates = descriptor.histogram_from_vector(self.collection.metadata.vectors_of(ids))
        scores, ids = emd_rerank(descriptor.histogram(pixels), candidates, ids, descriptor.bin_centers())
        return scores[None], ids[None]

    def _add_matches(self, local: Any, hits: list[Hit]) -> None:
        """Verify the shown results again (RANSAC is deterministic) to keep their inlier matches."""
        from lookalike.rerank.spatial import verify_pair
        from lookalike.rerank.steps import SpatialVerification

        sv = next(s for s in self.steps.steps if isinstance(s, SpatialVerification))
        verified = [h for h in hits if h.inliers is not None and h.inliers >= sv.min_inliers]
        for hit, stored in zip(verified, self.collection.local_features([h.id for h in verified])):
            check = verify_pair(local, stored, method=sv.method, ratio=sv.ratio, model=sv.model, threshold=sv.threshold)
            pairs = check.matches[check.mask]
            hit.matches = InlierMatches(local.keypoints[pairs[:, 0], :2], stored.keypoints[pairs[:, 1], :2],
                                        local.size, stored.size)


def search_image(
    collection: Collection, query: str | Path, *, k: int = 10, rerank: str | None = None,
    rerank_top: int = 100, max_pixels: int = DEFAULT_MAX_PIXELS, matches: bool = False,
    options: dict[str, Any] | None = None, **parameters: Any,
) -> list[Hit]:
    """The ``k`` stored images most similar to the image file ``query`` (``k`` is capped at the
    collection's size; one query: see :class:`Searcher` for many, which fits the re-ranking once).

    ``rerank="emd"`` re-scores the best ``rerank_top`` by Earth Mover's Distance between colour
    histograms (``color-hist`` collections; scores are then ``-EMD``). ``rerank="sv,qe"`` (any of
    ``sv``, ``qe``, ``dba``, ``diffusion``, comma-separated) applies those steps to the best
    ``rerank_top``; hits that spatial verification looked at carry their ``inliers``.
    """
    searcher = Searcher(collection, rerank=rerank, rerank_top=rerank_top, max_pixels=max_pixels,
                        matches=matches, options=options, **parameters)
    return searcher(query, k)
