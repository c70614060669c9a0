"""Adaptive piecewise Chebyshev expansions (panels) on an interval of ``theta``.

A support interval ``[a, b]`` of the density is mapped to ``theta in [0, pi/2]`` by
``x = a + (b - a) sin^2 theta``; ``F(theta) = rho(x) dx/dtheta`` is then analytic
but may vary on small scales (an edge close to a pole of the Stieltjes
transform, two intervals about to merge).  :func:`adaptive_panels` covers the
range with panels, each a Chebyshev series on first-kind nodes (27, then the
nested 81), and splits a panel in two while its coefficients have not decayed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.polynomial import chebyshev as cheb

#: relative size of the last third of the coefficients under which a panel is resolved.
TAIL_RTOL = 1e-10


@dataclass
class Panel:
    """Chebyshev data of ``F`` (real) and ``u`` (complex, one column per class) on ``[lo, hi]``."""

    lo: float
    hi: float
    coef: np.ndarray
    ucoef: np.ndarray
    mass: float
    tail: float

    def _t(self, theta):
        return (2.0 * np.asarray(theta) - (self.lo + self.hi)) / (self.hi - self.lo)

    def values(self, theta) -> np.ndarray:
        return cheb.chebval(self._t(theta), self.coef)

    def u(self, theta) -> np.ndarray:
        t = self._t(theta)
        return np.stack([cheb.chebval(t, self.ucoef[:, c]) for c in range(self.ucoef.shape[1])], axis=-1)

    def partial(self, theta) -> np.ndarray:
        """``int_lo^theta F``."""
        anti = self.__dict__.get("_anti")
        if anti is None:  # the antiderivative's coefficients, computed once
            anti = self.__dict__["_anti"] = cheb.chebint(self.coef, lbnd=-1.0) * (0.5 * (self.hi - self.lo))
        return cheb.chebval(self._t(theta), anti)

    def moment(self, g: Callable[[np.ndarray], np.ndarray]) -> float:
        """``int_lo^hi g(theta) F(theta) dtheta`` by Gauss-Legendre quadrature."""
        t, w = np.polynomial.legendre.leggauss(max(2 * self.coef.size, 32))
        th = 0.5 * (self.lo + self.hi) + 0.5 * (self.hi - self.lo) * t
        return float(0.5 * (self.hi - self.lo) * np.sum(w * cheb.chebval(t, self.coef) * g(th)))


def nodes(lo: float, hi: float, n: int) -> np.ndarray:
    """First-kind Chebyshev nodes on ``[lo, hi]`` in DCT order (decreasing)."""
    return 0.5 * (lo + hi) + 0.5 * (hi - lo) * np.cos((2 * np.arange(n) + 1) * np.pi / (2 * n))


def coefficients(values: np.ndarray) -> np.ndarray:
    """Chebyshev coefficients from values at :func:`nodes` (along axis 0)."""
    from scipy.fft import dct  # here: scipy.fft adds 0.1 s to `import rmtgan`

    c = dct(values, type=2, axis=0) / values.shape[0]
    c[0] = c[0] / 2.0
    return c


def _tail(c: np.ndarray) -> float:
    top = np.max(np.abs(c))
    if top == 0.0:
        return 0.0
    return float(np.max(np.abs(c[-(c.shape[0] // 3):])) / top)


def _interpolant(ucoef: np.ndarray, lo: float, hi: float, theta: np.ndarray) -> np.ndarray:
    t = (2.0 * theta - (lo + hi)) / (hi - lo)
    return np.stack([cheb.chebval(t, ucoef[:, c]) for c in range(ucoef.shape[1])], axis=-1)


def adaptive_panels(fun: Callable[..., tuple[np.ndarray, np.ndarray]], lo: float, hi: float, *,
                    tail_rtol: float = TAIL_RTOL, mass_atol: float = 1e-14, max_depth: int = 14,
                    n0: int = 27, max_panels: int = 256) -> tuple[list[Panel], list[str]]:
    """Cover ``[lo, hi]`` with resolved Chebyshev panels of ``fun``.

    Parameters
    ----------
    fun : callable
        ``fun(theta, guess) -> (F (m,), u (m, k))`` at an array of ``theta``;
        ``guess`` is ``None`` or the Chebyshev interpolant of ``u`` from a coarser
        level (nested nodes, or the parent panel), to start Newton from.
    tail_rtol : float
        A panel is resolved when its last third of coefficients is below
        ``tail_rtol`` times its largest one, or when that tail cannot move the
        panel's mass by more than ``mass_atol``.
    max_panels : int
        Budget: once this many panels exist (done or pending), no panel is split
        any more; the unresolved ones are reported (a function that no number of
        panels resolves, e.g. rounding noise at an extreme dynamic range, must not
        run for ever).

    Returns
    -------
    panels : list of Panel, ordered by ``theta``
    problems : list of str
        Panels left unresolved at ``max_depth`` or by the budget (empty when all
        converged).
    """
    panels: list[Panel] = []
    problems: list[str] = []
    stack = [(lo, hi, 0, None)]
    while stack:
        a, b, depth, parent = stack.pop()
        th = nodes(a, b, n0)
        F, u = fun(th, None if parent is None else _interpolant(*parent, th))
        for n in (n0, 3 * n0):
            if n != n0:
                th3 = nodes(a, b, n)
                fresh = np.ones(n, bool)
                fresh[1::3] = False
                F3, u3 = fun(th3[fresh], _interpolant(coefficients(u), a, b, th3[fresh]))
                Fa = np.empty(n)
                ua = np.empty((n, u.shape[1]), complex)
                Fa[fresh], ua[fresh] = F3, u3
                Fa[1::3], ua[1::3] = F, u
                F, u = Fa, ua
            c = coefficients(F)
            tail = _tail(c)
            scale = np.max(np.abs(c)) * (b - a)
            resolved = tail <= tail_rtol or tail * scale * n <= mass_atol
            if resolved:
                break
            # geometric decay: tripling the nodes cubes the tail; when even that cannot
            # resolve the panel, split it now rather than spend the finer nodes
            if n == n0 and tail ** 3 > tail_rtol and tail ** 3 * scale * 3 * n0 > mass_atol:
                break
        budget = len(panels) + len(stack) + 2 > max_panels
        if resolved or depth >= max_depth or budget:
            if not resolved:
                why = f"{max_panels} panels" if budget and depth < max_depth else f"depth {max_depth}"
                problems.append(f"panel [{a:.3g}, {b:.3g}] of theta unresolved at {why} (tail {tail:.1e})")
            m = np.arange(0, c.size, 2)
            mass = float(0.5 * (b - a) * np.sum(c[::2] * 2.0 / (1.0 - m ** 2)))
            panels.append(Panel(a, b, c, coefficients(u), mass, tail))
        else:
            mid = 0.5 * (a + b)
            parent = (coefficients(u), a, b)
            stack.append((mid, b, depth + 1, parent))
            stack.append((a, mid, depth + 1, parent))
    panels.sort(key=lambda pn: pn.lo)
    return panels, problems
