r"""The fold system: support edges on the real axis, for every backend.

Outside the support the solution ``delta`` of the fixed-point system is real, and
``J = dt/ddelta`` is entrywise non-negative (``tr(C_a R C_b R) = ||C_a^{1/2} R
C_b^{1/2}||_F^2 >= 0``) with Perron root ``lambda < 1`` on the physical branch.
An edge is a fold of that branch: ``lambda = 1``.  :func:`fold_data` gathers what
the branch looks like at a point (Perron data, ``d delta / dx``, the derivatives
of ``lambda``, the eigenvalue count left of the point); :func:`fold_newton` solves
the fold system with its exact Jacobian.  A backend supplies
``fold_point(x, delta, fast_jac=...)`` (``t``, ``J``, ``dt/dz`` and a function giving
``d(Jv)/ddelta``, ``d(Jv)/dx`` along a direction ``v``, or ``w^T`` times them for a
vector ``w``) and ``negative_count``.
"""

from __future__ import annotations

import numpy as np


def _solve(A: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``A^{-1} b``, or NaN where ``A`` is singular (exactly at a fold)."""
    try:
        with np.errstate(all="ignore"):
            return np.linalg.solve(A, b)
    except np.linalg.LinAlgError:
        return np.full(np.shape(b), np.nan)


def perron(J: np.ndarray):
    """Perron root ``lambda`` of a real non-negative ``k x k`` matrix, right ``r`` and left ``l`` vectors.

    Normalised with ``r > 0``, ``sum(r) = 1`` and ``l^T r = 1``.
    """
    w, V = np.linalg.eig(J)
    i = int(np.argmax(w.real))
    lam = float(w[i].real)
    r = np.abs(V[:, i].real)
    r = r / r.sum()
    wl, Vl = np.linalg.eig(J.T)
    il = int(np.argmin(np.abs(wl - lam)))
    ell = np.abs(Vl[:, il].real)
    ell = ell / (ell @ r)
    return lam, r, ell


def fold_data(be, x: float, d: np.ndarray, exact: bool = False, count: bool = True):
    """Everything about the real branch at ``(x, delta)``: residual, ``J``, Perron data, derivatives.

    Returns a dict with ``F`` (``delta - t``), ``J``, ``tz``, ``lam``, ``r``, ``l``,
    ``dd`` (``d delta / dx`` along the branch), ``glam`` (gradient of ``lambda`` in
    ``delta``: ``l^T d(J r) / d delta``), ``lx`` (``d lambda / dx`` at fixed ``delta``)
    and, with ``count``, ``neg``: the number of negative eigenvalues of the real matrix
    ``A(x, delta)`` less the sizes of the classes with
    ``1 + delta_b < 0`` -- in a gap, ``p`` times the ``X X^T / p``-side CDF (exact
    separation), constant along the gap.

    ``be`` is any backend with ``fold_point`` and ``negative_count``.  ``F`` is always
    in double precision.  On the dense backend ``J`` (hence ``lam``, whose value 1
    defines an edge) is exact only with ``exact=True`` (the fold Newton); the walk's
    steps take it from single-precision products (about 1e-7 relative), enough to
    predict where the fold is.
    """
    d = np.asarray(d, float)
    t, J, tz, along = be.fold_point(float(x), d, fast_jac=not exact)
    lam, r, ell = perron(J)
    glam, lx = along(r, ell)  # d lambda = l^T dJ r
    dd = _solve(np.eye(J.shape[0]) - J, tz)  # NaN exactly at a fold
    fd = {"x": float(x), "d": d, "F": d - t, "J": J, "tz": tz, "lam": lam, "r": r,
          "l": ell, "dd": dd, "glam": glam, "lx": float(lx)}
    if count:
        fd["neg"] = be.negative_count(x, d)
    return fd


def _residual(fd) -> float:
    """Residual of the fold system at ``fd``: ``|F| / max(1, |delta|)`` and ``|lambda - 1|``, the larger."""
    return max(np.max(np.abs(fd["F"])) / max(1.0, np.max(np.abs(fd["d"]))), abs(fd["lam"] - 1.0))


def fold_newton(be, x0: float, d0: np.ndarray, lo: float, hi: float, scale: float, maxiter: int = 14):
    r"""Newton on the fold system ``delta = t(delta, x)``, ``lambda(J(delta, x)) = 1``.

    Unknowns ``(delta, x)`` are real; the Jacobian of the system is
    ``[[I - J, -dt/dx], [d lambda/d delta, d lambda/dx]]`` with
    ``d lambda = l^T dJ r`` (Perron vectors, ``l^T r = 1``): ``J`` and ``dt/dx`` in
    double precision once the residual is below 1e-2 (before that, from the backend's
    fast products, about 1e-7 relative on the dense one), the second derivatives behind
    ``d lambda`` from the backend (single-precision products on the dense one, about
    1e-7 relative: they change
    the rate of convergence, not the root).  Steps are damped to keep ``x`` in
    ``[lo, hi]`` (to ``1e-9`` of its width: a start on the bracket's end is common).
    Converged at an iterate whose residual (``F`` relative to ``max(1, |delta|)``, and
    ``|lambda - 1|``) is at most ``1e-13``, or when the steps fall below rounding --
    in ``x`` relative to the bracket's magnitude (spectra of real features span many
    orders of magnitude; an edge near 0 needs a small step), never below ``1e-14`` of
    ``scale`` -- with a residual below ``1e-9``.  Returns the fold data
    (:func:`fold_data`) there, or ``None``.
    """
    x, d = float(x0), np.array(d0, float)
    k = d.size
    xs = max(abs(lo), abs(hi), 1e-14 * scale)
    slack = 1e-9 * max(hi - lo, 1e-16 * xs)
    last = np.inf
    for _ in range(maxiter):
        # far from the fold (residual above 1e-2) single-precision products steer as well
        exact = last <= 1e-2
        fd = fold_data(be, x, d, exact=exact, count=False)
        F = fd["F"]
        g = fd["lam"] - 1.0
        res = _residual(fd)
        if not np.isfinite(res):
            return None
        M = np.zeros((k + 1, k + 1))
        M[:k, :k] = np.eye(k) - fd["J"]
        M[:k, k] = -fd["tz"]
        M[k, :k] = fd["glam"]
        M[k, k] = fd["lx"]
        try:
            step = np.linalg.solve(M, np.concatenate([F, [g]]))
        except np.linalg.LinAlgError:
            return None
        if not np.all(np.isfinite(step)):
            return None
        if res <= 1e-13 and exact:
            fd["neg"] = be.negative_count(x, d)
            return fd
        if res > 4 * last and res > 1e-6:
            return None
        last = res
        for _ in range(40):
            if lo - slack <= x - step[k] <= hi + slack and np.all(np.abs(1.0 + d - step[:k]) > 1e-12):
                break
            step = 0.5 * step
        else:
            return None
        d = d - step[:k]
        x = x - step[k]
        if abs(step[k]) <= 1e-15 * xs and np.max(np.abs(step[:k])) <= 1e-14 * (1 + np.max(np.abs(d))):
            fd = fold_data(be, x, d, exact=True)
            return fd if _residual(fd) < 1e-9 else None
    return None
