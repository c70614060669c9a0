"""rmtgan.comparison: metrics between an empirical Gram spectrum and the mixture prediction.

Tolerances
----------
* KS: the bulk eigenvalues are far more rigid than i.i.d. draws, so the
  Dvoretzky--Kiefer--Wolfowitz bound for m i.i.d. samples, P(KS > e) <= 2 exp(-2 m e^2),
  is a safe (loose) envelope: ``KS <= 3 / sqrt(m)`` fails with probability < 1e-7.
* W1 <= KS * (length of the range of the eigenvalues), since
  ``W1 = int |F_emp - F| dx``.
* Spikes fluctuate by O(1/sqrt(n)): measured standard deviations are below
  ``0.7 rho / sqrt(n)`` for these models, so ``|relative error| <= 4 / sqrt(n)`` is more
  than 5 standard deviations.  Alignments likewise (sd below ``3 / sqrt(n)``).
"""

from __future__ import annotations

import functools
import json
import math

import _mixtures
import numpy as np
import pytest
import scipy.stats

from rmtgan.comparison import Comparison, EmpiricalComparison, compare
from rmtgan.empirical import class_alignments, gram_eigenvalues, leading_eigenpairs
from rmtgan.model import MixtureModel
from rmtgan.spectrum import gram_spectrum
from rmtgan.spikes import gram_spikes

diag_model = functools.partial(_mixtures.diag_model, p=60, sizes=(90, 120, 75))


@pytest.fixture(scope="module")
def setup():
    m = diag_model()
    spec = gram_spectrum(m)
    spk = gram_spikes(m, spectrum=spec)
    X, lab = m.sample(rng=12345)
    res = compare(m, X, lab, spectrum=spec, spikes=spk, surrogate_seed=3)
    return m, spec, spk, X, lab, res


def test_result_structure_and_independent_metrics(setup):
    m, spec, spk, X, lab, res = setup
    assert isinstance(res, Comparison) and isinstance(res.features, EmpiricalComparison)
    assert res.success, res.message
    f = res.features
    n = m.n
    # eigenvalues are the empirical ones; the atom's n - p are dropped, and the spikes
    np.testing.assert_allclose(f.eigenvalues, gram_eigenvalues(X))
    assert f.n_zero == n - m.p
    assert f.bulk_eigenvalues.size == m.p - spk.n_spikes
    np.testing.assert_array_equal(f.spike_ranks, np.arange(spk.n_spikes))
    # KS against scipy with the renormalised bulk CDF
    def bulk_cdf(x):
        return np.clip((spec.cdf(x) - spec.atom) / spec.mass, 0, 1)
    ks = scipy.stats.kstest(f.bulk_eigenvalues, bulk_cdf).statistic
    assert f.ks == pytest.approx(ks, abs=1e-12)
    # W1 against scipy with a fine quantile sample of the prediction
    u = (np.arange(20000) + 0.5) / 20000
    q = spec.quantiles(spec.atom + u * spec.mass)
    assert f.wasserstein == pytest.approx(scipy.stats.wasserstein_distance(f.bulk_eigenvalues, q), rel=1e-4)
    # empirical spikes and alignments are the top eigenpairs
    w, U = leading_eigenpairs(X, spk.n_spikes)
    np.testing.assert_allclose(f.spike_values, w, rtol=1e-12)
    np.testing.assert_allclose(f.alignments, class_alignments(U, lab), atol=1e-12)
    np.testing.assert_allclose(f.alignment_errors, np.abs(f.alignments - spk.alignments), atol=1e-12)
    np.testing.assert_allclose(f.spike_relative_errors, w / spk.values - 1, rtol=1e-10)
    V = X.T @ U / np.sqrt(m.p * w)
    np.testing.assert_allclose(f.mean_alignments, ((m.means @ V) ** 2).T, rtol=1e-9)


