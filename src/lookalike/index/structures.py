"""Index structures named by faiss factory strings: build, train, tune, size and choose them.

A collection's search structure is any inner-product faiss index that ``faiss.index_factory``
builds: ``Flat`` (exact, the default), ``PCA256,Flat``, ``PQ32``, ``IVF1024,PQ32``,
``OPQ32_128,IVF1024,PQ32``, ``HNSW32``, ``IVF4096,SQ8``; a final ``,RFlat`` keeps the full
vectors to re-score the top ``k * k_factor`` candidates exactly (refine). This module wraps the
few things a collection needs on top of faiss (and ``BFlat``, exact Hamming search over the sign
bits of binary descriptors, :mod:`lookalike.index.binary`): clear errors for bad strings, how many vectors
training needs, per-query search parameters, memory per vector, and a structure for a RAM budget.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from lookalike.errors import LookalikeError
from lookalike.index.binary import BINARY_FLAT, HammingIndex

#: faiss prints a warning when k-means has fewer than 39 points per centroid
POINTS_PER_CENTROID = 39
#: examples shown in errors and help, each built by the tests
EXAMPLES = ("Flat", "PCA256,Flat", "PQ32", "IVF1024,PQ32", "OPQ32_128,IVF1024,PQ32", "HNSW32",
            "IVF1024,SQ8", "IVF1024,PQ32,RFlat")
#: our search parameter -> faiss ParameterSpace names it may have, by index type
SEARCH_PARAMETERS = {"nprobe": ("nprobe",), "efSearch": ("efSearch",), "k_factor": ("k_factor_rf", "k_factor")}


def build(factory: str, dim: int):
    """An empty inner-product faiss index from ``factory``, wrapped so that ids are the caller's.

    Raises:
        LookalikeError: for a string faiss cannot parse, or one that does not fit ``dim``.
    """
    import faiss

    factory = factory.strip()
    if factory == BINARY_FLAT:
        return HammingIndex(dim)
    if not factory or any(c.isspace() for c in factory):
        raise LookalikeError(f"index {factory!r}: a faiss factory string has no spaces, e.g. {', '.join(EXAMPLES[:4])}")
    if re.search(r"(?>IVF|HNSW|OPQ|PQ|PCAR?)(?!\d)", factory):  # faiss crashes on some of these
        raise LookalikeError(f"index {factory!r}: IVF, HNSW, PQ, OPQ and PCA need a number, e.g. {', '.join(EXAMPLES)}")
    if any(int(number) == 0 for number in re.findall(r"\d+", factory)):  # HNSW0 aborts the process
        raise LookalikeError(f"index {factory!r}: every number in a factory string must be positive, "
                             f"e.g. {', '.join(EXAMPLES)}")
    if re.search(r"IDMap", factory, re.IGNORECASE):
        raise LookalikeError(f"index {factory!r}: lookalike maps ids itself; drop IDMap from the string")
    for size in re.findall(r"(?:^|,)(?:PCAR?|OPQ\d+_)(\d+)", factory):
        if int(size) > dim:
            raise LookalikeError(f"index {factory!r}: cannot reduce {dim}-D vectors to {size} dimensions")
    for m in re.findall(r"(?:^|,)(?:IVF\d+,)?PQ(\d+)", factory):
        if _reduced_dim(factory, dim) % int(m):
            raise LookalikeError(
                f"index {factory!r}: PQ{m} splits vectors into {m} parts, but {_reduced_dim(factory, dim)} "
                f"is not a multiple of {m}")
    try:
        index = faiss.index_factory(dim, factory, faiss.METRIC_INNER_PRODUCT)
    except RuntimeError as exc:
        found = re.search(r"could not parse[^\n)]*", str(exc))
        reason = found.group(0) if found else str(exc).strip().splitlines()[-1]
        raise LookalikeError(
            f"index {factory!r} is not a valid faiss factory string for {dim}-D vectors ({reason}); "
            f"examples: {', '.join(EXAMPLES)}") from None
    without_polysemous_training(index)
    if isinstance(index, faiss.IndexIVF):
        return index  # IVF stores the ids itself, and removes them
    return faiss.IndexIDMap2(index)


def check_builds(factory: str, dim: int) -> None:
    """Raise :class:`LookalikeError` unless ``factory`` builds for ``dim`` and, if it needs no
    training, adds, searches and removes vectors: checked before a collection commits anything."""
    import numpy as np

    index = build(factory, dim)
    if not index.is_trained:
        return  # trained once enough vectors are stored; the build checked the structure
    vectors = np.random.default_rng(0).standard_normal((4, dim)).astype(np.float32)
    try:
        index.add_with_ids(vectors, np.arange(4, dtype=np.int64))
        index.search(vectors[:1], 2)
    except RuntimeError as exc:
        reason = str(exc).strip().splitlines()[-1]
        raise LookalikeError(f"index {factory!r} cannot hold {dim}-D vectors ({reason}); "
                             f"examples: {', '.join(EXAMPLES)}") from None


def without_polysemous_training(index) -> None:
    """Turn off the polysemous training the factory enables on PQ codes: it only serves
    Hamming-filtered search (``ht``), which lookalike does not use, and takes minutes where
    training the quantizer itself takes a second."""
    import faiss

    if hasattr(index, "do_polysemous_training"):
        index.do_polysemous_training = False
    for child in ("index", "base_index"):
        inner = getattr(index, child, None)
        if inner is not None:
            without_polysemous_training(faiss.downcast_index(inner))


def _reduced_dim(factory: str, dim: int) -> int:
    match = re.match(r"(?:PCAR?|OPQ\d+_)(\d+)", factory)
    return int(match.group(1)) if match else dim


def training_size(factory: str) -> int:
    """Vectors needed to train ``factory`` well: 39 per centroid of its largest k-means (IVF
    lists, 2^nbits PQ or SQ codes), more than the output dimension for PCA; 0 if it needs none."""
    needs = [0]
    for nlist in re.findall(r"IVF(\d+)", factory):
        needs.append(POINTS_PER_CENTROID * int(nlist))
    for _, bits in re.findall(r"PQ(\d+)(?:x(\d+))?", factory):
        needs.append(POINTS_PER_CENTROID * 2 ** int(bits or 8))
    if re.search(r"(?:^|,)SQ", factory):
        needs.append(1000)
    for size in re.findall(r"PCAR?(\d+)", factory):
        needs.append(4 * int(size))
    return max(needs)


def is_binary(factory: str) -> bool:
    """Whether ``factory`` stores sign bits (for binary descriptors) rather than floats."""
    return factory.strip() == BINARY_FLAT


def parameters_of(index) -> set[str]:
    """The search parameters (``nprobe``, ``efSearch``, ``k_factor``) that ``index`` has."""
    if isinstance(index, HammingIndex):
        return set()
    known = _faiss_parameters(index)
    return {name for name, faiss_names in SEARCH_PARAMETERS.items() if known & set(faiss_names)}


def _unwrapped(index):
    """The index inside an id map: faiss's ParameterSpace does not look through IndexIDMap2."""
    import faiss

    return faiss.downcast_index(index.index) if hasattr(index, "id_map") else index


