r"""Building the Gram spectrum when every evaluation is a ``p x p`` inverse.

The generic construction of :class:`rmtgan.spectrum.GramSpectrum` (a scan of the
real axis, each point reached by continuation in ``Im z``) spends thousands of
evaluations; with one complex-symmetric inverse per evaluation that is the whole
cost.  This module builds the same objects (edges, Chebyshev data, masses) from a
few hundred evaluations, most of them in real arithmetic:

1. **walk outside** -- from ``x = U`` (above the support) to the left along the
   real branch of ``delta`` (real arithmetic).  There ``J = dt/ddelta`` is an
   entrywise non-negative matrix with Perron root ``lambda < 1``; an edge is a
   fold, ``lambda = 1``.  Along the branch ``1 - lambda ~ kappa sqrt(x - b)``, so
   ``b ~ x - m / (2 m')`` (``m = 1 - lambda``, ``m'`` from the second
   derivatives) predicts the edge, which is then solved by Newton's method on the
   fold system (:func:`fold_newton`, exact ``J``, quadratic convergence);
2. **one interval** (the common case) -- when ``X X^T / p`` has no atom at 0,
   ``delta`` is analytic through ``z = 0``: the real branch of the negative axis,
   followed to the right, gives the leftmost edge ``a`` in real arithmetic too (the
   two walks run side by side, :meth:`rmtgan.dense.DenseBackend.concurrently`); the
   first Chebyshev level on ``[a, b]`` is then solved from both edges towards the
   middle, two nodes per round, each round's guesses from the Hermite interpolant of
   ``u(theta)`` through the edges and the nodes of the earlier rounds.  A node outside the
   support, or masses that do not add up, send the build to step 2';
2'. **walk inside** -- the local expansion at the fold,
   ``delta ~ delta_b + i s kappa r`` with ``s = sqrt(b - x)``, gives the first
   complex point; the walk continues in ``s`` (where ``delta`` is analytic) with a
   cubic Hermite predictor and step control until ``(Im delta)^2``, linear in ``x``
   near a soft edge, predicts the left edge, solved again as a fold;
3. **expansion** -- on ``[a, b]`` with ``x = a + (b - a) sin^2 theta``,
   ``u_a = 1/(1 + delta_a)`` is analytic in ``theta``; it is sampled on nested
   Chebyshev--Lobatto nodes (9, 17, 33, ...; both edges are nodes with known
   values) solved in batches by Newton from the previous level (its rational or
   polynomial Hermite interpolant when every node has a slope), until the coefficients
   decay; the new nodes of the level or two that would end the series are taken from a
   rational interpolant of the current level (rational Hermite, or AAA) instead of
   solved, when exact solves confirm it (:meth:`_Expansion._fill`); a range they do
   not resolve is halved in ``theta``
   recursively, each half a series of its own started from its parent's
   interpolants (:func:`lobatto_panels`);
4. **certificate** -- the masses must add up to ``1 - atom`` (else the walk goes
   on to the left), and the interpolated density is compared with exact solves at
   points between the nodes; only then is ``density(x)`` served from the
   interpolant.

Whatever does not fit (a hard edge at 0, a gap found inside an interval, a fold
that Newton cannot resolve) returns ``None`` and the caller falls back to the
generic, slower construction.
"""

from __future__ import annotations

import numpy as np
from numpy.polynomial import chebyshev as cheb

from rmtgan._folds import _solve, fold_data, fold_newton
from rmtgan._panels import Panel
from rmtgan.solver import DEFAULT_TOL, ConvergenceError, newton, quadratic_tolerance

#: relative size of the last quarter of the Chebyshev coefficients at which an expansion is resolved.
TAIL_RTOL = 1e-12  # on the last four coefficients
#: a tail that stops decreasing (a rounding plateau) below this also counts as resolved.
PLATEAU_RTOL = 1e-10
#: largest number of Lobatto nodes per interval.
MAX_NODES = 257
#: an interval that one series cannot resolve is halved in ``theta`` recursively into
#: panels of at most this many Lobatto nodes each (judged hopeless from 17 nodes on) ...
PANEL_MAX_NODES = 65
#: ... to at most this depth and this many panels (else the generic panels take over).
PANEL_MAX_DEPTH, PANEL_BUDGET = 30, 512
#: interpolated density must match exact solves to this relative accuracy to be certified.
CERT_RTOL = 1e-9
#: a real point counts as inside the support when ``Im delta`` exceeds this (relative).
INSIDE_RTOL = 1e-9
#: a point of a walk outside the support is the first Newton iterate whose residual is at
#: most ``WALK_TOL`` -- or, on the first two walks (from the upper bound and from
#: ``x < 0``), whose Newton step, its error to first order (the residual amplified by
#: ``(I - J)^{-1}``), is at most ``WALK_STEP`` (relative): no step is taken after it, so
#: its fold data are those of its last evaluation (no inverse of their own).  That error
#: steers the walk only (predictors, the fold's first guess); the edges themselves are
#: solved by the fold Newton to 1e-13.  The step's test on every walk broke one across a
#: gap of a ``wiggly()`` test model next to a near-cusp (a walk then ended on another
#: edge); a residual of 1e-4 without it broke one next to a fold, where ``I - J`` is
#: nearly singular, as an unverified Newton step from there did on the reproduction's model.
WALK_TOL, WALK_STEP = 1e-6, 1e-4
#: from this many Lobatto nodes on, the next level's new nodes may be filled from a rational
#: interpolant of the current ones (:meth:`_Expansion._fill`).
RATIONAL_FROM = 17
#: a walk outside the support solves for the fold once ``1 - lambda`` is below this (or two
#: successive square-root estimates agree).  On the benchmark model the fold Newton converged
#: from ``1 - lambda = 0.56`` (6 evaluations) and 0.51 (from 0.86 too, but not from 0.85 or
#: 0.98): 0.6 instead of 0.3 saves a walk point per edge; a fold found this way is still
#: checked (same eigenvalue count as the walk's point: no support stepped over).
FOLD_TRY = 0.6
#: the expansion targets of :func:`tolerances` stop loosening at this ``tol``.
LOOSEST_TOL = 1e-6


def tolerances(tol: float, n: int) -> dict:
    r"""The accuracy targets of the dense build for a solver tolerance ``tol``.

    The constants above are for the default ``tol = 1e-12``; a looser ``tol`` loosens
    them in proportion (never below them, and no further than for ``tol = 1e-6``: a
    tail of 1e-6, an interpolant certified to 1e-3), so that asking for less accuracy
    costs fewer inverses instead of more (node values accurate to ``tol`` make a tail
    plateau at about ``tol``).  The mass tolerance stays below ``0.1 / n``, so that
    interval masses still identify integer eigenvalue counts.

    Returns a dict with ``tail``, ``plateau``, ``cert`` (relative) and ``mass`` (absolute).
    """
    from rmtgan.spectrum import MASS_TOL

    f = float(np.clip(tol / DEFAULT_TOL, 1.0, LOOSEST_TOL / DEFAULT_TOL))
    return {"tail": TAIL_RTOL * f, "plateau": PLATEAU_RTOL * f, "cert": CERT_RTOL * f,
            "mass": max(min(MASS_TOL * f, 0.1 / n), min(MASS_TOL, 0.1 / n))}


class _Fallback(Exception):
    """The fast construction does not apply; use the generic one."""


class _Gap(_Fallback):
    """A point believed inside the support is outside: ``x`` and its real ``delta``."""

    def __init__(self, x: float, d: np.ndarray, where: str = ""):
        super().__init__(f"a gap {where}near x = {x:.6g}")
        self.x = float(x)
        self.d = np.asarray(d, float)


# --------------------------------------------------------------------------- Newton
def chord_newton(be, z: np.ndarray, d0: np.ndarray, tol: float, maxiter: int = 12, tol_quad: float = 0.0,
                 J0: np.ndarray | None = None, j0_err: float = np.inf, refresh: bool = False,
                 last_step: bool = True, tol_step: float = 0.0, single_first: bool = False):
    """:func:`rmtgan.solver.newton` as the dense build uses it.

    Jacobians from single-precision products (``fast_jac``: they steer the steps;
    residuals are in double precision), points whose residual grows twice in a row
    abandoned.  Returns ``delta, converged, J, tz`` (``J, tz``: the last Jacobian
    taken and ``dt/dz``, zero where none was taken, e.g. every step a chord step
    with ``J0``).  ``last_step=False``: the points are the evaluated iterates whose
    residual is below ``tol`` (see :func:`rmtgan.solver.newton`).
    """
    out = newton(be, z, d0, tol=tol, maxiter=maxiter, tol_quad=tol_quad, fast_jac=True, J0=J0,
                 j0_err=j0_err, refresh=refresh, max_growth=2, last_step=last_step,
                 tol_step=tol_step, single_first=single_first)
    return out.delta, out.converged, out.jac, out.tz


def _sqrt_coefficient(fd) -> float:
    r"""``kappa`` of the local expansion ``delta ~ delta_e + kappa sqrt(|x - e|) r`` at a fold ``e``.

    From ``l^T [F_dd(r, r) sigma^2 / 2 + F_x (x - e)] = 0``:
    ``sigma^2 = 2 (e - x) l^T tz / (l^T D r)``; returns ``sqrt(|2 l^T tz / l^T D r|)``.
    """
    num = 2.0 * float(fd["l"] @ fd["tz"])
    den = float(fd["glam"] @ fd["r"])  # l^T D r
    return float(np.sqrt(abs(num / den))) if den != 0 else np.nan


