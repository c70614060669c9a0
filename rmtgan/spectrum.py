r"""The limiting eigenvalue distribution of the Gram matrix ``G = X^T X / p``.

From the fixed point ``delta(z)`` (:mod:`rmtgan.solver`),

.. math::

    m_G(z) = -\frac{1}{n z}\sum_a \frac{n_a}{1+\delta_a(z)},\qquad
    \rho(x) = \frac1\pi \lim_{\eta\downarrow 0} \operatorname{Im} m_G(x + i\eta).

:func:`gram_spectrum` builds a :class:`GramSpectrum`:

1. **scan** -- solve on a grid of ``(0, U]`` (``U`` bounds the support) by
   continuation in ``Im z`` down to the real axis; a point is inside the support
   when ``Im delta > 0`` there;
2. **edges** -- each change from outside to inside is refined by Newton's method
   on the *fold* system ``delta = t(delta, x)``, ``lambda(dt/ddelta) = 1`` (Perron
   root) in the real unknowns ``(delta, x)``: an edge is where the real branch
   folds (:mod:`rmtgan._folds`);
3. **intervals** -- on each support interval ``[a, b]`` the substitution
   ``x = a + (b - a) sin^2(theta)`` turns the square-root (or, at a hard edge at 0,
   inverse square-root) behaviour into an analytic function of ``theta``;
   ``F(theta) = rho(x(theta)) dx/dtheta`` is expanded in Chebyshev polynomials
   on adaptive panels (split until the coefficients decay), which gives the
   interval's mass, the CDF in closed form and initial guesses for Newton at any
   ``x``;
4. **certificate** -- the masses must add up to ``1 - atom`` (the atom at 0 comes
   from the rank of ``X``); otherwise the scan is refined, and a remaining gap is
   reported in :attr:`GramSpectrum.success`, never hidden.

Densities are then the exact ``eta -> 0`` limit: Newton on the real axis from the
interpolated guess, to the solver's tolerance.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np

from rmtgan._folds import fold_newton
from rmtgan._panels import adaptive_panels
from rmtgan._validation import (
    as_flag,
    as_nonnegative_int,
    as_positive_int,
    as_real_points,
    as_spectral_points,
    as_tolerance,
)
from rmtgan.model import RANK_RTOL, MixtureModel
from rmtgan.solver import (
    DEFAULT_TOL,
    ConvergenceError,
    _ddelta_dz,
    continuation,
    make_backend,
    newton,
    quadratic_tolerance,
    spectral_scale,
    stieltjes_from_delta,
)

__all__ = ["GramSpectrum", "SupportInterval", "gram_spectrum"]

#: relative level of ``Im delta`` above which a real point is inside the support.
INSIDE_RTOL = 1e-9
#: mass certificate: ``|sum of masses + atom - 1|`` must not exceed this.
MASS_TOL = 1e-9
#: lowest point of the scan's geometric grid, relative to the upper bound of the support.
SCAN_FLOOR = 1e-9
#: when the scan's first point is inside the support, points 100 times closer to 0 are
#: solved down to this (relative to the upper bound): none outside the support means a
#: hard edge at 0.  Below it the continuation in ``Im z`` stops resolving ``x`` (its last
#: step, from ``Im z = 1e-15`` of the bound to 0, is no longer small next to ``x``): a
#: sub-block with as many samples as dimensions (a hard edge) next to a class with fewer
#: (``delta ~ -1/x``) failed to converge at ``1e-14``.
HARD_EDGE_FLOOR = 1e-12


def scan_floor(model: MixtureModel) -> float:
    """Where the scan's geometric grid starts, relative to the upper bound of the support.

    :data:`SCAN_FLOOR`, or lower when a commuting model has covariance eigenvalues
    (counted as non-zero by :data:`rmtgan.model.RANK_RTOL`) far below its largest: its
    support may start near ``1e-3`` of its smallest one (``(1 - sqrt(p / n_a))^2 >=
    1e-3`` unless ``n_a`` is within 6 % of ``p``).  Without it an interval at ``1e-9``
    of the largest eigenvalue was missed (and reported by the mass certificate).
    """
    eig = model.eigen
    if eig is None:
        return SCAN_FLOOR
    lam = eig.eigenvalues
    top = float(np.max(lam)) if lam.size else 0.0
    if top <= 0:
        return SCAN_FLOOR
    pos = lam[lam > RANK_RTOL * np.max(lam, axis=1, keepdims=True)]
    return min(SCAN_FLOOR, 1e-3 * float(np.min(pos)) / top) if pos.size else SCAN_FLOOR


@dataclass
class SupportInterval:
    """One interval ``[left, right]`` of the bulk support with its Chebyshev data.

    ``theta in [0, pi/2]`` parametrises the interval by
    ``x = left + (right - left) sin^2 theta``; ``panels`` expand
    ``F(theta) = rho(x) dx/dtheta`` and ``u_a = 1/(1 + delta_a)`` piecewise in
    Chebyshev polynomials; ``mass`` is the integral of the density over the
    interval.  ``hard_left`` marks a hard edge at 0 (density ``~ x^{-1/2}``).
    ``certified``: exact solves confirmed the interpolated density (dense path), so
    :meth:`GramSpectrum.density` serves it without solving; ``from_u``: it is served
    from the expansion of ``u`` (one Chebyshev series of the dense walk, whose
    resolution is judged on ``u``) rather than from that of ``F`` (panels, judged on
    ``F``).
    """

    left: float
    right: float
    mass: float
    panels: list
    hard_left: bool
    certified: bool = False
    from_u: bool = False

    def theta(self, x: np.ndarray) -> np.ndarray:
        """The angle of ``x`` in the interval's parametrisation (the inverse of :meth:`x_of`).

        Parameters
        ----------
        x : ndarray of float
            Points on the eigenvalue axis (any shape); points outside
            ``[left, right]`` are clipped to the nearer edge.

        Returns
        -------
        ndarray of float64, same shape as ``x``
            ``theta = arcsin(sqrt((x - left) / (right - left)))`` in
            ``[0, pi/2]``: 0 at ``left``, ``pi/2`` at ``right``.
        """
        s = np.clip((x - self.left) / (self.right - self.left), 0.0, 1.0)
        return np.arcsin(np.sqrt(s))

    def x_of(self, theta: np.ndarray) -> np.ndarray:
        """The point of the interval at angle ``theta``.

        Parameters
        ----------
        theta : ndarray of float
            Angles (any shape), normally in ``[0, pi/2]``.

        Returns
        -------
        ndarray of float64, same shape as ``theta``
            ``x = left + (right - left) sin^2(theta)``, in ``[left, right]``.
        """
        return self.left + (self.right - self.left) * np.sin(theta) ** 2

    def _panel_index(self, theta: np.ndarray) -> np.ndarray:
        edges = np.array([pn.lo for pn in self.panels[1:]])
        return np.searchsorted(edges, theta, side="right")

    def _piecewise(self, theta: np.ndarray, fn) -> np.ndarray:
        theta = np.asarray(theta, float)
        idx = self._panel_index(theta)
        out = None
        for i, pn in enumerate(self.panels):
            sel = idx == i
            if not sel.any():
                continue
            v = fn(pn, theta[sel])
            if out is None:
                out = np.zeros(theta.shape + v.shape[1:], v.dtype)
            out[sel] = v
        return out if out is not None else np.zeros(theta.shape)

    def values(self, theta: np.ndarray) -> np.ndarray:
        """``F(theta) = rho(x(theta)) dx/dtheta`` from the expansion."""
        return self._piecewise(theta, lambda pn, t: pn.values(t))

    def u(self, theta: np.ndarray) -> np.ndarray:
        """Interpolated ``1/(1 + delta_a)`` at ``theta``, shape ``theta.shape + (k,)``."""
        return self._piecewise(theta, lambda pn, t: pn.u(t))

    def partial_mass(self, theta: np.ndarray) -> np.ndarray:
        """``int_0^theta F``: mass of ``[left, x(theta)]``."""
        cum = np.concatenate([[0.0], np.cumsum([pn.mass for pn in self.panels])])
        theta = np.asarray(theta, float)
        idx = self._panel_index(theta)
        return cum[idx] + self._piecewise(theta, lambda pn, t: pn.partial(t))

    def moment(self) -> float:
        """``int x rho(x) dx`` over the interval."""
        return float(sum(pn.moment(self.x_of) for pn in self.panels))


class GramSpectrum:
    r"""Limiting spectral distribution of ``G = X^T X / p`` (per ``n`` eigenvalues).

    Build with :func:`gram_spectrum`.  The distribution is ``atom * delta_0`` plus a
    density on :attr:`support`.

    Attributes
    ----------
    model : MixtureModel
    support : list of (float, float)
        Bulk intervals ``(left, right)``, ascending, atom at 0 excluded.
    atom : float
        Mass at 0.
    mass : float
        Integral of the density (``1 - atom`` up to the certificate tolerance).
    success : bool
        All solves converged and the mass certificate holds.
    message : str
    method : str
        ``'commuting'`` or ``'dense'``.
    n_evaluations : int
        Evaluations of the fixed-point map so far (the cost unit: ``O(pk^2)``
        commuting, one ``p x p`` inverse dense).
    """

    def __init__(self, model: MixtureModel, *, method: str = "auto", tol: float = DEFAULT_TOL,
                 n_scan: int = 96, max_refine: int = 2, backend: str = "numpy", device=None,
                 workers: int | None = None, progress: bool = False):
        if not isinstance(model, MixtureModel):
            raise TypeError(f"model must be a MixtureModel, got {type(model).__name__}")
        tol = as_tolerance(tol)
        n_scan = as_positive_int(n_scan, "n_scan")
        max_refine = as_nonnegative_int(max_refine, "max_refine")
        self.model = model
        self.tol = tol
        self._backend = make_backend(model, method, backend=backend, device=device, workers=workers)
        self.method = self._backend.name
        self.progress = as_flag(progress, "progress")
        #: the dense construction certified the Chebyshev interpolant (density(x) then uses it)
        self._interp_certified = False
        self._dense_note = ""
        self._n = model.n
        self._sizes = model.sizes.astype(float)
        self._traces = model.traces()
        self.scale = spectral_scale(model)
        self.atom = float(model.zero_mass())
        self.intervals: list[SupportInterval] = []
        self.success = True
        self._edge_notes: list[str] = []
        self._cache: dict = {}
        self.message = "converged"
        self._build(n_scan, max_refine)

    # ------------------------------------------------------------------ build
    def _build(self, n_scan: int, max_refine: int) -> None:
        if self.scale <= 0 or self.atom >= 1.0:
            self.intervals = []
            self.mass = 0.0
            return
        if self._backend.name != "commuting":
            # each evaluation is a p x p inverse: the walk of rmtgan._dense_spectrum needs
            # far fewer; it hands back to the generic construction when it does not apply
            from rmtgan._dense_spectrum import build_dense

            with _progress(self._backend, self.progress, "gram_spectrum"):
                built = build_dense(self)
                self._backend.release()  # the walks' cached resolvents and products
                if built:
                    return
                upper, prefix = getattr(self, "_dense_prefix", (None, []))
                self._generic(n_scan, max_refine, upper=upper, prefix=prefix)
                if self.success:
                    # exact density solves cost p x p inverses: serve the panels' interpolant
                    # where exact solves at panel midpoints confirm it
                    from rmtgan._dense_spectrum import certify_density

                    certify_density(self)
            return
        self._generic(n_scan, max_refine)

    def _generic(self, n_scan: int, max_refine: int, upper: float | None = None,
                 prefix: list | None = None) -> None:
        """Scan, edges, panels and the mass certificate on ``(0, upper]``.

        ``prefix``: intervals above ``upper`` (a point of a gap) built already.
        """
        prefix = list(prefix or [])
        mass_tol = MASS_TOL
        if prefix:
            # each interval of the walk was certified to the mass tolerance of ``tol``
            from rmtgan._dense_spectrum import tolerances

            mass_tol += len(prefix) * tolerances(self.tol, self.model.n)["mass"]
        self._scan_upper = upper
        problems: list[str] = []
        grid = self._scan_grid(n_scan)
        delta = self._scan_solve(grid)
        for attempt in range(max_refine + 1):
            for _ in range(64):
                problems = []
                try:
                    intervals = self._intervals(grid, delta, problems)
                    break
                except _GapFound as gap:
                    # a node of a panel fell outside the support: a gap the scan missed
                    j = np.searchsorted(grid, gap.x)
                    grid = np.insert(grid, j, gap.x)
                    delta = np.insert(delta, j, gap.delta, axis=0)
            else:
                raise ConvergenceError("too many gaps discovered inside scanned support intervals")
            self.intervals = sorted(intervals + prefix, key=lambda iv: iv.left)
            self.mass = float(sum(iv.mass for iv in self.intervals))
            if abs(self.mass + self.atom - 1.0) <= mass_tol and not problems:
                break
            problems.append(f"mass certificate: density integrates to {self.mass:.12g}, "
                            f"1 - atom = {1 - self.atom:.12g}")
            if attempt < max_refine:
                # refine the scan: four times as many points, only the new ones are solved
                fine = self._scan_grid(n_scan * 4 ** (attempt + 1))
                fine = fine[~np.isin(fine, grid)]
                grid = np.concatenate([grid, fine])
                delta = np.concatenate([delta, self._solve_real(fine)])  # full continuation
                order = np.argsort(grid)
                grid, delta = grid[order], delta[order]
        problems.extend(self._edge_notes)
        if problems:
            self.success = False
            self.message = "; ".join(problems)
            warnings.warn(f"gram_spectrum did not fully converge: {self.message}", RuntimeWarning,
                          stacklevel=3)

    def _intervals(self, grid: np.ndarray, delta: np.ndarray, problems: list) -> list[SupportInterval]:
        """Support intervals from the scan: runs of inside points, their edges and expansions."""
        intervals = []
        cache = self._cache  # edges and expansions survive a restart after a gap is found
        for j0, j1 in _runs(self._inside(delta)):
            key = ("left", grid[j0 - 1] if j0 > 0 else None, grid[j0])
            if key not in cache:
                cache[key] = self._left_edge(grid, delta, j0)
            a, hard, ua = cache[key]
            key = ("right", grid[j1], grid[j1 + 1] if j1 + 1 < grid.size else None)
            if key not in cache:
                cache[key] = self._right_edge(grid, delta, j1)
            b, ub = cache[key]
            if ("interval", a, b) in cache:
                intervals.append(cache[("interval", a, b)])
                continue
            xs = [grid[j0:j1 + 1]]
            us = [1.0 / (1.0 + delta[j0:j1 + 1])]
            if ua is not None:
                xs.insert(0, [a])
                us.insert(0, ua[None])
            if ub is not None:
                xs.append([b])
                us.append(ub[None])
            n_problems = len(problems)
            iv = self._expand(a, b, hard, np.concatenate(xs), np.concatenate(us), problems)
            if len(problems) == n_problems:
                cache[("interval", a, b)] = iv
            intervals.append(iv)
        return intervals

    def _scan_grid(self, n: int) -> np.ndarray:
        """``n`` evenly spaced points of ``(0, U]`` and a geometric grid from ``scan_floor U``.

        The geometric part keeps ``n / 27`` points per decade (``n / 3`` over the
        nine decades of the default floor).
        """
        U = self.scale * 1.001 if getattr(self, "_scan_upper", None) is None else self._scan_upper
        lin = np.linspace(0, U, n + 1)[1:]
        floor = scan_floor(self.model)
        decades = -np.log10(floor)
        geo = np.geomspace(floor * U, U, max(int(round((n // 3) * decades / 9)), 8))  # n // 3 at 1e-9
        return np.unique(np.concatenate([lin, geo]))

    def _scan_solve(self, grid: np.ndarray) -> np.ndarray:
        """``delta`` on the scan grid: continuation on every fourth point, Newton between.

        A point between two coarse points on the same side of the support starts
        Newton from the interpolated ``u = 1/(1 + delta)``; it is kept when it lands
        on the same side (outside: on the physical real branch, ``d delta / dx > 0``,
        as for any Stieltjes transform of a positive measure).  Everything else is
        solved by continuation.
        """
        coarse = np.zeros(grid.size, bool)
        coarse[::4] = True
        coarse[-1] = True
        delta = np.empty((grid.size, self.model.k), complex)
        delta[coarse] = self._solve_real(grid[coarse])
        ins = self._inside(delta)
        ci = np.flatnonzero(coarse)
        rest = np.flatnonzero(~coarse)
        if rest.size == 0:
            return delta
        hi = ci[np.searchsorted(ci, rest)]
        lo = ci[np.searchsorted(ci, rest) - 1]
        w = ((grid[rest] - grid[lo]) / (grid[hi] - grid[lo]))[:, None]
        u = (1.0 - w) / (1.0 + delta[lo]) + w / (1.0 + delta[hi])
        out = newton(self._backend, grid[rest] + 0j, 1.0 / u - 1.0, tol=self.tol, maxiter=12)
        side = self._inside(out.delta)
        slope = _ddelta_dz(out.jac, out.tz).real
        physical = side | np.all(slope >= 0, axis=1)
        ok = out.converged & (ins[lo] == ins[hi]) & (side == ins[lo]) & physical
        delta[rest[ok]] = out.delta[ok]
        if (~ok).any():
            delta[rest[~ok]] = self._solve_real(grid[rest[~ok]])
        return delta

    def _inside(self, delta: np.ndarray) -> np.ndarray:
        return np.any(delta.imag > INSIDE_RTOL * (1.0 + np.abs(delta)), axis=-1)

    def _solve_real(self, x: np.ndarray) -> np.ndarray:
        out = continuation(self._backend, np.asarray(x, float) + 0j, self._traces, self.scale, tol=self.tol)
        if not out.converged.all():
            raise ConvergenceError(f"solve failed at x = {np.asarray(x)[~out.converged][:3]}")
        return out.delta

    def _left_edge(self, grid, delta, j0):
        """Left edge of the run starting at ``j0``: ``(a, hard, 1/(1+delta(a)) or None)``."""
        if j0 > 0:
            a, ua = self._edge(grid[j0 - 1], delta[j0 - 1].real, grid[j0])
            return a, False, ua
        # first grid point is inside: probe towards 0 for a soft edge, else a hard edge at 0
        x_in = grid[0]
        x = x_in
        while True:
            x = x * 1e-2
            if x < HARD_EDGE_FLOOR * self.scale:
                break
            d = self._solve_real(np.array([x]))[0]
            if not self._inside(d[None])[0]:
                a, ua = self._edge(x, d.real, x_in)
                return a, False, ua
            x_in = x
        return 0.0, True, None

    def _right_edge(self, grid, delta, j1):
        if j1 + 1 >= grid.size:
            raise ConvergenceError("support reaches the scan bound; the spectral bound is wrong")
        return self._edge(grid[j1 + 1], delta[j1 + 1].real, grid[j1])

    def _edge(self, x_out: float, d_out: np.ndarray, x_in: float):
        """Edge between an outside point ``x_out`` (real ``delta``) and an inside point ``x_in``.

        Returns ``(edge, 1/(1 + delta(edge)))``; the fold Newton is retried from
        outside points moved closer by bisection, and plain bisection is the last
        resort (then the second item is ``None``).  Bisection stops where the solves
        fail next to the fold, possibly ``1e-9`` (relative) short of it, closer than
        panel nodes can come: the fold Newton is tried once more from there.
        """
        d_out = np.array(d_out, float)
        for _ in range(4):
            res = fold_newton(self._backend, x_out, d_out, min(x_out, x_in), max(x_out, x_in), self.scale,
                              maxiter=40)
            if res is not None:
                return res["x"], 1.0 / (1.0 + res["d"])
            for _ in range(3):
                mid = 0.5 * (x_out + x_in)
                try:
                    dm = self._solve_real(np.array([mid]))[0]
                except ConvergenceError:
                    break
                if self._inside(dm[None])[0]:
                    x_in = mid
                else:
                    x_out, d_out = mid, dm.real
        while abs(x_out - x_in) > 1e-15 * max(abs(x_out), 1e-14 * self.scale):
            mid = 0.5 * (x_out + x_in)
            try:
                dm = self._solve_real(np.array([mid]))[0]
            except ConvergenceError:
                # ill-conditioned right at the edge: from this close, the fold Newton
                # converges (seen: bisection 1.8e-8 short of an edge at 34.8 next to a
                # gap of width 2e-4); else the bracket is the answer
                lo, hi = min(x_out, x_in), max(x_out, x_in)
                res = fold_newton(self._backend, x_out, d_out, lo, hi, self.scale, maxiter=40)
                if res is not None:
                    return res["x"], 1.0 / (1.0 + res["d"])
                if abs(x_out - x_in) > 1e-9 * abs(mid):
                    self._edge_notes.append(f"edge near {mid:.6g} located to +-{abs(x_out - x_in):.1e} only")
                break
            if self._inside(dm[None])[0]:
                x_in = mid
            else:
                x_out, d_out = mid, dm.real
        return x_out, None

    def _expand(self, a, b, hard, known_x, known_u, problems) -> SupportInterval:
        """Adaptive Chebyshev panels of ``F`` and ``u`` on ``[a, b]`` (see :mod:`rmtgan._panels`)."""
        iv = SupportInterval(a, b, 0.0, [], hard)
        known = {"th": iv.theta(known_x), "u": known_u}

        def fun(th, guess=None):
            # Newton from the coarser level's interpolant, or else from guesses interpolated
            # linearly in theta through every point known so far
            if guess is None:
                order = np.argsort(known["th"])
                kt, ku = known["th"][order], known["u"][order]
                guess = np.stack([np.interp(th, kt, ku[:, c].real) + 1j * np.interp(th, kt, ku[:, c].imag)
                                  for c in range(ku.shape[1])], axis=1)
            x = iv.x_of(th)
            d = self._solve_inside(x, 1.0 / guess - 1.0)
            out = ~self._inside(d)
            if out.any():
                raise _GapFound(x[out][0], d[out][0].real)
            u = 1.0 / (1.0 + d)
            known["th"] = np.concatenate([known["th"], th])
            known["u"] = np.concatenate([known["u"], u])
            return self._rho_from_u(x, u) * (b - a) * np.sin(2 * th), u

        panels, issues = adaptive_panels(fun, 0.0, np.pi / 2, mass_atol=1e-13, max_depth=40)
        problems.extend(f"interval [{a:.6g}, {b:.6g}]: {msg}" for msg in issues)
        iv.panels = panels
        iv.mass = float(sum(pn.mass for pn in panels))
        return iv

    def _solve_inside(self, x: np.ndarray, guess: np.ndarray) -> np.ndarray:
        """``delta`` at real points expected inside the support.

        Newton from ``guess``; points where it fails or lands on a real solution are
        solved again by continuation (which returns the real ``delta`` of a point
        that is in fact outside the support).
        """
        z = x + 0j
        out = newton(self._backend, z, guess, tol=self.tol, maxiter=25,
                     tol_quad=quadratic_tolerance(self.tol), fast_jac=True)
        bad = ~out.converged | ~self._inside(out.delta)
        delta = out.delta
        if bad.any():
            fix = continuation(self._backend, z[bad], self._traces, self.scale, tol=self.tol)
            if not fix.converged.all():
                raise ConvergenceError(f"solve failed at x = {x[bad][~fix.converged][:3]}")
            delta[bad] = fix.delta
        return delta

    def _rho_from_u(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        m = -(u @ self._sizes) / (self._n * x)
        return m.imag / np.pi

    # ------------------------------------------------------------------ queries
    @property
    def support(self) -> list[tuple[float, float]]:
        """The bulk intervals ``[(left, right), ...]`` in increasing order (Python floats)."""
        return [(float(iv.left), float(iv.right)) for iv in self.intervals]

    @property
    def n_evaluations(self) -> int:
        """Evaluations of the fixed-point map so far, counted per point ``z``.

        The cost unit of the solver: ``O(q k^2)`` each on the commuting path
        (``q`` distinct eigen-direction profiles), one complex ``p x p`` inverse on
        the dense path.  It counts the construction and every later query that
        solves (:meth:`density` with exact solves, :meth:`stieltjes`); it only grows.
        """
        return int(self._backend.n_evaluations)

    def _locate(self, x: np.ndarray):
        for iv in self.intervals:
            yield iv, (x > iv.left) & (x < iv.right)

    def density(self, x, *, exact: bool | None = None) -> np.ndarray:
        r"""Density ``rho(x)`` of the bulk (the ``eta -> 0`` limit), per ``n`` eigenvalues.

        Parameters
        ----------
        x : array_like of float
            Points (any shape); 0 outside the support (the atom is not a density).
        exact : bool, optional
            ``True``: Newton on the real axis at every ``x`` (to the solver
            tolerance).  ``False``: the Chebyshev interpolant only (no solve).
            Default: exact on the commuting path; on the dense path, interval by
            interval, the interpolant where the build certified it against exact
            solves (relative error below ``1e-9`` at the default ``tol``, see
            ``docs/dense.md``), exact elsewhere.

        Returns
        -------
        ndarray of float64, same shape as ``x``
            ``rho(x) >= 0``, normalised per ``n`` eigenvalues of the ``n x n``
            matrix ``G``: it integrates over :attr:`support` to ``1 - atom``
            (:attr:`mass`).  0 outside the open support intervals (at their edges
            too), hence at the atom.

        Raises
        ------
        TypeError
            ``x`` is not real numbers, or ``exact`` is not a bool or ``None``.
        ValueError
            ``x`` holds NaN or infinity.
        ConvergenceError
            An exact solve failed.
        """
        if exact is not None and not isinstance(exact, (bool, np.bool_)):
            raise TypeError(f"exact must be True, False or None, got {exact!r}")
        xa = as_real_points(x, "x")
        out = np.zeros(xa.shape)
        flat, res = xa.reshape(-1), out.reshape(-1)
        for iv, sel in self._locate(flat):
            if not sel.any():
                continue
            xs = flat[sel]
            th = iv.theta(xs)
            if exact if exact is not None else not iv.certified:
                d = self._solve_inside(xs, 1.0 / iv.u(th) - 1.0)
                res[sel] = np.clip(self._rho_from_u(xs, 1.0 / (1.0 + d)), 0.0, None)
            elif iv.from_u:
                res[sel] = self._rho_from_u(xs, iv.u(th))
            else:
                res[sel] = iv.values(th) / ((iv.right - iv.left) * np.sin(2 * th))
        return out

    def stieltjes(self, z) -> np.ndarray:
        r"""Stieltjes transform ``m_G(z) = (1/n) tr (G - z I_n)^{-1}`` in the limit.

        The transform of the whole distribution, atom at 0 included:
        ``m_G(z) = int rho(dlambda) / (lambda - z) = -(1/(n z)) sum_a n_a / (1 + delta_a(z))``.
        Real ``z`` inside the support give the boundary value from ``Im z > 0``
        (then ``Im m_G = pi rho(z)``); ``z`` in the lower half-plane give the
        conjugate of the value at ``conj(z)``.

        Parameters
        ----------
        z : array_like of complex or float
            Points (any shape), finite, with ``1e-300 <= |z| <= 1e300`` (0 is a
            pole when there is an atom).

        Returns
        -------
        ndarray of complex128, same shape as ``z``
            ``m_G(z)``; ``Im m_G > 0`` for ``Im z > 0``, real for real ``z``
            outside the support.

        Raises
        ------
        TypeError
            ``z`` is not numeric.
        ValueError
            ``z`` holds NaN, infinity, 0 or a modulus outside ``[1e-300, 1e300]``.
        ConvergenceError
            A fixed-point solve failed.
        """
        za = as_spectral_points(z, "z")
        flat = za.reshape(-1)
        lower = flat.imag < 0
        zz = np.where(lower, np.conj(flat), flat)
        out = continuation(self._backend, zz, self._traces, self.scale, tol=self.tol)
        if not out.converged.all():
            raise ConvergenceError(f"solve failed at z = {zz[~out.converged][:3]}")
        m = stieltjes_from_delta(zz, out.delta, self._sizes)
        m = np.where(lower, np.conj(m), m)
        return m.reshape(za.shape)

    def cdf(self, x) -> np.ndarray:
        """Cumulative distribution function ``P(lambda <= x)``, per ``n`` eigenvalues of ``G``.

        ``lambda`` is an eigenvalue of the ``n x n`` matrix ``G = X^T X / p`` drawn
        uniformly at random (in the limit), so the atom at 0 counts: the CDF jumps by
        :attr:`atom` at ``x = 0``.  Within an interval it is the closed-form
        integral of the Chebyshev expansion (no solve).

        Parameters
        ----------
        x : array_like of float
            Points (any shape), finite reals.

        Returns
        -------
        ndarray of float64, same shape as ``x``
            Values in ``[0, 1]``: 0 for ``x < 0``, ``atom`` on ``[0, left edge)``,
            non-decreasing, ``atom + mass`` (1 up to the mass certificate) from
            the top edge on.

        Raises
        ------
        TypeError
            ``x`` is not real numbers.
        ValueError
            ``x`` holds NaN or infinity.
        """
        xa = as_real_points(x, "x")
        flat = xa.reshape(-1)
        out = np.where(flat >= 0, self.atom, 0.0)
        for iv in self.intervals:
            out += np.where(flat >= iv.right, iv.mass, 0.0)
            sel = (flat > iv.left) & (flat < iv.right)
            if sel.any():
                out[sel] += iv.partial_mass(iv.theta(flat[sel]))
        return np.clip(out, 0.0, 1.0).reshape(xa.shape)

    def quantiles(self, q) -> np.ndarray:
        """Inverse of :meth:`cdf`: the smallest ``x`` with ``cdf(x) >= q``.

        ``quantiles((i - 0.5) / n)`` for ``i = 1 .. n`` are the predicted
        eigenvalues of ``G``, in ascending order (the zeros of the atom first).

        Parameters
        ----------
        q : array_like of float
            Probabilities in ``[0, 1]`` (any shape).

        Returns
        -------
        ndarray of float64, same shape as ``q``
            Points on the eigenvalue axis: 0 for ``q <= atom``, inside the support
            otherwise (an interval's right edge for the ``q`` at the end of its
            mass), the top edge for ``q >= atom + mass``.  All zeros when there is
            no bulk.

        Raises
        ------
        TypeError
            ``q`` is not real numbers.
        ValueError
            ``q`` holds NaN or infinity or lies outside ``[0, 1]``.
        """
        qa = as_real_points(q, "q")
        if np.any((qa < 0) | (qa > 1)):
            raise ValueError("q must lie in [0, 1]")
        out = np.zeros(qa.shape)
        flat, res = qa.reshape(-1), out.reshape(-1)
        base = self.atom
        total = self.atom + self.mass
        for i, iv in enumerate(self.intervals):
            last = i == len(self.intervals) - 1
            sel = (flat > base) & ((flat <= base + iv.mass) | last)
            if sel.any():
                target = np.minimum(flat[sel] - base, iv.mass)
                res[sel] = iv.x_of(_invert_partial_mass(iv, target))
            base += iv.mass
        if self.intervals:
            res[flat >= total] = self.intervals[-1].right
        return out

    def mean(self) -> float:
        r"""First moment ``int x rho(x) dx`` (by Gauss quadrature of the Chebyshev data)."""
        tot = sum(iv.moment() for iv in self.intervals)
        return float(tot)

    def __repr__(self) -> str:
        sup = ", ".join(f"[{a:.6g}, {b:.6g}]" for a, b in self.support)
        return (f"GramSpectrum(method={self.method!r}, atom={self.atom:.6g}, support=[{sup}], "
                f"success={self.success})")


def _invert_partial_mass(iv: SupportInterval, target: np.ndarray) -> np.ndarray:
    """``theta`` with ``iv.partial_mass(theta) = target`` (monotone; bracketed Newton).

    A table of the partial mass on 1025 points of ``[0, pi/2]`` (cached on the
    interval) brackets every target and gives a first guess by linear
    interpolation; Newton steps with ``d mass / d theta = F`` that stay inside the
    bracket are taken, bisection steps otherwise.  A point is done when its
    residual is at most ``1e-15`` of the interval's mass or its bracket is a few
    ulps wide; only the points not yet done are evaluated again.
    """
    table = iv.__dict__.get("_mass_table")
    if table is None:
        grid = np.linspace(0.0, np.pi / 2, 1025)
        table = iv.__dict__["_mass_table"] = (grid, np.maximum.accumulate(iv.partial_mass(grid)))
    grid, cum = table
    j = np.clip(np.searchsorted(cum, target, side="right") - 1, 0, grid.size - 2)
    lo, hi = grid[j].copy(), grid[j + 1].copy()
    dc = cum[j + 1] - cum[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        frac = np.where(dc > 0, (target - cum[j]) / dc, 0.5)
    theta = lo + np.clip(frac, 0.0, 1.0) * (hi - lo)
    tol = 1e-15 * max(iv.mass, 1e-300)
    todo = np.ones(theta.shape, bool)
    for _ in range(70):  # Newton converges in a few steps; bisection alone needs < 60
        idx = np.flatnonzero(todo)
        if idx.size == 0:
            break
        th, lo_i, hi_i = theta[idx], lo[idx], hi[idx]
        g = iv.partial_mass(th) - target[idx]
        done = (np.abs(g) <= tol) | (hi_i - lo_i <= 4.0 * np.spacing(np.maximum(hi_i, 1e-300)))
        below = g < 0
        lo_i = np.where(below, th, lo_i)
        hi_i = np.where(below, hi_i, th)
        with np.errstate(divide="ignore", invalid="ignore"):
            step = th - g / iv.values(th)
        inside = np.isfinite(step) & (step > lo_i) & (step < hi_i)
        theta[idx] = np.where(done, th, np.where(inside, step, 0.5 * (lo_i + hi_i)))
        lo[idx], hi[idx] = lo_i, hi_i
        todo[idx[done]] = False
    return theta


class _GapFound(Exception):
    """A point believed inside the support is outside: ``x`` and its real ``delta``."""

    def __init__(self, x: float, delta: np.ndarray):
        super().__init__(x)
        self.x = float(x)
        self.delta = np.asarray(delta, complex)


@contextmanager
def _progress(backend, enabled: bool, desc: str):
    """A ``tqdm`` bar over the backend's evaluations, when it has one and ``enabled``."""
    bar = getattr(backend, "progress_bar", None)
    if bar is None or not enabled:
        yield
        return
    with bar(True, desc):
        yield


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """Maximal runs ``(start, stop)`` (inclusive) of True in a boolean vector."""
    idx = np.flatnonzero(np.diff(np.concatenate([[0], mask.astype(np.int8), [0]])))
    return [(int(s), int(e) - 1) for s, e in zip(idx[::2], idx[1::2], strict=True)]


