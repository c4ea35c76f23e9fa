"""The exceptions lookalike raises for problems a user can fix.

The CLI prints these as one line (``error: ...``) and never as a traceback, so each message names
the thing at fault and, where it can, says how to fix it.
"""

from __future__ import annotations

from pathlib import Path


class LookalikeError(Exception):
    """Base class of every error caused by input, arguments or files rather than by a bug."""


class ImageError(LookalikeError):
    """An image file that cannot be used.

    ``reason`` is one of the short codes in ``REASONS``, so that run summaries can count them.
    """

    REASONS = ("empty", "not an image", "truncated", "too large", "unreadable", "descriptor failed",
               "unsupported format", "symlink loop")

    def __init__(self, path: str | Path, reason: str, detail: str = "") -> None:
        if reason not in self.REASONS:
            raise ValueError(f"unknown reason {reason!r}")
        self.path = str(path)
        self.reason = reason
        self.detail = detail
        super().__init__(f"{self.path}: {reason}" + (f" ({detail})" if detail else ""))

    def __reduce__(self):  # travels back from worker processes
        return type(self), (self.path, self.reason, self.detail)


class CollectionError(LookalikeError):
    """A collection directory that is missing, locked, or built for something else."""


class ProtocolError(LookalikeError):
    """A benchmark protocol JSON file that does not follow the documented format."""