def edge_slope(edge, width: float, right: bool) -> np.ndarray:
    r"""``d delta / d theta`` at an edge of ``[a, b]`` (``theta = pi/2`` at ``b``, 0 at ``a``).

    With ``x = a + (b - a) sin^2 theta``, ``sqrt(|x - e|) ~ sqrt(b - a) |theta - theta_e|``,
    so ``delta ~ delta_e + i kappa sqrt(|x - e|) r`` (the walk's expansion at a fold)
    gives ``-/+ i kappa sqrt(b - a) r`` at the right/left edge.
    """
    return (-1j if right else 1j) * _sqrt_coefficient(edge) * np.sqrt(width) * edge["r"]


def u_slope(u: np.ndarray, ddelta_dx: np.ndarray, th: np.ndarray, width: float) -> np.ndarray:
    r"""``du/dtheta = -u^2 (d delta/dx) dx/dtheta`` with ``dx/dtheta = (b - a) sin 2 theta``.

    ``u = 1/(1 + delta)`` and ``ddelta_dx``: ``(m, k)``; ``th``: ``(m,)``.
    """
    return -(u ** 2) * ddelta_dx * (width * np.sin(2 * np.asarray(th)))[:, None]


# --------------------------------------------------------------------------- the walks
class _Walker:
    def __init__(self, spec):
        self.spec = spec
        self.be = spec._backend
        self.k = spec.model.k
        self.scale = spec.scale
        self.tol = spec.tol

    # ---------------------------------------------------------------- outside
    @property
    def upper(self) -> float:
        """An upper bound of the support (where the walk to the rightmost edge starts)."""
        return self.scale * 1.001

    def start(self):
        U = self.upper
        d0 = -self.spec._traces / U
        d, conv, _, _ = chord_newton(self.be, np.array([U + 0j]), d0[None].astype(complex), WALK_TOL, 40,
                                     last_step=False, tol_step=WALK_STEP)
        if not conv[0] or np.any(np.abs(d[0].imag) > 0):
            raise _Fallback("no real solution at the upper bound")
        return fold_data(self.be, U, d[0].real)

    def walk_out(self, fd, x_floor: float, origin: float | None = None, first: bool = False):
        """From a point of the physical real branch walk left to the next fold (``None``: none)."""
        return self.walk(fd, -1, x_floor, origin, first)

    def walk(self, fd, direction: int, x_stop: float, origin: float | None = None, first: bool = False):
        """Follow the physical real branch from ``fd`` (left: ``direction=-1``, right: ``+1``) to a fold.

        ``origin``: the fold the walk starts next to; the distance from it at most
        doubles per step, so a narrow gap is not stepped across before the fold at its
        other end is predicted (inside the next interval there can be real,
        non-physical solutions that pass every local test).  Returns the fold data,
        or ``None`` when ``x_stop`` is passed first.  ``first``: the walk from the upper
        bound or from ``x < 0``, whose points may also be accepted on their Newton step
        (:data:`WALK_STEP`).
        """
        step_tol = WALK_STEP if first else 0.0
        prev_est = None
        for _ in range(200):
            x, d = fd["x"], fd["d"]
            m = 1.0 - fd["lam"]
            mp = -(fd["glam"] @ fd["dd"] + fd["lx"])  # dm/dx along the branch
            est = x - m / (2.0 * mp) if (direction * mp < 0 and m > 0) else None
            if est is not None and (est <= 0 if direction < 0 else est >= x_stop):
                est = None
            dist = abs(x - est) if est is not None else np.inf
            consistent = est is not None and prev_est is not None and abs(est - prev_est) <= 0.2 * dist
            if est is not None and (m < FOLD_TRY or consistent):
                # the square-root model 1 - lambda ~ kappa sqrt(|x - e|) holds: solve the fold
                guess = d - 2.0 * (x - est) * fd["dd"]
                lo, hi = (max(est - 2 * dist, 0.0), x) if direction < 0 else (x, est + 2 * dist)
                res = fold_newton(self.be, est, guess, lo, hi, self.scale)
                if res is not None and direction * (res["x"] - x) > 0 and res["neg"] == fd["neg"]:
                    res["outside"] = fd  # the branch next to the fold, for the sweep's guesses
                    return res
            prev_est = est
            if (x <= x_stop) if direction < 0 else (x >= x_stop):
                return None
            # far from the fold the square-root model is rough: step a fraction m of the way
            w = float(np.clip(m, 0.25, 0.75))
            if direction < 0:
                target = max(est + w * (x - est) if est is not None else 0.6 * x, 0.5 * x)
            else:
                target = est - w * (est - x) if est is not None else x + 0.3 * (x_stop - x)
            if origin is not None:
                reach = 2.0 * abs(x - origin)
                target = x + direction * min(abs(target - x), reach)
            for _ in range(10):
                # predictor: square-root model at the nearer of the predicted and the left fold
                fold = est
                if origin is not None and (est is None or abs(x - origin) < abs(x - est)):
                    fold = origin
                if fold is not None and (target - fold) * (x - fold) > 0:
                    s_now, s_new = np.sqrt(abs(x - fold)), np.sqrt(abs(target - fold))
                    pred = d + 2.0 * np.sign(x - fold) * s_now * (s_new - s_now) * fd["dd"]
                else:
                    pred = d + (target - x) * fd["dd"]
                dn, conv, _, _ = chord_newton(self.be, np.array([target + 0j]), pred[None].astype(complex),
                                              WALK_TOL, 10, last_step=False,
                                              tol_step=step_tol)
                if conv[0] and np.all(dn[0].imag == 0):
                    # the predictor's error is second order on the branch; a distant real root
                    # (another branch) is not accepted
                    near = (origin is None or np.max(np.abs(dn[0].real - pred.real))
                            <= 0.5 * np.max(np.abs(dn[0].real - d)))
                    nf = fold_data(self.be, target, dn[0].real) if near else None
                    # the same count of negative eigenvalues: no support was stepped over
                    if nf is not None and _physical(nf) and nf["neg"] == fd["neg"]:
                        fd = nf
                        break
                target = x + 0.4 * (target - x)
            else:
                raise _Fallback(f"the real branch could not be followed from x = {x:.6g}")
        raise _Fallback("walk outside the support did not end")

    def from_left(self, x_hi: float):
        """The leftmost edge, walking right from ``x < 0`` on the real branch (``None`` if not applicable).

        ``delta`` is analytic through ``z = 0`` when ``X X^T / p`` has no atom at 0
        (rank ``X = p``), so the branch of the negative axis continues to the first edge.
        ``x_hi`` is an upper bound of the support: the walk starts at ``-x_hi / 2`` and
        gives up at ``x_hi``.
        """
        model = self.spec.model
        rank = round(model.n * (1.0 - self.spec.atom))
        if rank < model.p or model.n <= model.p:
            return None
        xL = -0.5 * x_hi
        d0 = -self.spec._traces / xL
        d, conv, _, _ = chord_newton(self.be, np.array([xL + 0j]), d0[None].astype(complex), WALK_TOL, 40,
                                     last_step=False, tol_step=WALK_STEP)
        if not conv[0] or np.any(d[0].imag != 0):
            return None
        fd = fold_data(self.be, xL, d[0].real)
        if not (fd["lam"] < 1.0 and np.all(fd["dd"] > 0) and np.all(np.isfinite(fd["dd"]))):
            return None
        try:
            fa = self.walk(fd, +1, x_hi, first=True)
        except _Fallback:
            return None
        return fa if fa is not None and 0 < fa["x"] < x_hi else None

    def sweep(self, fa, fb, n: int = 9):
        """Interior Lobatto nodes of ``[a, b]``, solved from both edges towards the middle.

        In rounds of two nodes, the outermost unsolved one at each end (one in the last
        round when their number is odd), solved side by side (one batched Newton).  Each
        round's guesses interpolate ``u(theta)`` through everything known so far -- both
        edges (values, and slopes from their square-root expansions), the last point of
        the walk outside each edge (:func:`outside_point`) and the nodes of the earlier
        rounds (slopes from their Jacobians) -- a Hermite interpolant, so that from the
        second round on a guess lies between known points.  Returns ``u``, ``J``
        and ``du/dtheta`` at the nodes (``theta`` descending); raises :class:`_Fallback` when a node
        is not reached and :class:`_Gap` when one lies outside the support.
        """
        a, b = fa["x"], fb["x"]
        th = (np.pi / 4.0) * (1.0 + lobatto(n))[1:-1]
        m, k = th.size, self.k
        U = np.empty((m, k), complex)
        JJ = np.empty((m, k, k), complex)
        DU = np.empty((m, k), complex)
        ub, ua = 1.0 / (1.0 + fb["d"]), 1.0 / (1.0 + fa["d"])
        known_t = [np.pi / 2, 0.0]
        known_u = [ub, ua]
        known_du = [-(ub ** 2) * edge_slope(fb, b - a, True), -(ua ** 2) * edge_slope(fa, b - a, False)]
        for j, f in enumerate((fb, fa)):
            point = outside_point(f.get("outside"), a, b, known_t[j], known_u[j], known_du[j])
            if point is not None:
                known_t.append(point[0])
                known_u.append(point[1])
                known_du.append(point[2])
        lo, hi = 0, m - 1  # the outermost unsolved nodes next to b and next to a
        while lo <= hi:
            idx = np.array([lo] if lo == hi else [lo, hi])
            # Hermite interpolant in tau = 4 theta / pi - 1 (on [-1, 1]) through the known points
            tau = 4.0 * np.asarray(known_t) / np.pi - 1.0
            c = hermite_coefficients(tau, np.asarray(known_u), (np.pi / 4.0) * np.asarray(known_du))
            pred = 1.0 / _chebval(4.0 * th[idx] / np.pi - 1.0, c) - 1.0
            pred = np.where(pred.imag <= 0, pred.real + 1e-3j * np.abs(pred), pred)
            x = a + (b - a) * np.sin(th[idx]) ** 2
            dn, conv, J, tz = chord_newton(self.be, x + 0j, pred, self.tol, 12,
                                           tol_quad=quadratic_tolerance(self.tol, scaled=True),
                                           single_first=True)
            for j, i in enumerate(idx):
                if conv[j] and not np.any(dn[j].imag > INSIDE_RTOL * (1 + np.abs(dn[j]))):
                    raise _Gap(x[j], dn[j].real, f"inside [{a:.6g}, {b:.6g}] ")
                if not conv[j]:
                    raise _Fallback(f"sweep of [{a:.6g}, {b:.6g}] stopped at x = {x[j]:.6g}")
                ddx = _solve(np.eye(k) - J[j], tz[j])
                if not np.all(np.isfinite(ddx)):
                    raise _Fallback(f"singular Jacobian at x = {x[j]:.6g}")
                U[i] = 1.0 / (1.0 + dn[j])
                JJ[i] = J[j]
                DU[i] = u_slope(U[i:i + 1], ddx[None], th[i:i + 1], b - a)[0]
                known_t.append(th[i])
                known_u.append(U[i])
                known_du.append(DU[i])
            lo, hi = lo + 1, hi - 1
        return U, JJ, DU

    def leave_left(self, fa):
        """First point of the physical real branch just left of a left edge ``a``."""
        return self.leave(fa, -1)

    def leave(self, f, direction: int):
        """First point of the physical real branch next to the fold ``f`` (left: ``-1``, right: ``+1``).

        ``delta ~ delta_e + direction * kappa sqrt(|x - e|) r`` there; the point must be
        in the gap that ends at the fold (same negative count).
        """
        e, kap = f["x"], _sqrt_coefficient(f)
        if not np.isfinite(kap):
            raise _Fallback("degenerate fold")
        for frac in (1e-4, 1e-6, 1e-3):
            x = e * (1.0 + direction * frac)
            pred = f["d"] + direction * kap * np.sqrt(abs(x - e)) * f["r"]
            dn, conv, _, _ = chord_newton(self.be, np.array([x + 0j]), pred[None].astype(complex), 1e-13, 10)
            if conv[0] and np.all(dn[0].imag == 0):
                nf = fold_data(self.be, x, dn[0].real)
                if _physical(nf) and nf["neg"] == f["neg"]:
                    return nf
        side = "left" if direction < 0 else "right"
        raise _Fallback(f"no physical real branch {side} of the edge {e:.6g}")

    def left_fold(self, res, x_in: float):
        """The left edge of the interval being walked, from a fold ``res`` found left of ``x_in``.

        A fold that opens to the left is a right edge: the walk stepped over a gap, and the
        wanted edge is found by following the real branch right from that gap.
        """
        if res is None or res["x"] >= x_in:
            return None
        if _opens_right(res):
            return res
        try:
            res = self.walk(self.leave(res, +1), +1, x_in, origin=res["x"])
        except _Fallback:
            return None
        return res if res is not None and res["x"] < x_in and _opens_right(res) else None

    # ---------------------------------------------------------------- inside
    def _continued(self, x: float):
        """``delta``, ``J`` and ``dt/dz`` (each with a leading axis of 1) at a real ``x`` of the support.

        By continuation in ``Im z`` (the physical branch, whatever real roots lie near);
        ``None`` when ``x`` is outside the support or the continuation fails.
        """
        try:
            d = self.spec._solve_real(np.array([x]))[0]
        except ConvergenceError:
            return None
        if not np.any(d.imag > INSIDE_RTOL * (1 + np.abs(d))):
            return None
        _, J, tz = self.be.evaluate(np.array([x + 0j]), d[None], fast_jac=True)
        return d[None], J, tz

    def walk_in(self, fb):
        """Walk into the interval whose right edge is the fold ``fb``: the left fold and the points."""
        b = fb["x"]
        kap = _sqrt_coefficient(fb)
        if not np.isfinite(kap) or _opens_right(fb):
            raise _Fallback("the fold at the right edge does not open into the support")
        # points: s = sqrt(b - x), delta(s), d delta / ds
        S = [0.0]
        D = [fb["d"].astype(complex)]
        DS = [1j * kap * fb["r"]]
        h = 0.05 * np.sqrt(b)
        est_prev = None
        qmax = 0.0
        smax = np.sqrt(b)
        for _ in range(400):
            s0, d0, ds0 = S[-1], D[-1], DS[-1]
            x0 = b - s0 * s0
            # left-edge estimate from (Im delta)^2 ~ alpha (x - a)
            est = None
            if len(S) > 1:
                q = np.sum(d0.imag)
                qx = -np.sum(ds0.imag) / (2.0 * s0)  # dq/dx
                if q > 0 and qx > 0:
                    est = x0 - q / (2.0 * qx)
            qmax = max(qmax, float(np.sum(d0.imag)))
            near = est is not None and est > 0 and (
                (est_prev is not None and abs(est - est_prev) <= 0.3 * (x0 - est))
                or np.sum(d0.imag) < 0.25 * qmax)
            if near:
                ddx = -ds0 / (2.0 * s0)
                guess = d0.real - (x0 - est) * ddx.real
                res = fold_newton(self.be, est, guess, max(est - 2 * (x0 - est), 0.0), x0, self.scale)
                res = self.left_fold(res, x0)
                if res is not None:
                    return res, np.array(S), np.array(D), np.array(DS)
            est_prev = est
            s1 = s0 + h
            if est is not None and est > 0:
                s1 = min(s1, np.sqrt(b - (est + 0.3 * (x0 - est))))
            if s1 >= smax * (1 - 1e-12):
                if x0 < 1e-8 * b:
                    raise _Fallback("the support reaches 0 (hard edge)")
                s1 = s0 + 0.5 * (smax - s0)
            if not s1 > s0:  # the edge estimate leaves no room for a step (Im delta ~ 0 here)
                raise _Fallback(f"walk inside the support stalled at x = {x0:.6g} (no step left)")
            for _ in range(10):
                hh = s1 - s0
                if len(S) > 1:
                    pred = _hermite_extrapolate(S[-2], D[-2], DS[-2], s0, d0, ds0, s1)
                else:
                    pred = d0 + hh * ds0
                z1 = np.array([b - s1 * s1 + 0j])
                dn, conv, J, tz = chord_newton(self.be, z1, pred[None], 1e-8, 8, tol_quad=1e-6)
                inside = conv[0] and np.any(dn[0].imag > INSIDE_RTOL * (1 + np.abs(dn[0])))
                if conv[0] and not inside:
                    # stepped out: the left edge lies in (x1, x0)
                    x1 = b - s1 * s1
                    res = fold_newton(self.be, 0.5 * (x0 + x1), dn[0].real, x1, x0, self.scale)
                    if res is None:
                        # from the outside: follow the real branch right from x1 to the fold
                        nf = fold_data(self.be, x1, dn[0].real)
                        if _physical(nf):
                            try:
                                res = self.walk(nf, +1, x0)
                            except _Fallback:
                                res = None
                    res = self.left_fold(res, x0)
                    if res is not None and x1 <= res["x"] <= x0:
                        return res, np.array(S), np.array(D), np.array(DS)
                    # no edge there: Newton may have landed on a real root of another branch
                    # next to a near-cusp (the density dips without vanishing); continuation in
                    # Im z gives the physical value, which the walk then takes
                    phys = self._continued(x1)
                    if phys is not None:
                        dn, J, tz = phys
                        err = np.max(np.abs(dn[0] - pred)) / (1.0 + np.max(np.abs(dn[0])))
                        if err < 5e-2:
                            break
                    # a real root of another branch, or an edge too far to resolve: a shorter step
                    s1 = s0 + 0.35 * (s1 - s0)
                    continue
                if inside:
                    err = np.max(np.abs(dn[0] - pred)) / (1.0 + np.max(np.abs(dn[0])))
                    if err < 5e-2:
                        break
                s1 = s0 + 0.35 * (s1 - s0)
            else:
                raise _Fallback(f"walk inside the support stalled at x = {x0:.6g} (left edge not resolved)")
            ddx = _solve(np.eye(self.k) - J[0], tz[0])  # Jacobian of the last exact step
            if not np.all(np.isfinite(ddx)):
                raise _Fallback(f"singular Jacobian at x = {b - s1 * s1:.6g}")
            S.append(s1)
            D.append(dn[0])
            DS.append(-2.0 * s1 * ddx)
            fac = (1e-2 / max(err, 1e-12)) ** (1.0 / 3.0)
            h = (s1 - s0) * float(np.clip(fac, 0.3, 3.0))
        raise _Fallback("walk inside the support did not end")