def gram_spectrum(model: MixtureModel, *, method: str = "auto", tol: float = DEFAULT_TOL,
                  n_scan: int = 96, backend: str = "numpy", device=None,
                  workers: int | None = None, progress: bool = False) -> GramSpectrum:
    r"""The limiting spectrum of ``G = X^T X / p`` for a mixture model.

    Parameters
    ----------
    model : MixtureModel
    method : {'auto', 'commuting', 'dense'}
        Solver path; ``'auto'`` uses the numba path when the covariances commute.
    tol : float
        Relative residual tolerance of every fixed-point solve.  On the dense
        path it also sets the accuracy of the Chebyshev expansions (their tail
        and the interpolant's certificate scale with ``tol``; edges are always
        solved to full accuracy), so a looser ``tol`` costs fewer inverses.
    n_scan : int
        Initial number of scan points (refined automatically when the mass
        certificate fails).
    backend : {'numpy', 'torch'}
        Array library of the dense path (see :func:`rmtgan.solver.make_backend`).
    device : str, optional
        Torch device (``'cpu'``, ``'cuda'``) with ``backend='torch'``.
    workers : int, optional
        Threads of the LAPACK dense path: the points of a batch (the nodes of an
        expansion level) are spread over them, one inverse per thread.  Default:
        every CPU the process may use; ``workers=1`` runs serially.  Results do not
        depend on it (bit for bit when BLAS runs one thread, else to rounding).
    progress : bool
        Show a ``tqdm`` bar of the ``p x p`` inverses on the dense path.

    Returns
    -------
    GramSpectrum
        With ``.support``, ``.atom``, ``.density(x)``, ``.cdf(x)``,
        ``.quantiles(q)``, ``.stieltjes(z)``.

    Warns
    -----
    RuntimeWarning
        When a certificate fails (the mass, unresolved panels): ``success`` is
        then ``False`` and ``message`` says why.

    Raises
    ------
    ConvergenceError
        When a fixed-point solve fails outright at a point of the scan (seen with
        covariance condition numbers near ``1e8`` and support at ``x ~ 1e-8``).

    Examples
    --------
    >>> import numpy as np, rmtgan
    >>> mp = rmtgan.MixtureModel.from_eigen(np.ones((1, 500)), sizes=[1500])
    >>> spec = rmtgan.gram_spectrum(mp)          # Marchenko-Pastur, gamma = 3
    >>> [round(v, 6) for v in spec.support[0]]   # (sqrt(3) -+ 1)^2
    [0.535898, 7.464102]
    """
    return GramSpectrum(model, method=method, tol=tol, n_scan=n_scan, backend=backend, device=device,
                        workers=workers, progress=progress)
