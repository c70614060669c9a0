"""Small mixture models shared by the tests (and the dense benchmark)."""

import numpy as np

from rmtgan import MixtureModel


def diag_model(p, sizes):
    """Three classes with smooth diagonal covariances and means in the first three directions."""
    u = (np.arange(p) + 0.5) / p
    lam = np.stack([0.4 + u, 0.3 + 1.5 * u ** 2, 0.8 + 0.2 * np.sin(6 * u)])
    M = np.zeros((3, p))
    M[0, :3] = [2.2, 0.0, 0.3]
    M[1, :3] = [0.0, 2.0, 0.4]
    M[2, :3] = [-1.4, -1.0, 1.7]
    return MixtureModel.from_eigen(lam, list(sizes), means=M)


def outlier_model(seed=5, p=48, means_scale=0.0):
    """Bulk eigenvalues in [0.5, 1.5] plus six outliers, each its own small interval (``n = 12 p``).

    The shape of projected deep features: two of the outlier intervals are 3 % apart.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    out = np.array([4.0, 6.0, 9.0, 9.3, 15.0, 30.0])
    lam = np.stack([np.concatenate([rng.uniform(0.5, 1.5, p - 6), out]),
                    np.concatenate([rng.uniform(0.5, 1.5, p - 6), 1.3 * out])])
    # means: along the outlier directions and a random one (``means_scale`` sets their size)
    means = np.zeros((2, p))
    if means_scale:
        means[0] = means_scale * (q[:, -1] + q[:, -3] + 0.3 * rng.standard_normal(p) / np.sqrt(p))
        means[1] = means_scale * (q[:, -2] - q[:, -5])
    return MixtureModel.from_eigen(lam, [6 * p, 6 * p], basis=q, means=means)


def wiggly(seed=1, p=24, ratio=12):
    """Two classes, population eigenvalues spread over 2.6 decades, ``n = ratio p`` per class, rotated.

    The density then has a bump per eigenvalue and near-cusps between them (the shape
    of deep features' spectra), which one Chebyshev series per interval cannot resolve.
    """
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = np.stack([np.sort(10 ** rng.uniform(-2, 0.6, p)) for _ in range(2)])
    return MixtureModel.from_eigen(lam, [ratio * p, ratio * p], basis=q)
