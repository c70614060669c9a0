"""The limiting Gram spectrum: closed forms, invariants, Monte Carlo, bad input."""

import warnings

import numpy as np
import pytest
import scipy.integrate
import scipy.special
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmtgan import MixtureModel, gram_spectrum, gram_spikes
from rmtgan.spectrum import GramSpectrum


def mp_model(gamma, p=400):
    return MixtureModel.from_eigen(np.ones((1, p)), [int(round(gamma * p))])


def mp_density(x, gamma):
    scalar = np.ndim(x) == 0
    x = np.atleast_1d(np.asarray(x, float))
    a, b = (np.sqrt(gamma) - 1) ** 2, (np.sqrt(gamma) + 1) ** 2
    inside = (x > a) & (x < b)
    out = np.zeros_like(x)
    xi = x[inside]
    out[inside] = np.sqrt((b - xi) * (xi - a)) / (2 * np.pi * gamma * xi)
    return out[0] if scalar else out


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("gamma", [0.4, 1.0, 3.0])
def test_marchenko_pastur(gamma):
    spec = gram_spectrum(mp_model(gamma))
    assert spec.success, spec.message
    a, b = (np.sqrt(gamma) - 1) ** 2, (np.sqrt(gamma) + 1) ** 2
    assert len(spec.support) == 1
    left, right = spec.support[0]
    # the fold Newton stops at a residual of 1e-13; the fold of one class is well conditioned
    if gamma == 1.0:
        assert left == 0.0  # hard edge
    else:
        assert abs(left - a) <= 1e-13 * a
    assert abs(right - b) <= 1e-13 * b
    assert spec.atom == pytest.approx(max(0.0, 1 - 1 / gamma), abs=1e-15)
    # density, relative error, from the middle down to 1e-6 of the width from each edge
    s = np.concatenate([np.geomspace(1e-6, 0.5, 60), 1 - np.geomspace(1e-6, 0.5, 60)])
    x = a + (b - a) * s
    np.testing.assert_allclose(spec.density(x), mp_density(x, gamma), rtol=1e-8)
    # outside the support the density vanishes exactly
    assert np.all(spec.density(np.array([b * 1.001, b * 2])) == 0)
    # CDF against quadrature of the closed form
    for xq in a + (b - a) * np.array([0.01, 0.3, 0.77]):
        ref = max(0.0, 1 - 1 / gamma) + scipy.integrate.quad(mp_density, a, xq, args=(gamma,),
                                                              epsabs=1e-13, limit=200)[0]
        assert spec.cdf(np.array([xq]))[0] == pytest.approx(ref, abs=1e-9)
    assert spec.cdf(np.array([b + 1]))[0] == pytest.approx(1.0, abs=1e-12)
    q = np.linspace(0.01, 0.99, 17)
    q = q[q > spec.atom]
    np.testing.assert_allclose(spec.cdf(spec.quantiles(q)), q, atol=1e-11)
    # next to the soft edges (density -> 0, Newton's steps leave the bracket): inside the
    # support, increasing, and the CDF back to the level
    u = np.array([1e-12, 1e-9, 1e-6, 1e-3, 1 - 1e-3, 1 - 1e-6, 1 - 1e-9])
    qe = spec.atom + u * spec.mass
    xe = spec.quantiles(qe)
    assert np.all((xe >= a) & (xe <= b)) and np.all(np.diff(xe) > 0)
    np.testing.assert_allclose(spec.cdf(xe), qe, rtol=0, atol=1e-13)


def block_model(p, n1, n2):
    """Class 1: ``I`` on the first ``p/2`` coordinates; class 2: ``2 I`` on the others.

    ``G`` is block diagonal: the union of ``X_1^T X_1 / p = (1/2) W(n1/h)`` and
    ``X_2^T X_2 / p = W(n2/h)`` with ``h = p/2`` and ``W(g)`` a Marchenko--Pastur matrix
    of ratio ``g``.  With ``n1 = h`` the first block has a hard edge at 0, the second
    (``n2 < h``) a soft one and ``1 + delta_2 ~ -1/x`` near 0.
    """
    h = p // 2
    lam = np.stack([np.r_[np.ones(h), np.zeros(p - h)], np.r_[np.zeros(h), 2.0 * np.ones(p - h)]])
    model = MixtureModel.from_eigen(lam, [n1, n2])

    def density(x):
        n = n1 + n2
        return n1 / n * 2 * mp_density(2 * x, n1 / h) + n2 / n * mp_density(x, n2 / h)

    return model, density


