r"""Spikes, eigenvector alignments and phase transitions (rmtgan.spikes).

Closed forms used below (identity covariances)
----------------------------------------------
Let ``C_a = I_p`` for every class, ``c_a = n_a / p``, ``c = sum_a c_a = n / p`` and
``D = diag(c_a)``.  Then every ``delta_a`` equals the Marchenko--Pastur ``delta`` of one
class with ratio ``c``: ``1/delta = c/(1+delta) - z``, ``R = delta I_p`` and
``A = M^T R M = delta M^T M``.  With ``K = D^{1/2} M^T M D^{1/2} = sum_i l_i e_i e_i^T``,

    det(I + W A) = prod_i (1 + l_i delta / (1 + delta)),

so a spike needs ``delta/(1+delta) = -1/l``, i.e. ``delta = -1/(1+l)``, and then
``z = c/(1+delta) - 1/delta`` gives

    rho(l) = (1 + l)(c + l) / l,            which lies beyond the edge (1+sqrt c)^2
                                            iff  l > sqrt(c)   (BBP threshold).

Eigenvectors.  ``D^{1/2} M^T R~ M D^{1/2} = sum_i f_i(z) e_i e_i^T`` with
``f(z) = l delta / (1 + l delta/(1+delta))``.  The G-side integrand is
``f(z) / (z (1+delta)^2) e e^T``; its residue at rho uses
``delta'(rho) = 1 / (1/delta^2 - c/(1+delta)^2) = 1 / ((1+l)^2 (1 - c/l^2))``, giving

    lim (j_a^T u_i)(j_b^T u_i)/sqrt(n_a n_b) = a(l_i) e_ia e_ib,   a(l) = (l^2 - c) / (l (l + c)),

and on the p side (residue of ``f`` itself, divided by ``D^{1/2}`` on both sides)

    lim (v_i^T mu_a)(v_i^T mu_b) = b(l_i) e_ia e_ib / sqrt(c_a c_b),   b(l) = (l^2 - c) / (1 + l).

One class (``k = 1``, ``l = c |mu|^2 = c s``) recovers the classical spiked-covariance
results: ``rho = (1+s)(c+1/s)`` (c times the BBP outlier ``(1+s)(1 + y/s)``,
``y = 1/c``), ``(v^T mu)^2/|mu|^2 = (1 - y/s^2)/(1 + y/s)``, and ``(1^T u)^2 / n =
(c s^2 - 1)/(c s (1 + s))``.  Two classes ``+-mu`` of equal size give the same ``l = c s``
with ``e = (1, -1)/sqrt 2``: alignments ``a/2`` and cross term ``-a/2``.

Phase transition: means ``t M`` scale ``K`` by ``t^2``, so spike ``i`` leaves the bulk
at ``t_i = (sqrt(c) / l_i)^{1/2}``.
"""

from __future__ import annotations

import functools
import json
import math

import _mixtures
import numpy as np
import pytest
import scipy.linalg
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rmtgan.empirical import class_alignment_matrix, leading_eigenpairs
from rmtgan.model import MixtureModel
from rmtgan.solver import solve
from rmtgan.spectrum import gram_spectrum
from rmtgan.spikes import GramSpikes, PhaseTransitions, gram_spikes, phase_transitions


# --------------------------------------------------------------------------- helpers
def identity_prediction(means: np.ndarray, sizes, p: int):
    """Closed-form spikes for ``C_a = I`` (module docstring); descending."""
    sizes = np.asarray(sizes, float)
    d = sizes / p
    c = d.sum()
    K = np.sqrt(d)[:, None] * (means @ means.T) * np.sqrt(d)[None, :]
    ell, E = np.linalg.eigh(K)
    keep = ell > math.sqrt(c)
    ell, E = ell[keep][::-1], E[:, keep][:, ::-1]
    rho = (1 + ell) * (c + ell) / ell
    a = (ell ** 2 - c) / (ell * (ell + c))
    b = (ell ** 2 - c) / (1 + ell)
    G = np.einsum("i,ai,bi->iab", a, E, E)
    P = np.einsum("i,ai,bi->iab", b, E / np.sqrt(d)[:, None], E / np.sqrt(d)[:, None])
    return rho, G, P, ell, c


def identity_model(means, sizes, p):
    return MixtureModel.from_eigen(np.ones((len(sizes), p)), sizes, means=means)


