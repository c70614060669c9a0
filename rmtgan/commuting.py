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
        mt = eig.rotate(model.means.T)  # (p, k): means in the eigenbasis
        mm = np.zeros((self.q, self.k, self.k))
        np.add.at(mm, inverse, mt[:, :, None] * mt[:, None, :])
        self.mm = np.ascontiguousarray(np.moveaxis(mm, 0, -1))  # (k, k, q)
        self.n_evaluations = 0

    def evaluate(self, z: np.ndarray, delta: np.ndarray, *, jac: bool = True, fast_jac: bool = False):
        """Return ``t (m,k)``, ``dt/ddelta (m,k,k)``, ``dt/dz (m,k)`` at each point.

        ``jac`` and ``fast_jac`` are accepted for the common interface: the kernel is
        exact and cheap, and always returns the derivatives.
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