@pytest.mark.filterwarnings("error::RuntimeWarning")
@pytest.mark.parametrize("method, p", [("auto", 100), pytest.param("dense", 8, marks=pytest.mark.slow),
                                       pytest.param("dense", 16, marks=pytest.mark.slow)])
def test_hard_edge_of_one_block_beside_a_soft_one(method, p):
    """A probe towards 0 at 1e-14 of the bound used to fail to converge (ConvergenceError).

    On the dense path the walk into the support stalls here (``Im delta`` of one class
    vanishes inside the support) and the generic construction takes over; at p = 8 the
    walk's step once shrank to 0 and a Hermite predictor divided by it (a NaN and a
    RuntimeWarning).
    """
    h = p // 2
    n2 = 4 * h // 5
    model, density = block_model(p, h, n2)
    spec = gram_spectrum(model, method=method)
    assert spec.success, spec.message
    b = (1 + np.sqrt(n2 / h)) ** 2
    assert len(spec.support) == 1 and spec.support[0][0] == 0.0
    assert abs(spec.support[0][1] - b) <= 1e-12 * b
    assert spec.atom == 0.0 and spec.mass == pytest.approx(1.0, abs=1e-9)
    x = np.r_[np.geomspace(1e-8, 1e-2, 7), np.linspace(0.05, b, 23)[:-1]]
    np.testing.assert_allclose(spec.density(x), density(x), rtol=1e-8)


def test_mp_inexact_density_is_the_interpolant_and_close():
    spec = gram_spectrum(mp_model(3.0))
    a, b = spec.support[0]
    x = np.linspace(a, b, 101)[1:-1]
    np.testing.assert_allclose(spec.density(x, exact=False), mp_density(x, 3.0), rtol=1e-8)


def test_two_separated_intervals():
    # n = 10 p and two well separated population atoms: the p non-zero eigenvalues of G
    # form two groups (around gamma * 1 and gamma * 10), each of mass (p/2)/n
    lam = np.concatenate([np.full(200, 1.0), np.full(200, 10.0)])[None]
    spec = gram_spectrum(MixtureModel.from_eigen(lam, [4000]))
    assert spec.success, spec.message
    assert len(spec.support) == 2
    (l1, r1), (l2, r2) = spec.support
    assert 0 < l1 < r1 < l2 < r2
    assert spec.atom == pytest.approx(0.9, abs=1e-15)
    masses = [iv.mass for iv in spec.intervals]
    np.testing.assert_allclose(masses, [0.05, 0.05], atol=1e-9)
    assert spec.density(np.array([(r1 + l2) / 2]))[0] == 0.0
    assert spec.cdf(np.array([(r1 + l2) / 2]))[0] == pytest.approx(0.95, abs=1e-9)


# --------------------------------------------------------------------------- invariants
@st.composite
def models(draw):
    k = draw(st.integers(1, 3))
    p = draw(st.integers(20, 60))
    atoms = draw(st.lists(st.floats(0.2, 4.0), min_size=1, max_size=3))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    lam = rng.choice(np.array(atoms), size=(k, p)) * rng.uniform(0.5, 2.0, (k, 1))
    sizes = draw(st.lists(st.integers(5, 120), min_size=k, max_size=k))
    return MixtureModel.from_eigen(lam, sizes)


SETTINGS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                    print_blob=True)


def _same_spectrum(s1, s2, scale=1.0, rtol=1e-8):
    assert len(s1.support) == len(s2.support)
    for (a1, b1), (a2, b2) in zip(s1.support, s2.support, strict=True):
        assert a2 == pytest.approx(scale * a1, rel=1e-9, abs=1e-12 * scale * b1)
        assert b2 == pytest.approx(scale * b1, rel=1e-9)
    assert s2.atom == pytest.approx(s1.atom, abs=1e-14)
    for a, b in s1.support:
        x = a + (b - a) * np.linspace(0.05, 0.95, 7)
        np.testing.assert_allclose(s2.density(scale * x) * scale, s1.density(x), rtol=rtol)


@SETTINGS
@given(models(), st.floats(0.01, 100.0))
def test_scaling(model, s):
    _same_spectrum(gram_spectrum(model), gram_spectrum(model.scaled(s)), scale=s)