def one_mean(p, s):
    mu = np.zeros((1, p))
    mu[0, 0] = math.sqrt(s)
    return mu


# --------------------------------------------------------------------------- closed forms
@pytest.mark.parametrize("s", [0.9, 2.0, 5.0])
def test_one_class_identity_matches_bbp(s):
    p, n = 200, 600
    c = n / p
    sp = gram_spikes(identity_model(one_mean(p, s), [n], p))
    assert sp.success, sp.message
    assert sp.values.shape == (1,)
    assert sp.values[0] == pytest.approx((1 + s) * (1 + c * s) / s, rel=1e-11)
    assert sp.alignments[0, 0] == pytest.approx((c * s * s - 1) / (c * s * (1 + s)), abs=1e-9)
    assert sp.mean_alignments[0, 0] == pytest.approx((c * s * s - 1) / (1 + c * s), rel=1e-9)
    # relative p-side form (1 - y/s^2) / (1 + y/s), y = p/n
    y = 1 / c
    assert sp.mean_alignments[0, 0] / s == pytest.approx((1 - y / s ** 2) / (1 + y / s), rel=1e-9)
    assert sp.region.tolist() == [len(sp.regions) - 1] and sp.regions[-1][2] == "right"


def test_below_threshold_no_spike():
    p, n = 200, 600  # threshold |mu|^2 = sqrt(p/n) = 0.577
    sp = gram_spikes(identity_model(one_mean(p, 0.5), [n], p))
    assert sp.success and sp.n_spikes == 0
    assert all(cnt["expected"] == 0 == cnt["found"] for cnt in sp.counts)
    assert sp.alignments.shape == (0, 1) and sp.alignment_matrices.shape == (0, 1, 1)


def test_k_classes_identity_closed_form_with_cross_terms():
    rng = np.random.default_rng(3)
    p, sizes = 120, [90, 150, 210]
    M = np.zeros((3, p))
    M[:, :4] = rng.normal(size=(3, 4)) * 1.2
    rho, G, P, ell, c = identity_prediction(M, sizes, p)
    assert rho.size >= 2  # the test is about several spikes
    sp = gram_spikes(identity_model(M, sizes, p))
    assert sp.success, sp.message
    np.testing.assert_allclose(sp.values, rho, rtol=1e-11)
    np.testing.assert_allclose(sp.alignment_matrices, G, atol=1e-9)
    np.testing.assert_allclose(sp.mean_alignment_matrices, P, atol=1e-8 * np.max(np.abs(P)))
    np.testing.assert_allclose(sp.alignments, np.einsum("saa->sa", G), atol=1e-9)
    assert not sp.near_degenerate.any()


def test_two_symmetric_classes():
    p, n_a, s = 150, 200, 1.5
    c = 2 * n_a / p
    mu = one_mean(p, s)[0]
    sp = gram_spikes(identity_model(np.stack([mu, -mu]), [n_a, n_a], p))
    a = (c * s * s - 1) / (c * s * (1 + s))
    assert sp.values == pytest.approx([(1 + s) * (1 + c * s) / s], rel=1e-11)
    np.testing.assert_allclose(sp.alignment_matrices[0], [[a / 2, -a / 2], [-a / 2, a / 2]], atol=1e-9)
    np.testing.assert_allclose(sp.mean_alignments[0], [(c * s * s - 1) / (1 + c * s)] * 2, rtol=1e-9)


def triangle(p, r, wobble=0.0):
    M = np.zeros((3, p))
    for a in range(3):
        M[a, 0] = r * math.cos(2 * math.pi * a / 3)
        M[a, 1] = r * math.sin(2 * math.pi * a / 3)
    M[0, 0] += wobble
    return M


def test_exactly_degenerate_spike_is_grouped():
    p, sizes = 150, [200, 200, 200]
    M = triangle(p, 1.5)  # K = 2 r^2 (I - 11^T/3): a double eigenvalue l = 4.5
    rho, G, P, ell, c = identity_prediction(M, sizes, p)
    assert ell == pytest.approx([4.5, 4.5])
    sp = gram_spikes(identity_model(M, sizes, p))
    assert sp.success, sp.message
    np.testing.assert_allclose(sp.values, rho, rtol=1e-10)
    assert sp.multiplicity.tolist() == [2, 2] and sp.group[0] == sp.group[1]
    assert sp.near_degenerate.all() and len(sp.groups()) == 1
    # only the total over the eigenspace is defined; rows are the total / 2
    np.testing.assert_allclose(sp.alignment_matrices.sum(axis=0), G.sum(axis=0), atol=1e-9)
    np.testing.assert_allclose(sp.alignment_matrices[0], sp.alignment_matrices[1])
    np.testing.assert_allclose(sp.mean_alignment_matrices.sum(axis=0), P.sum(axis=0), rtol=0, atol=1e-8)


