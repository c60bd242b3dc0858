"""The fast path must not vanish silently when NumPy's wheel changes."""

from __future__ import annotations

import glob
import os

import numpy as np
import pytest

import model.blas


def test_the_openblas_bundled_with_numpy_is_found_and_used() -> None:
    libdir = os.path.join(os.path.dirname(np.__file__), os.pardir, "numpy.libs")
    if not glob.glob(os.path.join(libdir, "libscipy_openblas*")):
        pytest.skip("this NumPy bundles no OpenBLAS (not a pip wheel): model.blas falls back to NumPy")
    if os.environ.get("MODEL_NO_CBLAS"):
        pytest.skip("MODEL_NO_CBLAS is set")
    # the library is there: a NumPy upgrade that renamed its symbols would otherwise cost ~5% unnoticed
    assert model.blas._cblas is not None, "numpy.libs holds OpenBLAS but model.blas could not bind it"
    x, y = np.arange(5, dtype=np.float32), np.ones(5, np.float32)
    model.blas.axpy(2.0, x, y)
    np.testing.assert_array_equal(y, 1 + 2 * np.arange(5, dtype=np.float32))