#: a walk's last point outside an edge joins the sweep's interpolation data when it lies
#: within this fraction of the interval's width from the edge.
OUTSIDE_REACH = 0.1


def outside_point(fd, a: float, b: float, th_e: float, u_e: np.ndarray, du_e: np.ndarray):
    r"""A real point of the branch next to an edge of ``[a, b]`` as a point of ``u(theta)``, or ``None``.

    ``u(theta)`` with ``x = a + (b - a) sin^2 theta`` is analytic through the edges, and the
    real branch outside is its continuation to complex ``theta``: ``pi/2 +- i arccosh
    sqrt((x - a)/(b - a))`` right of ``b``, ``+- i arcsinh sqrt((a - x)/(b - a))`` left of
    ``a``.  The sign is the one with which the edge's first-order expansion ``u_e + du_e
    (theta - theta_e)`` (``theta_e``: the edge's ``theta``) predicts ``u`` there better.
    Returns ``theta``, ``u`` and ``du/dtheta = -u^2 (d delta/dx) (b - a) sin 2 theta``;
    ``None`` without a point, or one farther than :data:`OUTSIDE_REACH` of the width.
    """
    if fd is None:
        return None
    x, w = fd["x"], b - a
    if x > b and x - b <= OUTSIDE_REACH * w:
        y = 1j * np.arccosh(np.sqrt((x - a) / w))
    elif x < a and a - x <= OUTSIDE_REACH * w:
        y = 1j * np.arcsinh(np.sqrt((a - x) / w))
    else:
        return None
    u = 1.0 / (1.0 + fd["d"])
    if not (np.all(np.isfinite(u)) and np.all(np.isfinite(fd["dd"]))):
        return None
    th = min((th_e + y, th_e - y), key=lambda t: float(np.max(np.abs(u - u_e - du_e * (t - th_e)))))
    return th, u.astype(complex), -(u ** 2) * fd["dd"] * w * np.sin(2.0 * th)


