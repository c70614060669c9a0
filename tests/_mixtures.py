"""Small mixture models shared by the spike and comparison tests."""

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
