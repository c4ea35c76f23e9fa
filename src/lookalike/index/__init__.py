"""Search structures and the on-disk collection store. Knows vectors and ids, never images."""

from lookalike.index.collection import Collection

__all__ = ["Collection"]
