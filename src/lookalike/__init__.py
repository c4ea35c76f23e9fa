"""lookalike: visual search over image collections.

The data flows one way, and the sub-packages follow it::

    io/ -> descriptors/ -> postprocess/ -> index/ -> rerank/ -> evaluate/

Importing ``lookalike`` stays light: no torch, OpenCV or faiss until they are used.
"""

__version__ = "0.1.0"

from lookalike.errors import LookalikeError

__all__ = ["LookalikeError", "__version__"]