def _opens_right(fd) -> bool:
    """The support lies right of the fold ``fd`` (a left edge); ``False`` for a right edge."""
    return bool(fd["l"] @ fd["tz"] * (fd["glam"] @ fd["r"]) > 0)


def _physical(fd) -> bool:
    """A real point on the physical branch: ``lambda < 1`` and ``d delta / dx > 0``."""
    return bool(fd["lam"] < 1.0 and np.all(fd["dd"] > 0) and np.all(np.isfinite(fd["dd"])))


def _hermite_extrapolate(s0, d0, ds0, s1, d1, ds1, s):
    """Cubic Hermite through ``(s0, d0, ds0)`` and ``(s1, d1, ds1)`` evaluated at ``s``."""
    h = s1 - s0
    t = (s - s0) / h
    h00 = 2 * t ** 3 - 3 * t ** 2 + 1
    h10 = t ** 3 - 2 * t ** 2 + t
    h01 = -2 * t ** 3 + 3 * t ** 2
    h11 = t ** 3 - t ** 2
    return h00 * d0 + h10 * h * ds0 + h01 * d1 + h11 * h * ds1


# --------------------------------------------------------------------------- expansion
def lobatto(n: int) -> np.ndarray:
    """Chebyshev--Lobatto points ``cos(j pi / (n - 1))``, ``j = 0..n-1`` (1 down to -1)."""
    return np.cos(np.arange(n) * np.pi / (n - 1))


def lobatto_coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients of the interpolant through values at :func:`lobatto` points (axis 0)."""
    n = values.shape[0]
    from scipy.fft import dct  # here: scipy.fft adds 0.1 s to `import rmtgan`

    c = dct(values, type=1, axis=0) / (n - 1)
    c[0] = c[0] / 2.0
    c[-1] = c[-1] / 2.0
    return c


def _chebval(t: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Chebyshev series with coefficients along axis 0 (any trailing shape) at points ``t``."""
    flat = c.reshape(c.shape[0], -1)
    out = np.stack([cheb.chebval(t, flat[:, i]) for i in range(flat.shape[1])], axis=-1)
    return out.reshape(t.shape + c.shape[1:])


def _cheb_derivative_matrix(t: np.ndarray, deg: int) -> np.ndarray:
    """``D[i, j] = T_j'(t_i)`` for ``j = 0..deg``."""
    return cheb.chebval(t, cheb.chebder(np.eye(deg + 1))).T