@SETTINGS
@given(models(), st.randoms(use_true_random=False))
def test_class_permutation(model, rnd):
    perm = list(range(model.k))
    rnd.shuffle(perm)
    permuted = MixtureModel.from_eigen(model.eigen.eigenvalues[perm], model.sizes[perm])
    _same_spectrum(gram_spectrum(model), gram_spectrum(permuted))


@SETTINGS
@given(models(), st.integers(1, 1000))
def test_splitting_a_class(model, cut):
    sizes = model.sizes
    a = int(np.argmax(sizes))
    n1 = 1 + cut % (sizes[a] - 1)
    lam = model.eigen.eigenvalues
    split = MixtureModel.from_eigen(np.vstack([lam, lam[a:a + 1]]),
                                    np.concatenate([np.where(np.arange(model.k) == a, n1, sizes),
                                                    [sizes[a] - n1]]))
    _same_spectrum(gram_spectrum(model), gram_spectrum(split))


def _gauss(f, lo, hi, n):
    t, w = np.polynomial.legendre.leggauss(n)
    return (hi - lo) / 2 * np.sum(w * f(lo + (hi - lo) * (t + 1) / 2))


def _adaptive(f, lo, hi, tol, depth=0):
    """Adaptive Gauss-Legendre (24 against 48 nodes, bisect until they agree)."""
    coarse, fine = _gauss(f, lo, hi, 24), _gauss(f, lo, hi, 48)
    if abs(fine - coarse) <= tol or depth > 40:
        return fine
    mid = 0.5 * (lo + hi)
    return _adaptive(f, lo, mid, tol / 2, depth + 1) + _adaptive(f, mid, hi, tol / 2, depth + 1)


def _integrate_density(spec, a, b, levels=14, nodes=48, tol=1e-11):
    """Integral of ``spec.density`` over ``[a, b]``, independent of the library's panels.

    End panels graded geometrically towards both edges carry the Jacobi weights
    ``(x - a)^{+-1/2}`` / ``(b - x)^{1/2}``; the rest is adaptive Gauss-Legendre in ``x``.
    """
    left = -0.5 if a == 0.0 else 0.5
    h = 0.5 * (b - a)
    cuts = h * 4.0 ** -np.arange(levels, 0, -1)  # distances from an edge: tiny ... h/4
    total = 0.0
    for side, expo in ((+1, left), (-1, 0.5)):
        edge = a if side > 0 else b
        t, w = scipy.special.roots_jacobi(nodes, 0.0, expo)
        x = edge + side * cuts[0] * (t + 1) / 2
        total += (cuts[0] / 2) ** (1 + expo) * np.sum(w * spec.density(x) / np.abs(x - edge) ** expo)
        bounds = np.concatenate([cuts, [h]])
        for lo, hi in zip(bounds[:-1], bounds[1:], strict=True):
            total += _adaptive(lambda d, edge=edge, side=side: spec.density(edge + side * d), lo, hi, tol)
    return total


@SETTINGS
@given(models())
def test_mass_moment_and_herglotz(model):
    spec = gram_spectrum(model)
    assert spec.success, spec.message
    # mass: composite Gauss quadrature of the exact density, graded geometrically towards
    # both edges, with Jacobi weights (x - a)^{+-1/2}, (b - x)^{1/2} on the end panels
    total = sum(_integrate_density(spec, a, b) for a, b in spec.support)
    assert total + spec.atom == pytest.approx(1.0, abs=1e-8)
    assert spec.mass + spec.atom == pytest.approx(1.0, abs=1e-8)
    # first moment: (1/n) sum_a n_a (1/p) tr C_a
    expected = np.sum(model.sizes * model.traces()) / model.n
    assert spec.mean() == pytest.approx(expected, rel=1e-8)
    # Herglotz and the behaviour at infinity
    rng = np.random.default_rng(0)
    z = rng.uniform(-1, 2, 8) * spec.scale + 1j * spec.scale * 10 ** rng.uniform(-4, 1, 8)
    assert np.all(spec.stieltjes(z).imag > 0)
    zbig = 1e6j * spec.scale
    assert abs(-zbig * spec.stieltjes(np.array([zbig]))[0] - 1) <= 2 * expected / abs(zbig)


