"""The float32 BLAS calls NumPy does not expose: GEMM/GEMV with beta, saxpy, srotm.

NumPy's ``matmul`` always overwrites its output (BLAS beta = 0). Calling the
OpenBLAS that NumPy itself ships with beta != 0 lets a weight-gradient GEMM
accumulate straight into an optimizer's velocity, which saves three passes over
every weight per momentum step. Every function here falls back to NumPy when
that library is missing (``MODEL_NO_CBLAS=1`` forces it) or the arrays are not
contiguous float32.
"""

from __future__ import annotations

import ctypes
import glob
import os

import numpy as np

__all__ = ["accumulate_gradients", "axpy", "decay_and_add"]


class _CBLAS:
    """float32 ``sgemm``/``sgemv``/``saxpy`` of the OpenBLAS that NumPy itself links, via ctypes.

    NumPy's ``matmul`` always overwrites its output (BLAS beta = 0). Calling the
    same library with beta != 0 lets a weight-gradient GEMM accumulate straight
    into an optimizer's velocity, v = beta * v + X.T @ dZ, at the cost of the
    plain product: that replaces three passes over every weight per step
    (write dW, v *= mu, v += dW) and two for the L2 term (one saxpy instead).
    Only arrays that are C-contiguous float32 are handed over. ``None`` when
    NumPy's wheel-bundled OpenBLAS (``numpy.libs/libscipy_openblas*``) is not
    found; callers then fall back to NumPy.
    """

    ROW_MAJOR, NO_TRANS, TRANS = 101, 111, 112

    def __init__(self, lib: ctypes.CDLL, prefix: str, suffix: str, int_t: type) -> None:
        P, F = ctypes.c_void_p, ctypes.c_float
        self.sgemm = getattr(lib, f"{prefix}sgemm{suffix}")
        self.sgemm.argtypes = [ctypes.c_int] * 3 + [int_t] * 3 + [F, P, int_t, P, int_t, F, P, int_t]
        self.sgemm.restype = None
        self.sgemv = getattr(lib, f"{prefix}sgemv{suffix}")
        self.sgemv.argtypes = [ctypes.c_int] * 2 + [int_t] * 2 + [F, P, int_t, P, int_t, F, P, int_t]
        self.sgemv.restype = None
        self.saxpy = getattr(lib, f"{prefix}saxpy{suffix}")
        self.saxpy.argtypes = [int_t, F, P, int_t, P, int_t]
        self.saxpy.restype = None
        self.srotm = getattr(lib, f"{prefix}srotm{suffix}")
        self.srotm.argtypes = [int_t, P, int_t, P, int_t, P]
        self.srotm.restype = None
        self.rotm_param = np.empty(5, np.float32)  # flag, h11, h21, h12, h22

    @classmethod
    def load(cls) -> _CBLAS | None:
        if os.environ.get("MODEL_NO_CBLAS"):
            return None
        libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
        for path in sorted(glob.glob(os.path.join(libdir, "libscipy_openblas*"))):
            try:
                lib = ctypes.CDLL(path)
            except OSError:
                continue
            for prefix, suffix, int_t in (("scipy_cblas_", "64_", ctypes.c_int64), ("scipy_cblas_", "", ctypes.c_int)):
                if hasattr(lib, f"{prefix}sgemm{suffix}"):
                    try:
                        return cls(lib, prefix, suffix, int_t)
                    except AttributeError:
                        continue
        return None


_cblas = _CBLAS.load()


_ADDRESSES: dict[int, tuple[np.ndarray, int]] = {}


def _addr(a: np.ndarray) -> int:
    """``a.ctypes.data``, cached: that attribute builds a ctypes object (~0.8 us), and a
    training step passes the same few buffers to BLAS ~20 times per batch. The cache
    holds each array (so its id cannot be reused while cached) and is bounded."""
    hit = _ADDRESSES.get(id(a))
    if hit is not None and hit[0] is a:
        return hit[1]
    if len(_ADDRESSES) >= 256:
        _ADDRESSES.clear()
    address = a.ctypes.data
    _ADDRESSES[id(a)] = (a, address)
    return address


def _cblas_for(*arrays: np.ndarray) -> _CBLAS | None:
    """The BLAS library when it is loaded and every array is C-contiguous float32, else None."""
    if _cblas is not None and all(a.dtype == np.float32 and a.flags.c_contiguous for a in arrays):
        return _cblas
    return None


def axpy(alpha: float, x: np.ndarray, y: np.ndarray, scratch: np.ndarray | None = None) -> None:
    """y += alpha * x in one pass (BLAS saxpy for contiguous float32; else NumPy, using ``scratch``)."""
    c = _cblas_for(x, y)
    if c is not None:
        c.saxpy(x.size, alpha, _addr(x), 1, _addr(y), 1)
        return
    s = np.multiply(x, x.dtype.type(alpha), out=scratch)
    y += s


def decay_and_add(
    c: float, W: np.ndarray, V: np.ndarray, scratch: np.ndarray | None = None, decay: float = 0.0
) -> None:
    """V += c * W, then W = (1 - decay) * W + V (with the new V): a momentum step with its
    L2 term and a decoupled weight decay (0 without).

    For contiguous float32 one BLAS ``srotm`` (a general 2x2 map applied to the
    pair (W, V): W <- (1 + c - decay) W + V, V <- c W + V) does both in one pass over the
    two arrays instead of two. 1 + c - decay is rounded to float32, an error of at most
    half an ulp of W per step, the same as the rounding of W + V itself.
    """
    lib = _cblas_for(W, V)
    if lib is not None and W.size == V.size:
        p = lib.rotm_param
        p[0], p[1], p[2], p[3], p[4] = -1.0, 1.0 + c - decay, c, 1.0, 1.0
        lib.srotm(W.size, _addr(W), 1, _addr(V), 1, _addr(p))
        return
    if c:
        axpy(c, W, V, scratch)
    if decay:
        W *= W.dtype.type(1.0 - decay)
    W += V


def accumulate_gradients(
    X: np.ndarray, dZ: np.ndarray, ones: np.ndarray, VW: np.ndarray, Vb: np.ndarray, beta: float
) -> bool:
    """VW = beta * VW + X.T @ dZ and Vb = beta * Vb + ones @ dZ in two BLAS calls.

    Returns False (and does nothing) when BLAS cannot be used; the caller then
    forms the gradients with NumPy.
    """
    c = _cblas_for(X, dZ, ones, VW, Vb)
    if c is None:
        return False
    (n, n_in), n_out = X.shape, dZ.shape[1]
    c.sgemm(c.ROW_MAJOR, c.TRANS, c.NO_TRANS, n_in, n_out, n, 1.0, _addr(X), n_in,
            _addr(dZ), n_out, beta, _addr(VW), n_out)  # fmt: skip
    c.sgemv(c.ROW_MAJOR, c.TRANS, n, n_out, 1.0, _addr(dZ), n_out, _addr(ones), 1,
            beta, _addr(Vb), 1)  # fmt: skip
    return True
