"""VLFeat (Debian's libvlfeat-dev, libvl.so.1) through ctypes: the reference for VLAD and Fisher.

Used by the tests and by benchmarks/encoding_speed.py. ``load()`` returns None when the library
is missing; ``.ci/run`` installs it.
"""

from __future__ import annotations

import ctypes
import ctypes.util

import numpy as np

VL_TYPE_FLOAT = 1
VLAD_NORMALIZE_COMPONENTS = 1 << 0
VLAD_SQUARE_ROOT = 1 << 1
VLAD_UNNORMALIZED = 1 << 2
FISHER_SQUARE_ROOT = 1 << 0
FISHER_NORMALIZED = 1 << 1
FISHER_IMPROVED = FISHER_SQUARE_ROOT | FISHER_NORMALIZED

_float_p = ctypes.POINTER(ctypes.c_float)


def _ptr(a: np.ndarray):
    return a.ctypes.data_as(_float_p)


class VLFeat:
    def __init__(self, lib: ctypes.CDLL) -> None:
        self.lib = lib
        lib.vl_vlad_encode.restype = None
        lib.vl_vlad_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                       ctypes.c_size_t, ctypes.c_void_p, ctypes.c_size_t,
                                       ctypes.c_void_p, ctypes.c_int]
        lib.vl_fisher_encode.restype = ctypes.c_size_t
        lib.vl_fisher_encode.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_size_t,
                                         ctypes.c_size_t, ctypes.c_void_p, ctypes.c_void_p,
                                         ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
        lib.vl_set_num_threads.argtypes = [ctypes.c_size_t]

    def set_threads(self, n: int) -> None:
        self.lib.vl_set_num_threads(n)

    def vlad(self, x: np.ndarray, centers: np.ndarray, assignments: np.ndarray, flags: int) -> np.ndarray:
        """``assignments``: (T, K) float32 weights, one-hot for hard assignment."""
        x, centers = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(centers, np.float32)
        assignments = np.ascontiguousarray(assignments, np.float32)
        k, d = centers.shape
        out = np.zeros(k * d, np.float32)
        self.lib.vl_vlad_encode(_ptr(out), VL_TYPE_FLOAT, _ptr(centers), d, k, _ptr(x), len(x),
                                _ptr(assignments), flags)
        return out

    def fisher(self, x, means, variances, weights, flags: int) -> np.ndarray:
        x, means = np.ascontiguousarray(x, np.float32), np.ascontiguousarray(means, np.float32)
        variances = np.ascontiguousarray(variances, np.float32)
        weights = np.ascontiguousarray(weights, np.float32)
        k, d = means.shape
        out = np.zeros(2 * k * d, np.float32)
        self.lib.vl_fisher_encode(_ptr(out), VL_TYPE_FLOAT, _ptr(means), d, k, _ptr(variances),
                                  _ptr(weights), _ptr(x), len(x), flags)
        return out


def load() -> VLFeat | None:
    for name in ("libvl.so.1", ctypes.util.find_library("vl")):
        if not name:
            continue
        try:
            return VLFeat(ctypes.CDLL(name))
        except OSError:
            continue
    return None
