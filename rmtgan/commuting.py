"""The commuting-covariance backend: the numba kernels behind a small class.

Eigen-directions whose eigenvalues coincide in every class are merged before the
kernels run (their contributions to every trace are identical), so a model with
``q`` distinct direction profiles costs ``O(q k^2)`` per evaluation.
"""

from __future__ import annotations

import numpy as np

from rmtgan.kernels import commuting_evaluate, commuting_mean_quadratic
from rmtgan.model import MixtureModel

__all__ = ["CommutingBackend"]


class CommutingBackend:
    """Evaluate the fixed-point map for commuting covariances (numba kernels).

    Attributes
    ----------
    n_evaluations : int
        Points evaluated so far (the unit of cost, ``O(q k^2)`` each).
    q : int
        Number of distinct eigen-direction profiles after merging.
    """

    name = "commuting"

    def __init__(self, model: MixtureModel):
        eig = model.eigen
        if eig is None:
            raise ValueError("the covariances of this model do not commute; use method='dense'")
        self.k = model.k
        self.p = model.p
        self.c = np.ascontiguousarray(model.ratios, dtype=np.float64)
        lam = np.asarray(eig.eigenvalues, dtype=np.float64)
        cols, inverse, counts = np.unique(lam.T, axis=0, return_inverse=True, return_counts=True)
        inverse = inverse.reshape(-1)
        self.q = cols.shape[0]
        self.lam = np.ascontiguousarray(cols.T)  # (k, q)
        self.lamw = np.ascontiguousarray(self.lam * counts)  # (k, q)
        self.counts = counts
        self.sizes = np.asarray(model.sizes)
        mt = eig.rotate(model.means.T)  # (p, k): means in the eigenbasis
        mm = np.zeros((self.q, self.k, self.k))
        np.add.at(mm, inverse, mt[:, :, None] * mt[:, None, :])
        self.mm = np.ascontiguousarray(np.moveaxis(mm, 0, -1))  # (k, k, q)
        self.n_evaluations = 0

    def evaluate(self, z: np.ndarray, delta: np.ndarray, *, jac: bool = True, fast_jac: bool = False,
                 single: bool = False):
        """Return ``t (m,k)``, ``dt/ddelta (m,k,k)``, ``dt/dz (m,k)`` at each point.

        ``jac``, ``fast_jac`` and ``single`` are accepted for the common interface: the
        kernel is exact (double precision) and cheap, and always returns the derivatives.
        """
        m = z.shape[0]
        t = np.empty((m, self.k), np.complex128)
        J = np.empty((m, self.k, self.k), np.complex128)
        tz = np.empty((m, self.k), np.complex128)
        if m:
            commuting_evaluate(np.ascontiguousarray(z, np.complex128),
                               np.ascontiguousarray(delta, np.complex128),
                               self.lam, self.lamw, self.c, 1.0 / self.p, t, J, tz)
        self.n_evaluations += m
        return t, J, tz

    def _diagonal(self, x: float, d: np.ndarray) -> np.ndarray:
        """The real ``A(x, delta)`` in the eigenbasis: one entry per direction profile, ``(q,)``."""
        return (self.c / (1.0 + d)) @ self.lam - float(x)

    def fold_point(self, x: float, delta: np.ndarray, *, fast_jac: bool = False):
        r"""Real-axis data for the fold (edge) system at a real point (see :mod:`rmtgan._folds`).

        Returns ``t, J, tz, along`` with ``along(v) = (Dd, Dx)``,
        ``Dd[a, c] = d (J v)_a / d delta_c`` and ``Dx[a] = d (J v)_a / dx``, and
        ``along(v, w) = (w^T Dd, w^T Dx)``.  With
        ``g_i = 1 / (sum_b c_b lambda_{b,i} / (1 + delta_b) - x)``,
        ``e_b = c_b / (1 + delta_b)^2`` and ``s_i = sum_b lambda_{b,i} e_b v_b``:

        .. math::

            \frac{\partial (Jv)_a}{\partial \delta_c} = \frac{2 e_c}{p} \sum_i
                \lambda_{a,i} \lambda_{c,i} g_i^3 s_i - \frac{2 v_c}{1 + \delta_c} J_{ac},
            \qquad \frac{\partial (Jv)_a}{\partial x} = \frac2p \sum_i \lambda_{a,i} g_i^3 s_i.

        Everything in double precision (``fast_jac`` is accepted for the common interface).
        """
        d = np.asarray(delta, np.float64)
        g = 1.0 / self._diagonal(x, d)  # (q,)
        e = self.c / (1.0 + d) ** 2
        p = self.p
        # factors lambda g are scale-free: no overflow for covariances of any scale
        wg = self.lamw * g  # (k, q)
        lg = self.lam * g
        t = wg.sum(axis=1) / p
        J = wg @ lg.T * e[None, :] / p
        tz = wg @ g / p
        self.n_evaluations += 1

        def along(v, w=None):
            w3 = wg * (g * ((e * np.asarray(v, np.float64)) @ self.lam))  # lambda_a g^2 s, (k, q)
            Dd = 2.0 * e[None, :] * (w3 @ lg.T) / p - 2.0 * (v / (1.0 + d))[None, :] * J
            Dx = 2.0 * (w3 @ g) / p
            return (Dd, Dx) if w is None else (w @ Dd, float(w @ Dx))

        return t, J, tz, along

    def negative_count(self, x: float, delta: np.ndarray) -> int:
        r"""Predicted number of eigenvalues of ``X X^T / p`` below a real ``x`` in a gap.

        As :meth:`rmtgan.dense.DenseBackend.negative_count`: the negative eigenvalues of
        the (here diagonal) ``A(x, delta)``, less ``n_b`` for every class with
        ``1 + delta_b < 0``.

        Raises
        ------
        ArithmeticError
            ``A(x, delta)`` is singular (a zero diagonal entry).
        """
        d = np.asarray(delta, np.float64)
        s = self._diagonal(x, d)
        if np.any(s == 0.0):
            raise ArithmeticError(f"A(x, delta) is singular at x = {x!r}")
        return int(self.counts[s < 0].sum() - self.sizes[1.0 + d < 0].sum())

    def mean_quadratic(self, z: np.ndarray, delta: np.ndarray):
        """Return ``M^T R M`` and ``M^T R^2 M`` (each ``(m, k, k)``) with ``R`` the no-means resolvent."""
        m = z.shape[0]
        out = np.empty((m, self.k, self.k), np.complex128)
        dz = np.empty((m, self.k, self.k), np.complex128)
        if m:
            commuting_mean_quadratic(np.ascontiguousarray(z, np.complex128),
                                     np.ascontiguousarray(delta, np.complex128),
                                     self.lam, self.c, self.mm, out, dz)
        self.n_evaluations += m
        return out, dz
