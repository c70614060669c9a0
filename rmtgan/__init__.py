"""rmtgan: deterministic equivalents for Gram matrices of mixtures and of GAN features.

Conventions: data arrays are ``(n_samples, n_features) = (n, p)``; the Gram matrix
is ``G = X^T X / p`` with ``X = data.T`` (``p x n``).

Main entry points
-----------------
MixtureModel        validated class sizes, means, covariances
solve               the fixed point delta(z) of the Gram resolvent
gram_spectrum       limiting spectrum of G: density, support, atom, CDF, quantiles
gram_spikes         isolated eigenvalues of G and eigenvector alignments
compare             prediction against features and a Gaussian surrogate
gram_eigenvalues    empirical eigenvalues of G through the smaller side

``import rmtgan`` never imports torch; the GAN adapter lives in ``rmtgan.gan``.
"""

from rmtgan.comparison import Comparison, EmpiricalComparison, compare
from rmtgan.empirical import (
    GramAccumulator,
    class_alignment_matrix,
    class_alignments,
    gram_eigenvalues,
    leading_eigenpairs,
    mean_alignments,
)
from rmtgan.model import EigenForm, MixtureModel, MomentAccumulator
from rmtgan.solver import ConvergenceError, SolveResult, solve
from rmtgan.spectrum import GramSpectrum, SupportInterval, gram_spectrum
from rmtgan.spikes import GramSpikes, PhaseTransitions, gram_spikes, phase_transitions

__version__ = "0.1.0"

__all__ = [
    "Comparison",
    "EmpiricalComparison",
    "GramSpikes",
    "PhaseTransitions",
    "compare",
    "gram_spikes",
    "phase_transitions",
    "GramAccumulator",
    "class_alignment_matrix",
    "class_alignments",
    "gram_eigenvalues",
    "leading_eigenpairs",
    "mean_alignments",
    "ConvergenceError",
    "EigenForm",
    "GramSpectrum",
    "MixtureModel",
    "MomentAccumulator",
    "SolveResult",
    "SupportInterval",
    "gram_spectrum",
    "solve",
]
