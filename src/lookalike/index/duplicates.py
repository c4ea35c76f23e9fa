"""Near-duplicate groups: the connected components of a range search over the vectors.

Two images are near-duplicates when the inner product of their vectors exceeds a threshold; a
group is a connected component of that relation (so a chain of close copies forms one group).
The search runs in blocks of matrix products (over an inverted file above 20,000 vectors) and
keeps only the pairs it finds, so memory grows with the number of near pairs, never with N x N
(the complaint users have about duplicate finders that build the full similarity matrix).

The presets are calibrated on copydays for the default descriptor (GeM at three scales); how,
and the precision and recall each gives, are in docs/benchmarks.md ("Near-duplicates").
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lookalike.errors import LookalikeError

#: preset -> inner-product threshold, for the default descriptor only (gem, scales 1, 0.7071, 0.5):
#: ``exact`` re-encodings and resizes, ``near`` the copies copydays attacks make (crops, colour,
#: overlays...), ``similar`` looser still: more copies found, more unrelated pairs grouped
PRESETS: dict[str, float] = {"exact": 0.94, "near": 0.84, "similar": 0.77}
#: rows compared exactly (one matrix product per block of BATCH rows); above, an inverted-file join
EXACT_UP_TO = 20_000
BATCH = 256
#: inverted lists each row is compared with above EXACT_UP_TO rows, and rows per matrix product
#: (bounds the memory of its scores)
NPROBE = 8
IVF_BATCH = 4096


@dataclass(frozen=True)
class Group:
    """One group of near-duplicates, best copy first."""

    members: np.ndarray  # (M,) int64 row numbers of the input vectors, M >= 2
    scores: np.ndarray  # (M,) float32 similarity of each member to the best copy (1 for itself)


def preset_threshold(preset: str) -> float:
    """The threshold of a preset; an unknown name lists the valid ones."""
    if preset not in PRESETS:
        raise LookalikeError(f"unknown preset {preset!r}; choose one of: {', '.join(PRESETS)}")
    return PRESETS[preset]


def find_groups(vectors: np.ndarray, threshold: float, pixels: np.ndarray | None = None,
                tiebreak: np.ndarray | None = None, *, exact_up_to: int = EXACT_UP_TO) -> list[Group]:
    """Groups of rows of ``vectors (N, D)`` linked by an inner product above ``threshold``.

    Args:
        vectors: float32 rows, compared by inner product (L2-normalised: cosine similarity).
        threshold: pairs scoring strictly above it are linked.
        pixels: ``(N,)`` width x height of each image; the largest is the best copy of its group.
        tiebreak: ``(N,)`` second key for the best copy (e.g. file size), larger first.
        exact_up_to: up to this many rows every pair is compared; above, an inverted-file join
            (:func:`similar_pairs`).

    Returns:
        groups of two or more rows, largest group first, each with its best copy first.
    """
    n = len(vectors)
    pairs = similar_pairs(vectors, threshold, exact_up_to=exact_up_to)
    groups = connected_groups(pairs, n)
    pixels = np.zeros(n) if pixels is None else np.asarray(pixels, dtype=np.float64)
    tiebreak = np.zeros(n) if tiebreak is None else np.asarray(tiebreak, dtype=np.float64)
    out = []
    for members in groups:
        # lexsort: last key first; ties on size go to the lower row number
        members = members[np.lexsort((members, -tiebreak[members], -pixels[members]))]
        scores = vectors[members] @ vectors[members[0]]
        out.append(Group(members.astype(np.int64), scores.astype(np.float32)))
    return out


def similar_pairs(vectors: np.ndarray, threshold: float, *, exact_up_to: int = EXACT_UP_TO,
                  batch: int = BATCH) -> np.ndarray:
    """Pairs ``(i, j)``, ``i < j``, whose inner product exceeds ``threshold``: ``(P, 2)`` int64.

    Up to ``exact_up_to`` rows, exact: blocks of ``batch`` rows against all rows, one matrix
    product each (``batch x N`` scores at a time). Above, an inverted-file self-join (the IVF
    candidate stage of Jégou et al., TPAMI 2011, run list by list): every row is compared with
    the rows whose own list is one of the :data:`NPROBE` lists nearest to it, so a near pair split
    across cells can be missed (benchmarks/duplicates.py measures how rarely); every pair
    returned is scored exactly, in full dimension.
    """
    x = np.ascontiguousarray(vectors, dtype=np.float32)
    if x.ndim != 2:
        raise LookalikeError(f"vectors must be (N, D), got shape {x.shape}")
    found = []
    if len(x) <= exact_up_to:
        for start in range(0, len(x), batch):
            rows, cols = np.nonzero(x[start : start + batch] @ x.T > threshold)
            rows += start
            keep = cols > rows
            found.append(np.stack([rows[keep], cols[keep]], axis=1))
    else:
        found = [np.unique(np.concatenate(list(_list_join(x, threshold))), axis=0)]
    return np.concatenate(found).astype(np.int64) if found else np.zeros((0, 2), dtype=np.int64)


def _list_join(x: np.ndarray, threshold: float):
    """Yield ``(P, 2)`` pairs ``i < j`` above ``threshold`` between each row and the members of
    the :data:`NPROBE` inverted lists nearest to it (a row's own list is its nearest).

    The rows that probe a list are compared with its members by one matrix product per block of
    :data:`IVF_BATCH` rows, rather than row by row as a range search scans them: the same pairs
    at BLAS speed, which is what makes 1,280-d vectors fast. Memory: one block of scores.
    """
    probes = nearest_lists(x, train_lists(x))
    own = probes[:, 0]
    members = _by_list(own, np.arange(len(x)))
    askers = _by_list(probes.ravel(), np.repeat(np.arange(len(x)), probes.shape[1]))
    for cell, rows in askers.items():
        inside = members.get(cell)
        if inside is None:
            continue
        database = x[inside]
        for start in range(0, len(rows), IVF_BATCH):
            queries = rows[start : start + IVF_BATCH]
            q, m = np.nonzero(x[queries] @ database.T > threshold)
            pairs = np.stack([queries[q], inside[m]], axis=1)
            yield np.sort(pairs[pairs[:, 0] != pairs[:, 1]], axis=1)  # found from either end: deduplicated later


def train_lists(x: np.ndarray) -> np.ndarray:
    """``(L, D)`` centroids of about 2 sqrt(N) inverted lists, spherical k-means on 16 rows per
    list: training and the join cost about the same then."""
    import faiss

    from lookalike.sampling import evenly_spaced

    lists = int(2 * np.sqrt(len(x)))
    kmeans = faiss.Kmeans(x.shape[1], lists, niter=10, spherical=True, min_points_per_centroid=16, seed=1234)
    kmeans.train(evenly_spaced(x, 16 * lists))
    return kmeans.centroids


def nearest_lists(x: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    """``(N, NPROBE)`` the lists of highest inner product with each row, nearest first."""
    import faiss

    quantizer = faiss.IndexFlatIP(x.shape[1])
    quantizer.add(centroids)
    return quantizer.search(x, min(NPROBE, len(centroids)))[1]


def _by_list(lists: np.ndarray, rows: np.ndarray) -> dict[int, np.ndarray]:
    """``{list: rows in it}`` from parallel arrays ``lists`` and ``rows``, rows ascending."""
    order = np.argsort(lists, kind="stable")
    cells, starts = np.unique(lists[order], return_index=True)
    return dict(zip(cells.tolist(), np.split(rows[order], starts[1:])))


def connected_groups(pairs: np.ndarray, n: int) -> list[np.ndarray]:
    """Connected components of the graph on ``n`` nodes with edges ``pairs (P, 2)`` that hold two
    or more nodes, largest first (ties: smallest first node), each sorted."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    if n == 0 or len(pairs) == 0:
        return []
    graph = coo_matrix((np.ones(len(pairs), dtype=np.int8), (pairs[:, 0], pairs[:, 1])), shape=(n, n))
    _, labels = connected_components(graph, directed=False)
    order = np.argsort(labels, kind="stable")
    sizes = np.bincount(labels)
    components = np.split(order, np.cumsum(sizes)[:-1])
    components = [c for c in components if len(c) > 1]
    components.sort(key=lambda c: (-len(c), c[0]))
    return components
