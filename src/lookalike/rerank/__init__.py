"""Re-ranking: what makes the top of a global ranking right.

Pure functions at the bottom (``spatial``: matching and RANSAC verification; ``expansion``: AQE,
alpha-QE, DBA; ``diffusion``: the kNN graph and its linear system; ``emd``: exact re-scoring of
colour histograms) and, above them, ``steps``: small classes with ``fit`` on the database and
``__call__`` on rankings, chained by :class:`lookalike.rerank.steps.Reranker`.
"""