def test_near_degenerate_spikes_are_resolved_and_flagged():
    p, sizes = 150, [200, 200, 200]
    M = triangle(p, 1.5, wobble=2e-3)
    rho, G, P, ell, c = identity_prediction(M, sizes, p)
    assert 0 < rho[0] - rho[1] < 1e-2
    sp = gram_spikes(identity_model(M, sizes, p))
    assert sp.success, sp.message
    np.testing.assert_allclose(sp.values, rho, rtol=1e-11)
    np.testing.assert_allclose(sp.alignment_matrices, G, atol=1e-8)
    np.testing.assert_allclose(sp.mean_alignment_matrices, P, atol=1e-7)
    assert sp.multiplicity.tolist() == [1, 1]
    assert sp.near_degenerate.all()  # closer than 2 rho / sqrt(n)


def test_spike_close_to_the_edge_is_reported():
    p, n = 200, 600
    c = n / p
    s = (1 / math.sqrt(c)) * (1 + 1e-3)  # just above the transition
    sp = gram_spikes(identity_model(one_mean(p, s), [n], p))
    edge = (1 + math.sqrt(c)) ** 2
    assert sp.success, sp.message
    assert sp.values[0] == pytest.approx((1 + s) * (1 + c * s) / s, rel=1e-11)
    assert 0 < sp.values[0] - edge < 1e-4
    assert sp.near_edge[0] and sp.edge_distance[0] == pytest.approx(sp.values[0] - edge, rel=1e-6)
    assert sp.alignments[0, 0] == pytest.approx((c * s * s - 1) / (c * s * (1 + s)), abs=1e-9)


def test_phase_transitions_closed_form():
    rng = np.random.default_rng(11)
    p, sizes = 100, [80, 120, 160]
    M = np.zeros((3, p))
    M[:, :3] = rng.normal(size=(3, 3))
    d = np.asarray(sizes) / p
    c = d.sum()
    ell = np.linalg.eigvalsh(np.sqrt(d)[:, None] * (M @ M.T) * np.sqrt(d)[None, :])
    expected = np.sort(np.sqrt(math.sqrt(c) / ell))
    pt = phase_transitions(identity_model(M, sizes, p))
    assert isinstance(pt, PhaseTransitions) and pt.success, pt.message
    np.testing.assert_allclose(pt.scales, expected, rtol=1e-7)
    assert all(ev["kind"] == "emerges" for ev in pt.events if ev["side"] == "right")
    # the model itself (t = 1): as many spikes beyond the bulk as scales below 1
    sp = gram_spikes(identity_model(M, sizes, p))
    assert pt.n_spikes(1.0) == sp.n_spikes
    for t, exc in ((np.nan, ValueError), (-1.0, ValueError), ("1", TypeError), (True, TypeError)):
        with pytest.raises(exc, match="t must"):
            pt.n_spikes(t)
    # a chosen direction: only class 0 separated
    D = np.zeros((3, p))
    D[0, 0] = 1.0
    pt0 = phase_transitions(identity_model(M, sizes, p), direction=D)
    assert pt0.scales == pytest.approx([math.sqrt(math.sqrt(c) / d[0])], rel=1e-7)
    json.dumps(pt0.to_dict(), allow_nan=False)


