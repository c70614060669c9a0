r"""Solving the fixed-point equations of the Gram resolvent.

For ``z`` in ``C \ R_+`` the vector ``delta(z) in C^k`` is the unique solution with
``Im z > 0 => Im delta_a > 0`` (the Herglotz branch) of

.. math::

    \delta_a = t_a(\delta) = \frac1p \operatorname{tr} C_a R(z),\qquad
    R(z) = \Big(\sum_b \frac{c_b C_b}{1+\delta_b} - z I_p\Big)^{-1},
    \qquad c_b = n_b / p .

Everything downstream (Stieltjes transform, density, support, spikes) is a
function of ``delta``.  This module holds

* the *backends* that evaluate ``t``, its Jacobian ``dt/ddelta``, ``dt/dz`` and
  ``M^T R M`` at a batch of points: :class:`CommutingBackend` (numba kernels,
  ``O(p k^2)`` per point) and :class:`DenseBackend` (LAPACK, ``O(p^3)``);
* a batched Newton method with the exact Jacobian and a Herglotz-preserving
  step control (:func:`newton`);
* a continuation in ``Im z`` that makes Newton globally reliable
  (:func:`continuation`), and the public :func:`solve` with its
  :class:`SolveResult`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from rmtgan._validation import as_flag, as_spectral_points, as_tolerance, as_workers
from rmtgan.commuting import CommutingBackend
from rmtgan.dense import DenseBackend
from rmtgan.model import MixtureModel

__all__ = [
    "ConvergenceError",
    "SolveResult",
    "solve",
    "make_backend",
    "CommutingBackend",
    "DenseBackend",
]

#: residual tolerance on the intermediate levels of :func:`continuation`.
LEVEL_TOL = 1e-6
#: default relative tolerance on the fixed-point residual ``|delta - t(delta)|``.
DEFAULT_TOL = 1e-12
#: covariance scales (largest mean eigenvalue ``tr C_a / p``) the solvers accept: beyond
#: about ``1e+-150`` squares of the scale over- or underflow in double precision.
SCALE_RANGE = (1e-140, 1e140)


class ConvergenceError(RuntimeError):
    """A solve that did not converge where a converged answer was required."""


# --------------------------------------------------------------------------- backends
def make_backend(model: MixtureModel, method: str = "auto", *, backend: str = "numpy", device=None,
                 workers: int | None = None):
    """Pick the evaluation backend.

    Parameters
    ----------
    model : MixtureModel
    method : {'auto', 'commuting', 'dense'}
        ``'auto'`` takes the numba path when the covariances commute, the dense
        (one ``p x p`` inverse per point) path otherwise.
    backend : {'numpy', 'torch'}
        Array library of the dense path: LAPACK through SciPy, or torch (imported
        only here; ``device`` then selects ``'cpu'`` or ``'cuda'``).  Ignored by the
        commuting path.
    device : str or torch.device, optional
        Torch device (default: ``'cuda'`` when available, else ``'cpu'``).
    workers : int, optional
        Threads of the LAPACK dense path (default: every CPU the process may use;
        see :class:`rmtgan.dense.DenseBackend`).  Checked on every path, used by
        that one only.

    Raises
    ------
    ValueError
        When the covariances' scale (largest ``tr C_a / p``) is outside
        :data:`SCALE_RANGE` (the spectrum is scale-covariant: rescale the data).
    """
    if not isinstance(model, MixtureModel):
        raise TypeError(f"model must be a MixtureModel, got {type(model).__name__}")
    if method not in ("auto", "commuting", "dense"):
        raise ValueError(f"method must be 'auto', 'commuting' or 'dense', got {method!r}")
    if backend not in ("numpy", "torch"):
        raise ValueError(f"backend must be 'numpy' or 'torch', got {backend!r}")
    if device is not None and backend != "torch":
        raise ValueError("device= needs backend='torch'")
    workers = as_workers(workers)  # checked whichever path runs
    top = float(np.max(model.traces()))
    if top > 0 and not SCALE_RANGE[0] <= top <= SCALE_RANGE[1]:
        raise ValueError(f"the covariances' scale (largest mean eigenvalue {top:.3g}) is outside "
                         f"[{SCALE_RANGE[0]:g}, {SCALE_RANGE[1]:g}], where the solvers' arithmetic "
                         "is exact; rescale the data: C_a -> s C_a scales the spectrum by s")
    if method == "commuting" or (method == "auto" and model.is_commuting):
        return CommutingBackend(model)
    if backend == "torch":
        from rmtgan.torch_backend import TorchDenseBackend

        return TorchDenseBackend(model, device=device)
    return DenseBackend(model, workers=workers)


# --------------------------------------------------------------------------- Newton
@dataclass
class _NewtonOut:
    delta: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    jac: np.ndarray  # dt/ddelta at the last evaluation that took it (zero where none did)
    tz: np.ndarray  # dt/dz likewise


#: below this residual a single-precision evaluation (``newton(single_first=True)``) takes no
#: step: its own error may be as large (the dense backend's single-precision probe check).
ROUGH_RESIDUAL = 1e-5


def quadratic_tolerance(tol: float, scaled: bool = False) -> float:
    r"""Residual at which one more exact Newton step is enough for ``tol``.

    Newton's error after a step from residual ``r`` is about ``C r^2``: a point with
    ``r`` below the returned value is accepted once that step is taken, which saves the
    evaluation that would only confirm it.  ``C`` grows with the conditioning of
    ``I - J`` (next to an edge).  The value is ``min(1e-7, 0.1 sqrt(tol))``
    (``C r^2 <= tol`` for ``C <= 100`` up to ``tol = 1e-12``); with ``scaled`` (the dense
    build) it grows as ``0.01 sqrt(tol)`` above ``tol = 1e-10`` (``C r^2 <= tol`` for
    ``C <= 1e4``).  A heuristic, not a bound: at ``tol = 1e-6`` the dense benchmark
    model's density stayed within 3e-8 of the default one, a two-class stress model's
    within 5.7e-6 (1.0e-6 without ``scaled``).  The generic construction keeps the
    fixed cap: scaled, it took 10-15 % more evaluations at ``tol = 1e-6`` on the
    commuting path's stress models.
    """
    q = 0.1 * float(np.sqrt(tol))
    return min(q, max(1e-7, 0.1 * q)) if scaled else min(1e-7, q)


def newton(backend, z: np.ndarray, delta0: np.ndarray, *, tol=DEFAULT_TOL,
           maxiter: int = 30, herglotz: bool = True, tol_quad: float = 0.0,
           fast_jac: bool = False, J0: np.ndarray | None = None, j0_err: float = np.inf,
           refresh: bool = False, max_growth: int | None = None, tol_step: float = 0.0,
           last_step: bool = True, single_first: bool = False) -> _NewtonOut:
    r"""Batched Newton iterations on ``F(delta) = delta - t(delta)``: the one Newton loop of the library.

    The step solves ``(I - J) s = F`` with ``J = dt/ddelta`` (least squares where
    ``I - J`` is singular; a point whose step is not finite is abandoned).  A point is accepted,
    and its last step applied, when the residual
    ``r = max_a |F_a| / max(1, max_a |delta_a|)``

    * is at most ``tol`` (a scalar or one value per point); or
    * is at most ``tol_quad`` (see :func:`quadratic_tolerance`) and the step used
      the Jacobian at the iterate (Newton's error after it is ``O(r^2)``), or ``J0``
      with ``j0_err r <= tol / 10`` (a chord step's error is ``O(j0_err r + r^2)``); or
    * times the observed contraction ``r_i / r_{i-1}`` of a chord step (the
      a-posteriori error estimate of the next step) is at most ``tol``;

    or when a step with the Jacobian at the iterate is at most
    ``tol_step max(1, max_a |delta_a|)``: its own error is of the order of its square.
    Unlike ``tol_quad`` this allows for the conditioning of ``I - J`` (next to an
    edge, where ``I - J`` is nearly singular, a small residual is not a small error).

    Parameters
    ----------
    backend
        Evaluates ``t``, ``J`` and ``dt/dz`` at a batch of points
        (``evaluate(z, delta, fast_jac=...)``; with ``J0`` also ``jac=False``).
    z : (m,) complex array
    delta0 : (m, k) complex array
        Starting points; a non-finite one is reported as not converged, never evaluated.
    herglotz : bool
        A step that would make some ``Im delta_a`` negative (the solutions sought have
        ``Im z >= 0``, hence ``Im delta_a >= 0``) is shortened so that every
        ``Im delta_a`` keeps at least half of its value (overshoots within rounding of
        the real axis, ``1e-13 |delta_a|``, are not: a real solution is reached exactly);
        the last step of an accepted point is taken in full, its negative imaginary
        parts set to 0.
    fast_jac : bool
        Let a dense backend form ``J`` from single-precision products (about 1e-7
        relative): it then steers the steps only; residuals stay in double precision.
    J0 : (m, k, k) array, optional
        A known Jacobian per point (e.g. interpolated along the support): steps cost
        one evaluation without products (a chord method).  The exact Jacobian is taken
        when the residual fails to drop tenfold, and, with ``refresh=True``, at the
        second evaluation of every point not accepted after its first.
    j0_err : float
        Relative error of ``J0``.
    max_growth : int, optional
        Abandon a point whose residual grows this many times in a row.
    last_step : bool
        ``False``: an accepted point is the evaluated iterate whose residual is at most
        ``tol``, or whose Newton step (its error, to first order) is at most ``tol_step``
        as above; that step is not taken (``tol_quad`` and the chord criterion are not
        used), so that the data of its last evaluation are those of the returned point.
    single_first : bool
        Evaluate each point's first iterate with ``single=True`` (a dense backend's
        single-precision inverse, with ``fast_jac``): for starting guesses far from
        the solution in the sense of the tolerance, whose first step only needs to be
        roughly right; no step is taken from a residual below :data:`ROUGH_RESIDUAL`,
        and every later evaluation, hence every residual that accepts a point, is in
        double precision.

    Returns
    -------
    _NewtonOut
        ``jac`` and ``tz`` are those of the last evaluation with the Jacobian
        (zero where none was taken); ``iterations`` counts evaluations per point.
    """
    m, k = delta0.shape
    tol_arr = np.broadcast_to(np.asarray(tol, dtype=float), (m,))
    delta = np.array(delta0, dtype=np.complex128, copy=True)
    conv = np.zeros(m, bool)
    iters = np.zeros(m, np.int64)
    resid = np.full(m, np.inf)
    jac = np.zeros((m, k, k), np.complex128)
    tz = np.zeros((m, k), np.complex128)
    juse = np.zeros((m, k, k), np.complex128)
    chord = np.zeros(m, bool)
    if J0 is not None:
        juse[:] = J0
        chord[:] = True
    jerr = np.full(m, j0_err if J0 is not None else np.inf)
    r_prev = np.full(m, np.inf)
    grew = np.zeros(m, np.int64)
    active = np.flatnonzero(np.all(np.isfinite(delta), axis=1))
    eye = np.eye(k)
    for it in range(maxiter):
        if active.size == 0:
            break
        need, light = active[~chord[active]], active[chord[active]]
        t = np.empty((m, k), np.complex128)
        exact = np.zeros(m, bool)
        rough = single_first and fast_jac and it == 0  # the first evaluation
        if need.size:
            kw = {"single": True} if rough else {}
            t[need], jac[need], tz[need] = backend.evaluate(z[need], delta[need], fast_jac=fast_jac, **kw)
            juse[need] = jac[need]
            exact[need] = True
            jerr[need] = 0.0
        if light.size:
            t[light] = backend.evaluate(z[light], delta[light], jac=False)[0]
        d = delta[active]
        F = d - t[active]
        size = np.maximum(1.0, np.max(np.abs(d), axis=1))
        r = np.max(np.abs(F), axis=1) / size
        bad = ~np.isfinite(r)
        r[bad] = np.inf
        resid[active] = r
        iters[active] += 1
        A = eye - juse[active]
        singular = np.zeros(active.size, bool)
        with np.errstate(all="ignore"):
            try:
                step = np.linalg.solve(A, F[..., None])[..., 0]
            except np.linalg.LinAlgError:
                step, singular = _solve_rows(A, F)
        bad |= ~np.all(np.isfinite(step), axis=1)
        rho = r / r_prev[active]
        good_j = exact[active] | (jerr[active] * r <= 0.1 * tol_arr[active])
        chord_ok = ~exact[active] & np.isfinite(r_prev[active]) & (rho < 0.5) & (rho * r <= tol_arr[active])
        # a small Newton step, not a least-squares one through a singular I - J
        small = (exact[active] & ~singular & (np.max(np.abs(step), axis=1) <= tol_step * size)
                 if tol_step > 0 else np.zeros(active.size, bool))
        if rough:  # a single-precision residual accepts nothing
            done = np.zeros(active.size, bool)
        elif last_step:
            done = ((r <= tol_arr[active]) | ((r <= tol_quad) & good_j) | chord_ok | small) & ~bad
        else:
            done = ((r <= tol_arr[active]) | small) & ~bad
        new = d - step
        if herglotz:
            # a point not accepted whose step would leave the upper half plane is shortened
            neg = (new.imag < -1e-13 * (1.0 + np.abs(new))) & ~done[:, None]
            rows = neg.any(axis=1)
            if rows.any():
                di, si = d.imag[rows], step.imag[rows]
                lim = np.full(di.shape, np.inf)
                cut = neg[rows] & (si > 0)
                lim[cut] = 0.5 * di[cut] / si[cut]
                alpha = np.clip(np.min(lim, axis=1), 0.0, 1.0)
                new[rows] = d[rows] - alpha[:, None] * step[rows]
            # the last step of an accepted point is taken in full and its imaginary parts
            # projected on [0, inf): the solution is there, so this only brings it closer
            new.imag[done] = np.maximum(new.imag[done], 0.0)
        if not last_step:
            new[done] = d[done]  # exactly the evaluated iterate
        if rough:
            # a residual below the single-precision evaluation's own accuracy (its probe
            # check) carries no step worth taking: the point is evaluated again as it is
            still = r <= ROUGH_RESIDUAL
            new[still] = d[still]
        fail = ~np.all(np.isfinite(new), axis=1) | (np.min(np.abs(1.0 + new), axis=1) == 0)
        bad |= fail
        done &= ~fail
        if max_growth is not None:
            grew[active] = np.where(rho > 1.0, grew[active] + 1, 0)
            bad |= (grew[active] >= max_growth) & ~done
        delta[active] = np.where(bad[:, None], d, new)
        conv[active[done]] = True
        # a chord that does not contract tenfold takes the exact Jacobian next time
        chord[active] &= ~(rho > 0.1)
        if J0 is None or refresh:
            chord[active] = False
        r_prev[active] = r
        active = active[~done & ~bad]
    return _NewtonOut(delta, conv, iters, resid, jac, tz)


def _solve_rows(A: np.ndarray, F: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Steps ``A_i^{-1} F_i`` row by row when some ``A_i`` is singular.

    Singular rows get the least-squares step (NaN if that fails too, so that the
    point is abandoned); the second array marks them.
    """
    step = np.empty_like(F)
    singular = np.zeros(F.shape[0], bool)
    for i in range(F.shape[0]):
        try:
            step[i] = np.linalg.solve(A[i], F[i])
        except np.linalg.LinAlgError:
            singular[i] = True
            try:
                step[i] = np.linalg.lstsq(A[i], F[i], rcond=None)[0]
            except np.linalg.LinAlgError:
                step[i] = np.nan
    return step, singular


def large_z_guess(backend_traces: np.ndarray, z: np.ndarray) -> np.ndarray:
    """First-order large-``|z|`` guess ``delta_a ~ -(1/p) tr C_a / z``."""
    return -backend_traces[None, :] / z[:, None]


def continuation(backend, z: np.ndarray, traces: np.ndarray, scale: float, *,
                 delta0: np.ndarray | None = None, eta0: np.ndarray | None = None,
                 tol: float = DEFAULT_TOL, max_rounds: int = 200, cautious: bool = False) -> _NewtonOut:
    r"""Solve at points ``z`` (``Im z >= 0``) by continuation in the imaginary part.

    Each point starts at ``z + i eta`` with ``eta`` of the order of the spectrum's
    scale (or ``eta0``), where Newton converges from the large-``|z|`` guess, and
    ``eta`` is lowered geometrically to 0 with a first-order predictor
    ``delta + (d delta / d z) dz``.  The ratio adapts: it grows after a cheap
    corrector and shrinks after a failed one.  Points that cannot be reached are
    returned with ``converged = False``.

    A real point that ends on a real ``delta`` must lie on the physical branch:
    each ``delta_a`` is a Stieltjes transform of a positive measure, so
    ``d delta_a / dx >= 0`` there.  A point that ends elsewhere (a large step can
    jump branches near an edge) is solved again with small steps (``cautious``), and
    reported as not converged if it still fails the test.
    """
    m = z.shape[0]
    x, y = z.real.copy(), z.imag.copy()
    eta = np.full(m, 4.0 * scale) if eta0 is None else np.array(eta0, dtype=float)
    floor = 1e-15 * scale
    zc = x + 1j * (y + eta)
    if delta0 is None:
        delta = large_z_guess(traces, zc)
    else:
        delta = np.array(delta0, np.complex128)
    # intermediate levels only need to stay near the branch: a loose tolerance there,
    # the requested one on the last level (Newton's quadratic convergence does the rest)
    tol_mid = max(tol, LEVEL_TOL)
    out = newton(backend, zc, delta, tol=np.where(eta == 0, tol, tol_mid), maxiter=60)
    delta = out.delta
    ok = out.converged.copy()
    total_it = out.iterations.copy()
    dddz = _ddelta_dz(out.jac, out.tz)
    ratio = np.full(m, 0.25 if cautious else 0.1)
    min_ratio = 0.25 if cautious else 1e-6
    finished = ok & (eta == 0)
    failed = ~ok
    resid = out.residual.copy()
    for _ in range(max_rounds):
        act = np.flatnonzero(~finished & ~failed)
        if act.size == 0:
            break
        eta_new = eta[act] * ratio[act]
        eta_new = np.where(eta_new < np.maximum(floor, 1e-3 * y[act]), 0.0, eta_new)
        z_new = x[act] + 1j * (y[act] + eta_new)
        pred = delta[act] + dddz[act] * (z_new - zc[act])[:, None]
        # Herglotz: the predictor may not leave the upper half plane
        pred = np.where(pred.imag < 0, pred.real + 0j, pred)
        res = newton(backend, z_new, pred, tol=np.where(eta_new == 0, tol, tol_mid), maxiter=8)
        total_it[act] += res.iterations
        good = res.converged
        gi, bi = act[good], act[~good]
        delta[gi] = res.delta[good]
        zc[gi] = z_new[good]
        eta[gi] = eta_new[good]
        resid[gi] = res.residual[good]
        dddz[gi] = _ddelta_dz(res.jac[good], res.tz[good])
        cheap = res.iterations[good] <= 2
        ratio[gi] = np.where(cheap, np.maximum(ratio[gi] ** 1.5, min_ratio), ratio[gi])
        finished[gi[eta[gi] == 0]] = True
        ratio[bi] = np.sqrt(ratio[bi])
        failed[bi[ratio[bi] > 0.97]] = True
        resid[bi] = res.residual[~good]
    converged = finished & ~failed
    real_end = converged & (y == 0) & np.all(np.abs(delta.imag) <= 1e-9 * (1.0 + np.abs(delta)), axis=1)
    slope = dddz.real
    unphysical = real_end & np.any(slope < -1e-9 * (1.0 + np.abs(slope)), axis=1)
    if unphysical.any():
        if cautious:
            converged[unphysical] = False
        else:
            idx = np.flatnonzero(unphysical)
            redo = continuation(backend, z[idx], traces, scale, tol=tol, max_rounds=max_rounds, cautious=True)
            delta[idx], converged[idx], resid[idx] = redo.delta, redo.converged, redo.residual
            total_it[idx] += redo.iterations
    return _NewtonOut(delta, converged, total_it, resid, None, None)


def _ddelta_dz(jac: np.ndarray, tz: np.ndarray) -> np.ndarray:
    """``d delta / dz = (I - dt/ddelta)^{-1} dt/dz`` (implicit function theorem)."""
    k = tz.shape[-1]
    with np.errstate(all="ignore"):
        try:
            d = np.linalg.solve(np.eye(k) - jac, tz[..., None])[..., 0]
        except np.linalg.LinAlgError:
            d = np.zeros_like(tz)
    d[~np.isfinite(d)] = 0.0
    return d


# --------------------------------------------------------------------------- public
@dataclass
class SolveResult:
    """Solution ``delta(z)`` of the fixed-point system, in the style of SciPy results.

    Attributes
    ----------
    z : ndarray
        The evaluation points (complex, the shape given).
    delta : ndarray, shape ``z.shape + (k,)``
        ``delta_a(z)``; for real ``z > 0`` the limit from the upper half plane.
    converged : ndarray of bool, shape ``z.shape``
        Per-point convergence flag.
    iterations : ndarray of int, shape ``z.shape``
        Newton iterations spent on each point (all continuation steps included).
    residual : ndarray, shape ``z.shape``
        ``max_a |delta_a - t_a(delta)| / max(1, |delta|)`` at the last iterate.
    success : bool
        All points converged.
    message : str
        Human-readable summary.
    method : str
        ``'commuting'`` or ``'dense'``.
    """

    z: np.ndarray
    delta: np.ndarray
    converged: np.ndarray
    iterations: np.ndarray
    residual: np.ndarray
    success: bool
    message: str
    method: str
    sizes: np.ndarray = field(repr=False, default=None)

    def __repr__(self) -> str:
        return (f"SolveResult(success={self.success}, method={self.method!r}, points={self.z.size}, "
                f"max_residual={np.max(self.residual, initial=0.0):.2e}, message={self.message!r})")

    @property
    def stieltjes(self) -> np.ndarray:
        r"""``m_G(z) = -(1/(n z)) sum_a n_a / (1 + delta_a(z))``."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return stieltjes_from_delta(self.z, self.delta, self.sizes)


def stieltjes_from_delta(z: np.ndarray, delta: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    r"""``m_G(z) = -(1/z) sum_a (n_a / n) / (1 + delta_a(z))``, ``delta`` of shape ``z.shape + (k,)``.

    The class weights ``n_a / n`` are formed first: ``n z`` would overflow for large ``|z|``.
    """
    w = np.asarray(sizes, float) / float(np.sum(sizes))
    return -(1.0 / z) * ((1.0 / (1.0 + delta)) @ w)


def spectral_scale(model: MixtureModel) -> float:
    r"""An upper bound of the limiting support: ``sum_a ||C_a|| (1 + sqrt(c_a))^2``."""
    norms = model.spectral_norms()
    return float(np.sum(norms * (1.0 + np.sqrt(model.ratios)) ** 2))


def solve_points(backend, model: MixtureModel, z: np.ndarray, *, tol: float = DEFAULT_TOL,
                 scale: float | None = None) -> _NewtonOut:
    """Solve at 1-d complex points (any half plane) by continuation; conjugate symmetry below."""
    scale = spectral_scale(model) if scale is None else scale
    scale = scale if scale > 0 else 1.0
    lower = z.imag < 0
    zz = np.where(lower, np.conj(z), z)
    out = continuation(backend, zz, model.traces(), scale, tol=tol)
    out.delta[lower] = np.conj(out.delta[lower])
    return out


def solve(model: MixtureModel, z, *, method: str = "auto", tol: float = DEFAULT_TOL, backend: str = "numpy",
          device=None, workers: int | None = None, progress: bool = False) -> SolveResult:
    r"""Solve the fixed-point system for ``delta(z)`` at every point of ``z``.

    Parameters
    ----------
    model : MixtureModel
        The mixture (its means play no role in ``delta``).
    z : complex array_like, any shape
        Evaluation points in ``C \ R_+``, ``z != 0``; a real ``z > 0`` is read as ``z + i0^+``
        (the boundary value from the upper half plane, which defines the density);
        ``delta(conj z) = conj delta(z)`` below the axis.
    method : {'auto', 'commuting', 'dense'}
        Force a path; ``'auto'`` takes the numba path when the covariances commute.
    tol : float
        Relative residual tolerance.
    backend : {'numpy', 'torch'}
        Array library of the dense path (see :func:`make_backend`).
    device : str, optional
        Torch device with ``backend='torch'``.
    workers : int, optional
        Threads of the LAPACK dense path (default: every CPU the process may use).
    progress : bool
        Show a ``tqdm`` bar of the ``p x p`` inverses (dense path only).

    Returns
    -------
    SolveResult
        ``delta`` of shape ``z.shape + (k,)`` with per-point convergence flags,
        iteration counts and residuals.  Non-convergence is reported through
        ``success``/``converged``, never hidden.
    """
    if not isinstance(model, MixtureModel):
        raise TypeError(f"model must be a MixtureModel, got {type(model).__name__}")
    zarr = as_spectral_points(z, "z")
    progress = as_flag(progress, "progress")
    tol = as_tolerance(tol)
    be = make_backend(model, method, backend=backend, device=device, workers=workers)
    flat = zarr.reshape(-1)
    bar = getattr(be, "progress_bar", None)
    if bar is not None and progress:
        with bar(True, "solve"):
            out = solve_points(be, model, flat, tol=tol)
    else:
        out = solve_points(be, model, flat, tol=tol)
    shape = zarr.shape
    n_bad = int(np.count_nonzero(~out.converged))
    if n_bad == 0:
        msg = "converged"
    else:
        msg = f"{n_bad} of {flat.size} points did not converge (at z = {flat[~out.converged][0]!r}, ...)"
    return SolveResult(
        z=zarr,
        delta=out.delta.reshape(shape + (model.k,)),
        converged=out.converged.reshape(shape),
        iterations=out.iterations.reshape(shape),
        residual=out.residual.reshape(shape),
        success=n_bad == 0,
        message=msg,
        method=be.name,
        sizes=model.sizes,
    )
