"""A few eigenvalues of a real symmetric matrix, robust to LAPACK's MRRR failures."""

from __future__ import annotations

import numpy as np
import scipy.linalg


def eigh_subset(a: np.ndarray, lo: int, hi: int, *, vectors: bool = False, lower: bool = True,
                overwrite_a: bool = False):
    """Eigenvalues ``lo .. hi`` (ascending, 0-based, inclusive) of ``a``, and eigenvectors if ``vectors``.

    LAPACK's ``?syevr`` (SciPy's default for a subset) can stop with "Internal Error"
    on matrices whose eigenvalues come in tight clusters (seen on a covariance with
    two eigenvalues, 63 and 73 times repeated).  It is retried with ``?syevx``
    (bisection and inverse iteration), then with the full ``?syevd``; ``a`` is kept
    for the retries, so ``overwrite_a`` applies to the last attempt only.
    """
    kw = dict(lower=lower, check_finite=False, eigvals_only=not vectors)
    for driver in ("evr", "evx"):
        try:
            return scipy.linalg.eigh(a, subset_by_index=[lo, hi], driver=driver, **kw)
        except np.linalg.LinAlgError:
            continue
    out = scipy.linalg.eigh(a, driver="evd", overwrite_a=overwrite_a, **kw)
    if vectors:
        w, V = out
        return w[lo:hi + 1], V[:, lo:hi + 1]
    return out[lo:hi + 1]