# --------------------------------------------------------------------------- both paths
def rotated(model: MixtureModel, seed: int) -> MixtureModel:
    """The same model in a random orthonormal basis (dense covariances)."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(model.p, model.p)))
    cov = np.einsum("ij,ajk,lk->ail", Q, model.covariances, Q)
    return MixtureModel(model.means @ Q.T, 0.5 * (cov + cov.transpose(0, 2, 1)), model.sizes)


diag_model = functools.partial(_mixtures.diag_model, p=40, sizes=(60, 80, 50))


def test_dense_path_equals_commuting_path():
    m = diag_model()
    spec = gram_spectrum(m)
    ref = gram_spikes(m, spectrum=spec, method="commuting")
    assert ref.success and ref.n_spikes >= 2
    rot = rotated(m, 5)
    with pytest.raises(ValueError, match="other covariances"):
        gram_spikes(rot, spectrum=spec, method="dense")  # the same spectrum, but not the same model
    dense = gram_spikes(rot, method="dense")
    assert dense.method == "dense" and dense.success, dense.message
    np.testing.assert_allclose(dense.values, ref.values, rtol=1e-10)
    np.testing.assert_allclose(dense.alignment_matrices, ref.alignment_matrices, atol=1e-8)
    np.testing.assert_allclose(dense.mean_alignment_matrices, ref.mean_alignment_matrices, atol=1e-7)


# --------------------------------------------------------------------------- properties
def _perm_model(m: MixtureModel, perm) -> MixtureModel:
    return MixtureModel.from_eigen(m.eigen.eigenvalues[perm], m.sizes[perm], means=m.means[perm])


@functools.lru_cache(maxsize=1)
def _reference():
    m = diag_model(p=24, sizes=(36, 48, 30))
    return m, gram_spikes(m)


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(perm=st.permutations([0, 1, 2]), scale=st.floats(0.05, 20.0))
def test_permutation_and_scaling(perm, scale):
    m, ref = _reference()
    perm = np.asarray(perm)
    pm = gram_spikes(_perm_model(m, perm))
    np.testing.assert_allclose(pm.values, ref.values, rtol=1e-9)
    np.testing.assert_allclose(pm.alignments, ref.alignments[:, perm], atol=1e-8)
    np.testing.assert_allclose(pm.alignment_matrices, ref.alignment_matrices[:, perm][:, :, perm], atol=1e-8)
    # C -> s C, mu -> sqrt(s) mu: G -> s G; G-side alignments are invariant, p-side scale by s
    sm = gram_spikes(m.scaled(scale))
    np.testing.assert_allclose(sm.values, scale * ref.values, rtol=1e-9)
    np.testing.assert_allclose(sm.alignments, ref.alignments, atol=1e-8)
    np.testing.assert_allclose(sm.mean_alignments, scale * ref.mean_alignments, rtol=1e-7, atol=1e-9 * scale)


def test_splitting_a_class_splits_its_alignment():
    """Two identical halves of a class: same spikes; their alignments add up to the
    original one, in proportion to their sizes (u is constant on a class in the limit)."""
    m = diag_model(p=30, sizes=(45, 60, 40))
    lam, M = m.eigen.eigenvalues, m.means
    split = MixtureModel.from_eigen(np.vstack([lam, lam[1:2]]), [45, 24, 40, 36],
                                    means=np.vstack([M, M[1:2]]))
    ref, sp = gram_spikes(m), gram_spikes(split)
    np.testing.assert_allclose(sp.values, ref.values, rtol=1e-9)
    np.testing.assert_allclose(sp.alignments[:, 1] + sp.alignments[:, 3], ref.alignments[:, 1], atol=1e-8)
    np.testing.assert_allclose(sp.alignments[:, 1] / sp.alignments[:, 3], 24 / 36, rtol=1e-6)


def test_alignments_are_valid_projections():
    """Predicted alignment matrices are PSD, rank one (a limit of u u^T restricted to the
    class indicators) and bounded by 1 in total."""
    sp = gram_spikes(diag_model())
    for A in sp.alignment_matrices:
        w = np.linalg.eigvalsh(A)
        assert w[0] > -1e-9 and w[-1] <= 1 + 1e-9
        assert w[-2] < 1e-8 * max(1.0, w[-1])  # rank one
    assert np.all(sp.alignments.sum(axis=1) <= 1 + 1e-9)


# --------------------------------------------------------------------------- gaps
def gap_model():
    """Two isotropic classes with variances 1 and 16 and small c: two bulk intervals;
    a mean on the low-variance class puts a spike in the gap."""
    p = 400
    M = np.zeros((2, p))
    M[0, 0] = 2.5
    return MixtureModel.isotropic([1.0, 16.0], [100, 100], p, means=M)


def test_spike_in_a_gap_found_and_checked_by_monte_carlo():
    m = gap_model()
    spec = gram_spectrum(m)
    assert len(spec.support) == 2
    sp = gram_spikes(m, spectrum=spec)
    assert sp.success, sp.message
    kinds = [sp.regions[r][2] for r in sp.region]
    assert "gap" in kinds
    i = kinds.index("gap")
    (l0, r0), (l1, r1) = spec.support
    assert r0 < sp.values[i] < l1
    # Monte Carlo: the eigenvalue of G with the same rank (100 bulk eigenvalues above the gap)
    R, n = 12, m.n
    rank = int(round(n * (1 - spec.cdf(sp.values[i]))))
    vals, al = [], []
    for r in range(R):
        X, lab = m.sample(rng=100 + r)
        w, U = leading_eigenpairs(X, rank + 1)
        vals.append(w[rank])
        al.append(class_alignment_matrix(U[:, rank], lab))
    vals, al = np.array(vals), np.array(al)
    se = vals.std(ddof=1) / math.sqrt(R)
    # 4 standard errors plus an O(1/n) finite-size allowance of 10 rho / n
    assert abs(vals.mean() - sp.values[i]) <= 4 * se + 10 * sp.values[i] / n
    se_al = al.std(axis=0, ddof=1) / math.sqrt(R)
    assert np.all(np.abs(al.mean(axis=0) - sp.alignment_matrices[i]) <= 4 * se_al + 10 / n)


# --------------------------------------------------------------------------- Monte Carlo
def _monte_carlo(m: MixtureModel, sp: GramSpikes, R: int, seed: int):
    s = sp.n_spikes
    vals, al, mal = [], [], []
    for r in range(R):
        X, lab = m.sample(rng=seed + r)
        w, U = leading_eigenpairs(X, s)
        vals.append(w)
        al.append(class_alignment_matrix(U, lab))
        V = X.T @ U / np.sqrt(m.p * w)
        MV = m.means @ V
        mal.append(np.einsum("ai,bi->iab", MV, MV))
    return np.array(vals), np.array(al), np.array(mal)


def _assert_mc(vals, al, mal, sp: GramSpikes, n: int, bias: float):
    """Mean over R draws within 4 standard errors plus an O(1/n) allowance ``bias / n``
    (relative for eigenvalues, absolute for G-side alignments, relative to the largest
    entry for p-side alignments)."""
    R = vals.shape[0]
    se = vals.std(axis=0, ddof=1) / math.sqrt(R)
    assert np.all(np.abs(vals.mean(axis=0) - sp.values) <= 4 * se + bias * sp.values / n), (
        vals.mean(axis=0), sp.values, se)
    se = al.std(axis=0, ddof=1) / math.sqrt(R)
    err = np.abs(al.mean(axis=0) - sp.alignment_matrices)
    assert np.all(err <= 4 * se + bias / n), (err, se)
    se = mal.std(axis=0, ddof=1) / math.sqrt(R)
    scale = np.max(np.abs(sp.mean_alignment_matrices), axis=(1, 2), keepdims=True)
    err = np.abs(mal.mean(axis=0) - sp.mean_alignment_matrices)
    assert np.all(err <= 4 * se + bias * scale / n), (err, se)


def test_monte_carlo_commuting_small():
    """Quick seeded check: n = 285, p = 60, 40 draws (all covariances diagonal, unequal)."""
    m = diag_model(p=60, sizes=(90, 120, 75))
    sp = gram_spikes(m)
    assert sp.n_spikes >= 2
    vals, al, mal = _monte_carlo(m, sp, R=40, seed=7)
    _assert_mc(vals, al, mal, sp, m.n, bias=10.0)


@pytest.mark.slow
def test_monte_carlo_general_covariances():
    """Non-commuting covariances (dense path): n = 330, p = 80, 200 draws."""
    rng = np.random.default_rng(1)
    p, sizes = 80, [80, 110, 140]
    covs = []
    for a in range(3):
        B = rng.standard_normal((p, p)) / math.sqrt(p)
        covs.append(0.3 * (a + 1) * np.eye(p) + (0.5 + 0.3 * a) * B @ B.T)
    M = np.zeros((3, p))
    M[0, :3] = [2.0, 0.0, 0.0]
    M[1, :3] = [0.0, 2.2, 0.4]
    M[2, :3] = [-1.3, -1.1, 1.8]
    m = MixtureModel(1.5 * M, np.array(covs), sizes)
    assert not m.is_commuting
    sp = gram_spikes(m)
    assert sp.method == "dense" and sp.success and sp.n_spikes >= 2, sp
    vals, al, mal = _monte_carlo(m, sp, R=200, seed=1000)
    _assert_mc(vals, al, mal, sp, m.n, bias=10.0)


@pytest.mark.slow
def test_monte_carlo_commuting_large():
    """n = 1200, p = 320, 100 draws: the finite-size bias has halved from n = 600."""
    u = (np.arange(320) + 0.5) / 320
    lam = np.stack([0.3 + 1.2 * u, 0.5 + 1.5 * u ** 2, 0.2 + np.sqrt(u)])
    M = np.zeros((3, 320))
    M[0, :3] = [2.0, 0.0, 0.0]
    M[1, :3] = [0.0, 2.2, 0.4]
    M[2, :3] = [-1.3, -1.1, 1.8]
    m = MixtureModel.from_eigen(lam, [300, 400, 500], means=M)
    sp = gram_spikes(m)
    vals, al, mal = _monte_carlo(m, sp, R=100, seed=2000)
    _assert_mc(vals, al, mal, sp, m.n, bias=10.0)


# --------------------------------------------------------------------------- API and bad input
def test_zero_means_give_no_spikes_and_json():
    m = MixtureModel.from_eigen(np.ones((2, 30)), [40, 50])
    sp = gram_spikes(m)
    assert sp.success and sp.n_spikes == 0 and "zero" in sp.message
    d = sp.to_dict()
    assert json.loads(json.dumps(d, allow_nan=False))["values"] == []


def test_to_dict_is_json_without_nan():
    sp = gram_spikes(identity_model(one_mean(50, 3.0), [150], 50))
    d = json.loads(json.dumps(sp.to_dict(), allow_nan=False))
    assert d["neighbour_distance"] == [None]  # a lone spike has no neighbour: inf -> None
    assert len(d["alignment_matrices"][0]) == 1 and d["success"] is True
    assert "GramSpikes(" in repr(sp)


def test_bad_input():
    m = identity_model(one_mean(30, 3.0), [90], 30)
    with pytest.raises(TypeError, match="MixtureModel"):
        gram_spikes("model")
    with pytest.raises(ValueError, match="near_factor"):
        gram_spikes(m, near_factor=-1.0)
    with pytest.raises(TypeError, match="near_factor"):
        gram_spikes(m, near_factor="2")
    with pytest.raises(ValueError, match="tol"):
        gram_spikes(m, tol=2.0)
    with pytest.raises(ValueError, match="method"):
        gram_spikes(m, method="fast")
    other = gram_spectrum(identity_model(one_mean(30, 3.0), [60], 30))
    with pytest.raises(ValueError, match="spectrum was computed"):
        gram_spikes(m, spectrum=other)
    with pytest.raises(TypeError, match="GramSpectrum"):
        gram_spikes(m, spectrum=object())
    # the same p, sizes and traces, other covariances (eigenvalues 0.02 ... 1.98 for I)
    lam = np.linspace(0.02, 1.98, 30)
    Q, _ = np.linalg.qr(np.random.default_rng(5).standard_normal((30, 30)))
    twin = MixtureModel(np.zeros((1, 30)), ((Q * lam) @ Q.T)[None], [90])
    with pytest.raises(ValueError, match="other covariances"):
        gram_spikes(m, spectrum=gram_spectrum(twin))
    zero = m.with_means(np.zeros((1, 30)))  # no spikes: the spectrum is checked all the same
    with pytest.raises(TypeError, match="GramSpectrum"):
        gram_spikes(zero, spectrum="bogus")
    with pytest.raises(ValueError, match="other covariances"):
        gram_spikes(zero, spectrum=gram_spectrum(twin))
    assert gram_spikes(zero, spectrum=gram_spectrum(m)).n_spikes == 0  # the same bulk as m
    with pytest.raises(ValueError, match="direction"):
        phase_transitions(m, direction=np.zeros((2, 30)))
    for bad, exc in ((-1.0, ValueError), (0.0, ValueError), (5.0, ValueError), (np.nan, ValueError),
                     ("x", TypeError)):
        with pytest.raises(exc, match="tol"):
            phase_transitions(m, tol=bad)
        with pytest.raises(exc, match="tol"):
            gram_spikes(m, tol=bad)
    assert gram_spikes(m, tol=np.float32(1e-8)).success
    with pytest.raises(ValueError, match="zero"):
        phase_transitions(m, direction=np.zeros((1, 30)))
    with pytest.raises(ValueError, match="non-finite"):
        phase_transitions(m, direction=np.full((1, 30), np.nan))


def test_quadrature_converged_and_diagnostics():
    sp = gram_spikes(diag_model())
    assert np.all(sp.quadrature_error <= 1e-7) and np.all(sp.quadrature_nodes >= 32)
    assert np.all(sp.contour_radius > 0) and np.all(sp.converged)
    assert sum(c["expected"] for c in sp.counts) == sp.n_spikes
    assert scipy.linalg.issymmetric(sp.alignment_matrices[0], atol=1e-14)


# --------------------------------------------------------------------------- #
# finite-n ranks: every spike takes its eigenvalue from the bulk
# --------------------------------------------------------------------------- #
def _above_points(sp):
    """A point just above each spike: halfway to the next higher spike or region end."""
    pts = []
    for i, v in enumerate(sp.values):
        higher = sp.values[(sp.region == sp.region[i]) & (sp.values > v)]
        ceiling = higher.min() if higher.size else sp.regions[sp.region[i]][1]
        pts.append(0.5 * (v + ceiling))
    return np.array(pts)


def test_spike_ranks_equal_the_inertia_of_the_p_side_matrix():
    # the ranks come from n (1 - F) and the k x k inertia of H (Haynsworth); the reference
    # counts the negative eigenvalues of the full p x p matrix sum_b c_b (C_b + mu_b mu_b^T)
    # / (1 + delta_b) - x I directly
    model = _mixtures.outlier_model(means_scale=2.0)
    sp = gram_spikes(model)
    assert sp.success, sp.message
    assert sp.values.size >= 3
    C = model.covariances
    for rank, x in zip(sp.ranks, _above_points(sp), strict=True):
        d = solve(model, np.array([x + 0j])).delta[0].real
        w = model.ratios / (1.0 + d)
        A = np.tensordot(w, C, axes=1) + (model.means.T * w) @ model.means - x * np.eye(model.p)
        assert rank == model.p - np.count_nonzero(np.linalg.eigvalsh(A) < 0)
    # the spikes above the top interval took its eigenvalue: the top spike has rank 0
    assert sp.ranks[0] == 0


def test_spike_ranks_against_monte_carlo_counts():
    # the number of eigenvalues of G above a point just above each spike, averaged over
    # draws, is the predicted rank (the old count, bulk mass above plus spikes above,
    # overcounts by one per spike next to a one-eigenvalue interval)
    model = _mixtures.outlier_model(means_scale=2.0)
    sp = gram_spikes(model)
    xs = _above_points(sp)
    rng = np.random.default_rng(7)
    counts = []
    for _ in range(40):
        X, _ = model.sample(rng=rng)
        ev = np.linalg.eigvalsh(X.T @ X / model.p)  # the p x p side: same nonzero eigenvalues
        counts.append([np.count_nonzero(ev > x) for x in xs])
    mean = np.mean(counts, axis=0)
    # a count fluctuates by at most about one eigenvalue (O(1/sqrt(n)) spikes next to
    # one-eigenvalue intervals); its mean over 40 draws is within 0.5 of the prediction
    np.testing.assert_array_less(np.abs(mean - sp.ranks), 0.5)


def test_newton_reports_a_nonfinite_guess_instead_of_evaluating_it():
    """A singular predictor (NaN guess) is a failed solve, not a NaN handed to the backend."""
    from rmtgan.solver import make_backend
    from rmtgan.spikes import _Resolvent

    model = MixtureModel.from_eigen(np.array([[1.0, 2.0, 3.0]]), sizes=[9])
    backend = make_backend(model)
    calls = []
    real_evaluate = backend.evaluate
    backend.evaluate = lambda z, d, **kw: calls.append(d) or real_evaluate(z, d, **kw)
    res = _Resolvent(model, backend, 1e-12)
    d, jac, tz, conv = res.newton(5.0 + 1j, np.array([np.nan + 0j]))
    assert not conv and jac is None and not calls
    d, jac, tz, conv = res.newton(5.0 + 1j, np.array([-0.2 + 0.1j]))  # a finite guess still solves
    assert conv and calls and np.all(np.isfinite(d))
