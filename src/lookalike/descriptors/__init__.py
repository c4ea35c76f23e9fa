"""Descriptors: one vector per image, built by name from a registry.

>>> from lookalike.descriptors import create
>>> gist = create("gist")              # defaults
>>> hist = create("color-hist", space="lab", bins=(8, 8, 8))

Every descriptor returns a float32 vector whose **inner product** with another is their
similarity (bigger is closer). Descriptors compared by other means (chi-square, histogram
intersection, Hellinger) embed themselves with an explicit feature map so that this holds, and
the index only ever needs inner-product search.
"""

from lookalike.descriptors.base import Descriptor, parse_overrides
from lookalike.descriptors.registry import available, create, default_descriptor, descriptor_class, register

__all__ = ["Descriptor", "available", "create", "default_descriptor", "descriptor_class", "parse_overrides", "register"]