def test_metrics_within_theory(setup):
    m, spec, spk, X, lab, res = setup
    n = m.n
    for emp in (res.features, res.surrogate):
        mb = emp.bulk_eigenvalues.size
        assert emp.ks <= 3 / math.sqrt(mb)
        assert emp.wasserstein <= emp.ks * (spec.support[-1][1] - spec.support[0][0]) + 1e-12
        assert np.all(np.abs(emp.spike_relative_errors) <= 4 / math.sqrt(n))
        assert np.all(emp.alignment_errors <= 3 * 4 / math.sqrt(n))
        assert emp.spike_separated.all()


def test_a_wrong_model_is_detected(setup):
    """The metrics discriminate: a model with covariances 30% too large fits worse."""
    m, spec, spk, X, lab, res = setup
    wrong = m.scaled(1.3)
    bad = compare(wrong, X, lab, surrogate=False)
    assert bad.features.ks > 3 * res.features.ks
    assert bad.features.wasserstein > 3 * res.features.wasserstein
    assert np.all(np.abs(bad.features.spike_relative_errors) > 0.15)
    assert bad.surrogate is None


def test_json_and_dict(setup):
    res = setup[-1]
    d = json.loads(res.to_json())
    assert set(d) == {"prediction", "metrics", "class_labels", "success", "message"}
    assert d["metrics"]["features"]["ks"] == pytest.approx(res.features.ks)
    assert d["metrics"]["surrogate"]["n_zero"] == res.surrogate.n_zero
    assert len(d["prediction"]["spike_values"]) == len(res.spike_values)
    full = json.loads(json.dumps(res.to_dict(include_arrays=True), allow_nan=False))
    assert len(full["arrays"]["features_eigenvalues"]) == res.features.n
    assert "Comparison(" in repr(res)


def test_string_labels_and_model_from_features():
    """A model estimated from a large independent sample, compared on fresh data with
    string labels (the usual GAN workflow)."""
    truth = diag_model(p=30, sizes=(60, 80, 50))
    big, big_lab = truth.sample(sizes=[3000, 3000, 3000], rng=1)
    names = np.array(["pizza", "burger", "mushroom"])
    est = MixtureModel.from_features(big, names[big_lab], sizes=None)
    assert list(est.class_labels) == ["burger", "mushroom", "pizza"]
    X, lab = truth.sample(rng=2)
    model = est.with_sizes(np.bincount(np.searchsorted(est.class_labels, names[lab]), minlength=3))
    model.class_labels = est.class_labels
    res = compare(model, X, names[lab], surrogate_seed=4)
    assert res.class_labels == ["burger", "mushroom", "pizza"]
    for emp in (res.features, res.surrogate):
        assert emp.ks <= 3 / math.sqrt(emp.bulk_eigenvalues.size)
    # the classes of the features are mapped to the model's order
    assert np.array_equal(np.bincount(res.features.labels), model.sizes)


def test_spike_in_a_gap_is_matched_by_rank():
    p = 400
    M = np.zeros((2, p))
    M[0, 0] = 2.5
    m = MixtureModel.isotropic([1.0, 16.0], [100, 100], p, means=M)
    X, lab = m.sample(rng=8)
    res = compare(m, X, lab, surrogate=False)
    assert res.success, res.message
    assert res.spikes.regions[res.spikes.region[0]][2] == "gap"
    assert res.features.spike_ranks.tolist() == [100]  # the 100 eigenvalues of the upper interval
    assert abs(res.features.spike_relative_errors[0]) <= 4 / math.sqrt(m.n)
    assert res.features.n_zero == 0


def test_degenerate_cluster_compares_totals():
    p, sizes = 60, [80, 80, 80]
    M = np.zeros((3, p))
    for a in range(3):
        M[a, :2] = 1.8 * np.array([math.cos(2 * math.pi * a / 3), math.sin(2 * math.pi * a / 3)])
    m = MixtureModel.from_eigen(np.ones((3, p)), sizes, means=M)
    X, lab = m.sample(rng=0)
    res = compare(m, X, lab, surrogate=False)
    f = res.features
    assert res.cluster.tolist() == [0, 0]
    # errors within the cluster compare the cluster means
    emp_mean = f.alignments.mean(axis=0)
    np.testing.assert_allclose(f.alignment_errors[0], np.abs(emp_mean - res.alignments.mean(axis=0)))
    np.testing.assert_allclose(f.alignment_errors[0], f.alignment_errors[1])
    with pytest.raises(ValueError, match="splits a cluster"):
        compare(m, X, lab, n_spikes=1, surrogate=False, spikes=res.spikes)


