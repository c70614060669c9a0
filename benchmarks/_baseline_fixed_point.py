"""The baseline of the dense benchmark: damped fixed-point iteration, point by point.

This is the method of the reference scripts that accompany Couillet & Liao's book
(*Random Matrix Methods for Machine Learning*, 2022): at each ``x`` of a grid,
``z = x + i eta`` with a small ``eta``, iterate

    delta <- (1 - damping) delta + damping t(delta),   t_a(delta) = (1/p) tr C_a R(z, delta),

with one explicit ``p x p`` inverse per iteration, until ``max|delta_new - delta| < tol``,
warm-started from the previous grid point; the density is ``Im m_G(z) / pi`` and the
support is where it is positive.  Written plainly on purpose (NumPy/SciPy, no tricks
beyond an efficient trace ``sum(C_a * R)``); it is the yardstick, not a method of
the library.
"""

from __future__ import annotations

import numpy as np
import scipy.linalg


def fixed_point_density(model, x: np.ndarray, *, eta: float = 1e-5, damping: float = 0.5,
                        tol: float = 1e-6, max_iter: int = 100_000):
    """Density of ``G = X^T X / p`` at the points ``x`` by damped fixed-point iteration.

    Returns ``(density, iterations)``; ``iterations[j]`` inverses were spent at ``x[j]``
    (``max_iter`` means the iteration did not meet ``tol``).
    """
    cov = model.covariances
    flat = cov.reshape(model.k, -1)
    c = model.ratios
    p, n_a, n = model.p, model.sizes.astype(float), model.n
    delta = np.full(model.k, 1j)  # a point of the upper half plane
    dens = np.empty(len(x))
    its = np.zeros(len(x), np.int64)
    for j, xj in enumerate(x):
        z = xj + 1j * eta
        it = 0
        while it < max_iter:
            it += 1
            A = np.tensordot(c / (1.0 + delta), cov, axes=1) - z * np.eye(p)
            R = scipy.linalg.inv(A, check_finite=False)
            t = (flat @ R.reshape(-1)) / p
            new = (1.0 - damping) * delta + damping * t
            step = np.max(np.abs(new - delta))
            delta = new
            if step < tol:
                break
        its[j] = it
        m = -(1.0 / (n * z)) * np.sum(n_a / (1.0 + delta))
        dens[j] = m.imag / np.pi
    return dens, its
