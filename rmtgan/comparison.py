r"""Compare an empirical Gram spectrum (GAN features, any data) with the mixture prediction.

Conventions: ``features`` is ``(n_samples, n_features) = (n, p)``, the paper's
``X = features.T``, ``G = X^T X / p`` (``n x n``).

:func:`compare` measures, for the given features *and* for a Gaussian-surrogate draw of
the model (same means, covariances and class sizes), how far the empirical spectrum
and the leading eigenvectors of ``G`` are from the deterministic equivalents of
:func:`rmtgan.gram_spectrum` and :func:`rmtgan.spikes.gram_spikes`:

* **bulk** -- the ``n`` eigenvalues of ``G`` less the ``round(atom * n)`` smallest (the
  atom at 0) and less the eigenvalues matched to predicted spikes, against the
  predicted law of those ``m`` eigenvalues (:class:`BulkLaw`): in each support
  interval the limiting density's shape, with the interval's exact eigenvalue count
  at this ``n`` (:attr:`GramSpikes.bulk_counts`, exact inertia counts with the
  means: ``n`` times its mass, less one for each spike that takes its eigenvalue from
  it; the zeros are :attr:`GramSpikes.n_zero`; without means
  ``F_bulk(x) = (F(x) - atom) / mass``): the Kolmogorov--Smirnov distance
  ``sup_x |F_emp(x) - F_bulk(x)|`` and the Wasserstein-1 distance
  ``int_0^1 |Q_emp(u) - Q_bulk(u)| du`` (``Q`` quantile functions; each empirical
  step is split where the integrand has its kink and integrated by Gauss--Legendre);
* **spikes** -- each predicted spike is matched to the empirical eigenvalue with the
  rank from the top that the prediction gives it (:attr:`GramSpikes.ranks`: the
  predicted number of eigenvalues above it, an exact inertia count in which every
  spike takes its eigenvalue from the bulk); relative errors ``(lambda - rho) / rho``;
* **eigenvectors** -- class alignments ``(j_a^T u)^2 / n_a`` (and cross terms) of the
  matched eigenvectors and p-side alignments ``(v^T mu_a)^2`` with
  ``v = X u / sqrt(p lambda)`` against the predictions (absolute errors).  Spikes that
  are degenerate or closer than their ``O(1/sqrt(n))`` resolution to one another form a
  *cluster*: their eigenvectors mix at finite ``n``, so within a cluster the errors
  compare cluster means (equivalently, totals).

Expect a bulk KS of a few ``1/m`` (``m`` bulk eigenvalues compared: they are rigid, so
one misplaced eigenvalue moves it by ``1/m``) and ``O(1/sqrt(n))`` spike and alignment
errors for data that behave like the mixture.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field

import numpy as np

from rmtgan._validation import (
    as_int,
    as_labels,
    as_nonnegative_int,
    as_numeric_matrix,
    as_positive_int,
    check_finite_block,
)
from rmtgan.empirical import class_alignment_matrix, gram_eigenvalues, leading_eigenpairs
from rmtgan.model import MixtureModel, check_same_bulk
from rmtgan.spikes import GramSpikes, _jsonable, gram_spikes

__all__ = ["Comparison", "EmpiricalComparison", "compare"]

#: Gauss--Legendre points per empirical quantile step in the Wasserstein-1 integral.
W1_POINTS = 4


# --------------------------------------------------------------------------- #
# results
# --------------------------------------------------------------------------- #
@dataclass
class EmpiricalComparison:
    r"""Empirical spectrum and eigenvectors of one data set against the prediction.

    Attributes
    ----------
    name : str
        ``'features'`` or ``'surrogate'``.
    n, p : int
    eigenvalues : ndarray, shape (n,)
        All eigenvalues of ``G``, ascending.
    n_zero : int
        Eigenvalues attributed to the atom at 0 (the smallest ``round(atom n)``).
    bulk_eigenvalues : ndarray, shape (m,)
        The eigenvalues compared with the bulk (ascending): all but the atom and
        the matched spikes.
    ks : float or None
        ``sup |F_emp - F_bulk|`` over the bulk eigenvalues (None if there are none).
    ks_location : float or None
        Where the supremum is attained.
    wasserstein : float or None
        ``int_0^1 |Q_emp(u) - Q_bulk(u)| du`` (squared feature units).
    spike_ranks : ndarray of int, shape (s,)
        0-based rank from the top of the eigenvalue matched to each compared spike.
    spike_values : ndarray, shape (s,)
        The matched empirical eigenvalues.
    spike_relative_errors : ndarray, shape (s,)
        ``(lambda_i - rho_i) / rho_i``.
    spike_separated : ndarray of bool, shape (s,)
        The matched eigenvalue lies outside the predicted bulk support.
    alignments : ndarray, shape (s, k)
        ``(j_a^T u_i)^2 / n_a`` of the matched eigenvectors.
    alignment_matrices : ndarray, shape (s, k, k)
        ``(j_a^T u_i)(j_b^T u_i) / sqrt(n_a n_b)``.
    alignment_errors : ndarray, shape (s, k)
        ``|empirical - predicted|`` (cluster means within a cluster).
    mean_alignments : ndarray, shape (s, k)
        ``(v_i^T mu_a)^2`` with ``v_i = X u_i / sqrt(p lambda_i)`` and the model's means.
    mean_alignment_errors : ndarray, shape (s, k)
        ``|empirical - predicted|`` (cluster means within a cluster).
    leading_values : ndarray, shape (q,)
        The ``q`` largest eigenvalues (descending).
    leading_vectors : ndarray, shape (n, q)
        Their unit eigenvectors (columns), for plots.
    labels : ndarray of int, shape (n,)
        Class index (into the model's classes) of every sample.
    """

    name: str
    n: int
    p: int
    eigenvalues: np.ndarray = field(repr=False)
    n_zero: int
    bulk_eigenvalues: np.ndarray = field(repr=False)
    ks: float | None
    ks_location: float | None
    wasserstein: float | None
    spike_ranks: np.ndarray
    spike_values: np.ndarray
    spike_relative_errors: np.ndarray
    spike_separated: np.ndarray
    alignments: np.ndarray
    alignment_matrices: np.ndarray = field(repr=False)
    alignment_errors: np.ndarray
    mean_alignments: np.ndarray
    mean_alignment_errors: np.ndarray
    leading_values: np.ndarray = field(repr=False)
    leading_vectors: np.ndarray = field(repr=False)
    labels: np.ndarray = field(repr=False)

    def metrics(self) -> dict:
        """Scalar and per-spike metrics (JSON-serialisable)."""
        def mx(a):
            return float(np.max(a)) if np.size(a) else None
        return _jsonable({
            "ks": self.ks,
            "ks_location": self.ks_location,
            "wasserstein1": self.wasserstein,
            "n_bulk": int(self.bulk_eigenvalues.size),
            "n_zero": self.n_zero,
            "spike_values": self.spike_values,
            "spike_ranks": self.spike_ranks,
            "spike_relative_errors": self.spike_relative_errors,
            "max_abs_spike_relative_error": mx(np.abs(self.spike_relative_errors)),
            "spike_separated": self.spike_separated,
            "alignments": self.alignments,
            "alignment_errors": self.alignment_errors,
            "max_alignment_error": mx(self.alignment_errors),
            "mean_alignments": self.mean_alignments,
            "mean_alignment_errors": self.mean_alignment_errors,
            "max_mean_alignment_error": mx(self.mean_alignment_errors),
        })


@dataclass
class Comparison:
    r"""Prediction of the mixture model against features and a Gaussian surrogate.

    Attributes
    ----------
    features : EmpiricalComparison
        The data given to :func:`compare`.
    surrogate : EmpiricalComparison or None
        A Gaussian draw of the model (``model.sample(rng=surrogate_seed)``).
    support : list of (float, float)
        Predicted bulk intervals.
    atom, mass : float
        Predicted mass at 0 and bulk mass (``atom + mass = 1`` up to ``1e-9``).
    spike_values : ndarray, shape (s,)
        The compared predicted spikes (descending).
    alignments, alignment_matrices, mean_alignments
        Their predicted alignments (see :class:`rmtgan.spikes.GramSpikes`).
    cluster : ndarray of int, shape (s,)
        Cluster of each compared spike (degenerate or within resolution).
    density_x, density_y : ndarray
        The predicted bulk density (per ``n`` eigenvalues) on a plotting grid.
    class_labels : list
        The model's class labels (index ``a`` <-> ``class_labels[a]``).
    spikes : GramSpikes
        The full spike prediction.
    success : bool
        Prediction converged and every spike rank was unambiguous.
    message : str
    """

    features: EmpiricalComparison
    surrogate: EmpiricalComparison | None
    support: list
    atom: float
    mass: float
    spike_values: np.ndarray
    alignments: np.ndarray
    alignment_matrices: np.ndarray = field(repr=False)
    mean_alignments: np.ndarray = field(repr=False)
    cluster: np.ndarray = field(repr=False)
    density_x: np.ndarray = field(repr=False)
    density_y: np.ndarray = field(repr=False)
    class_labels: list = field(repr=False)
    spikes: GramSpikes = field(repr=False)
    success: bool = True
    message: str = ""

    @property
    def k(self) -> int:
        return len(self.class_labels)

    def metrics(self) -> dict:
        """``{'features': {...}, 'surrogate': {...} or None}`` (JSON-serialisable)."""
        return {"features": self.features.metrics(),
                "surrogate": None if self.surrogate is None else self.surrogate.metrics()}

    def to_dict(self, *, include_arrays: bool = False) -> dict:
        """JSON-serialisable summary: prediction, metrics, diagnostics.

        With ``include_arrays=True`` the eigenvalues of both data sets and the
        density grid are included too (``O(n)`` numbers).
        """
        out = {
            "prediction": {
                "support": [list(iv) for iv in self.support],
                "atom": self.atom,
                "mass": self.mass,
                "spike_values": self.spike_values,
                "alignments": self.alignments,
                "alignment_matrices": self.alignment_matrices,
                "mean_alignments": self.mean_alignments,
                "cluster": self.cluster,
                "spikes": self.spikes.to_dict(),
            },
            "metrics": self.metrics(),
            "class_labels": [c.item() if isinstance(c, np.generic) else c for c in self.class_labels],
            "success": self.success,
            "message": self.message,
        }
        if include_arrays:
            out["arrays"] = {
                "density_x": self.density_x,
                "density_y": self.density_y,
                "features_eigenvalues": self.features.eigenvalues,
                "surrogate_eigenvalues": None if self.surrogate is None else self.surrogate.eigenvalues,
            }
        return _jsonable(out)

    def to_json(self, **kwargs) -> str:
        """``json.dumps(self.to_dict(), allow_nan=False, **kwargs)``."""
        include = kwargs.pop("include_arrays", False)
        return json.dumps(self.to_dict(include_arrays=include), allow_nan=False, **kwargs)

    def __repr__(self) -> str:
        f = self.features
        s = self.surrogate
        def fmt(v):
            return "None" if v is None else f"{v:.3g}"
        part = f"features: KS={fmt(f.ks)}, W1={fmt(f.wasserstein)}"
        if s is not None:
            part += f"; surrogate: KS={fmt(s.ks)}, W1={fmt(s.wasserstein)}"
        return f"Comparison({part}; spikes={len(self.spike_values)}, success={self.success})"


# --------------------------------------------------------------------------- #
# validation
# --------------------------------------------------------------------------- #
def _class_index(labels, n: int, model: MixtureModel) -> np.ndarray:
    """Map labels to the model's class indices; every class needs >= 2 samples and the
    class counts must equal the model's sizes."""
    lab = as_labels(labels, n)
    uniq, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    cl = np.asarray(model.class_labels)
    k = model.k
    few = np.flatnonzero(counts < 2)
    if few.size:
        a = int(few[0])
        raise ValueError(f"class {uniq[a].item()!r} has {counts[a]} sample(s); every class needs at least 2")
    if uniq.size != k:
        raise ValueError(f"labels hold {uniq.size} classes but the model has k = {k}")
    lookup = {}
    for a, c in enumerate(cl.tolist()):
        lookup[c] = a
    try:
        to_model = np.array([lookup[u] for u in uniq.tolist()], np.int64)
    except KeyError:
        raise ValueError(
            f"labels {uniq.tolist()} do not match the model's classes {cl.tolist()} "
            "(set model.class_labels to the labels used in the data)"
        ) from None
    idx = to_model[inv]
    got = np.bincount(idx, minlength=k)
    if not np.array_equal(got, model.sizes):
        raise ValueError(
            f"class counts {got.tolist()} (in the model's class order {cl.tolist()}) differ from the "
            f"model's sizes {model.sizes.tolist()}; predict for these counts with model.with_sizes(...)"
        )
    return idx


def _check_features(features, p: int) -> np.ndarray:
    X = as_numeric_matrix(features, "features")
    if X.shape[1] != p:
        raise ValueError(f"features have {X.shape[1]} columns but the model has p = {p}")
    rows = max(1, (1 << 22) // max(p, 1))
    for start in range(0, X.shape[0], rows):
        check_finite_block(np.asarray(X[start:start + rows]), "features", start)
    return X


# --------------------------------------------------------------------------- #
# metrics
# --------------------------------------------------------------------------- #
class BulkLaw:
    r"""The predicted law of the bulk eigenvalues at finite ``n``: ``counts[j]`` of them in interval ``j``.

    Within each support interval the shape is the limiting density's; the weights are
    the interval's eigenvalue count (:attr:`GramSpikes.bulk_counts`) over their
    total ``m``::

        F_bulk(x) = (sum_{i < j} counts[i] + counts[j] (F(x) - F(a_j)) / mass_j) / m,   x in [a_j, b_j].

    Without spikes this is ``(F(x) - atom) / mass``.  ``counts=None`` takes ``n`` times
    each interval's mass (rounded) from ``n``.
    """

    def __init__(self, spectrum, counts=None, n: int | None = None):
        self.spectrum = spectrum
        self.intervals = list(spectrum.intervals)
        masses = np.array([iv.mass for iv in self.intervals], float)
        if counts is None:
            if n is None:
                raise ValueError("BulkLaw needs the counts or n")
            counts = np.rint(n * masses)
        self.counts = np.asarray(counts, float)
        if self.counts.shape != masses.shape or np.any(self.counts < 0):
            raise ValueError(f"bulk counts {self.counts.tolist()} do not fit the {masses.size} "
                             "support intervals")
        self.m = float(self.counts.sum())
        if self.m <= 0:
            raise ValueError("the bulk law holds no eigenvalue")
        self.masses = masses
        self.below = np.concatenate([[0.0], np.cumsum(self.counts)[:-1]])  # eigenvalues below each interval
        self.start = np.array([float(spectrum.cdf(iv.left)) for iv in self.intervals])  # F(a_j)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        x = np.asarray(x, float)
        out = np.zeros(x.shape)
        F = self.spectrum.cdf(x)
        for j, iv in enumerate(self.intervals):
            inside = (x > iv.left) & (x < iv.right)
            frac = np.clip((F - self.start[j]) / self.masses[j], 0.0, 1.0)
            out = np.where(x >= iv.right, out + self.counts[j], out)
            out = np.where(inside, out + self.counts[j] * frac, out)
        return np.clip(out / self.m, 0.0, 1.0)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        u = np.asarray(u, float)
        target = np.clip(u, 0.0, 1.0) * self.m  # eigenvalues below
        # the first interval whose eigenvalues reach ``target`` (empty intervals are passed over)
        j = np.searchsorted(self.below + self.counts, target, side="left")
        j = np.clip(j, 0, len(self.intervals) - 1)
        frac = np.where(self.counts[j] > 0, (target - self.below[j]) / np.maximum(self.counts[j], 1.0), 0.0)
        q = self.start[j] + np.clip(frac, 0.0, 1.0) * self.masses[j]
        return self.spectrum.quantiles(np.clip(q, 0.0, 1.0))


def ks_distance(law: BulkLaw, values: np.ndarray) -> tuple[float, float]:
    """Kolmogorov--Smirnov distance of sorted ``values`` to the predicted bulk law."""
    y = np.sort(values)
    m = y.size
    if m == 0:
        return math.nan, math.nan
    F = law.cdf(y)
    i = np.arange(1, m + 1)
    upper = i / m - F
    lower = F - (i - 1) / m
    d = np.maximum(upper, lower)
    j = int(np.argmax(d))
    return float(d[j]), float(y[j])


def wasserstein1(law: BulkLaw, values: np.ndarray) -> float:
    """``int_0^1 |Q_emp(u) - Q_bulk(u)| du``.

    On the step ``u in [i/m, (i+1)/m)`` the integrand ``|y_i - Q_bulk(u)|`` has one kink,
    at ``u = F_bulk(y_i)``; each step is split there and both pieces are integrated by
    Gauss--Legendre (``W1_POINTS`` nodes).  The integrand is smooth on a piece except
    next to a soft edge of the bulk (``Q_bulk(u) - edge ~ u^{2/3}``) and across a gap
    (``Q_bulk`` jumps): there the rule is not exact (4e-5 to 1.6e-4 relative on whole
    spectra, measured against adaptive quadrature), far below the statistical size of
    W1 (``O(1/m)``).
    """
    y = np.sort(values)
    m = y.size
    if m == 0:
        return math.nan
    t, w = np.polynomial.legendre.leggauss(W1_POINTS)
    lo = np.arange(m) / m
    hi = (np.arange(m) + 1.0) / m
    kink = np.clip(law.cdf(y), lo, hi)
    total = 0.0
    for a, b in ((lo, kink), (kink, hi)):
        half = (b - a) / 2.0
        u = (a + b)[:, None] / 2.0 + half[:, None] * t[None, :]
        Q = law.quantile(u.ravel()).reshape(m, W1_POINTS)
        total += float(np.sum(half[:, None] * w[None, :] * np.abs(y[:, None] - Q)))
    return total


def _clusters(spk: GramSpikes) -> np.ndarray:
    """Clusters of spikes: same degenerate group, or neighbours within resolution."""
    s = spk.n_spikes
    cl = np.zeros(s, np.int64)
    for i in range(1, s):
        close = (spk.group[i] == spk.group[i - 1]) or (
            spk.values[i - 1] - spk.values[i] < max(spk.resolution[i - 1], spk.resolution[i]))
        cl[i] = cl[i - 1] if close else cl[i - 1] + 1
    return cl


def _cluster_errors(emp: np.ndarray, pred: np.ndarray, cluster: np.ndarray) -> np.ndarray:
    out = np.empty_like(pred)
    for c in np.unique(cluster):
        sel = cluster == c
        out[sel] = np.abs(emp[sel].mean(axis=0) - pred[sel].mean(axis=0))
    return out


def _spike_ranks(spk: GramSpikes, n: int) -> np.ndarray:
    """0-based descending ranks of every predicted spike among the ``n`` empirical eigenvalues.

    The finite-n eigenvalue counts of :attr:`GramSpikes.ranks` (the class counts equal the
    model's sizes, validated at the boundary, so ``n = model.n``), capped at ``n - 1``.
    """
    return np.minimum(np.asarray(spk.ranks, np.int64), n - 1)


def _empirical(name: str, data, cls: np.ndarray, model: MixtureModel, spectrum, spk: GramSpikes,
               s: int, cluster: np.ndarray, n_vectors: int, problems: list) -> EmpiricalComparison:
    n, p = data.shape
    eig = gram_eigenvalues(data)
    desc = eig[::-1]
    atom = float(spectrum.atom)
    # zero eigenvalues: with the means (they can raise the rank of X), else the atom's
    n_zero = int(spk.n_zero) if spk.n_zero is not None else int(round(atom * n))
    ranks_all = _spike_ranks(spk, n)
    ranks = ranks_all[:s]
    # bulk: drop the atom's eigenvalues and every spike's
    keep = np.ones(n, bool)  # in descending order
    keep[ranks_all] = False
    if n_zero:
        keep[n - n_zero:] = False
    bulk = np.sort(desc[keep])
    counts = spk.bulk_counts
    has_bulk = bool(spectrum.intervals) and (counts is None or int(np.sum(counts)) > 0)
    law = BulkLaw(spectrum, counts, n) if has_bulk else None
    predicted = 0.0 if law is None else law.m
    if predicted != bulk.size:
        problems.append(f"{name}: the predicted bulk holds {predicted:.0f} eigenvalues, the data "
                        f"{bulk.size} after the atom and the spikes")
    if bulk.size and law is not None:
        ks, ks_at = ks_distance(law, bulk)
        w1 = wasserstein1(law, bulk)
    else:  # nothing left to compare (every eigenvalue is atom or spike)
        ks = ks_at = w1 = None
        problems.append(f"{name}: no bulk eigenvalues left to compare")
    # eigenvectors
    q = max(n_vectors, int(ranks.max()) + 1 if s else 0)
    q = min(q, min(n, p))
    lead_vals, lead_vecs = leading_eigenpairs(data, q)
    k = model.k
    if s:
        U = lead_vecs[:, ranks]
        lam = lead_vals[ranks]
        A = class_alignment_matrix(U, cls)
        if A.shape[1] != k:  # every class is present (validated), so this is a bug guard
            raise RuntimeError("class alignment matrix has the wrong number of classes")
        al = np.einsum("saa->sa", A).copy()
        V = np.empty((p, s))
        for start in range(0, n, 4096):
            blk = np.asarray(data[start:start + 4096], dtype=np.float64)
            if start == 0:
                V[:] = blk.T @ U[start:start + 4096]
            else:
                V += blk.T @ U[start:start + 4096]
        V /= np.sqrt(p * lam)[None, :]
        MV = model.means @ V  # (k, s)
        mal = (MV ** 2).T
        spike_vals = lam
        rel = (lam - spk.values[:s]) / spk.values[:s]
        al_err = _cluster_errors(al, spk.alignments[:s], cluster)
        mal_err = _cluster_errors(mal, spk.mean_alignments[:s], cluster)
        inside = np.zeros(s, bool)
        for a_, b_ in spectrum.support:
            inside |= (lam >= a_) & (lam <= b_)
        separated = ~inside
    else:
        A = np.zeros((0, k, k))
        al = mal = al_err = mal_err = np.zeros((0, k))
        spike_vals = rel = np.zeros(0)
        separated = np.zeros(0, bool)
    nv = min(n_vectors, lead_vals.size)
    return EmpiricalComparison(
        name=name, n=n, p=p, eigenvalues=eig, n_zero=n_zero, bulk_eigenvalues=bulk, ks=ks, ks_location=ks_at,
        wasserstein=w1, spike_ranks=ranks, spike_values=spike_vals, spike_relative_errors=rel,
        spike_separated=separated, alignments=al, alignment_matrices=A, alignment_errors=al_err,
        mean_alignments=mal, mean_alignment_errors=mal_err, leading_values=lead_vals[:nv].copy(),
        leading_vectors=lead_vecs[:, :nv].copy(), labels=cls,
    )


def _density_grid(spectrum, top: float, points: int = 400):
    """The predicted density on a grid clustered at the edges (``x = a + (b-a) sin^2``)."""
    xs, ys = [np.array([0.0])], [np.array([0.0])]
    for a, b in spectrum.support:
        th = np.linspace(0.0, np.pi / 2, points)
        x = a + (b - a) * np.sin(th) ** 2
        inner = x[1:-1]
        try:
            y = spectrum.density(inner, exact=False)
        except TypeError:
            y = spectrum.density(inner)
        xs += [np.array([a]), inner, np.array([b])]
        ys += [np.array([0.0]), np.asarray(y, float), np.array([0.0])]
    xs.append(np.array([max(top, xs[-1][-1])]))
    ys.append(np.array([0.0]))
    x = np.concatenate(xs)
    y = np.concatenate(ys)
    y = np.where(np.isfinite(y), y, 0.0)
    return x, y


# --------------------------------------------------------------------------- #
# the entry point
# --------------------------------------------------------------------------- #
def compare(model: MixtureModel, features, labels, *, n_spikes: int | None = None, surrogate: bool = True,
            surrogate_seed=0, spectrum=None, spikes: GramSpikes | None = None, method: str = "auto",
            n_vectors: int = 2, density_points: int = 400) -> Comparison:
    r"""Compare the Gram spectrum and eigenvectors of ``features`` with the model's prediction.

    Parameters
    ----------
    model : MixtureModel
        The mixture (e.g. ``MixtureModel.from_features(features, labels)``); its class
        sizes must equal the class counts of ``labels``.
    features : array_like, shape (n, p)
        One sample per row (the paper's ``X = features.T``); any real dtype, memory
        maps are read in chunks.
    labels : array_like, shape (n,)
        Class of each row, matching ``model.class_labels``; every class needs at
        least 2 samples.
    n_spikes : int, optional
        Number of predicted spikes (largest first) to compare; default all.  It may
        not split a cluster of (near-)degenerate spikes.
    surrogate : bool
        Also compare a Gaussian draw of the model (the paper's "Gaussian mixture with
        the same means and covariances").
    surrogate_seed : int or numpy.random.Generator
        Seed of that draw.
    spectrum : GramSpectrum, optional
        Reuse a bulk prediction of ``model``.
    spikes : GramSpikes, optional
        Reuse a spike prediction of ``model``.
    method : {'auto', 'commuting', 'dense'}
        Solver path for predictions computed here.
    n_vectors : int
        Leading eigenvectors kept per data set (for eigenvector plots), at least 1.
    density_points : int
        Points of the predicted density kept for the spectrum plot; 0 skips it (the
        metrics do not need it).

    Returns
    -------
    Comparison
        Metrics for both data sets (:meth:`Comparison.metrics`,
        :meth:`Comparison.to_dict`, :meth:`Comparison.to_json`) and what the plots of
        :mod:`rmtgan.plotting` need.

    Raises
    ------
    TypeError, ValueError
        A model that is not a :class:`MixtureModel`; features that are not a 2-d
        real array, hold NaN/inf or have the wrong number of columns; labels of the
        wrong length, with a class of fewer than 2 samples, with classes or counts
        that do not match the model; an ``n_spikes`` out of range or splitting a
        cluster.

    Notes
    -----
    See the module docstring for exactly what is compared.  Eigenvalues come from
    the smaller of ``G`` and ``X X^T / p`` (:func:`rmtgan.empirical.gram_eigenvalues`).
    """
    if not isinstance(model, MixtureModel):
        raise TypeError(f"model must be a MixtureModel, got {type(model).__name__}")
    X = _check_features(features, model.p)
    cls = _class_index(labels, X.shape[0], model)
    n_vectors = as_positive_int(n_vectors, "n_vectors")
    if not isinstance(surrogate, (bool, np.bool_)):
        raise TypeError(f"surrogate must be a bool, got {surrogate!r}")
    density_points = as_nonnegative_int(density_points, "density_points")  # 0 skips the density
    if surrogate:
        # checked before any prediction is computed
        try:
            surrogate_rng = np.random.default_rng(surrogate_seed)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"surrogate_seed must be a seed or a numpy Generator, got {surrogate_seed!r}: "
                            f"{exc}") from None
    from rmtgan.spectrum import GramSpectrum, gram_spectrum

    if spectrum is None:
        spectrum = gram_spectrum(model, method=method)
    elif not isinstance(spectrum, GramSpectrum):
        raise TypeError(f"spectrum must be a GramSpectrum, got {type(spectrum).__name__}")
    if spikes is None:
        spikes = gram_spikes(model, spectrum=spectrum, method=method)
    elif not isinstance(spikes, GramSpikes):
        raise TypeError(f"spikes must be a GramSpikes, got {type(spikes).__name__}")
    if spikes.sizes is not None and not np.array_equal(spikes.sizes, model.sizes):
        raise ValueError("spikes were computed for other class sizes than the model's")
    if spikes.fingerprint is not None and spikes.fingerprint != model.fingerprint():
        raise ValueError("spikes were computed for a model with other moments "
                         "(MixtureModel.fingerprint() differs)")
    check_same_bulk(spectrum.model, model, "spectrum")
    total = spikes.n_spikes
    if n_spikes is None:
        s = total
    else:
        s = as_int(n_spikes, "n_spikes")
        if not 0 <= s <= total:
            raise ValueError(f"n_spikes = {s} is out of range: the model predicts {total} spike(s)")
    cluster_all = _clusters(spikes)
    if 0 < s < total and cluster_all[s - 1] == cluster_all[s]:
        raise ValueError(f"n_spikes = {s} splits a cluster of (near-)degenerate spikes "
                         f"({spikes.values[s - 1]:.6g} and {spikes.values[s]:.6g}); "
                         "include the whole cluster")
    cluster = cluster_all[:s]
    problems: list[str] = []
    if not spectrum.success:
        problems.append(f"bulk prediction: {spectrum.message}")
    if not spikes.success:
        problems.append(f"spike prediction: {spikes.message}")
    # the spikes are the empirical eigenpairs at their ranks
    need = int(np.max(_spike_ranks(spikes, X.shape[0])[:s])) + 1 if s else 0
    if need > min(X.shape):
        raise ValueError(f"comparing {s} spikes needs the {need} leading eigenpairs (their ranks), "
                         f"more than min(n, p) = {min(X.shape)}")

    feat = _empirical("features", X, cls, model, spectrum, spikes, s, cluster, n_vectors, problems)
    sur = None
    if surrogate:
        data_s, lab_s = model.sample(rng=surrogate_rng)
        sur = _empirical("surrogate", data_s, lab_s.astype(np.int64), model, spectrum, spikes, s, cluster,
                         n_vectors, problems)
    top = max([float(feat.eigenvalues[-1])] + ([float(sur.eigenvalues[-1])] if sur is not None else [])
              + [float(v) for v in spikes.values])
    if density_points > 0:
        dx, dy = _density_grid(spectrum, 1.05 * top, density_points)
    else:  # metrics only (e.g. inside a bootstrap loop): no plotting grid
        dx, dy = np.zeros(0), np.zeros(0)
    return Comparison(
        features=feat, surrogate=sur, support=[(float(a), float(b)) for a, b in spectrum.support],
        atom=float(spectrum.atom), mass=float(spectrum.mass), spike_values=spikes.values[:s].copy(),
        alignments=spikes.alignments[:s].copy(), alignment_matrices=spikes.alignment_matrices[:s].copy(),
        mean_alignments=spikes.mean_alignments[:s].copy(), cluster=cluster, density_x=dx, density_y=dy,
        class_labels=list(np.asarray(model.class_labels).tolist()), spikes=spikes,
        success=not problems, message="; ".join(problems) or "ok",
    )