def test_dense_path_matches_commuting_path():
    rng = np.random.default_rng(3)
    p = 30
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = np.stack([rng.uniform(0.5, 2, p), rng.uniform(1, 3, p)])
    comm = MixtureModel.from_eigen(lam, [20, 45], basis=q)
    s1 = gram_spectrum(comm, method="commuting")
    s2 = gram_spectrum(comm, method="dense")
    assert s2.method == "dense"
    for (a1, b1), (a2, b2) in zip(s1.support, s2.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    x = np.linspace(s1.support[0][0], s1.support[-1][1], 40)[1:-1]
    np.testing.assert_allclose(s2.density(x), s1.density(x), rtol=1e-10, atol=1e-12)


# --------------------------------------------------------------------------- Monte Carlo
def _mc_check(model, draws, seed):
    """Compare averaged sorted eigenvalues with predicted quantiles, and Stieltjes values.

    Eigenvalue rigidity gives ``|lambda_(i) - q_i| = O(1/n)`` in the bulk (``n^{-2/3}``
    at the few edge eigenvalues), so the mean absolute deviation is ``O(scale / n)``;
    ``E m_n(z) - m(z) = O(1 / (n eta^2))`` at distance ``eta`` from the axis.  The
    constants (0.5 and 0.25, in units of the support width and of the first moment)
    are fixed; a model whose class sizes are off by 10 % exceeds the first bound
    about threefold, so the check has teeth.
    """
    spec = gram_spectrum(model)
    n = model.n
    rng = np.random.default_rng(seed)
    eig = []
    z = np.array([0.5, 1.0, 2.0]) * spec.mean() + 0.5j * spec.mean()
    mz = []
    for _ in range(draws):
        X, _ = model.sample(rng=rng)
        ev = np.linalg.eigvalsh(X @ X.T / model.p)
        eig.append(ev)
        mz.append(np.mean(1.0 / (ev[None, :] - z[:, None]), axis=1))
    eig = np.mean(eig, axis=0)
    q = spec.quantiles((np.arange(n) + 0.5) / n)
    width = spec.support[-1][1] - spec.support[0][0]
    w1 = np.mean(np.abs(eig - q))
    assert w1 <= 0.5 * width / n, (w1, width / n)
    err = np.abs(np.mean(mz, axis=0) - spec.stieltjes(z))
    eta = z.imag
    assert np.all(err <= 0.25 / (n * eta ** 2) * spec.mean()), err


def test_monte_carlo_small():
    lam = np.stack([np.linspace(0.5, 1.5, 80), np.linspace(2.0, 0.5, 80)])
    _mc_check(MixtureModel.from_eigen(lam, [90, 150]), draws=8, seed=0)


@pytest.mark.slow
@pytest.mark.parametrize("gamma", [0.5, 2.0])
def test_monte_carlo_three_classes(gamma):
    p = 300
    rng = np.random.default_rng(1)
    lam = np.stack([rng.uniform(0.5, 1.5, p), rng.gamma(4, 0.25, p), np.exp(rng.normal(0, 0.4, p))])
    n = int(gamma * p)
    _mc_check(MixtureModel.from_eigen(lam, [n // 6, n // 3, n - n // 6 - n // 3]), draws=20, seed=2)


# --------------------------------------------------------------------------- bad input
def test_bad_queries():
    spec = gram_spectrum(mp_model(2.0, p=50))
    with pytest.raises(ValueError, match="non-finite"):
        spec.density([1.0, np.nan])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        spec.quantiles([1.5])
    with pytest.raises(ValueError, match="z = 0"):
        spec.stieltjes([0.0])
    with pytest.raises(TypeError, match="MixtureModel"):
        gram_spectrum(np.eye(3))
    with pytest.raises(TypeError, match="real"):
        spec.density([1 + 1j])
    with pytest.raises(TypeError, match="exact"):
        spec.density([1.0], exact="yes")
    with pytest.raises(TypeError, match="q must hold numbers"):
        spec.quantiles(True)
    model = mp_model(2.0, p=20)
    bad = [(dict(tol="1e-8"), TypeError), (dict(tol=True), TypeError), (dict(tol=[1e-8]), TypeError),
           (dict(tol=0.0), ValueError), (dict(tol=np.nan), ValueError), (dict(tol=1e-300), ValueError),
           (dict(n_scan=0), ValueError), (dict(n_scan=2.5), TypeError), (dict(n_scan="96"), TypeError),
           (dict(max_refine=-1), ValueError), (dict(workers=0), ValueError), (dict(workers="2"), TypeError),
           (dict(progress="no"), TypeError), (dict(progress=None), TypeError)]
    for kw, exc in bad:
        name = next(iter(kw))
        with pytest.raises(exc, match=name):  # on the commuting path too
            GramSpectrum(model, **kw)
    for t in (np.float32(1e-8), np.float64(1e-8), 1e-15):
        assert gram_spectrum(model, tol=t).success


@pytest.mark.parametrize("method", ["commuting", "dense"])
def test_queries_keep_the_shape_of_their_argument(method):
    spec = gram_spectrum(mp_model(2.0, p=50), method=method)
    x = np.array([[0.5, 1.7], [2.9, 6.0]])  # inside and outside the support
    for f, arg in ((spec.cdf, x), (spec.density, x), (spec.quantiles, x / 10.0)):
        full = f(arg)
        assert full.shape == x.shape
        for i, j in np.ndindex(*x.shape):
            one = f(float(arg[i, j]))  # a scalar: a 0-d array
            assert isinstance(one, np.ndarray) and one.shape == ()
            assert one == full[i, j]


def test_zero_covariance_class_is_all_atom():
    model = MixtureModel.from_eigen(np.zeros((1, 10)), [20])
    spec = gram_spectrum(model)
    assert spec.support == [] and spec.atom == 1.0
    assert spec.cdf(np.array([0.0]))[0] == 1.0


def test_panel_budget_reports_instead_of_running_forever():
    # a function no panel resolves (noise): the budget stops the splitting and says so
    from rmtgan._panels import adaptive_panels

    rng = np.random.default_rng(0)
    calls = []

    def noise(theta, guess):
        calls.append(theta.size)
        return rng.standard_normal(theta.size), np.ones((theta.size, 1), complex)

    panels, problems = adaptive_panels(noise, 0.0, 1.0, max_depth=40, max_panels=16)
    assert len(panels) <= 16 and len(problems) == len(panels)
    assert all("unresolved" in p for p in problems)
    assert sum(calls) <= 16 * 81  # at most 81 nodes per panel
    assert [pn.lo for pn in panels] == sorted(pn.lo for pn in panels)
    assert panels[0].lo == 0.0 and panels[-1].hi == 1.0


def test_edge_next_to_a_narrow_gap_is_the_fold_not_the_bisection_bracket():
    """Bisection towards an edge stops where the solves fail next to the fold; the fold Newton finishes.

    A stress-test model (gamma(1/2) eigenvalues, 12 intervals): the edge at 34.8287 lies
    next to a gap of width 2.3e-4.  Bisection used to stop 1.8e-8 short of it, within
    reach of panel nodes, whose solves then failed on the dense path.
    """
    rng = np.random.default_rng(1033)
    k, p = int(rng.integers(1, 5)), int(rng.integers(40, 161))
    ratios = np.exp(rng.uniform(np.log(0.3), np.log(12.0), k))
    sizes = [max(1, int(round(r * p))) for r in ratios]
    lam = np.stack([rng.gamma(0.5, rng.uniform(0.5, 2.0), p) for _ in range(k)])
    spec = gram_spectrum(MixtureModel.from_eigen(lam, sizes))
    assert spec.success
    sup = spec.support
    i = int(np.argmin([sup[j + 1][0] - sup[j][1] for j in range(len(sup) - 1)]))
    b, c = sup[i][1], sup[i + 1][0]
    assert abs(b - 34.8287) < 1e-4 and 1e-4 < c - b < 1e-3  # the narrowest gap
    x_out, x_in = b + 0.9 * (c - b), 34.4847738530713  # a point of the gap, one of the interval
    edge, u = spec._edge(x_out, spec._solve_real(np.array([x_out]))[0].real, x_in)
    assert u is not None and abs(edge - b) <= 1e-13 * b
    # the edge is a fold of the real branch: inside just below it, outside just above
    below, above = spec._solve_real(np.array([b * (1 - 1e-11), b * (1 + 1e-11)]))
    assert spec._inside(below[None])[0] and not spec._inside(above[None])[0]


@pytest.mark.parametrize("s", [1e-130, 1e-45, 1e45, 1e130])
def test_extreme_scales_on_both_paths(s):
    # the spectrum is scale-covariant; single-precision products (dense path) and cubes of
    # resolvent entries (commuting fold data) must not over- or underflow on the way
    rng = np.random.default_rng(3)
    p = 24
    lam = rng.uniform(0.5, 2.0, (2, p))
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    ref = gram_spectrum(MixtureModel.from_eigen(lam, [40, 50]))
    eig = MixtureModel.from_eigen(lam * s, [40, 50], basis=q)
    dense = MixtureModel(np.zeros((2, p)), eig.covariances, [40, 50])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no overflow on the way either
        for model, method in ((eig, "commuting"), (dense, "dense")):
            spec = gram_spectrum(model, method=method)
            assert spec.success, spec.message
            _same_spectrum(ref, spec, scale=s, rtol=1e-9)
        # spikes and alignments too (means scale with sqrt(s))
        means = np.zeros((2, p))
        means[0, 0], means[1, 1] = 3.0, -3.0
        ref_sp = gram_spikes(MixtureModel.from_eigen(lam, [40, 50], means=means))
        sp = gram_spikes(MixtureModel.from_eigen(lam * s, [40, 50], basis=q, means=np.sqrt(s) * means @ q.T),
                         method="dense")
        assert ref_sp.success and sp.success and sp.values.size == ref_sp.values.size == 2
        np.testing.assert_allclose(sp.values / s, ref_sp.values, rtol=1e-10)
        np.testing.assert_allclose(sp.alignments, ref_sp.alignments, rtol=1e-8, atol=1e-10)


def test_scales_beyond_the_range_are_refused():
    lam = np.ones((1, 10))
    for s in (1e-160, 1e160):
        with pytest.raises(ValueError, match="scale"):
            gram_spectrum(MixtureModel.from_eigen(lam * s, [20]))
    assert gram_spectrum(MixtureModel.from_eigen(0.0 * lam, [20])).support == []  # zero is fine


def test_stieltjes_over_the_whole_accepted_range_of_z():
    """``m_G(z)`` is finite wherever ``z`` is accepted; beyond ``Z_RANGE`` it is refused by name.

    Closed form at large ``|z|``: ``m_G(z) = -1/z - (1/z^2) tr(G)/n + ...`` with
    ``E tr(G)/n = sum_a (n_a/n) tr(C_a)/p = 1`` here.
    """
    from rmtgan import solve
    from rmtgan._validation import Z_RANGE

    model = mp_model(2.0, p=50)
    spec = gram_spectrum(model)
    for z in (7e299 + 7e299j, 1e300, -1e300, 1e-300j, 1e-300, 5e299 - 3e299j):
        for m in (spec.stieltjes(z), solve(model, z).stieltjes):
            assert np.isfinite(m)
    z = np.array([0.99e300 * (1 + 1j) / np.sqrt(2), 1e200j, -1e150])
    np.testing.assert_allclose(spec.stieltjes(z), -1 / z, rtol=1e-12)
    np.testing.assert_allclose(solve(model, z).stieltjes, -1 / z, rtol=1e-12)
    # near 0 (n > p): the atom 1 - p/n gives m_G ~ -(1 - p/n) / z
    np.testing.assert_allclose(spec.stieltjes(1e-300j), -(1 - 1 / 2.0) / 1e-300j, rtol=1e-9)
    for z in (Z_RANGE[1] * 2, 1e308 + 1e308j, Z_RANGE[0] / 2, 5e-324, 1e-310j):
        with pytest.raises(ValueError, match=r"\|z\| must lie in"):
            spec.stieltjes(z)
        with pytest.raises(ValueError, match=r"\|z\| must lie in"):
            solve(model, z)


@pytest.mark.parametrize("e", [1e-9, 3e-10])
def test_an_interval_far_below_the_largest_eigenvalue_is_found(e):
    """Covariance eigenvalues 1 (100 times) and ``e`` (100 times), n = 300: below the bulk of
    the large block, the small one has its own interval of mass 1/3.  As ``e -> 0`` the
    large block takes 100 samples and the small one sees the other 200: a Marchenko-Pastur
    law with ratio 100/200, edges ``e (1 -+ sqrt(1/2))^2`` (corrections O(e))."""
    p = 200
    model = MixtureModel.from_eigen(np.r_[np.ones(100), e * np.ones(100)][None], [300])
    spec = gram_spectrum(model)
    assert spec.success, spec.message
    assert len(spec.support) == 2
    (a, b), _ = spec.support
    np.testing.assert_allclose([a, b], e * (1 + np.array([-1, 1]) * np.sqrt(0.5)) ** 2, rtol=1e-7)
    assert spec.intervals[0].mass == pytest.approx(100 / 300, abs=1e-9)
    assert spec.atom == pytest.approx(1 - p / 300, abs=1e-12)
    assert spec.cdf(np.array([1e3 * e]))[0] == pytest.approx(2 / 3, abs=1e-9)
