"""Numba kernels for commuting covariances (the fast path).

With ``C_a = U diag(lambda_{a,.}) U^T`` for one orthogonal ``U``, every trace in
the fixed-point system reduces to a sum over the ``p`` shared eigen-directions:

    d_i(z, delta)  = sum_b w_b lambda_{b,i} - z,          w_b = c_b / (1 + delta_b)
    t_a            = (1/p) sum_i lambda_{a,i} / d_i                      ((1/p) tr C_a R)
    dt_a/ddelta_b  = (c_b / (1+delta_b)^2) (1/p) sum_i lambda_{a,i} lambda_{b,i} / d_i^2
    dt_a/dz        = (1/p) sum_i lambda_{a,i} / d_i^2                    ((1/p) tr C_a R^2)
    [M^T R M]_{ab} = sum_i mt_{i,a} mt_{i,b} / d_i,        mt = U^T M

so an evaluation costs ``O(p k^2)`` instead of ``O(p^3)``.  The kernels are plain
loops over arrays, compiled once (``cache=True``) and parallel over the points
``z``; the Python wrappers live in :mod:`rmtgan.solver`.

Array layouts: ``lam_t`` is ``(p, k)`` (C-contiguous, eigen-direction major),
``c`` is ``(k,)``, ``z`` is ``(m,)`` complex, ``delta`` is ``(m, k)`` complex.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange


@njit(parallel=True, cache=True, fastmath=False)
def commuting_evaluate(z, delta, lam_t, c, t_out, jac_out, tz_out):  # pragma: no cover - compiled
    """Fill ``t_out (m,k)``, ``jac_out (m,k,k)`` and ``tz_out (m,k)`` in place."""
    m = z.shape[0]
    p, k = lam_t.shape
    inv_p = 1.0 / p
    for j in prange(m):
        w = np.empty(k, dtype=np.complex128)
        for b in range(k):
            w[b] = c[b] / (1.0 + delta[j, b])
        t = np.zeros(k, dtype=np.complex128)
        tz = np.zeros(k, dtype=np.complex128)
        s = np.zeros((k, k), dtype=np.complex128)
        zj = z[j]
        for i in range(p):
            d = -zj
            for b in range(k):
                d += w[b] * lam_t[i, b]
            r = 1.0 / d
            r2 = r * r
            for a in range(k):
                la = lam_t[i, a]
                t[a] += la * r
                lr2 = la * r2
                tz[a] += lr2
                for b in range(a, k):
                    s[a, b] += lr2 * lam_t[i, b]
        for a in range(k):
            t_out[j, a] = t[a] * inv_p
            tz_out[j, a] = tz[a] * inv_p
            for b in range(k):
                sab = s[a, b] if b >= a else s[b, a]
                wb = w[b]
                jac_out[j, a, b] = (wb * wb / c[b]) * sab * inv_p if c[b] > 0 else 0.0


@njit(parallel=True, cache=True)
def commuting_mean_quadratic(z, delta, lam_t, c, mt, out, dz_out):  # pragma: no cover - compiled
    """Fill ``out[j] = M^T R(z_j) M`` and ``dz_out[j] = M^T R(z_j)^2 M`` (each ``(k_m, k_m)``).

    ``mt`` is ``U^T M`` with shape ``(p, k_m)``; ``R`` is the no-means resolvent at
    the given ``delta`` (``delta`` held fixed for the z-derivative).
    """
    m = z.shape[0]
    p, k = lam_t.shape
    km = mt.shape[1]
    for j in prange(m):
        w = np.empty(k, dtype=np.complex128)
        for b in range(k):
            w[b] = c[b] / (1.0 + delta[j, b])
        acc = np.zeros((km, km), dtype=np.complex128)
        acc2 = np.zeros((km, km), dtype=np.complex128)
        zj = z[j]
        for i in range(p):
            d = -zj
            for b in range(k):
                d += w[b] * lam_t[i, b]
            r = 1.0 / d
            r2 = r * r
            for a in range(km):
                ma = mt[i, a]
                if ma == 0.0:
                    continue
                for b in range(a, km):
                    v = ma * mt[i, b]
                    acc[a, b] += v * r
                    acc2[a, b] += v * r2
        for a in range(km):
            for b in range(km):
                out[j, a, b] = acc[a, b] if b >= a else acc[b, a]
                dz_out[j, a, b] = acc2[a, b] if b >= a else acc2[b, a]
