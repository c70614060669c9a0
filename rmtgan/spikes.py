r"""Isolated eigenvalues (spikes) of the Gram matrix and the alignments of their eigenvectors.

Conventions
-----------
Data arrays are ``(n_samples, n_features) = (n, p)``; the paper's ``X = data.T`` is
``p x n`` and ``G = X^T X / p`` (``n x n``).  ``M = [mu_1 ... mu_k]`` (``p x k``),
``c_a = n_a / p``, ``J`` the ``n x k`` class indicator with columns ``j_a``.

Mathematics
-----------
The class means are a rank-``k`` perturbation of ``X``; they leave the bulk
(:mod:`rmtgan.spectrum`) unchanged but may create isolated eigenvalues.  With
``delta(z)`` the fixed point of :mod:`rmtgan.solver` (means play no role in it),
``R(z) = (sum_b c_b C_b / (1 + delta_b) - z I_p)^{-1}`` and
``W(z) = diag(c_b / (1 + delta_b))``, the resolvent *with* means is (Woodbury)

.. math::

    \tilde R = (R^{-1} + M W M^T)^{-1},\qquad
    M^T \tilde R M = A (I_k + W A)^{-1} = (I_k + A W)^{-1} A,\qquad A = M^T R M .

**Spikes** are the real ``rho`` outside the bulk support where ``I + W A`` is
singular.  On a real gap of the support ``delta`` and ``A`` are real, ``1 + delta_b``
never vanishes, and the symmetric matrix

.. math::

    H(x) = S\,\big(W^{-1}(x) + A(x)\big)\,S = \operatorname{diag}(1 + \delta_b(x))
           + \big[\sqrt{c_a c_b}\, A_{ab}(x)\big]_{ab},\qquad S = \operatorname{diag}(\sqrt{c_b}),

has ``det H = det(S^2 W^{-1}) det(I + W A)``, so spikes are the zeros of the
eigenvalues of ``H``.  Both ``delta_b`` and ``M^T R M`` are Stieltjes transforms of
positive (matrix) measures, hence ``H`` is *increasing* (``dH/dx >= 0``) on every gap:
each eigenvalue of ``H`` crosses zero at most once per gap, the number of spikes in a
gap ``(lo, hi)`` is ``neg H(lo+) - neg H(hi-)`` (``neg`` = number of negative
eigenvalues) and every spike is bracketed for :func:`scipy.optimize.brentq`
(multiplicities included: ``m`` eigenvalues vanish at an ``m``-fold spike).

**Eigenvectors.**  From ``E[(G - z)^{-1}] = -(1/z) Lambda + (1/(pz)) Lambda J M^T R~ M J^T
Lambda`` with ``Lambda = diag(1/(1+delta_{a(i)}))``, the spectral projector of a
spike (group) ``Gamma`` gives, with a positively oriented circle around it,

.. math::

    \lim E\,\frac{(j_a^T \hat u)(j_b^T \hat u)}{\sqrt{n_a n_b}}
      = -\frac{1}{2\pi i}\oint_\Gamma
        \frac{\sqrt{c_a c_b}\,[M^T\tilde R(z) M]_{ab}}{z\,(1+\delta_a(z))(1+\delta_b(z))}\,dz ,

whose diagonal is ``(j_a^T u)^2 / n_a`` (the normalisation of the cross terms,
``sqrt(n_a n_b)`` and ``(1+delta_a)(1+delta_b)``, was checked against Monte Carlo), and
on the ``p`` side, for the unit eigenvector ``v`` of ``X X^T / p``,

.. math::

    \lim E\,(v^T\mu_a)(v^T\mu_b) = -\frac{1}{2\pi i}\oint_\Gamma [M^T \tilde R(z) M]_{ab}\,dz .

The circle has radius a third of the distance to the nearest other singularity
(another spike, a support edge, ``0``), so the trapezoid rule converges like
``3^{-N}``; ``N`` is doubled (nested nodes) until two estimates agree.  ``delta`` on
the circle comes from Newton's method marched around the upper half (conjugate
symmetry gives the lower half), checked against an independent real solve at the far
point and replaced by :func:`rmtgan.solver.continuation` if anything fails.

Phase transitions: with means ``t * D`` (``D`` a direction, default the model's
means), ``H(e; t) = S (W^{-1}(e) + t^2 D^T R(e) D) S`` at a support edge ``e``; a spike
leaves (or re-enters) the bulk at ``e`` exactly where this matrix is singular, i.e. at
``t = 1/sqrt(-lambda)`` for the real negative generalised eigenvalues ``lambda`` of
``(D^T R(e) D, W^{-1}(e))`` -- see :func:`phase_transitions`.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field

import numpy as np
import scipy.linalg

from rmtgan._validation import as_tolerance
from rmtgan.model import MixtureModel, check_same_bulk
from rmtgan.solver import DEFAULT_TOL, continuation, make_backend, newton, spectral_scale

__all__ = ["GramSpikes", "PhaseTransitions", "gram_spikes", "phase_transitions"]

#: relative distance (to the spectral scale) kept from a support edge when evaluating ``H``.
EDGE_OFFSET = 1e-10
#: two roots closer than this (relative) are one degenerate spike.
DEGENERATE_RTOL = 1e-9
#: relative root tolerance of the bracketing.
ROOT_RTOL = 1e-14
#: relative imaginary part of ``delta`` above which a real point is inside the support.
INSIDE_RTOL = 1e-8
#: stopping rule of the contour quadrature: two nested estimates agree to this (absolute,
#: alignments are O(1)).  The convergence is geometric with ratio <= 1/3 per node, so the
#: returned (finer) estimate is far more accurate than this difference.
QUAD_TOL = 1e-7
#: largest number of nodes on one contour.
QUAD_MAX_NODES = 512
#: tolerated distance of ``n (1 - F(x))`` to an integer at a point ``x`` of a gap (it is
#: an integer in exact arithmetic) before a spike's rank is reported as uncertain.
RANK_SLACK = 0.25


class _SolveFailure(RuntimeError):
    pass


# --------------------------------------------------------------------------- #
# delta on the real axis outside the support, and on small circles
# --------------------------------------------------------------------------- #
class _Resolvent:
    """``delta``, ``A = M^T R M`` and ``H`` at points outside the support.

    Real points are solved by Newton's method warm-started from the nearest cached
    real point (first-order predictor), accepted only on the physical branch (real,
    converged, ``d delta / dx >= 0``: ``delta_b`` is a Stieltjes transform); anything
    else falls back to :func:`rmtgan.solver.continuation`.
    """

    def __init__(self, model: MixtureModel, backend, tol: float):
        self.model = model
        self.backend = backend
        self.k = model.k
        self.c = model.ratios.astype(float)
        self.sqc = np.sqrt(self.c)
        self.traces = model.traces()
        self.scale = spectral_scale(model)
        if not self.scale > 0:
            self.scale = 1.0
        self.tol = tol
        self._real: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._H: dict[float, tuple[np.ndarray, np.ndarray]] = {}
        self._circle_dd: dict[tuple[float, float, float], np.ndarray] = {}
        self.n_fallbacks = 0

    # -- Newton with the backend's exact Jacobian ------------------------- #
    def newton(self, z: complex, d0: np.ndarray, maxiter: int = 40):
        """``delta`` at one point, by :func:`rmtgan.solver.newton` from ``d0``: ``(delta, J, tz, ok)``.

        ``J = dt/ddelta`` and ``tz = dt/dz`` are exact and taken at the last iterate before its final
        step (``None`` when not converged); a non-finite guess is reported, never evaluated.
        """
        out = newton(self.backend, np.array([z], np.complex128), np.asarray(d0, np.complex128)[None],
                     tol=self.tol, maxiter=maxiter, tol_step=1e-3 * self.tol ** 0.5)
        if not out.converged[0]:
            return out.delta[0], None, None, False
        return out.delta[0], out.jac[0], out.tz[0], True

    def derivative(self, jac: np.ndarray, tz: np.ndarray) -> np.ndarray:
        """``d delta / dz = (I - dt/ddelta)^{-1} dt/dz``."""
        return np.linalg.solve(np.eye(self.k) - jac, tz)

    def continuation(self, z: np.ndarray) -> np.ndarray:
        """Robust solve at points with ``Im z >= 0`` (raises on failure)."""
        self.n_fallbacks += int(z.size)
        out = continuation(self.backend, np.asarray(z, np.complex128), self.traces, self.scale, tol=self.tol)
        if not np.all(out.converged):
            raise _SolveFailure(f"fixed-point solve failed at z = {z[~out.converged][:3]}")
        return out.delta

    # -- real points ------------------------------------------------------- #
    def delta_real(self, x: float) -> tuple[np.ndarray, np.ndarray]:
        """Real ``delta(x)`` and ``d delta / dx`` at a real ``x`` outside the support."""
        x = float(x)
        hit = self._real.get(x)
        if hit is not None:
            return hit
        got = None
        if self._real:
            keys = np.fromiter(self._real.keys(), float)
            x0 = float(keys[np.argmin(np.abs(keys - x))])
            d0, dd0 = self._real[x0]
            guess = d0 + dd0 * (x - x0)
            d, jac, tz, ok = self.newton(x + 0j, guess)
            if ok:
                got = self._accept_real(d, jac, tz)
        if got is None:
            d = self.continuation(np.array([x + 0j]))[0]
            if np.any(np.abs(d.imag) > INSIDE_RTOL * (1.0 + np.abs(d))):
                raise _SolveFailure(f"x = {x!r} lies inside the bulk support (Im delta = {d.imag})")
            d, jac, tz, ok = self.newton(x + 0j, d.real + 0j)
            if not ok:
                raise _SolveFailure(f"Newton failed to polish delta at x = {x!r}")
            got = self._accept_real(d, jac, tz, strict=False)
        self._real[x] = got
        return got

    def _accept_real(self, d, jac, tz, strict: bool = True):
        if np.any(np.abs(d.imag) > INSIDE_RTOL * (1.0 + np.abs(d))):
            return None
        dd = self.derivative(jac, tz)
        if not np.all(np.isfinite(dd)):
            return None
        dd = dd.real
        if strict and np.any(dd < -1e-8 * (1.0 + np.max(np.abs(dd)))):
            return None  # not the physical (Stieltjes) branch
        return d.real.copy(), dd

    def mean_quadratic(self, z: np.ndarray, delta: np.ndarray) -> np.ndarray:
        return self.backend.mean_quadratic(np.asarray(z, np.complex128), np.asarray(delta, np.complex128))[0]

    def H(self, x: float) -> tuple[np.ndarray, np.ndarray]:
        """``H(x)`` (symmetric k x k) and its ascending eigenvalues."""
        x = float(x)
        hit = self._H.get(x)
        if hit is not None:
            return hit
        d, _ = self.delta_real(x)
        A = self.mean_quadratic(np.array([x]), d[None])[0].real
        H = np.diag(1.0 + d) + self.sqc[:, None] * A * self.sqc[None, :]
        H = 0.5 * (H + H.T)
        w = np.linalg.eigvalsh(H)
        self._H[x] = (H, w)
        return H, w

    # -- circle ------------------------------------------------------------ #
    def circle_deltas(self, center: float, radius: float, theta: np.ndarray,
                      known: dict[float, np.ndarray]) -> np.ndarray:
        """``delta`` at ``center + radius e^{i theta}`` for ``theta in [0, pi]`` (ascending).

        ``known`` maps already solved angles to ``delta`` (warm starts, reused).
        """
        out = np.empty((theta.size, self.k), np.complex128)
        z = center + radius * np.exp(1j * theta)
        prev_t, prev_d, prev_dd = None, None, None
        ok = True
        for j, th in enumerate(theta):
            th = float(th)
            if th == 0.0 or th == math.pi:
                d, dd = self.delta_real(center + radius * math.cos(th))
                if th == math.pi and prev_d is not None and prev_dd is not None and j > 1:
                    # the march must arrive on the independently solved real point
                    zp = center + radius * np.exp(1j * prev_t)
                    dm, _, _, conv = self.newton(z[j].real + 0j, prev_d + prev_dd * (z[j].real - zp))
                    if not conv or np.max(np.abs(dm - d)) > 1e-8 * (1.0 + np.max(np.abs(d))):
                        ok = False
                        break
                out[j] = d
                prev_t, prev_d, prev_dd = th, out[j], dd + 0j
                continue
            if th in known:
                out[j] = known[th]
                prev_t, prev_d = th, out[j]
                prev_dd = self._circle_dd.get((center, radius, th))
                continue
            if prev_d is None:
                ok = False
                break
            zp = center + radius * np.exp(1j * prev_t)
            if prev_dd is None:
                _, jac, tz = self.backend.evaluate(np.array([zp]), prev_d[None])
                prev_dd = self.derivative(jac[0], tz[0])
            guess = prev_d + prev_dd * (z[j] - zp)
            d, jac, tz, conv = self.newton(z[j], guess)
            if not conv or np.any(d.imag < -1e-10 * (1.0 + np.abs(d))):
                ok = False
                break
            out[j] = d
            prev_t, prev_d, prev_dd = th, d, self.derivative(jac, tz)
            self._circle_dd[(center, radius, th)] = prev_dd
        if not ok:
            upper = (theta > 0) & (theta < math.pi)
            out[upper] = self.continuation(z[upper])
            for j in np.flatnonzero(~upper):
                out[j] = self.delta_real(float(z[j].real))[0]
        return out


# --------------------------------------------------------------------------- #
# result objects
# --------------------------------------------------------------------------- #
def _jsonable(x):
    """Convert numpy data to JSON-friendly Python objects (non-finite floats -> None)."""
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    if isinstance(x, (bool, np.bool_)):
        return bool(x)
    if isinstance(x, (int, np.integer)):
        return int(x)
    if isinstance(x, (float, np.floating)):
        v = float(x)
        return v if math.isfinite(v) else None
    if isinstance(x, complex):
        raise TypeError("complex values are not JSON-serialisable")
    return x


@dataclass
class GramSpikes:
    r"""Isolated eigenvalues of ``G = X^T X / p`` and their eigenvector alignments.

    Spikes are sorted by decreasing value; a spike of multiplicity ``m`` appears ``m``
    times.  All quantities are limits (deterministic equivalents) for the model's
    sizes; at finite ``n`` expect ``O(1/sqrt(n))`` fluctuations around them.

    Attributes
    ----------
    values : ndarray, shape (s,)
        Spike locations ``rho_i`` (eigenvalues of ``G``, squared feature units).
    alignments : ndarray, shape (s, k)
        ``lim E (j_a^T u_i)^2 / n_a`` for the unit eigenvector ``u_i`` of ``G``.
        For a degenerate spike (``multiplicity > 1``) each row is the group total
        divided by the multiplicity (only the total over the eigenspace is defined).
    alignment_matrices : ndarray, shape (s, k, k)
        ``lim E (j_a^T u_i)(j_b^T u_i) / sqrt(n_a n_b)`` (same convention for groups);
        the diagonal is :attr:`alignments`.
    mean_alignments : ndarray, shape (s, k)
        ``lim E (v_i^T mu_a)^2`` for the unit eigenvector ``v_i`` of ``X X^T / p``
        (squared feature units).
    mean_alignment_matrices : ndarray, shape (s, k, k)
        ``lim E (v_i^T mu_a)(v_i^T mu_b)``.
    multiplicity : ndarray of int, shape (s,)
        Size of the (numerically exact) degenerate group of each spike.
    group : ndarray of int, shape (s,)
        Index of the degenerate group; spikes of one group share it.
    region : ndarray of int, shape (s,)
        Index into :attr:`regions` of the gap holding the spike.
    regions : list of (float, float, str)
        The gaps searched: ``(lo, hi, kind)`` with kind ``'left'`` (between 0 and
        the bulk), ``'gap'`` (between two support intervals) or ``'right'``
        (beyond the bulk; ``hi`` is a proven upper bound of the spikes).
    edge_distance : ndarray, shape (s,)
        Distance to the nearest support edge (or to 0 in the left region).
    neighbour_distance : ndarray, shape (s,)
        Distance to the nearest other spike (``inf`` -> reported as ``None`` in JSON).
    near_edge, near_degenerate : ndarray of bool, shape (s,)
        ``edge_distance`` (resp. ``neighbour_distance``) below ``resolution``: at
        finite ``n`` such a spike is not separated from the bulk (resp. from its
        neighbour) by its ``O(1/sqrt(n))`` fluctuations, and empirical eigenvectors
        mix; compare group totals.
    resolution : ndarray, shape (s,)
        ``near_factor * rho_i / sqrt(n)``, the heuristic fluctuation band used above.
    converged : ndarray of bool, shape (s,)
        The root bracketing converged.
    quadrature_error : ndarray, shape (s,)
        ``max |I_N - I_{N/2}|`` over the entries of the contour integrals of the
        spike's group (p-side entries relative to their largest).  It estimates the
        error of the coarser ``I_{N/2}``; the returned ``I_N`` is more accurate by a
        further factor of about ``3^{-N/2}`` (geometric convergence, radius a third of
        the distance to the nearest singularity).  Infinite if no contour was possible.
    quadrature_nodes : ndarray of int, shape (s,)
        Nodes ``N`` on the contour of the spike's group.
    contour_radius : ndarray, shape (s,)
    ranks : ndarray of int, shape (s,)
        0-based rank from the top, among the ``n`` eigenvalues of ``G``, of the
        eigenvalue each spike predicts: the predicted number of eigenvalues above
        it (exact inertia count at finite ``n``; a spike takes its eigenvalue from
        the bulk, see :func:`_count_above`).
    bulk_counts : ndarray of int, shape (intervals,)
        Eigenvalues of ``G`` in each support interval at the model's sizes, by the
        same exact count (with the means: a spike takes its eigenvalue from an
        interval, or from the atom at 0 when the means leave the covariances'
        ranges; means without spikes can move eigenvalues between intervals).
        They add up to ``n - n_zero - s``: the bulk that :func:`rmtgan.compare`
        compares.  ``None`` when every mean is zero and no ``spectrum`` was passed
        (no spectrum is computed then; pass one to get the counts).
    n_zero : int or None
        Eigenvalues of ``G`` at 0 at the model's sizes, with the means (``round(atom
        n)`` without them); ``None`` as for ``bulk_counts``.
    counts : list of dict
        Per region: ``lo``, ``hi``, ``kind``, the spikes ``expected`` from the inertia of
        ``H`` at the ends and ``found``, and ``margin_lo`` / ``margin_hi``, the smallest
        ``|eigenvalue|`` of ``H`` at the ends: a margin near 0 at an edge means a spike
        sits at the edge (the model is at a phase transition) and is not counted.
    support : list of (float, float)
    atom : float
    success : bool
        Every count matched, every root and contour converged.
    message : str
    method : str
        ``'commuting'`` or ``'dense'``.
    n_evaluations : int
        Fixed-point evaluations spent (the cost unit of the backend).
    sizes : ndarray of int, shape (k,)
        The model's class sizes.
    fingerprint : str
        :meth:`rmtgan.MixtureModel.fingerprint` of the model (sizes, covariances and
        means), checked when the result is handed to :func:`rmtgan.compare`.
    """

    values: np.ndarray
    alignments: np.ndarray
    alignment_matrices: np.ndarray
    mean_alignments: np.ndarray
    mean_alignment_matrices: np.ndarray
    multiplicity: np.ndarray
    group: np.ndarray
    region: np.ndarray
    regions: list
    edge_distance: np.ndarray
    neighbour_distance: np.ndarray
    near_edge: np.ndarray
    near_degenerate: np.ndarray
    resolution: np.ndarray
    converged: np.ndarray
    quadrature_error: np.ndarray
    quadrature_nodes: np.ndarray
    contour_radius: np.ndarray
    counts: list
    support: list
    atom: float
    success: bool
    message: str
    method: str
    n_evaluations: int
    sizes: np.ndarray = field(repr=False, default=None)
    ranks: np.ndarray = field(default=None)
    fingerprint: str | None = field(repr=False, default=None)
    bulk_counts: np.ndarray | None = field(default=None)
    n_zero: int | None = field(default=None)

    @property
    def n_spikes(self) -> int:
        """Number of spikes ``s`` (with multiplicity)."""
        return int(self.values.size)

    def groups(self) -> list[np.ndarray]:
        """Index arrays of the degenerate groups, in the order of :attr:`values`."""
        if self.values.size == 0:
            return []
        _, first = np.unique(self.group, return_index=True)
        return [np.flatnonzero(self.group == g) for g in self.group[np.sort(first)]]

    def to_dict(self) -> dict:
        """JSON-serialisable summary (floats and lists; missing values are ``None``)."""
        return _jsonable({
            "values": self.values,
            "alignments": self.alignments,
            "alignment_matrices": self.alignment_matrices,
            "mean_alignments": self.mean_alignments,
            "mean_alignment_matrices": self.mean_alignment_matrices,
            "multiplicity": self.multiplicity,
            "group": self.group,
            "region": self.region,
            "regions": [list(r) for r in self.regions],
            "edge_distance": self.edge_distance,
            "neighbour_distance": self.neighbour_distance,
            "near_edge": self.near_edge,
            "near_degenerate": self.near_degenerate,
            "resolution": self.resolution,
            "converged": self.converged,
            "quadrature_error": self.quadrature_error,
            "quadrature_nodes": self.quadrature_nodes,
            "contour_radius": self.contour_radius,
            "ranks": self.ranks,
            "bulk_counts": self.bulk_counts,
            "counts": self.counts,
            "support": [list(iv) for iv in self.support],
            "atom": self.atom,
            "success": self.success,
            "message": self.message,
            "method": self.method,
            "n_evaluations": self.n_evaluations,
        })

    def __repr__(self) -> str:
        vals = ", ".join(f"{v:.6g}" for v in self.values)
        return (f"GramSpikes(values=[{vals}], method={self.method!r}, success={self.success}, "
                f"message={self.message!r})")


# --------------------------------------------------------------------------- #
# validation helpers
# --------------------------------------------------------------------------- #
def _check_model(model) -> None:
    if not isinstance(model, MixtureModel):
        raise TypeError(f"model must be a MixtureModel, got {type(model).__name__}")


def _get_spectrum(model: MixtureModel, spectrum, method: str):
    from rmtgan.spectrum import GramSpectrum, gram_spectrum

    if spectrum is None:
        return gram_spectrum(model, method=method)
    if not isinstance(spectrum, GramSpectrum):
        raise TypeError(f"spectrum must be a GramSpectrum, got {type(spectrum).__name__}")
    check_same_bulk(spectrum.model, model, "spectrum")
    return spectrum


def _check_positive(v, name: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a positive number, got {v!r}")
    v = float(v)
    if not (math.isfinite(v) and v > 0):
        raise ValueError(f"{name} must be positive and finite, got {v!r}")
    return v


# --------------------------------------------------------------------------- #
# the search
# --------------------------------------------------------------------------- #
def _regions(support, scale: float, res: _Resolvent, means: np.ndarray, problems: list):
    """Gaps to search: ``(lo, hi, kind, lo_is_singular, hi_is_singular)``."""
    eps = EDGE_OFFSET * scale
    out = []
    if not support:
        return out
    first = support[0][0]
    if first > 0:
        out.append([max(first * 1e-9, 1e-300), first - eps, "left"])
    for (_, r0), (l1, _) in zip(support[:-1], support[1:], strict=False):
        out.append([r0 + eps, l1 - eps, "gap"])
    last = support[-1][1]
    energy = float(np.sum(res.c * np.sum(means ** 2, axis=1)))
    hi = (math.sqrt(last) + math.sqrt(energy)) ** 2 * 1.5 + eps + 1e-12 * scale
    for _ in range(80):
        _, w = res.H(hi)
        if w[0] > 0:
            break
        hi = last + 2.0 * (hi - last)
    else:
        problems.append(f"could not bound the spikes above the bulk (H not positive definite at {hi:.3g})")
    out.append([last + eps, hi, "right"])
    return out


def _safe_end(res: _Resolvent, x: float, towards: float):
    """Solve at the gap end ``x``; if that point is numerically inside the support (an
    edge known only to rounding), move it into the gap, by steps growing 10-fold."""
    width = towards - x
    y = x
    for j in range(12):
        try:
            return y, res.H(y)
        except _SolveFailure:
            y = x + width * 10.0 ** (j - 10)
    raise _SolveFailure(f"no point outside the support found between {x!r} and {towards!r}")


def gram_spikes(model: MixtureModel, *, spectrum=None, method: str = "auto", tol: float = DEFAULT_TOL,
                near_factor: float = 2.0) -> GramSpikes:
    r"""Isolated eigenvalues of ``G = X^T X / p`` and the alignments of their eigenvectors.

    Parameters
    ----------
    model : MixtureModel
        The mixture; its means create the spikes (zero means: no spikes).
    spectrum : GramSpectrum, optional
        The bulk of the same model (from :func:`rmtgan.gram_spectrum`), to reuse a
        computation; computed when omitted.
    method : {'auto', 'commuting', 'dense'}
        Solver path (see :func:`rmtgan.solve`).
    tol : float
        Relative residual tolerance of the fixed-point solves.
    near_factor : float
        A spike closer than ``near_factor * rho / sqrt(n)`` to a support edge or to
        another spike is flagged ``near_edge`` / ``near_degenerate``.

    Returns
    -------
    GramSpikes
        Values (descending), class alignments ``(s, k)`` with cross terms
        ``(s, k, k)``, p-side mean alignments, flags and diagnostics.

    Notes
    -----
    Every gap of the bulk support (between 0 and the bulk when there is no hard edge
    at 0, between support intervals, beyond the bulk) is searched.  Roots are the
    zeros of the eigenvalues of the increasing symmetric ``k x k`` matrix ``H(x)``
    (module docstring), bracketed by the inertia at both ends of the gap and refined
    by Brent's method to about ``1e-14`` relative.  The expected count from the
    inertia is compared with what was found (:attr:`GramSpikes.counts`).  Alignments
    are contour integrals (trapezoid rule on circles, nested doubling).

    Examples
    --------
    >>> import numpy as np, rmtgan
    >>> p, n = 200, 600                                  # one class, C = I, |mu|^2 = 2
    >>> mu = np.zeros((1, p)); mu[0, 0] = np.sqrt(2.0)
    >>> sp = gram_spikes(rmtgan.MixtureModel.from_eigen(np.ones((1, p)), [n], means=mu))
    >>> round(float(sp.values[0]), 10)                   # (1 + s)(1 + c s) / s, c = 3
    10.5
    """
    _check_model(model)
    near_factor = _check_positive(near_factor, "near_factor")
    tol = as_tolerance(tol)
    k = model.k
    backend = make_backend(model, method)
    means = model.means
    empty = dict(values=np.zeros(0), alignments=np.zeros((0, k)), alignment_matrices=np.zeros((0, k, k)),
                 mean_alignments=np.zeros((0, k)), mean_alignment_matrices=np.zeros((0, k, k)),
                 multiplicity=np.zeros(0, np.int64), group=np.zeros(0, np.int64),
                 region=np.zeros(0, np.int64), edge_distance=np.zeros(0), neighbour_distance=np.zeros(0),
                 near_edge=np.zeros(0, bool), near_degenerate=np.zeros(0, bool), resolution=np.zeros(0),
                 converged=np.zeros(0, bool), quadrature_error=np.zeros(0),
                 quadrature_nodes=np.zeros(0, np.int64), contour_radius=np.zeros(0), sizes=model.sizes,
                 ranks=np.zeros(0, np.int64), fingerprint=model.fingerprint())
    if not np.any(means):
        if spectrum is not None:
            spectrum = _get_spectrum(model, spectrum, method)  # checked all the same
        spec_support = [] if spectrum is None else list(spectrum.support)
        atom = float(model.zero_mass()) if spectrum is None else float(spectrum.atom)
        return GramSpikes(**empty, regions=[], counts=[], support=spec_support, atom=atom, success=True,
                          message="all means are zero: no spikes", method=backend.name, n_evaluations=0,
                          bulk_counts=None if spectrum is None else _mass_counts(spectrum, model),
                          n_zero=None if spectrum is None else _atom_count(spectrum, model))
    spec = _get_spectrum(model, spectrum, method)
    support = [(float(a), float(b)) for a, b in spec.support]
    res = _Resolvent(model, backend, tol)
    scale = res.scale
    problems: list[str] = [] if spec.success else [f"bulk spectrum: {spec.message}"]
    if not support:
        return GramSpikes(**empty, regions=[], counts=[], support=support, atom=float(spec.atom),
                          success=False, message="the bulk support is empty", method=backend.name,
                          n_evaluations=int(backend.n_evaluations), bulk_counts=np.zeros(0, np.int64))

    regions = _regions(support, scale, res, means, problems)
    roots: list[tuple[float, int, bool]] = []  # (rho, region index, converged)
    counts = []
    for ri, (lo, hi, kind) in enumerate(regions):
        if not hi > lo:
            counts.append({"region": ri, "kind": kind, "lo": lo, "hi": hi, "expected": 0, "found": 0})
            continue
        lo, (_, wlo) = _safe_end(res, lo, hi)
        hi, (_, whi) = _safe_end(res, hi, lo)
        regions[ri][0], regions[ri][1] = lo, hi
        idx = [i for i in range(k) if wlo[i] < 0 <= whi[i]]
        expected = int(np.sum(wlo < 0) - np.sum(whi < 0))
        found = 0
        from scipy.optimize import brentq  # here: scipy.optimize adds 0.25 s to `import rmtgan`

        for i in idx:
            def f(x, i=i):
                return res.H(x)[1][i]
            try:
                x0, rr = brentq(f, lo, hi, xtol=ROOT_RTOL * scale, rtol=4 * np.finfo(float).eps,
                                maxiter=200, full_output=True, disp=False)
                roots.append((float(x0), ri, bool(rr.converged)))
                found += 1
                if not rr.converged:
                    problems.append(f"root bracketing did not converge near {x0:.6g}")
            except _SolveFailure as exc:
                problems.append(f"solve failed while bracketing a spike in {kind} region: {exc}")
        counts.append({"region": ri, "kind": kind, "lo": lo, "hi": hi, "expected": expected, "found": found,
                       "margin_lo": float(np.min(np.abs(wlo))), "margin_hi": float(np.min(np.abs(whi)))})
        if expected != found:
            problems.append(f"{kind} region ({lo:.6g}, {hi:.6g}): inertia predicts {expected} spike(s), "
                            f"found {found}")
    region_list = [(float(a), float(b), str(c)) for a, b, c in regions]
    if not roots:
        # means without spikes can still move eigenvalues between intervals: count them (its
        # problems, if any, go into success and the message)
        bulk_counts, n_zero = _bulk_counts(res, spec, model, support, np.zeros(0), problems)
        return GramSpikes(**empty, regions=region_list, counts=counts, support=support, atom=float(spec.atom),
                          success=not problems, message="; ".join(problems) or "no spikes",
                          method=backend.name, n_evaluations=int(backend.n_evaluations),
                          bulk_counts=bulk_counts, n_zero=n_zero)

    roots.sort(key=lambda r: -r[0])
    values = np.array([r[0] for r in roots])
    reg = np.array([r[1] for r in roots], np.int64)
    conv = np.array([r[2] for r in roots], bool)
    s = values.size

    # degenerate groups (numerically equal roots)
    group = np.zeros(s, np.int64)
    for i in range(1, s):
        gap = values[i - 1] - values[i]
        same = (reg[i] == reg[i - 1]) and gap <= DEGENERATE_RTOL * max(values[i - 1], scale)
        group[i] = group[i - 1] if same else group[i - 1] + 1
    n_groups = int(group[-1]) + 1
    mult = np.bincount(group)[group]

    # distances
    edges = [0.0] + [e for iv in support for e in iv]
    edge_dist = np.array([min(abs(v - e) for e in edges) for v in values])
    neigh = np.full(s, np.inf)
    for i in range(s):
        others = values[group != group[i]]
        if others.size:
            neigh[i] = float(np.min(np.abs(others - values[i])))
    resolution = near_factor * values / math.sqrt(model.n)
    near_edge = edge_dist < resolution
    near_deg = (neigh < resolution) | (mult > 1)

    # ranks from the top among the eigenvalues of G (finite-n counting, see _count_above)
    ranks = np.zeros(s, np.int64)
    for g in range(n_groups):
        members = np.flatnonzero(group == g)
        top = float(values[members].max())
        higher = values[(reg == reg[members[0]]) & (values > top) & (group != g)]
        ceiling = float(higher.min()) if higher.size else float(regions[reg[members[0]]][1])
        try:
            above, frac = _count_above(res, spec, model, 0.5 * (top + ceiling))
        except _SolveFailure as exc:
            problems.append(f"eigenvalue count above the spike group at {top:.6g} failed: {exc}")
            above, frac = 0, 0.0
        if frac > RANK_SLACK:
            problems.append(f"n (1 - F(x)) is {frac:.3f} away from an integer above the spike at {top:.6g}: "
                            "the count of eigenvalues above it is uncertain")
        ranks[members] = above + np.arange(members.size)
    bulk_counts, n_zero = _bulk_counts(res, spec, model, support, values, problems)

    # contours, one per group
    al = np.zeros((s, k, k))
    mal = np.zeros((s, k, k))
    qerr = np.zeros(s)
    qn = np.zeros(s, np.int64)
    radius = np.zeros(s)
    for g in range(n_groups):
        members = np.flatnonzero(group == g)
        center = float(np.mean(values[members]))
        half = float(np.max(values[members]) - np.min(values[members])) / 2
        d = min(edge_dist[members].min(), neigh[members].min()) - half
        r = d / 3.0
        if not r > 10 * half:
            problems.append(f"spike group at {center:.6g} is too close to an edge or another spike "
                            f"for a separate contour (distance {d:.3g})")
            qerr[members] = np.inf
            continue
        try:
            G_int, P_int, err, N = _contour(res, center, r)
        except _SolveFailure as exc:
            problems.append(f"contour solve failed around {center:.6g}: {exc}")
            qerr[members] = np.inf
            continue
        m = members.size
        al[members] = G_int / m
        mal[members] = P_int / m
        qerr[members] = err
        qn[members] = N
        radius[members] = r
        if not err <= QUAD_TOL:
            problems.append(f"contour quadrature around {center:.6g} stopped at {N} nodes (error {err:.1e})")
    alignments = np.einsum("saa->sa", al).copy()
    mean_al = np.einsum("saa->sa", mal).copy()
    # negative diagonal entries beyond the quadrature error would be a bug; report, never clip
    bad = np.flatnonzero((alignments < -1e-8).any(axis=1))
    if bad.size:
        problems.append(f"negative predicted alignment for spike(s) {bad.tolist()}")
    quad_ok = np.isfinite(qerr)
    success = not problems and bool(np.all(conv)) and bool(np.all(quad_ok))
    msg = "; ".join(problems) if problems else "converged"
    return GramSpikes(values=values, alignments=alignments, alignment_matrices=al, mean_alignments=mean_al,
                      mean_alignment_matrices=mal, multiplicity=mult.astype(np.int64), group=group,
                      region=reg,
                      regions=region_list, edge_distance=edge_dist, neighbour_distance=neigh,
                      near_edge=near_edge, near_degenerate=near_deg, resolution=resolution,
                      converged=conv, quadrature_error=qerr, quadrature_nodes=qn, contour_radius=radius,
                      counts=counts, support=support, atom=float(spec.atom), success=success, message=msg,
                      method=backend.name, n_evaluations=int(backend.n_evaluations), sizes=model.sizes,
                      ranks=ranks, fingerprint=model.fingerprint(), bulk_counts=bulk_counts, n_zero=n_zero)


def _mass_counts(spec, model: MixtureModel) -> np.ndarray:
    """Eigenvalues of ``G`` per support interval without spikes: ``n`` times each mass (integers)."""
    return np.rint(model.n * np.array([iv.mass for iv in spec.intervals], float)).astype(np.int64)


def _atom_count(spec, model: MixtureModel) -> int:
    """Eigenvalues of ``G`` at 0 without the means: ``n`` times the atom (an integer)."""
    return int(np.rint(float(spec.atom) * model.n))


def _bulk_counts(res: _Resolvent, spec, model: MixtureModel, support: list, values: np.ndarray,
                 problems: list) -> tuple[np.ndarray, int]:
    """Eigenvalues of ``G`` in each support interval, and at 0, with the means (spikes ``values``).

    Just above each interval (below any spike in the gap) the exact count of
    :func:`_count_above` less the spikes above is the number of bulk eigenvalues
    above; differences between neighbours give each interval's share.  Below the
    lowest interval and spike the same count gives the eigenvalues that are not 0:
    means outside the covariances' ranges raise the rank of ``X``, and their spikes
    come out of the atom.  Returns ``(counts, n_zero)``.
    """
    n_zero = _atom_count(spec, model)
    floor = min([support[0][0]] + [float(v) for v in values if v < support[0][0]])
    if floor > 0:
        try:
            nonzero, frac = _count_above(res, spec, model, 0.5 * floor)
            if frac <= RANK_SLACK:
                n_zero = model.n - nonzero
            else:
                problems.append(f"n (1 - F(x)) is {frac:.3f} away from an integer below the support: "
                                "the count of zero eigenvalues is uncertain")
        except _SolveFailure as exc:
            problems.append(f"eigenvalue count below the support failed: {exc}")
    total = model.n - n_zero - values.size
    above = []
    for j, (_, b) in enumerate(support):
        nxt = support[j + 1][0] if j + 1 < len(support) else np.inf
        in_gap = values[(values > b) & (values < nxt)]
        ceiling = min(nxt, float(in_gap.min())) if in_gap.size else nxt
        if not np.isfinite(ceiling):
            above.append(0)  # above the top edge: spikes only
            continue
        g = 0.5 * (b + ceiling)
        try:
            count, frac = _count_above(res, spec, model, g)
        except _SolveFailure as exc:
            problems.append(f"eigenvalue count above the interval ending at {b:.6g} failed: {exc}")
            return _mass_counts(spec, model), n_zero
        if frac > RANK_SLACK:
            problems.append(f"n (1 - F(x)) is {frac:.3f} away from an integer above the interval ending at "
                            f"{b:.6g}: the eigenvalue counts of the intervals are uncertain")
        above.append(count - int(np.sum(values > g)))
    counts = -np.diff(np.array([total] + above, np.int64))
    if np.any(counts < 0):
        problems.append(f"negative eigenvalue count in a support interval ({counts.tolist()})")
    return counts, n_zero


def _count_above(res: _Resolvent, spec, model: MixtureModel, x: float) -> tuple[int, float]:
    r"""Predicted number of eigenvalues of ``G`` above a real ``x > 0`` off the support and the spikes.

    Without means, the eigenvalues of ``X X^T / p`` below ``x`` (in a gap) are the
    negative eigenvalues of ``A(x) = sum_b c_b C_b / (1 + delta_b) - x I_p`` less the
    ``n_b`` of the classes with ``1 + delta_b < 0``, so
    ``n (1 - F(x)) = p - neg(A) + sum_{1 + delta_b < 0} n_b``.  With means the ``p``-side matrix is
    ``A + M D M^T`` (``D = diag(c_b / (1 + delta_b))``), and the Haynsworth inertia
    formula for the bordered matrix ``[[A, M], [M^T, -D^{-1}]]`` gives

    .. math::

        \#\{\lambda > x\} = n (1 - F(x)) - \operatorname{pos} H(x)
            + \#\{b : 1 + \delta_b(x) > 0\},

    with the ``k x k`` matrix ``H`` of the spike equation (congruent to
    ``D^{-1} + M^T R M``).  A spike takes its eigenvalue from the bulk -- the count
    of ``G``'s eigenvalues is ``n`` whatever the means -- which matters when support
    intervals hold a handful of eigenvalues.  (The ``n_b`` term cancels in the
    difference of the two inertias.)  Returns the count and the distance of
    ``n (1 - F(x))`` to the nearest integer (0 in exact arithmetic).
    """
    bulk = model.n * (1.0 - float(spec.cdf(x)))
    d, _ = res.delta_real(x)
    _, w = res.H(x)
    count = int(np.rint(bulk)) - int(np.sum(w > 0)) + int(np.sum(1.0 + d > 0))
    return count, float(abs(bulk - np.rint(bulk)))


def _trapezoid(vals: dict[float, np.ndarray], theta: np.ndarray, N: int) -> np.ndarray:
    """``-(1/N) sum_j g(theta_j)`` over the full circle from the upper half.

    ``vals[theta] = f(z) (z - center)``; conjugate symmetry makes the node at
    ``-theta`` the conjugate of the one at ``theta``, so inner nodes count ``2 Re``.
    """
    s = (vals[0.0] + vals[math.pi]).real
    for t in theta[1:-1]:
        s = s + 2.0 * vals[float(t)].real
    out = -s / N
    return 0.5 * (out + out.T)


def _contour(res: _Resolvent, center: float, r: float):
    r"""Trapezoid rule on ``|z - center| = r`` for the G-side and p-side projector integrals.

    With ``z = center + r e^{i theta}``, ``dz = i (z - center) d theta`` and
    ``-(1/(2 pi i)) oint f dz = -(1/N) sum_j f(z_j) (z_j - center)``.  Nodes
    ``theta_j = 2 pi j / N`` are nested under doubling; only ``theta in [0, pi]`` is
    solved.  Returns ``(G (k,k), P (k,k), |I_N - I_{N/2}|, N)``.
    """
    k = res.k
    c = res.c
    sqc = np.sqrt(c)
    eye = np.eye(k)
    known: dict[float, np.ndarray] = {}
    vals_G: dict[float, np.ndarray] = {}
    vals_P: dict[float, np.ndarray] = {}
    prev = None
    N = 16
    while True:
        theta = 2.0 * np.pi * np.arange(N // 2 + 1) / N
        theta[-1] = math.pi
        new = np.flatnonzero([float(t) not in known for t in theta])
        deltas = res.circle_deltas(center, r, theta, known)
        zz = center + r * np.exp(1j * theta[new])
        dd = deltas[new]
        A = res.mean_quadratic(zz, dd)
        for t, z, a, d in zip(theta[new], zz, A, dd, strict=True):
            w = c / (1.0 + d)
            mrm = np.linalg.solve(eye + a * w[None, :], a)  # (I + A W)^{-1} A = M^T R~ M
            u = sqc / (1.0 + d)
            known[float(t)] = d
            vals_G[float(t)] = (u[:, None] * mrm * u[None, :] / z) * (z - center)
            vals_P[float(t)] = mrm * (z - center)
        Gi = _trapezoid(vals_G, theta, N)
        Pi = _trapezoid(vals_P, theta, N)
        if prev is not None:
            err = max(float(np.max(np.abs(Gi - prev[0]))),
                      float(np.max(np.abs(Pi - prev[1]))) / max(1.0, float(np.max(np.abs(Pi)))))
            if err <= QUAD_TOL or N >= QUAD_MAX_NODES:
                return Gi, Pi, err, N
        prev = (Gi, Pi)
        N *= 2


# --------------------------------------------------------------------------- #
# phase transitions
# --------------------------------------------------------------------------- #
@dataclass
class PhaseTransitions:
    r"""Mean strengths at which spikes leave (or re-enter) the bulk.

    The means are ``t * direction``; ``direction`` is ``(k, p)`` (default: the
    model's means, so ``t = 1`` is the model itself).

    Attributes
    ----------
    scales : ndarray, shape (r,)
        Transitions at the right edge of the bulk, ascending: for ``t > scales[i]``
        at least ``i + 1`` spikes lie beyond the bulk, and the ``i``-th largest spike
        (0-based) leaves the bulk at ``t = scales[i]``.  ``r <= rank`` of the
        direction's means Gram matrix.
    events : list of dict
        Every transition at every support edge: ``edge`` (location), ``side``
        (``'right'``: the edge is the right end of a support interval, spikes move
        into the gap on its right; ``'left'``: left end of an interval), ``scale``
        (``t``) and ``kind`` (``'emerges'`` when a spike leaves the bulk at that edge
        as ``t`` grows, ``'absorbed'`` when it merges into it).
    right_edge : float
        The rightmost support edge.
    direction : ndarray, shape (k, p)
    success : bool
    message : str
    """

    scales: np.ndarray
    events: list
    right_edge: float
    direction: np.ndarray = field(repr=False)
    success: bool = True
    message: str = "converged"

    def n_spikes(self, t: float) -> int:
        """Number of spikes beyond the right edge for means ``t * direction``.

        Parameters
        ----------
        t : float
            Strength of the means (``t >= 0``; ``t = 1`` is the model's own means
            when ``direction`` was left at its default).

        Returns
        -------
        int
            How many of :attr:`scales` lie below ``t``.
        """
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, numbers.Real):
            raise TypeError(f"t must be a real number, got {t!r}")
        if not (np.isfinite(t) and t >= 0):
            raise ValueError(f"t must be finite and non-negative, got {t!r}")
        return int(np.count_nonzero(self.scales < t))

    def to_dict(self) -> dict:
        """JSON-serialisable summary."""
        return _jsonable({"scales": self.scales, "events": self.events, "right_edge": self.right_edge,
                          "success": self.success, "message": self.message})


def phase_transitions(model: MixtureModel, direction=None, *, spectrum=None, method: str = "auto",
                      tol: float = DEFAULT_TOL) -> PhaseTransitions:
    r"""Strengths ``t`` at which spikes leave the bulk when the means are ``t * direction``.

    Parameters
    ----------
    model : MixtureModel
        Sizes and covariances (its means are ignored unless ``direction`` is None).
    direction : array_like, shape (k, p), optional
        Direction of separation; default the model's means (then ``t = 1`` is the
        model, and ``scales < 1`` count its spikes beyond the bulk).
    spectrum : GramSpectrum, optional
        The model's bulk, to reuse.
    method, tol
        As in :func:`gram_spikes`.

    Returns
    -------
    PhaseTransitions

    Notes
    -----
    At a support edge ``e`` the bulk quantities ``delta(e)``, ``R(e)`` do not depend
    on the means.  With ``A_D = D^T R(e) D`` (``D = direction^T``, ``p x k``) and
    ``W = diag(c_b / (1 + delta_b(e)))``, a spike sits at ``e`` for strength ``t`` iff
    ``W^{-1} + t^2 A_D`` is singular, i.e. ``t = 1/sqrt(-lambda)`` for each real
    negative generalised eigenvalue ``lambda`` of ``A_D v = lambda W^{-1} v``.  At the
    right edge of the bulk ``W^{-1} > 0`` and ``A_D <= 0``, so these are exactly the
    thresholds of the top spikes (BBP transitions).  ``delta(e)`` at a square-root edge
    is obtained from ``e +- h`` and ``e +- 4h`` (Richardson elimination of the
    ``sqrt(h)`` term, error ``O(h)``, ``h = 1e-10`` times the spectral scale).
    """
    _check_model(model)
    tol = as_tolerance(tol)
    k, p = model.k, model.p
    if direction is None:
        D = model.means
    else:
        from rmtgan._validation import as_real_array

        D = as_real_array(direction, "direction")
        if D.shape != (k, p):
            raise ValueError(f"direction must have shape (k, p) = ({k}, {p}), got {D.shape}")
    if not np.any(D):
        raise ValueError("direction is zero: there is no separation to scale")
    spec = _get_spectrum(model, spectrum, method)
    support = [(float(a), float(b)) for a, b in spec.support]
    if not support:
        raise ValueError("the bulk support is empty: no edges to leave from")
    probe = model.with_means(D)
    backend = make_backend(probe, method)
    res = _Resolvent(probe, backend, tol)
    h = EDGE_OFFSET * res.scale
    problems: list[str] = [] if spec.success else [f"bulk spectrum: {spec.message}"]
    events = []
    right_scales = None
    edges = []
    for j, (a, b) in enumerate(support):
        if a > 0:
            edges.append((a, "left", -1.0, j))
        edges.append((b, "right", 1.0, j))
    for e, side, sgn, j in edges:
        # the gap next to this edge must be at least 4h wide (it is, unless intervals touch)
        try:
            d1, _ = res.delta_real(e + sgn * h)
            d4, _ = res.delta_real(e + sgn * 4 * h)
        except _SolveFailure as exc:
            problems.append(f"solve failed next to the edge {e:.6g}: {exc}")
            continue
        A1 = res.mean_quadratic(np.array([e + sgn * h]), d1[None])[0].real
        A4 = res.mean_quadratic(np.array([e + sgn * 4 * h]), d4[None])[0].real
        d_e = 2 * d1 - d4
        A_e = 2 * A1 - A4
        A_e = 0.5 * (A_e + A_e.T)
        Winv = np.diag((1.0 + d_e) / res.c)
        lam, V = scipy.linalg.eig(A_e, Winv)
        with np.errstate(invalid="ignore", divide="ignore"):
            ok = np.isfinite(lam) & (np.abs(lam.imag) <= 1e-10 * np.abs(lam)) & (lam.real < 0)
        scales = []
        for i in np.flatnonzero(ok):
            t = 1.0 / math.sqrt(-lam[i].real)
            v = V[:, i].real
            curv = float(v @ A_e @ v)  # d/d(t^2) of the crossing eigenvalue has the sign of v^T A v
            # count in the gap = neg(left end) - neg(right end): at the gap's left end (a right
            # edge of the bulk) a decreasing eigenvalue adds a spike; at its right end removes one
            emerges = (curv < 0) if side == "right" else (curv > 0)
            events.append({"edge": e, "side": side, "interval": j, "scale": t,
                           "kind": "emerges" if emerges else "absorbed"})
            scales.append(t)
        if j == len(support) - 1 and side == "right":
            right_scales = np.sort(np.array(scales))
    events.sort(key=lambda ev: (ev["edge"], ev["scale"]))
    if right_scales is None:
        right_scales = np.zeros(0)
        problems.append("no transition data at the right edge")
    return PhaseTransitions(scales=right_scales, events=events, right_edge=support[-1][1], direction=D,
                            success=not problems, message="; ".join(problems) or "converged")