def _faiss_parameters(index) -> set[str]:
    import faiss

    space = faiss.ParameterSpace()
    space.initialize(_unwrapped(index))
    return {space.parameter_ranges.at(i).name for i in range(space.parameter_ranges.size())}


def set_search_parameters(index, **parameters) -> None:
    """Set ``nprobe``, ``efSearch`` or ``k_factor`` on ``index`` (``None`` values are skipped).

    Raises:
        LookalikeError: for a parameter this index does not have (``nprobe`` on ``HNSW32``, say).
    """
    import faiss

    wanted = {k: v for k, v in parameters.items() if v is not None}
    if not wanted:
        return
    known = _faiss_parameters(index)
    space = faiss.ParameterSpace()
    for name, value in wanted.items():
        if name not in SEARCH_PARAMETERS:
            raise LookalikeError(f"unknown search parameter {name!r}; use {', '.join(SEARCH_PARAMETERS)}")
        faiss_name = next((n for n in SEARCH_PARAMETERS[name] if n in known), None)
        if faiss_name is None:
            raise LookalikeError(f"{name} does not apply to this index ({describe(index)}); "
                                 f"it has: {', '.join(sorted(known)) or 'no search parameters'}")
        space.set_index_parameter(_unwrapped(index), faiss_name, float(value) if name == "k_factor" else int(value))


def describe(index) -> str:
    """The faiss class chain of ``index``, e.g. ``IndexIDMap2(IndexHNSWFlat)``."""
    import faiss

    if isinstance(index, HammingIndex):
        return f"{type(index.index).__name__}(IndexBinaryFlat)"
    inner = getattr(index, "index", None)  # a wrapper's child, as a non-owning base-class proxy
    if inner is not None and not isinstance(index, faiss.IndexIVF):
        return f"{type(index).__name__}({describe(faiss.downcast_index(inner))})"
    return type(index).__name__


