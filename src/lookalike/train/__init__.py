"""Training for retrieval: fine-tune a backbone and its GeM pooling on labelled images.

Pure functions at the bottom (:mod:`~lookalike.train.losses`, :mod:`~lookalike.train.mining`),
the data (:mod:`~lookalike.train.data`), the network and its one-file format
(:mod:`~lookalike.train.model`), and the loop with its config (:mod:`~lookalike.train.loop`).
Importing this package imports torch.
"""

from lookalike.train.loop import FinetuneConfig, Finetuner

__all__ = ["FinetuneConfig", "Finetuner"]
