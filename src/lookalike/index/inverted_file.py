"""An inverted file over bag-of-words vectors: a query touches only the posting lists of its words.

Posting lists are the rows of a sparse word-by-image matrix (``scipy.sparse`` CSR); scoring a
query is a sparse product that reads only the rows of the words the query contains, so search
cost grows with the query's words and their list lengths, not with the vocabulary or the
database size. Scores are the cosine similarity of L2-normalised tf-idf vectors, exactly.
"""

from __future__ import annotations

import numpy as np
from scipy import sparse

from lookalike.errors import LookalikeError
from lookalike.postprocess.tfidf import idf_weights


class InvertedFile:
    """Sparse search over bag-of-words vectors; ids are int64 chosen by the caller, as in faiss.

    With ``weighting="tfidf"`` (the default) rows are word counts, weighted by tf-idf with the idf
    of the documents added so far, and scored by cosine. With ``weighting="none"`` rows are used
    as given (already weighted and normalised, like the ``bow`` descriptor's) and scored by their
    inner product.
    """

    def __init__(self, n_words: int, weighting: str = "tfidf") -> None:
        if n_words < 1:
            raise LookalikeError(f"n_words={n_words} should be >= 1")
        if weighting not in ("tfidf", "none"):
            raise LookalikeError(f"weighting={weighting!r}; choose tfidf or none")
        self.n_words = n_words
        self.weighting = weighting
        self._counts = sparse.csr_matrix((0, n_words), dtype=np.float32)  # (N, K) raw counts
        self._ids = np.zeros(0, dtype=np.int64)
        self._postings: sparse.csr_matrix | None = None  # (K, N) weighted, built lazily
        self.idf_ = np.zeros(n_words, dtype=np.float32)

    @property
    def ntotal(self) -> int:
        return len(self._ids)

    def add(self, counts: np.ndarray | sparse.spmatrix, ids: np.ndarray) -> None:
        """Add documents: ``counts (N, K)`` word counts and their ``ids (N,)``."""
        counts = sparse.csr_matrix(counts, dtype=np.float32)
        ids = np.asarray(ids, dtype=np.int64)
        if counts.shape[1] != self.n_words or counts.shape[0] != len(ids):
            raise LookalikeError(
                f"expected counts (N, {self.n_words}) for {len(ids)} ids, got {counts.shape}")
        self._counts = sparse.vstack([self._counts, counts]).tocsr()
        self._ids = np.concatenate([self._ids, ids])
        self._postings = None  # idf changed

    def remove(self, ids: np.ndarray) -> int:
        keep = ~np.isin(self._ids, np.asarray(ids, dtype=np.int64))
        removed = int((~keep).sum())
        self._counts, self._ids, self._postings = self._counts[keep], self._ids[keep], None
        return removed

    def _build(self) -> sparse.csr_matrix:
        if self._postings is None:
            rows = self._counts
            if self.weighting == "tfidf":
                self.idf_ = idf_weights(rows)
                rows = _tfidf(rows, self.idf_)
            self._postings = rows.T.tocsr()  # (K, N): one row per word
        return self._postings

    def search(self, counts: np.ndarray | sparse.spmatrix, k: int) -> tuple[np.ndarray, np.ndarray]:
        """``k`` best ids by tf-idf cosine for each row of ``counts (Q, K)``; faiss-style output."""
        postings = self._build()
        queries = sparse.csr_matrix(counts, dtype=np.float32)
        if queries.shape[1] != self.n_words:
            raise LookalikeError(f"queries should have {self.n_words} word counts, got {queries.shape[1]}")
        if self.weighting == "tfidf":
            queries = _tfidf(queries, self.idf_)
        scores = (queries @ postings).toarray()  # (Q, N): only the query words' rows are read
        n = scores.shape[1]
        out_scores = np.full((len(scores), k), -np.inf, dtype=np.float32)
        out_ids = np.full((len(scores), k), -1, dtype=np.int64)
        if n == 0:
            return out_scores, out_ids
        top = min(k, n)
        best = np.argpartition(-scores, top - 1, axis=1)[:, :top]
        order = np.argsort(-np.take_along_axis(scores, best, axis=1), axis=1, kind="stable")
        best = np.take_along_axis(best, order, axis=1)
        out_scores[:, :top] = np.take_along_axis(scores, best, axis=1)
        out_ids[:, :top] = self._ids[best]
        return out_scores, out_ids



def _tfidf(counts: sparse.csr_matrix, idf: np.ndarray) -> sparse.csr_matrix:
    """Sparse L2-normalised tf-idf rows: the sparse twin of :func:`lookalike.postprocess.tfidf.tfidf`."""
    tf = sparse.diags(1.0 / np.maximum(np.asarray(counts.sum(axis=1)).ravel(), 1e-12)) @ counts
    weighted = tf @ sparse.diags(idf)
    norms = np.sqrt(np.asarray(weighted.multiply(weighted).sum(axis=1)).ravel())
    return (sparse.diags(1.0 / np.maximum(norms, 1e-12)) @ weighted).tocsr().astype(np.float32)