def bytes_per_vector(factory: str, dim: int) -> float:
    """Memory one vector takes in ``factory``'s index (codes, ids, graph links), estimated from
    the structure: what :func:`choose` plans with and ``lookalike info`` reports."""
    total = 8.0  # the 64-bit id
    if is_binary(factory):
        return total + dim / 8
    codes = float(4 * _reduced_dim(factory, dim))
    for m, bits in re.findall(r"PQ(\d+)(?:x(\d+))?", factory):
        codes = int(m) * int(bits or 8) / 8
    if re.search(r"(?:^|,)SQ8", factory):
        codes = _reduced_dim(factory, dim)
    elif re.search(r"(?:^|,)SQfp16", factory):
        codes = 2 * _reduced_dim(factory, dim)
    hnsw = re.search(r"HNSW(\d+)", factory)
    if hnsw and not factory.startswith("IVF"):
        total += 4 * 2 * int(hnsw.group(1)) * 1.1  # 2M links on level 0, a few more above
    if factory.endswith("RFlat"):
        total += 4 * dim
    return total + codes


@dataclass(frozen=True)
class Choice:
    factory: str
    bytes_per_vector: float
    reason: str


def choose(n: int, dim: int, ram_bytes: float) -> Choice:
    """A structure for ``n`` vectors of ``dim`` floats within ``ram_bytes``, in the spirit of autofaiss:
    exact while it fits and is fast enough, HNSW while the graph fits, else IVF with PQ codes as
    large as the budget allows, the lists sized to about ``4 sqrt(n)``."""
    if n < 1 or dim < 1 or ram_bytes <= 0:
        raise LookalikeError(f"need n >= 1, dim >= 1 and a positive RAM budget, got {n}, {dim}, {ram_bytes}")
    budget = 0.8 * ram_bytes  # leave room for the query batch, faiss's buffers and Python
    flat = bytes_per_vector("Flat", dim)
    if n <= 200_000 and n * flat <= budget:
        return Choice("Flat", flat, f"Flat: {n:,} x {dim}-D fits in {_gb(n * flat)} and exact search is fast at this size")
    hnsw = bytes_per_vector("HNSW32", dim)
    if n <= 20_000_000 and n * hnsw <= budget:
        return Choice("HNSW32", hnsw, f"HNSW32: the graph and full vectors ({_gb(n * hnsw)}) fit; "
                      "best recall per query time, but no removal without a rebuild")
    nlist = 2 ** max(4, min(20, round(math.log2(4 * math.sqrt(n)))))
    for m in (64, 32, 16, 8):
        factory = f"IVF{nlist},PQ{m}"
        size = bytes_per_vector(factory, dim)
        if dim % m == 0 and m <= dim // 2 and n * size <= budget:
            return Choice(factory, size, f"{factory}: {m}-byte PQ codes in {nlist:,} lists ({_gb(n * size)}) "
                          f"are the largest codes that fit {_gb(ram_bytes)}; search with nprobe 16-64")
    raise LookalikeError(f"{n:,} vectors of {dim}-D do not fit {_gb(ram_bytes)} with PQ codes of 8 to 64 "
                         "bytes; reduce the dimension (PCA) or shard the collection over several machines")


def _gb(size: float) -> str:
    return f"{size / 1e9:.1f} GB" if size >= 1e8 else f"{size / 1e6:.1f} MB"


def search_within(index, x, k: int, ids):
    """faiss-style search of ``x (N, D)`` restricted to the vectors whose ids are in ``ids``:
    ``(scores, ids)``, each ``(N, k)``, -1 and -inf past the last hit. The index's current search
    parameters (nprobe, efSearch, k_factor) apply."""
    import faiss
    import numpy as np

    if k < 1:
        raise LookalikeError(f"k={k} should be >= 1")
    if isinstance(index, HammingIndex):
        raise LookalikeError("filtering by ids is not available for binary descriptors (BFlat); search all")
    allowed = np.ascontiguousarray(np.unique(np.asarray(ids, dtype=np.int64)))
    selector = faiss.IDSelectorBatch(len(allowed), faiss.swig_ptr(allowed))
    scores, found = index.search(x, k, params=_with_selector(index, selector))
    scores[found < 0] = -np.inf
    return scores, found


def _with_selector(index, selector):
    """Search parameters of ``index``'s type holding ``selector`` and its current settings (an id
    map passes them, with the selector translated to its own ids, to the index inside)."""
    import faiss

    index = faiss.downcast_index(index)
    if hasattr(index, "id_map") or isinstance(index, faiss.IndexPreTransform):
        return _with_selector(index.index, selector)
    if isinstance(index, faiss.IndexIVF):
        return faiss.SearchParametersIVF(sel=selector, nprobe=index.nprobe)
    if isinstance(index, faiss.IndexHNSW):
        return faiss.SearchParametersHNSW(sel=selector, efSearch=index.hnsw.efSearch)
    if isinstance(index, faiss.IndexRefine):
        base = _with_selector(index.base_index, selector)
        params = faiss.IndexRefineSearchParameters(sel=selector, k_factor=index.k_factor, base_index_params=base)
        params.base = base  # faiss keeps a bare pointer: hold the Python object while params lives
        return params
    return faiss.SearchParameters(sel=selector)
