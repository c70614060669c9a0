"""Numba kernels for commuting covariances (the fast path).

With ``C_a = U diag(lambda_{a,.}) U^T`` for one orthogonal ``U``, every trace in
the fixed-point system reduces to a sum over the ``p`` shared eigen-directions:

    d_i(z, delta)  = sum_b w_b lambda_{b,i} - z,          w_b = c_b / (1 + delta_b)
    t_a            = (1/p) sum_i lambda_{a,i} / d_i                      ((1/p) tr C_a R)
    dt_a/ddelta_b  = (c_b / (1+delta_b)^2) (1/p) sum_i lambda_{a,i} lambda_{b,i} / d_i^2
    dt_a/dz        = (1/p) sum_i lambda_{a,i} / d_i^2                    ((1/p) tr C_a R^2)
    [M^T R M]_{ab} = sum_i mt_{a,i} mt_{b,i} / d_i,        mt = (U^T M)^T

so an evaluation costs ``O(p k^2)`` instead of ``O(p^3)``.  The kernels are plain
loops over arrays in real arithmetic (``1/d = conj(d)/|d|^2``), one pass to form
``1/d_i`` and ``1/d_i^2`` and then contiguous dot products that LLVM vectorises.
Each is compiled twice from the same per-point routine: serially (few points:
no thread start-up) and in parallel over the points.  They are compiled once and
cached on disk (``cache=True``); the Python entry points choose the variant.

Eigen-directions that carry the same eigenvalue in every class are merged
(``lam`` holds the ``q <= p`` distinct columns, ``lamw`` the same times their
multiplicities), so isotropic classes cost ``O(k^2)`` per point whatever ``p``.

Array layouts: ``lam``, ``lamw`` are ``(k, q)`` C-contiguous, ``c`` is ``(k,)``,
``z`` is ``(m,)`` complex, ``delta`` is ``(m, k)`` complex, ``mm`` is ``(k, k, q)``.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

#: from this many points on, the parallel variant is used.
PARALLEL_MIN_POINTS = 16


@njit(cache=True, fastmath=True, inline="always")
def _inverse_diagonal(z, w_re, w_im, lam, rr, ri, r2r, r2i):  # pragma: no cover - compiled
    """``1/d_i`` and ``1/d_i^2`` (real and imaginary parts) for one point."""
    k, p = lam.shape
    zr, zi = z.real, z.imag
    for i in range(p):
        dr = -zr
        di = -zi
        for b in range(k):
            dr += w_re[b] * lam[b, i]
            di += w_im[b] * lam[b, i]
        inv = 1.0 / (dr * dr + di * di)
        a_ = dr * inv
        b_ = -di * inv
        rr[i] = a_
        ri[i] = b_
        r2r[i] = a_ * a_ - b_ * b_
        r2i[i] = 2.0 * a_ * b_


@njit(cache=True, fastmath=True, inline="always")
def _evaluate_point(j, z, delta, lam, lamw, c, inv_p, t_out, jac_out, tz_out,
                    rr, ri, r2r, r2i, wr, wi):  # pragma: no cover - compiled
    k, p = lam.shape
    for b in range(k):
        w = c[b] / (1.0 + delta[j, b])
        wr[b] = w.real
        wi[b] = w.imag
    _inverse_diagonal(z[j], wr, wi, lam, rr, ri, r2r, r2i)
    for a in range(k):
        s1 = 0.0
        s2 = 0.0
        s3 = 0.0
        s4 = 0.0
        for i in range(p):
            la = lamw[a, i]
            s1 += la * rr[i]
            s2 += la * ri[i]
            s3 += la * r2r[i]
            s4 += la * r2i[i]
        t_out[j, a] = complex(s1, s2) * inv_p
        tz_out[j, a] = complex(s3, s4) * inv_p
        for b in range(a, k):
            s1 = 0.0
            s2 = 0.0
            for i in range(p):
                lab = lamw[a, i] * lam[b, i]
                s1 += lab * r2r[i]
                s2 += lab * r2i[i]
            sab = complex(s1, s2) * inv_p
            wa = complex(wr[a], wi[a])
            wb = complex(wr[b], wi[b])
            jac_out[j, a, b] = (wb * wb / c[b]) * sab
            jac_out[j, b, a] = (wa * wa / c[a]) * sab


@njit(cache=True, fastmath=True)
def _evaluate_serial(z, delta, lam, lamw, c, inv_p, t_out, jac_out, tz_out):  # pragma: no cover - compiled
    k, p = lam.shape
    rr, ri, r2r, r2i = np.empty(p), np.empty(p), np.empty(p), np.empty(p)
    wr, wi = np.empty(k), np.empty(k)
    for j in range(z.shape[0]):
        _evaluate_point(j, z, delta, lam, lamw, c, inv_p, t_out, jac_out, tz_out, rr, ri, r2r, r2i, wr, wi)


@njit(cache=True, fastmath=True, parallel=True)
def _evaluate_parallel(z, delta, lam, lamw, c, inv_p, t_out, jac_out, tz_out):  # pragma: no cover
    k, p = lam.shape
    for j in prange(z.shape[0]):
        rr, ri, r2r, r2i = np.empty(p), np.empty(p), np.empty(p), np.empty(p)
        wr, wi = np.empty(k), np.empty(k)
        _evaluate_point(j, z, delta, lam, lamw, c, inv_p, t_out, jac_out, tz_out,
                        rr, ri, r2r, r2i, wr, wi)


@njit(cache=True, fastmath=True, inline="always")
def _mean_point(j, z, delta, lam, c, mm, out, dz_out, rr, ri, r2r, r2i, wr, wi):  # pragma: no cover
    k, p = lam.shape
    km = mm.shape[0]
    for b in range(k):
        w = c[b] / (1.0 + delta[j, b])
        wr[b] = w.real
        wi[b] = w.imag
    _inverse_diagonal(z[j], wr, wi, lam, rr, ri, r2r, r2i)
    for a in range(km):
        for b in range(a, km):
            s1 = 0.0
            s2 = 0.0
            s3 = 0.0
            s4 = 0.0
            for i in range(p):
                v = mm[a, b, i]
                s1 += v * rr[i]
                s2 += v * ri[i]
                s3 += v * r2r[i]
                s4 += v * r2i[i]
            out[j, a, b] = complex(s1, s2)
            out[j, b, a] = complex(s1, s2)
            dz_out[j, a, b] = complex(s3, s4)
            dz_out[j, b, a] = complex(s3, s4)


@njit(cache=True, fastmath=True, parallel=True)
def _mean_quadratic(z, delta, lam, c, mm, out, dz_out):  # pragma: no cover - compiled
    k, p = lam.shape
    for j in prange(z.shape[0]):
        rr, ri, r2r, r2i = np.empty(p), np.empty(p), np.empty(p), np.empty(p)
        wr, wi = np.empty(k), np.empty(k)
        _mean_point(j, z, delta, lam, c, mm, out, dz_out, rr, ri, r2r, r2i, wr, wi)


def commuting_evaluate(z, delta, lam, lamw, c, inv_p, t_out, jac_out, tz_out) -> None:
    """Fill ``t_out (m,k)``, ``jac_out (m,k,k)`` (``dt/ddelta``) and ``tz_out (m,k)`` in place.

    ``lam`` (k, q) holds the distinct eigen-directions, ``lamw = lam * multiplicity``
    and ``inv_p = 1/p``.
    """
    kernel = _evaluate_parallel if z.shape[0] >= PARALLEL_MIN_POINTS else _evaluate_serial
    kernel(z, delta, lam, lamw, c, inv_p, t_out, jac_out, tz_out)


def commuting_mean_quadratic(z, delta, lam, c, mm, out, dz_out) -> None:
    """Fill ``out[j] = M^T R(z_j) M`` and ``dz_out[j] = M^T R(z_j)^2 M`` (``delta`` held fixed).

    ``mm[a, b, i]`` is the sum of ``mt_a mt_b`` over the eigen-directions merged into column ``i``.
    """
    _mean_quadratic(z, delta, lam, c, mm, out, dz_out)
