"""How many threads the numeric libraries (BLAS, OpenMP) may use, per call.

A per-image encoding (VLAD, Fisher, bag of words, a PCA projection) is a few million
multiply-adds: too small for a second BLAS thread to pay, and a second thread that meets a busy
core makes the whole call wait for it (``docs/benchmarks.md``, "Encoders under contention").
:func:`threads_for` runs such a call on one thread and leaves large problems (vocabulary
training) to the libraries' own defaults. Limits go through threadpoolctl, which reaches every
OpenBLAS, MKL and OpenMP runtime loaded in the process (numpy's, scipy's and faiss's are
distinct libraries).
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

#: multiply-adds under which a call runs on one thread: a 2000 x 128 x 256 product takes ~15 ms
#: on one core, where a second thread saves a few milliseconds at best and costs a stall when
#: the other core is busy
SMALL_PROBLEM = 100_000_000

_controller = None
_modules_seen = 0


def _threadpools():
    """A threadpoolctl controller that knows every runtime loaded so far (rebuilt when more
    modules were imported since it was made: one may have loaded another BLAS)."""
    global _controller, _modules_seen
    if _controller is None or len(sys.modules) != _modules_seen:
        from threadpoolctl import ThreadpoolController

        _controller, _modules_seen = ThreadpoolController(), len(sys.modules)
    return _controller


@contextlib.contextmanager
def limited_threads(threads: int) -> Iterator[None]:
    """Run the block with at most ``threads`` BLAS and OpenMP threads in this process."""
    with _threadpools().limit(limits=threads):
        yield


def threads_for(work: float) -> contextlib.AbstractContextManager:
    """One thread for a problem of ``work`` multiply-adds below :data:`SMALL_PROBLEM`; else the
    libraries' defaults."""
    return limited_threads(1) if work < SMALL_PROBLEM else contextlib.nullcontext()