def test_no_spikes():
    m = MixtureModel.from_eigen(np.ones((2, 40)), [50, 60])
    X, lab = m.sample(rng=0)
    res = compare(m, X, lab)
    assert res.spike_values.size == 0 and res.features.alignments.shape == (0, 2)
    assert res.features.bulk_eigenvalues.size == 40
    json.dumps(res.to_dict(), allow_nan=False)


def test_spikes_that_take_every_eigenvalue():
    """p = 2 and two spikes: no bulk is left, which is reported, not refused.

    ``compare`` used to ask for one eigenpair more than the spikes' ranks need and raised
    ``ValueError`` for this valid model (``n_spikes=1`` then splits their cluster).
    """
    C = np.array([[[1.0, 0.3], [0.3, 0.8]], [[0.5, -0.2], [-0.2, 1.2]], [[2.0, 0.1], [0.1, 0.6]]])
    M = np.array([[2.0, 0.5], [-1.0, 1.5], [0.3, -2.5]])
    m = MixtureModel(M, C, [30, 20, 6])
    spk = gram_spikes(m)
    assert spk.success and spk.n_spikes == 2 and int(np.sum(spk.bulk_counts)) == 0
    X, lab = m.sample(rng=0)
    res = compare(m, X, lab, spikes=spk)
    assert not res.success and "no bulk eigenvalues left" in res.message
    f = res.features
    np.testing.assert_array_equal(f.spike_ranks, [0, 1])
    np.testing.assert_allclose(f.spike_values, gram_eigenvalues(X)[::-1][:2], rtol=1e-12)
    assert f.ks is None and f.bulk_eigenvalues.size == 0
    json.dumps(res.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- bad input
@pytest.fixture(scope="module")
def small():
    m = diag_model(p=20, sizes=(30, 30, 30))
    X, lab = m.sample(rng=0)
    spk = gram_spikes(m)
    return m, X, lab, spk


def test_bad_labels(small):
    m, X, lab, spk = small
    with pytest.raises(ValueError, match="length"):
        compare(m, X, lab[:-1], spikes=spk)
    one = lab.copy()
    one[0] = 7
    with pytest.raises(ValueError, match="at least 2"):
        compare(m, X, one, spikes=spk)
    with pytest.raises(ValueError, match="do not match"):
        compare(m, X, lab + 10, spikes=spk)
    two = lab.copy()
    two[:2] = 1  # counts change
    with pytest.raises(ValueError, match="class counts"):
        compare(m, X, two, spikes=spk)
    with pytest.raises(ValueError, match="classes but the model"):
        compare(m, X, np.where(lab == 2, 1, lab), spikes=spk)
    with pytest.raises(TypeError, match="labels"):
        compare(m, X, lab.astype(object), spikes=spk)


def test_bad_features(small):
    m, X, lab, spk = small
    Y = X.copy()
    Y[5, 3] = np.nan
    with pytest.raises(ValueError, match=r"non-finite.*row 5, column 3"):
        compare(m, Y, lab, spikes=spk)
    with pytest.raises(ValueError, match="columns"):
        compare(m, X[:, :-1], lab, spikes=spk)
    with pytest.raises(ValueError, match="2 dimensions"):
        compare(m, X[0], lab, spikes=spk)
    with pytest.raises(TypeError, match="complex"):
        compare(m, X + 1j, lab, spikes=spk)
    with pytest.raises(TypeError, match="MixtureModel"):
        compare(None, X, lab)


def test_bad_options(small):
    m, X, lab, spk = small
    with pytest.raises(ValueError, match="out of range"):
        compare(m, X, lab, spikes=spk, n_spikes=spk.n_spikes + 1)
    with pytest.raises(TypeError, match="n_spikes"):
        compare(m, X, lab, spikes=spk, n_spikes=1.0)
    with pytest.raises(TypeError, match="surrogate"):
        compare(m, X, lab, spikes=spk, surrogate="yes")
    with pytest.raises(ValueError, match="n_vectors"):
        compare(m, X, lab, spikes=spk, n_vectors=0)
    with pytest.raises(TypeError, match="GramSpikes"):
        compare(m, X, lab, spikes={"values": []})
    with pytest.raises(TypeError, match="GramSpectrum"):
        compare(m, X, lab, spectrum=[1.0])
    other = gram_spikes(m.with_sizes([30, 30, 31]))
    with pytest.raises(ValueError, match="sizes"):
        compare(m, X, lab, spikes=other)
    # results for other moments with the same p and sizes: rejected, not used
    scaled = m.scaled(4.0)
    with pytest.raises(ValueError, match="other covariances"):
        compare(m, X, lab, spectrum=gram_spectrum(scaled), spikes=spk)
    with pytest.raises(ValueError, match="other moments"):
        compare(m, X, lab, spikes=gram_spikes(m.with_means(2.0 * m.means)))
    for bad, exc in ((-5, ValueError), (2.5, TypeError), ("a", TypeError), (True, TypeError)):
        with pytest.raises(exc, match="density_points"):
            compare(m, X, lab, spikes=spk, density_points=bad)
    for bad, exc in (("x", TypeError), (-1, ValueError)):
        with pytest.raises(exc, match="surrogate_seed"):
            compare(m, X, lab, spikes=spk, surrogate_seed=bad)
    res = compare(m, X, lab, spikes=spk, n_spikes=0, surrogate=False)
    assert res.spike_values.size == 0 and res.features.bulk_eigenvalues.size == m.p - spk.n_spikes


def test_float32_and_memmap_features(small, tmp_path):
    m, X, lab, spk = small
    ref = compare(m, X, lab, spikes=spk, surrogate=False)
    mm = np.lib.format.open_memmap(tmp_path / "x.npy", mode="w+", dtype=np.float32, shape=X.shape)
    mm[:] = X
    got = compare(m, mm, lab, spikes=spk, surrogate=False)
    # float32 rounding of the data (relative 6e-8) moves the metrics by far less than 1e-4
    assert got.features.ks == pytest.approx(ref.features.ks, abs=1e-4)
    np.testing.assert_allclose(got.features.spike_values, ref.features.spike_values, rtol=1e-5)
    np.testing.assert_allclose(got.features.alignments, ref.features.alignments, atol=1e-5)


@pytest.mark.parametrize("means_scale", [1.0, 2.0])
def test_bulk_law_counts_the_eigenvalues_the_spikes_leave(means_scale):
    """Each spike takes its eigenvalue from a support interval: the bulk law counts what is left.

    Outlying covariance directions make intervals of one or two eigenvalues (as projected
    deep features do); a mean along them pulls spikes out of them.  Gaussian draws hold
    exactly ``bulk_counts`` eigenvalues per interval (exact separation), not ``n`` times
    each mass, and the KS distance is measured against that law.
    """
    from rmtgan.spikes import _mass_counts

    m = _mixtures.outlier_model(means_scale=means_scale)
    spec = gram_spectrum(m)
    spk = gram_spikes(m, spectrum=spec)
    assert spk.success and spk.n_spikes >= 1
    sup = spec.support
    cuts = [0.0] + [0.5 * (sup[j][1] + sup[j + 1][0]) for j in range(len(sup) - 1)] + [np.inf]
    n_zero = round(spec.atom * m.n)
    assert spk.bulk_counts.sum() == m.n - n_zero - spk.n_spikes
    assert not np.array_equal(spk.bulk_counts, _mass_counts(spec, m))  # the spikes took some
    for seed in range(3):
        X, lab = m.sample(rng=seed)
        res = compare(m, X, lab, spectrum=spec, spikes=spk, surrogate=False, density_points=0)
        assert res.success, res.message
        bulk = res.features.bulk_eigenvalues
        got = [int(np.sum((bulk > cuts[j]) & (bulk <= cuts[j + 1]))) for j in range(len(sup))]
        assert got == spk.bulk_counts.tolist()
        # KS against the law written out by hand
        def law(x):
            F = spec.cdf(x)
            out = np.zeros_like(x)
            for c, iv in zip(spk.bulk_counts, spec.intervals, strict=True):
                out += c * np.clip((F - spec.cdf(iv.left)) / iv.mass, 0.0, 1.0)
            return out / spk.bulk_counts.sum()
        assert res.features.ks == pytest.approx(scipy.stats.kstest(bulk, law).statistic, abs=1e-12)
        assert res.features.ks <= 3 / math.sqrt(bulk.size)
        # the law that ignores the spikes' share is off by about (spikes)/(bulk size)
        old = scipy.stats.kstest(bulk, lambda x: np.clip((spec.cdf(x) - spec.atom) / spec.mass, 0, 1))
        assert old.statistic > res.features.ks


def test_bulk_law_quantiles_invert_its_cdf():
    from rmtgan.comparison import BulkLaw

    m = _mixtures.outlier_model(means_scale=2.0)
    spec = gram_spectrum(m)
    counts = gram_spikes(m, spectrum=spec).bulk_counts
    assert 0 in counts.tolist()  # an interval emptied by a spike
    law = BulkLaw(spec, counts)
    u = np.linspace(0.0, 1.0, 2001)[1:-1]
    np.testing.assert_allclose(law.cdf(law.quantile(u)), u, atol=1e-10)
    # without spikes: (F - atom) / mass
    plain = BulkLaw(spec, None, m.n)
    x = np.linspace(0.0, 1.2 * spec.support[-1][1], 997)
    np.testing.assert_allclose(plain.cdf(x), np.clip((spec.cdf(x) - spec.atom) / spec.mass, 0, 1), atol=1e-12)
    with pytest.raises(ValueError, match="do not fit"):
        BulkLaw(spec, counts[:-1])


def test_bulk_counts_when_means_leave_the_covariance_ranges_or_make_no_spike():
    """Spikes out of the atom at 0; means that move an eigenvalue between intervals without a spike."""
    # rank-60 covariances, means along two null directions: the means raise the rank of X
    p = 100
    lam = np.r_[np.zeros(40), [0.2], np.ones(59)]
    M = np.zeros((2, p))
    M[0, 0] = M[1, 1] = 0.3
    m = MixtureModel.from_eigen(np.stack([lam, lam]), [100, 100], means=M)
    spk = gram_spikes(m)
    assert spk.success and spk.n_spikes == 2
    for seed in range(2):
        X, lab = m.sample(rng=seed)
        nonzero = int(np.sum(gram_eigenvalues(X) > 1e-9 * gram_eigenvalues(X)[-1]))
        assert spk.n_zero == m.n - nonzero  # not round(atom n): the spikes came out of the atom
        res = compare(m, X, lab, spikes=spk, surrogate=False, density_points=0)
        assert res.success, res.message
        assert res.features.bulk_eigenvalues.size == spk.bulk_counts.sum() == nonzero - 2
    # a mean that moves the lowest eigenvalue into the bulk interval, with no spike
    p = 80
    lam = np.r_[[0.02], np.ones(78), [8.0]]
    M = np.zeros((2, p))
    M[0, 0], M[1, 0] = 0.9, -0.9
    m = MixtureModel.from_eigen(np.stack([lam, lam]), [200, 200], means=M)
    spec = gram_spectrum(m)
    spk = gram_spikes(m, spectrum=spec)
    assert spk.n_spikes == 0
    sup = spec.support
    cuts = [0.0] + [0.5 * (sup[j][1] + sup[j + 1][0]) for j in range(len(sup) - 1)] + [np.inf]
    for seed in range(3):
        X, lab = m.sample(rng=seed)
        ev = gram_eigenvalues(X)
        ev = ev[ev > 1e-9 * ev[-1]]
        assert [int(np.sum((ev > cuts[j]) & (ev <= cuts[j + 1]))) for j in range(len(sup))] \
            == spk.bulk_counts.tolist()