def hermite_coefficients(t: np.ndarray, values: np.ndarray, slopes: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients (``2n`` along axis 0) of the interpolant of values and slopes at ``t``.

    Values ``f(t_i)`` and derivatives ``f'(t_i)`` at ``n`` points (axis 0 of both,
    any trailing shape) fix a polynomial of degree ``2n - 1``: at Chebyshev--Lobatto
    points it predicts the next nested level about as well as the next level's own
    interpolant would (on the benchmark model: 1e-9 instead of 1e-6 from 17 nodes).
    """
    n = t.size
    N = 2 * n
    V = cheb.chebvander(t, N - 1)
    Vd = _cheb_derivative_matrix(t, N - 1)
    rhs = np.concatenate([values, slopes]).reshape(N, -1)
    c = np.linalg.solve(np.vstack([V, Vd]), rhs)
    return c.reshape((N,) + values.shape[1:])


def hopeless(tail: float, prev: float, n: int, target: float, max_nodes: int = MAX_NODES,
             judge_from: int = 65) -> bool:
    r"""Whether a Lobatto series whose tail went ``prev -> tail`` (``(n + 1) / 2 -> n`` nodes) cannot resolve.

    A tail decaying like ``exp(-alpha n)`` squares its ratio ``tail / prev`` with each
    doubling of ``n``.  That is optimistic for a slowly (algebraically) decaying
    tail, the mark of a feature narrower than the node spacing, but a tail can also
    decay faster once such a feature is resolved: a margin of 100 covers that.  When
    the extrapolated tail at ``max_nodes`` is still above ``100 target``, the
    remaining levels (most of the evaluations) are skipped and the range is split
    into panels.  Judged from ``judge_from`` nodes on (65 for a whole interval: before
    that a series may not have started to converge yet).
    """
    if n < judge_from or not (0.0 < prev < np.inf):
        return False
    ratio = tail / prev
    while n < max_nodes and ratio < 1.0:
        ratio = ratio * ratio
        tail = tail * ratio
        n = 2 * n - 1
    return tail > 100.0 * target


def _tail(c: np.ndarray) -> float:
    c = np.abs(c).reshape(c.shape[0], -1)
    top = np.max(c, axis=0)
    q = 4
    with np.errstate(divide="ignore", invalid="ignore"):
        r = np.where(top > 0, np.max(c[-q:], axis=0) / top, 0.0)
    return float(np.max(r))


def _jacobian_error(cJ: np.ndarray) -> tuple[float, bool]:
    """Error of the Jacobian's Chebyshev interpolant (10 times its last four coefficients)
    and whether it is accurate enough (1e-2 of the largest) to start chord steps from."""
    jerr = 10.0 * float(np.max(np.abs(cJ[-4:])))
    return jerr, jerr <= 1e-2 * float(np.max(np.abs(cJ)))


def _better_hermite(t, U, dU_dt, gerr: float, scale: float):
    """The Hermite interpolant's coefficients and error when it clearly beats the plain one.

    With values and slopes at every node the Hermite interpolant (degree ``2n - 1``)
    predicts new nodes about as well as the next level will interpolate, unless the
    slopes' own error (single-precision Jacobians, amplified near the edges by
    ``I - J``) dominates, which its tail does not show: it is taken on a clear win only
    (a tail a hundred times below the plain interpolant's ``gerr``).  ``(None, inf)``
    otherwise, and when a slope is unknown.
    """
    if not np.all(np.isfinite(dU_dt)):
        return None, np.inf
    ch = hermite_coefficients(t, U, dU_dt)
    herr = float(np.max(np.abs(ch[-4:]))) / scale
    return (ch, herr) if herr < 0.01 * gerr else (None, np.inf)


def _rational_guess(f1, t, U, dU_dt, tq, guess, gerr: float, scale: float):
    """Guesses at ``tq`` from ``f1``, the :func:`rational_hermite` fit of ``t, U, dU_dt``, and
    their error, when it beats ``guess``.

    The error is estimated by the difference with the type ``(n - 1, n - 1)`` fit; the
    rational guesses are taken when they are finite, within ten times the error ``gerr`` of
    the polynomial ones ``guess`` (no pole between, a wild fit) and estimated better.
    ``None`` otherwise, and when ``f1`` is (no fit, or a slope unknown).
    """
    if f1 is None:
        return None
    n = t.size
    f2 = rational_hermite(t, U, dU_dt, num=n - 1, den=n - 1)
    if f2 is None:
        return None
    g1, g2 = f1(tq), f2(tq)
    if not (np.all(np.isfinite(g1)) and np.all(np.isfinite(g2))):
        return None
    err = float(np.max(np.abs(g1 - g2))) / scale
    if err < gerr and float(np.max(np.abs(g1 - guess))) <= 10.0 * gerr * scale:
        return g1, max(err, 1e-16)
    return None


def rational_hermite(t: np.ndarray, values: np.ndarray, slopes: np.ndarray, num: int | None = None,
                     den: int | None = None):
    r"""Rational Hermite interpolants ``p/q`` of each column of ``values`` (``(n, k)``) and ``slopes``.

    ``p`` and ``q`` (Chebyshev series of degrees ``num`` and ``den``, by default ``n``
    and ``n - 1``: ``2n + 1`` coefficients for ``2n`` conditions) solve the linearised
    conditions ``p(t_i) - u_i q(t_i) = 0`` and ``p'(t_i) - u_i q'(t_i) - u'_i q(t_i) = 0``
    in the least-squares sense: the right singular vector of the smallest singular value
    (the null vector when the system has one).  From the 9 nodes of a first Lobatto level,
    with slopes from the Jacobians there, this predicts ``u(theta)`` at the nodes of the
    next two levels to 2e-8-3e-8 on the benchmark models, where the polynomial Hermite
    interpolant (degree ``2n - 1``) is off by 2e-6-9e-6.  Returns a function ``(m,) ->
    (m, k)``, or ``None`` when a root of a denominator lies within ``1e-3`` of
    ``[-1, 1]`` (a spurious pole, or a singularity so close that no interpolant of these
    nodes will do; those of ``u(theta)`` lie about 0.5 away on the benchmark models) or the
    fit is not finite.  Nothing here certifies the result: the caller checks it.
    """
    n, k = values.shape
    num = n if num is None else num
    den = n - 1 if den is None else den
    Vp, Vq = cheb.chebvander(t, num), cheb.chebvander(t, den)
    Dp, Dq = _cheb_derivative_matrix(t, num), _cheb_derivative_matrix(t, den)
    parts = []
    for c in range(k):
        u, du = values[:, c][:, None], slopes[:, c][:, None]
        M = np.vstack([np.hstack([Vp, -u * Vq]), np.hstack([Dp, -u * Dq - du * Vq])])
        if not np.all(np.isfinite(M)):
            return None
        try:
            coef = np.linalg.svd(M)[2][-1].conj()
        except np.linalg.LinAlgError:
            return None
        pc, qc = coef[:num + 1], coef[num + 1:]
        if not np.all(np.isfinite(coef)) or not np.any(qc):
            return None
        roots = cheb.chebroots(np.trim_zeros(qc, "b")) if np.count_nonzero(qc) > 1 else np.empty(0)
        if np.any((np.abs(roots.imag) < 1e-3) & (np.abs(roots.real) < 1.0 + 1e-3)):
            return None
        parts.append((pc, qc))

    def evaluate(tq: np.ndarray) -> np.ndarray:
        tq = np.asarray(tq)
        return np.stack([cheb.chebval(tq, pc) / cheb.chebval(tq, qc) for pc, qc in parts], axis=-1)

    return evaluate


def rational_interpolant(t: np.ndarray, values: np.ndarray, rtol: float, max_terms: int | None = None):
    r"""AAA rational approximants of each column of ``values`` (``(n, k)``) at points ``t``.

    :class:`scipy.interpolate.AAA` per component with at most ``max_terms`` (default
    ``(n + 1) / 2``) support points, so that the other half of the samples is fitted in
    least squares rather than interpolated.  Without SciPy's clean-up of Froissart doublets (an eigenvalue
    problem per fit, most of its cost): the caller serves the polynomial through the
    rational's values at the nodes, never the rational itself, and a doublet that moves
    a node's value shows as a disagreement between the two at the midpoints.  (On the
    reproduction's model the same 47 of 159 fills passed with and without it, and the
    spectrum took 10.3-10.8 s against 10.8-11.0 s.)  Returns a
    function of the points, ``(m,) -> (m, k)``, or ``None`` when SciPy fails.  Nothing
    here certifies the result: the caller compares it with exact values.
    """
    import warnings

    from scipy.interpolate import AAA

    n, k = values.shape
    try:
        with warnings.catch_warnings():
            # "rtol not achieved" and "Froissart doublets detected": the caller's checks decide
            warnings.simplefilter("ignore", RuntimeWarning)
            terms = (n + 1) // 2 if max_terms is None else max_terms
            parts = [AAA(t, values[:, c], rtol=rtol, max_terms=terms, clean_up=False) for c in range(k)]
    except (ValueError, np.linalg.LinAlgError):
        return None

    def evaluate(tq: np.ndarray) -> np.ndarray:
        with np.errstate(all="ignore"):
            return np.stack([r(tq) for r in parts], axis=-1)

    return evaluate


class _Expansion:
    """Chebyshev--Lobatto data of ``u(theta)`` on one soft-edged interval, or on a panel of one.

    The whole interval is ``theta in [0, pi/2]``; a panel (:meth:`halves`) is a range
    ``[lo, hi]`` of it, with the same map ``x = a + (b - a) sin^2 theta``.
    """

    def __init__(self, spec, fa, fb, S=None, D=None, DS=None):
        self.spec = spec
        self.be = spec._backend
        self.a, self.b = fa["x"], fb["x"]
        self.lo, self.hi, self.depth = 0.0, np.pi / 2.0, 0
        self.max_nodes, self.judge_from = MAX_NODES, 65
        self.tols = tolerances(spec.tol, spec.model.n)
        # data at the ends of the range, "b" at theta = hi (the Lobatto point t = 1), "a" at lo
        self.ua = 1.0 / (1.0 + fa["d"])
        self.ub = 1.0 / (1.0 + fb["d"])
        self.Ja, self.Jb = fa["J"].astype(complex), fb["J"].astype(complex)
        a, b = self.a, self.b
        # du/dtheta = -u^2 d delta/dtheta at the edges, from the square-root expansions there
        self.dub = -(self.ub ** 2) * edge_slope(fb, b - a, True)
        self.dua = -(self.ua ** 2) * edge_slope(fa, b - a, False)
        self._guess = None
        self._guess_J = None  # (callable, relative error) of a Jacobian to start from
        if S is None:
            return
        # guesses: cubic Hermite in theta through the walk points and the two edges
        x = b - np.asarray(S) ** 2
        th = self.theta(x)
        u = 1.0 / (1.0 + np.asarray(D))
        ddx = np.zeros_like(np.asarray(DS))
        nz = np.asarray(S) > 0
        ddx[nz] = -np.asarray(DS)[nz] / (2.0 * np.asarray(S)[nz][:, None])
        du = u_slope(u, ddx, th, b - a)
        du[0] = self.dub  # the walk starts at the right edge
        th = np.concatenate([th, [0.0]])
        u = np.vstack([u, self.ua[None]])
        du = np.vstack([du, self.dua[None]])
        order = np.argsort(th)
        th, u, du = th[order], u[order], du[order]
        keep = np.concatenate([[True], np.diff(th) > 1e-14])
        from scipy.interpolate import CubicHermiteSpline

        self._guess = CubicHermiteSpline(th[keep], u[keep], du[keep], axis=0)

    def theta(self, x):
        s = np.clip((np.asarray(x) - self.a) / (self.b - self.a), 0.0, 1.0)
        return np.arcsin(np.sqrt(s))

    def x_of(self, th):
        return self.a + (self.b - self.a) * np.sin(th) ** 2

    def _th(self, t):
        """``theta`` of the Lobatto coordinate ``t in [-1, 1]`` of the range ``[lo, hi]``."""
        return self.lo + 0.5 * (self.hi - self.lo) * (1.0 + np.asarray(t))

    def _t(self, th):
        return (2.0 * np.asarray(th) - (self.lo + self.hi)) / (self.hi - self.lo)

    def halves(self) -> tuple[_Expansion, _Expansion]:
        """The two panels ``[lo, mid]`` and ``[mid, hi]`` of an unresolved range, not yet run.

        Their ends are nodes of this range's finest level (``mid`` is its ``t = 0``
        node), so only interior nodes are solved; their first nodes start from this
        range's interpolants of ``u`` (the Hermite one where it was the better
        predictor) and of the Jacobian.
        """
        mid = (self.n - 1) // 2
        scale = float(np.max(np.abs(self.cu)))
        ch, _ = _better_hermite(self.t, self.U, 0.5 * (self.hi - self.lo) * self.DU, self.gerr, scale)
        coef = ch if ch is not None else self.cu
        jerr, jok = _jacobian_error(self.cJ)
        out = []
        for lo, hi, ia, ib in ((self.lo, self._th(0.0), -1, mid), (self._th(0.0), self.hi, mid, 0)):
            c = object.__new__(_Expansion)
            c.spec, c.be, c.a, c.b, c.tols = self.spec, self.be, self.a, self.b, self.tols
            c.lo, c.hi, c.depth = lo, hi, self.depth + 1
            c.max_nodes, c.judge_from = PANEL_MAX_NODES, 17
            c.ua, c.Ja, c.dua = self.U[ia], self.JJ[ia], self.DU[ia]
            c.ub, c.Jb, c.dub = self.U[ib], self.JJ[ib], self.DU[ib]
            c._guess = lambda th, coef=coef: _chebval(self._t(th), coef)
            c._guess_J = (lambda th: _chebval(self._t(th), self.cJ), jerr) if jok else None
            out.append(c)
        return out[0], out[1]

    def solve_nodes(self, th: np.ndarray, guess_u: np.ndarray, J0=None, jerr=np.inf, refresh=False):
        """``u``, ``J``, whether ``J`` is exact (else ``J0`` was used) and ``du/dtheta`` at nodes ``theta``.

        ``du/dtheta = -u^2 (I - J)^{-1} dt/dz dx/dtheta`` from the last exact Jacobian
        of each node (``NaN`` where none was taken); it steers predictions only.
        """
        x = self.x_of(th)
        quad = quadratic_tolerance(self.spec.tol, scaled=True)
        d, conv, J, tz = chord_newton(self.be, x + 0j, 1.0 / guess_u - 1.0, self.spec.tol, 14,
                                      tol_quad=quad, J0=J0, j0_err=jerr, refresh=refresh)
        exact = ~np.all(J == 0, axis=(1, 2))
        du = np.full(d.shape, np.nan, complex)
        if exact.any():
            ddx = _solve(np.eye(d.shape[1]) - J[exact], tz[exact][..., None])[..., 0]
            du[exact] = u_slope(1.0 / (1.0 + d[exact]), ddx, th[exact], self.b - self.a)
        if J0 is not None:
            J = np.where(exact[:, None, None], J, J0)
        if not conv.all():
            raise _Fallback(f"Newton failed at x = {x[~conv][:3]}")
        inside = np.any(d.imag > INSIDE_RTOL * (1 + np.abs(d)), axis=1)
        if not inside.all():
            j = int(np.flatnonzero(~inside)[0])
            raise _Gap(x[j], d[j].real, f"inside [{self.a:.6g}, {self.b:.6g}] ")
        return 1.0 / (1.0 + d), J, exact, du

    def run(self, level9=None):
        """Nested Lobatto levels until the coefficients decay (``level9``: interior ``u, J`` of level 9)."""
        k = self.spec.model.k
        n = 9
        t = lobatto(n)
        th = self._th(t)
        U = np.empty((n, k), complex)
        U[0], U[-1] = self.ub, self.ua
        JJ = np.empty((n, k, k), complex)
        JJ[0], JJ[-1] = self.Jb, self.Ja
        DU = np.empty((n, k), complex)  # du/dtheta (NaN where unknown)
        DU[0], DU[-1] = self.dub, self.dua
        jx = np.ones(n, bool)  # nodes where JJ is the Jacobian at the node (not interpolated)
        if level9 is not None:
            U[1:-1], JJ[1:-1], DU[1:-1] = level9
        elif self._guess_J is not None:
            fJ, jerr = self._guess_J
            U[1:-1], JJ[1:-1], jx[1:-1], DU[1:-1] = self.solve_nodes(th[1:-1], self._guess(th[1:-1]),
                                                                     fJ(th[1:-1]), jerr, refresh=True)
        else:
            U[1:-1], JJ[1:-1], _, DU[1:-1] = self.solve_nodes(th[1:-1], self._guess(th[1:-1]))
        cJ = lobatto_coefficients(JJ)
        dth = 0.5 * (self.hi - self.lo)  # d theta / d t
        prev = np.inf
        self.resolved = self.at_budget = False
        self._cert = None
        while True:
            cu = lobatto_coefficients(U)
            F = self.F(th, U)
            cF = lobatto_coefficients(F)
            tail = max(_tail(cu), _tail(cF))
            scale = float(np.max(np.abs(cu)))
            gerr = float(np.max(np.abs(cu[-4:]))) / scale  # the interpolant's error, roughly
            # resolved: the tail is below TAIL_RTOL, or below PLATEAU_RTOL when it stopped
            # decreasing (rounding in the node values) or the node budget of a whole interval
            # is spent (both scaled by tolerances()); a panel at its budget is split instead
            stalled = tail >= 0.2 * prev or (n >= self.max_nodes and self.depth == 0)
            # a panel so narrow that its tail cannot move the mass by a tenth of the tail
            # target is resolved too (as for the generic panels): next to a near-cusp the
            # node values' own noise can sit above the plateau, and halving would not end
            negligible = (self.depth > 0 and n >= 33 and tail * float(np.max(np.abs(cF)))
                          * (self.hi - self.lo) * n <= 0.1 * self.tols["tail"])
            if (tail <= self.tols["tail"] or (n >= 33 and tail <= self.tols["plateau"] and stalled)
                    or negligible):
                self.resolved = True
                # accepted only because the budget is spent: expand() splits it into
                # panels unless its interpolant passes the certificate
                self.at_budget = tail > self.tols["tail"] and tail < 0.2 * prev
                break
            if n >= self.max_nodes or hopeless(tail, prev, n, self.tols["plateau"], self.max_nodes,
                                               self.judge_from):
                break
            # the rational Hermite fit of this level, once: for a fill, else for the guesses
            rh = rational_hermite(t, U, dth * DU) if np.all(np.isfinite(DU)) else None
            filled = self._fill(t, U, rh, JJ, jx, DU, cJ, scale) if self._may_fill(tail, prev) else None
            prev = tail
            if filled is not None:  # the level that ends the series, from an interpolant
                n, t, th, U, JJ, jx, DU = filled
                continue
            n2 = 2 * n - 1
            t2 = lobatto(n2)
            new = np.arange(1, n2, 2)
            th2 = self._th(t2)
            ch, herr = _better_hermite(t, U, dth * DU, gerr, scale)
            if ch is not None:
                guess, gerr = _chebval(t2[new], ch), herr
            else:
                guess = _chebval(t2[new], cu)
            better = _rational_guess(rh, t, U, dth * DU, t2[new], guess, gerr, scale)
            if better is not None:
                guess, gerr = better
            # the Jacobian is analytic in theta too: once its expansion is accurate, a node
            # costs one inverse (chord step with the interpolated Jacobian, no products)
            jerr, jok = _jacobian_error(cJ)
            J0 = _chebval(t2[new], cJ) if jok else None
            e = 10.0 * gerr  # the guesses' error, with a margin
            quad = quadratic_tolerance(self.spec.tol, scaled=True)
            if J0 is not None and jerr * e > 0.1 * self.spec.tol and e <= quad:
                # a chord step would not settle the nodes, one Newton step with the exact
                # Jacobian will (quadratic acceptance): one inverse and the products per node
                J0 = None
            U2 = np.empty((n2, k), complex)
            U2[0::2] = U
            JJ2 = np.empty((n2, k, k), complex)
            JJ2[0::2] = JJ
            jx2 = np.empty(n2, bool)
            jx2[0::2] = jx
            # a node the interpolated Jacobian does not settle in one step takes the exact one
            # at its second evaluation; when every node has it, the Jacobian's expansion is
            # refreshed, so that the next level costs one inverse per node
            DU2 = np.empty((n2, k), complex)
            DU2[0::2] = DU
            U2[new], JJ2[new], jx2[new], DU2[new] = self.solve_nodes(th2[new], guess, J0, jerr, refresh=True)
            if jx2.all():
                cJ = lobatto_coefficients(JJ2)
            n, t, th, U, JJ, jx, DU = n2, t2, th2, U2, JJ2, jx2, DU2
        self.n, self.t, self.th, self.U, self.cu, self.cF, self.tail = n, t, th, U, cu, cF, tail
        self.JJ, self.DU, self.cJ, self.gerr = JJ, DU, cJ, gerr
        j = np.arange(0, cF.size, 2)
        self.mass = float(dth * np.sum(cF[::2] * 2.0 / (1.0 - j ** 2)))
        return self

    def _may_fill(self, tail: float, prev: float) -> bool:
        """Whether the series may be resolved within two more levels, judged from its tail's decay.

        A tail decaying like ``exp(-alpha n)`` squares its ratio ``tail / prev`` with each
        doubling of ``n`` (:func:`hopeless`): the tail two levels on is about
        ``tail r^2 r^4`` with ``r = tail / prev``.  A fill (:meth:`_fill`) is only tried when
        that is within a thousand times the target (always on the first level, which has
        no ratio): its interpolants cost little, but on models with many panels (the
        reproduction's) most levels are far from resolved and the fits added up to a
        tenth of the build's time.
        """
        if not (0.0 < prev < np.inf):
            return True
        r = min(tail / prev, 1.0)
        return tail * r ** 6 <= 1e3 * self.tols["tail"]

    def _fill(self, t, U, rh, JJ, jx, DU, cJ, scale: float):
        """The level that ends the series from an interpolant of this one, or ``None``.

        ``u(theta)`` is analytic, but the singularities of its continuation lie close to
        the interval, so its Chebyshev coefficients decay slowly (by about 0.6 per degree
        on the benchmark model), while rational interpolants of the same nodes are far
        more accurate: from 9 nodes with their slopes, a :func:`rational_hermite`
        interpolant (``rh``, ``None`` when a slope is unknown or the fit failed) is within
        2e-8-3e-8 at the nodes of the next two levels, where the polynomial is off by
        1e-4; from 33 nodes an AAA approximant
        (:func:`rational_interpolant`) is within 1e-13 at the 32 new nodes of the next
        level, where the polynomial through them is off by 6e-10.  The interpolants are
        tried in that order (the rational Hermite one when every slope is known, the AAA
        one from :data:`RATIONAL_FROM` nodes on, in three sizes, ``(n + 1) / 2``, two and
        three fewer: near the 1e-12 target the greedy fit's error varies irregularly with
        its size, 2e-13 to 1.5e-12 at 14 to 17 support points from 33 nodes of the
        benchmark model), each for the next level and the one after, and their values
        are taken for the new nodes of a level only when

        * that level is resolved (its tail below the target), so that the expansion ends
          there;
        * at its midpoints the interpolant and the polynomial through the completed level
          agree to the target (no pole of the interpolant, a Froissart doublet among
          them, between nodes);
        * the exact solves of that level's certificate (:meth:`_certificate`, at
          midpoints between its nodes) match the interpolant to the target; they are then
          the level's certificate too, so the fill costs no extra solve.

        Returns the completed level as ``n, t, theta, u, J, exact, du/dtheta`` (at the
        new nodes ``J`` interpolates ``cJ``, exact nowhere, and ``du/dtheta`` is ``NaN``).
        """
        target = self.tols["tail"]
        n, k = U.shape
        rtol = max(1e-2 * target, 1e-14)

        def predictors():
            yield False, rh
            if n >= RATIONAL_FROM:
                half = (n + 1) // 2
                for terms in (half, half - 2, half - 3):
                    if terms != half and not resolved_by_aaa:
                        return  # the first size's levels were not resolved: nor will the others'
                    yield True, rational_interpolant(t, U, rtol, max_terms=terms)

        chosen, exact = None, None  # exact: the level and the u values of the first certificate
        resolved_by_aaa = False
        for aaa, pred_at in predictors():
            if pred_at is None:
                continue
            for step in (2, 4):  # the next level, and the one after
                n2 = (n - 1) * step + 1
                if n2 > self.max_nodes:
                    break
                t2 = lobatto(n2)
                new = np.setdiff1d(np.arange(n2), np.arange(0, n2, step))
                U2 = np.empty((n2, k), complex)
                U2[0::step] = U
                U2[new] = pred_at(t2[new])
                if not np.all(np.isfinite(U2)):
                    break
                th2 = self._th(t2)
                cu2 = lobatto_coefficients(U2)
                if max(_tail(cu2), _tail(lobatto_coefficients(self.F(th2, U2)))) > target:
                    continue  # not resolved at this level: perhaps at the next
                resolved_by_aaa |= aaa
                tm = np.cos((np.arange(n2 - 1) + 0.5) * np.pi / (n2 - 1))
                if not np.max(np.abs(pred_at(tm) - _chebval(tm, cu2))) <= target * scale:
                    break
                # the certificate's exact solves, at midpoints of the completed level, check
                # the interpolant; a later candidate for the same level is checked against
                # the same solves
                if exact is None:
                    try:
                        cert, err, ue = self._certificate(n2, cu2, cJ, pred_at)
                    except _Gap:
                        raise  # a point outside the support: a gap, whatever the guess
                    except _Fallback:
                        return None  # Newton did not settle from the guess: solve the level
                    exact = (n2, ue)
                elif exact[0] == n2:
                    cert, err = self._judge(self._certificate_points(n2), cu2, pred_at, exact[1])
                else:
                    break
                if err <= target:
                    chosen = (step, n2, t2, th2, new, U2)
                break
            if chosen is not None:
                break
        if chosen is None:
            return None
        step, n2, t2, th2, new, U2 = chosen
        self._cert = (n2, cert)
        JJ2 = np.empty((n2, k, k), complex)
        JJ2[0::step] = JJ
        JJ2[new] = _chebval(t2[new], cJ)
        jx2 = np.zeros(n2, bool)
        jx2[0::step] = jx
        DU2 = np.full((n2, k), np.nan, complex)
        DU2[0::step] = DU
        return n2, t2, th2, U2, JJ2, jx2, DU2

    def F(self, th, U):
        x = self.x_of(th)
        rho = np.zeros(th.size)
        inner = (th > 0) & (th < np.pi / 2)
        rho[inner] = self.spec._rho_from_u(x[inner], U[inner])
        return rho * (self.b - self.a) * np.sin(2 * th)

    def certify(self) -> float:
        """:func:`certificate_error` of the interpolated density at points between the finest nodes."""
        if self._cert is None or self._cert[0] != self.n:
            self._cert = (self.n, self._certificate(self.n, self.cu, self.cJ, self.cu)[0])
        return self._cert[1]

    def _certificate_points(self, n: int) -> np.ndarray:
        """Lobatto coordinates of up to seven midpoints between ``n`` nodes, spread over the range."""
        j = np.unique(np.linspace(1, n - 3, 7).astype(int))
        return np.cos((j + 0.5) * np.pi / (n - 1))

    def _judge(self, tm: np.ndarray, cu: np.ndarray, guess, ue: np.ndarray) -> tuple[float, float]:
        """:func:`certificate_error` of the density ``cu`` serves at ``tm`` against exact ``u`` values
        ``ue``, and the largest error of ``guess`` (a function of ``t``) there relative to ``max |cu|``."""
        x = self.x_of(self._th(tm))
        cert = certificate_error(self.spec._rho_from_u(x, _chebval(tm, cu)), self.spec._rho_from_u(x, ue))
        return cert, float(np.max(np.abs(guess(tm) - ue))) / float(np.max(np.abs(cu)))

    def _certificate(self, n: int, cu: np.ndarray, cJ: np.ndarray, guess):
        """The certificate of the Lobatto series ``cu`` of ``n`` nodes, the error of ``guess``, exact ``u``.

        Exact solves (chord steps with the interpolated Jacobian ``cJ``, from ``guess``:
        Chebyshev coefficients or a function of the Lobatto coordinate) at
        :meth:`_certificate_points` (Runge-type errors peak between nodes).  Returns the
        :func:`certificate_error` of the density ``cu`` serves, the largest error of
        ``guess`` at those points relative to ``max |cu|``, and the exact ``u`` there.
        """
        tm = self._certificate_points(n)
        th = self._th(tm)
        if guess is cu:
            guess = lambda tq: _chebval(tq, cu)  # noqa: E731
        jerr, jok = _jacobian_error(cJ)
        # chord steps with the interpolated Jacobian; when that is too rough to rely on, a
        # guess that is already a solution still costs one evaluation without products, and
        # any other point takes the exact Jacobian at its second evaluation
        ue = self.solve_nodes(th, guess(tm), _chebval(tm, cJ), jerr, refresh=not jok)[0]
        return (*self._judge(tm, cu, guess, ue), ue)

    def panel(self) -> Panel:
        return Panel(self.lo, self.hi, self.cF, self.cu, self.mass, self.tail)

    def interval(self):
        """This expansion as a :class:`rmtgan.spectrum.SupportInterval` (one panel)."""
        from rmtgan.spectrum import SupportInterval

        return SupportInterval(self.a, self.b, self.mass, [self.panel()], False, from_u=True)


def lobatto_panels(root: _Expansion):
    """Resolve an interval whose one series did not, by halving ``theta`` ranges recursively.

    Each panel is an :class:`_Expansion` on its range (Lobatto levels 9, 17, 33, 65,
    split as soon as its tail's decay says 65 nodes will not do).  Returns the interval
    (a :class:`rmtgan.spectrum.SupportInterval` served from ``u``); raises
    :class:`_Fallback` beyond :data:`PANEL_MAX_DEPTH` or :data:`PANEL_BUDGET` panels,
    :class:`_Gap` when a node lies outside the support.
    """
    from rmtgan.spectrum import SupportInterval

    done, stack = [], [root]
    while stack:
        e = stack.pop()
        if e.resolved:
            done.append(e)
            continue
        if e.depth >= PANEL_MAX_DEPTH or len(done) + len(stack) + 2 > PANEL_BUDGET:
            why = (f"depth {PANEL_MAX_DEPTH}" if e.depth >= PANEL_MAX_DEPTH
                   else f"the budget of {PANEL_BUDGET} panels")
            raise _Fallback(f"panel [{e.lo:.6g}, {e.hi:.6g}] of theta on [{e.a:.6g}, {e.b:.6g}] "
                            f"unresolved at {why} (tail {e.tail:.1e})")
        left, right = e.halves()
        left.run()  # one after the other: the nodes of each level are spread over all workers
        right.run()
        stack.extend([right, left])
    done.sort(key=lambda e: e.lo)
    mass = float(sum(e.mass for e in done))
    return SupportInterval(root.a, root.b, mass, [e.panel() for e in done], False, from_u=True)


def certificate_error(served: np.ndarray, exact: np.ndarray) -> float:
    """Largest relative error of a served density against exact solves.

    ``inf`` where the exact density is not positive.
    """
    if not np.all(exact > 0):
        return np.inf
    return float(np.max(np.abs(served - exact) / exact))


def certify_interval(spec, iv, n_points: int = 5) -> float:
    """:func:`certificate_error` of the density ``spec`` serves on ``iv``.

    For an interval expanded on adaptive panels: points midway between two Chebyshev
    nodes (where a resolved interpolant's error peaks) at the middle of up to
    ``n_points`` panels spread over the interval (several per panel when there are
    fewer panels).  ``inf`` when an exact solve fails.
    """
    panels = iv.panels
    chosen = np.unique(np.linspace(0, len(panels) - 1, min(n_points, len(panels))).round().astype(int))
    per = int(np.ceil(n_points / chosen.size))
    th = []
    for i in chosen:
        pn = panels[i]
        m = pn.coef.size
        j = np.unique(np.linspace(0, m - 2, per + 2)[1:-1].astype(int))
        t = np.cos((j + 0.5) * np.pi / (m - 1))
        th.extend(0.5 * (pn.lo + pn.hi) + 0.5 * (pn.hi - pn.lo) * t)
    x = iv.x_of(np.asarray(th))
    x = x[(x > iv.left) & (x < iv.right)]
    if x.size == 0:
        return np.inf
    try:
        exact = spec.density(x, exact=True)
    except ConvergenceError:
        return np.inf
    return certificate_error(spec.density(x, exact=False), exact)


def certify_density(spec, errors: dict | None = None) -> None:
    """Mark the intervals of ``spec`` whose served density exact solves confirm.

    ``errors``: the error already measured for some intervals (by id); the others are
    checked with :func:`certify_interval`.  Sets ``iv.certified`` per interval, and
    ``spec._interp_error`` (the largest error) and ``spec._interp_certified`` (all
    intervals certified).
    """
    cert = tolerances(spec.tol, spec.model.n)["cert"]
    errors = errors or {}
    worst = 0.0
    for iv in spec.intervals:
        err = errors[id(iv)] if id(iv) in errors else certify_interval(spec, iv)
        iv.certified = bool(err <= cert)
        worst = max(worst, err)
    spec._interp_error = worst
    spec._interp_certified = all(iv.certified for iv in spec.intervals)


# --------------------------------------------------------------------------- driver
def build_dense(spec) -> bool:
    """Build ``spec.intervals`` with the walk; ``False`` when the generic construction must be used."""
    from rmtgan.spectrum import SupportInterval

    walker = _Walker(spec)
    mass_tol = tolerances(spec.tol, spec.model.n)["mass"]
    target = 1.0 - spec.atom
    x_floor = 1e-9 * spec.scale

    def finish(exps) -> bool:
        mass = float(sum(e.mass for e in exps))
        if abs(mass + spec.atom - 1.0) > mass_tol:
            spec._dense_note = f"mass certificate failed ({mass:.12g} vs {target:.12g})"
            return False
        spec.mass = mass
        # one Chebyshev series: its own check (chord steps with the interpolated Jacobian);
        # adaptive panels: exact solves at panel midpoints (certify_interval)
        ivs = intervals(exps)
        spec.intervals = sorted(ivs, key=lambda iv: iv.left)
        certify_density(spec, {id(iv): e.certify() for e, iv in zip(exps, ivs, strict=True)
                               if not isinstance(e, SupportInterval)})
        return True

    def intervals(exps) -> list:
        """The expansions as support intervals, in the order of ``exps``."""
        return [e if isinstance(e, SupportInterval) else e.interval() for e in exps]

    def expand(fa, fb, *walk, level9=None) -> list:
        """Expansions of the support between the folds ``fa < fb`` (several when gaps are found)."""
        try:
            e = _Expansion(spec, fa, fb, *walk).run(level9)
            if e.at_budget:
                try:
                    cert = e.certify()
                except _Gap:
                    raise
                except _Fallback:  # a certificate point that Newton did not settle
                    cert = np.inf
                if cert > tolerances(spec.tol, spec.model.n)["cert"]:
                    e.resolved = False  # a slowly converging series: panels resolve it better
            if not e.resolved:
                try:
                    e = lobatto_panels(e)
                except _Gap:
                    raise
                except _Fallback as why:
                    spec._dense_note = str(why)
                    known_x, first = np.unique(e.x_of(e.th), return_index=True)
                    e = panels(fa, fb, known_x, e.U[first])
        except _Gap as gap:
            nf = physical_point(gap, fa, fb)
            if nf is not None:
                return split(fa, fb, nf)
            # not a gap: the node went to a wrong root because one series cannot follow
            # u here; adaptive panels, from the points of the walk and the edges
            kx, ku = [fa["x"], fb["x"]], [1.0 / (1.0 + fa["d"]), 1.0 / (1.0 + fb["d"])]
            if walk:
                S, D = np.asarray(walk[0]), np.asarray(walk[1])
                kx += list(fb["x"] - S[1:] ** 2)
                ku += list(1.0 / (1.0 + D[1:]))
            kx, first = np.unique(np.asarray(kx), return_index=True)
            try:
                e = panels(fa, fb, kx, np.asarray(ku, complex)[first])
            except _Gap as gap2:
                nf = physical_point(gap2, fa, fb)
                if nf is None:
                    raise _Fallback(f"{gap2} (off the physical branch)") from None
                return split(fa, fb, nf)
        # the mass of [a, b] is exactly the change in the negative count across it
        expected = (fb["neg"] - fa["neg"]) / spec.model.n
        if abs(e.mass - expected) > mass_tol:
            raise _Fallback(f"mass of [{fa['x']:.6g}, {fb['x']:.6g}] is {e.mass:.12g}, the eigenvalue count "
                            f"across it gives {expected:.12g}")
        return [e]

    def panels(fa, fb, known_x, known_u):
        # one Chebyshev series does not resolve this interval (near-cusps, clusters of
        # outlying covariance eigenvalues): adaptive panels between the same edges
        from rmtgan.spectrum import _GapFound

        problems: list[str] = []
        try:
            iv = spec._expand(fa["x"], fb["x"], False, known_x, known_u, problems)
        except _GapFound as gap:
            raise _Gap(gap.x, gap.delta.real, f"inside [{fa['x']:.6g}, {fb['x']:.6g}] ") from None
        if problems:
            raise _Fallback("; ".join(problems))
        return iv

    def physical_point(gap: _Gap, fa, fb):
        """Fold data at ``gap.x`` on the physical real branch (``None``: ``gap.x`` is inside the support)."""
        nf = fold_data(walker.be, gap.x, gap.d)
        if _physical(nf) and fa["neg"] <= nf["neg"] <= fb["neg"]:
            return nf
        # Newton went to another real root: continuation in Im z finds the physical one
        try:
            d = spec._solve_real(np.array([gap.x]))[0]
        except ConvergenceError:
            return None
        if np.any(d.imag > INSIDE_RTOL * (1 + np.abs(d))):
            return None
        nf = fold_data(walker.be, gap.x, d.real)
        return nf if _physical(nf) and fa["neg"] <= nf["neg"] <= fb["neg"] else None

    def split(fa, fb, nf) -> list:
        """``[a, b]`` holds a gap at the physical real point ``nf``: its edges by walks, then each part."""
        lo = walker.walk(nf, -1, fa["x"])
        hi = walker.walk(nf, +1, fb["x"])
        if lo is None or hi is None or not (fa["x"] < lo["x"] < hi["x"] < fb["x"]):
            raise _Fallback(f"the edges of the gap near x = {nf['x']:.6g} were not resolved")
        return part(fa, lo) + part(hi, fb)

    def part(fa, fb) -> list:
        """Expansions of ``[a, b]`` from a sweep of its first level, or else from a walk into it."""
        try:
            level9 = walker.sweep(fa, fb)
        except _Gap:
            raise
        except _Fallback:
            # the sweep lost its way (a near-cusp between two nodes): the walk from the right
            # edge, with its step control, must reach the same left edge
            fa2, S, D, DS = walker.walk_in(fb)
            if abs(fa2["x"] - fa["x"]) > 1e-9 * fb["x"]:
                raise _Fallback(f"the walk into [{fa['x']:.6g}, {fb['x']:.6g}] ended at "
                                f"{fa2['x']:.6g}") from None
            return expand(fa, fb, S, D, DS)
        return expand(fa, fb, level9=level9)

    def rightmost():
        fb = walker.walk_out(walker.start(), x_floor, first=True)
        if fb is None:
            raise _Fallback("no edge found below the upper bound")
        return fb

    try:
        # one interval [a_1, b_K] is the common case: the rightmost edge by a walk from the
        # upper bound, the leftmost from the left (both in real arithmetic, side by side),
        # the first Chebyshev level by a sweep from both edges; a gap sends us to the walk
        fb, fa = walker.be.concurrently(rightmost, lambda: walker.from_left(walker.upper))
        if fa is not None and not fa["x"] < fb["x"]:
            fa = None
        if fa is not None:
            try:
                exps = expand(fa, fb, level9=walker.sweep(fa, fb))
                mass = sum(e.mass for e in exps)
                if abs(mass + spec.atom - 1.0) <= mass_tol and finish(exps):
                    spec._dense_path = "sweep"
                    return True
                spec._dense_path = f"sweep failed: mass {mass:.12g}"
            except _Fallback as why:
                spec._dense_path = f"sweep failed: {why}"
        # general case: walk into each interval from its right edge, then on to the left
        exps = []
        total = 0.0
        gap = None  # a physical real point in the gap below the intervals done so far
        while True:
            try:
                fa, S, D, DS = walker.walk_in(fb)
                new = expand(fa, fb, S, D, DS)
            except (_Fallback, np.linalg.LinAlgError) as why:
                if gap is None:
                    raise
                # the intervals above the gap are done and certified one by one (their
                # masses are the eigenvalue counts across them): the generic construction
                # takes over below the gap only
                spec._dense_note = str(why) or type(why).__name__
                spec._dense_prefix = (gap["x"], sorted(intervals(exps), key=lambda iv: iv.left))
                spec._dense_path = getattr(spec, "_dense_path", "") + "; walk, then generic below "
                spec._dense_path += f"{gap['x']:.6g}"
                return False
            exps.extend(new)
            total += sum(e.mass for e in new)
            if total >= target - mass_tol:
                break
            gap = walker.leave_left(fa)
            fb = walker.walk_out(gap, x_floor, origin=fa["x"])
            if fb is None:
                break
        spec._dense_path = getattr(spec, "_dense_path", "") + "; walk"
        return finish(exps)
    except (_Fallback, np.linalg.LinAlgError) as why:
        spec._dense_note = str(why) or type(why).__name__
        return False
