"""The fixed-point solve: against a slow reference, result object, bad input."""

import numpy as np
import pytest

import rmtgan
from rmtgan import MixtureModel, solve


def reference_delta(model, z, iters=20000):
    """Slow reference: damped fixed-point iteration with explicit p x p inverses.

    For ``Im z`` of order one the map is a contraction on the Herglotz branch, so
    plain iteration converges (slowly) to the unique solution.
    """
    cov = model.covariances
    c = model.ratios
    p = model.p
    d = np.zeros(model.k, complex)
    for _ in range(iters):
        R = np.linalg.inv(np.tensordot(c / (1 + d), cov, axes=1) - z * np.eye(p))
        new = np.array([np.trace(C @ R) / p for C in cov])
        if np.max(np.abs(new - d)) < 1e-15:
            return new
        d = 0.5 * d + 0.5 * new
    raise AssertionError("reference did not converge")


def _model(seed, p=12, k=3, commuting=True):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(5, 30, k)
    if commuting:
        return MixtureModel.from_eigen(rng.uniform(0.2, 3.0, (k, p)), sizes)
    covs = []
    for _ in range(k):
        A = rng.standard_normal((p, p))
        covs.append(A @ A.T / p + 0.1 * np.eye(p))
    return MixtureModel(np.zeros((k, p)), np.stack(covs), sizes)


@pytest.mark.parametrize("commuting", [True, False])
def test_against_slow_reference(commuting):
    model = _model(0, commuting=commuting)
    z = np.array([0.5 + 1.0j, 3.0 + 0.7j, -1.0 + 0.5j, 10 + 2j])
    res = solve(model, z)
    assert res.success and res.converged.all()
    for j, zj in enumerate(z):
        ref = reference_delta(model, zj)
        np.testing.assert_allclose(res.delta[j], ref, rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize("commuting", [True, False])
def test_newton_quadratic_acceptance_and_fast_jacobian(commuting):
    # accepting after one exact step at residual <= quadratic_tolerance(tol) (and, on the
    # dense path, steering with single-precision Jacobians) must land where the plain
    # iteration does, to tol, in fewer evaluations
    from rmtgan.solver import make_backend, newton, quadratic_tolerance

    model = _model(2, commuting=commuting)
    be = make_backend(model)
    z = np.array([0.5 + 1.0j, 3.0 + 0.7j, 10 + 2j, 1.5 + 0.05j])
    ref = np.array([reference_delta(model, zj) for zj in z])
    guess = ref * (1 + 1e-4) + 1e-4j  # a good predictor's error (panel nodes: 1e-7 to 1e-3)
    plain = newton(be, z, guess, tol=1e-12)
    quick = newton(be, z, guess, tol=1e-12, tol_quad=quadratic_tolerance(1e-12), fast_jac=True)
    assert plain.converged.all() and quick.converged.all()
    np.testing.assert_allclose(quick.delta, ref, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(plain.delta, ref, rtol=1e-12, atol=1e-13)
    assert np.all(quick.iterations <= plain.iterations) and quick.iterations.sum() < plain.iterations.sum()


@pytest.mark.parametrize("commuting", [True, False])
def test_newton_chord_steps_land_on_the_reference(commuting):
    # a chord method with a known Jacobian (a neighbour's, slightly off, or a useless one)
    # must land where the slow reference does; the step-size test too
    from rmtgan.solver import make_backend, newton

    model = _model(7, commuting=commuting)
    be = make_backend(model)
    z = np.array([0.5 + 1.0j, 3.0 + 0.7j, 1.5 + 0.05j])
    ref = np.array([reference_delta(model, zj) for zj in z])
    guess = ref * (1 + 1e-5) + 1e-5j
    _, J, _ = be.evaluate(z, ref)
    calls = []
    real_evaluate = be.evaluate
    be.evaluate = lambda zz, d, **kw: calls.append(kw.get("jac", True)) or real_evaluate(zz, d, **kw)
    near = newton(be, z, guess, tol=1e-12, J0=J * (1 + 1e-6), j0_err=1e-6)
    assert near.converged.all() and not any(calls)  # every step a chord step: no products
    np.testing.assert_allclose(near.delta, ref, rtol=1e-12, atol=1e-13)
    useless = newton(be, z, guess, tol=1e-12, J0=np.zeros_like(J), j0_err=1.0, refresh=True)
    assert useless.converged.all() and any(calls)  # the exact Jacobian was taken
    np.testing.assert_allclose(useless.delta, ref, rtol=1e-12, atol=1e-13)
    be.evaluate = real_evaluate
    plain = newton(be, z, guess, tol=1e-12)
    step = newton(be, z, guess, tol=1e-12, tol_step=1e-9)
    assert step.converged.all() and step.iterations.sum() < plain.iterations.sum()
    np.testing.assert_allclose(step.delta, ref, rtol=1e-12, atol=1e-13)


def test_newton_abandons_a_growing_residual_when_asked():
    # t(delta) = delta + delta^2 with a wrong (zero) Jacobian: every step moves away from
    # the root at 0, so the residual delta^2 grows
    from rmtgan.solver import newton

    class Diverging:
        def evaluate(self, z, d, **kw):
            return d + d * d, np.zeros(d.shape + d.shape[-1:], complex), np.zeros_like(d)

    start = np.array([[0.1 + 0j]])
    free = newton(Diverging(), np.array([1.0j]), start, maxiter=6, herglotz=False)
    capped = newton(Diverging(), np.array([1.0j]), start, maxiter=6, herglotz=False, max_growth=2)
    assert not free.converged[0] and free.iterations[0] == 6
    assert not capped.converged[0] and capped.iterations[0] == 3
    assert np.isfinite(capped.delta).all()


def test_dense_path_equals_commuting_path():
    model = _model(1, p=20)
    z = np.array([[0.3 + 0.01j, 2.0 + 1e-4j], [5.0 + 0.5j, -0.5 + 0.0j]])
    fast = solve(model, z, method="commuting")
    slow = solve(model, z, method="dense")
    assert fast.method == "commuting" and slow.method == "dense"
    assert fast.delta.shape == (2, 2, 3)
    np.testing.assert_allclose(slow.delta, fast.delta, rtol=1e-10, atol=1e-12)


def test_herglotz_and_conjugate_symmetry():
    model = _model(2)
    rng = np.random.default_rng(0)
    z = rng.uniform(-2, 8, 40) + 1j * 10 ** rng.uniform(-6, 1, 40)
    res = solve(model, z)
    assert res.success
    assert np.all(res.delta.imag > 0)
    assert np.all(res.stieltjes.imag > 0)
    low = solve(model, np.conj(z))
    np.testing.assert_allclose(low.delta, np.conj(res.delta), rtol=1e-12)


def test_negative_real_axis_is_real_and_positive():
    model = _model(3)
    res = solve(model, -np.geomspace(1e-3, 1e3, 7))
    assert res.success
    assert np.all(np.abs(res.delta.imag) < 1e-14 * np.abs(res.delta))
    assert np.all(res.delta.real > 0)


def test_fixed_point_residual_is_small():
    model = _model(4)
    z = np.linspace(0.05, 6, 30) + 0j  # on the real axis: the eta -> 0 limit
    res = solve(model, z)
    assert res.success
    from rmtgan.solver import make_backend

    t, _, _ = make_backend(model).evaluate(z, res.delta)
    assert np.max(np.abs(res.delta - t)) < 1e-11 * np.max(np.abs(res.delta))
    assert np.all(res.delta.imag >= -1e-14 * np.abs(res.delta))  # real (up to rounding) in gaps


def test_result_object_reports():
    model = _model(5)
    res = solve(model, [1.0 + 1.0j])
    assert "converged" in res.message and res.success
    assert res.iterations.shape == (1,) and res.iterations[0] > 0
    assert res.residual[0] <= 1e-12
    assert "SolveResult(success=True" in repr(res)


def test_nonconvergence_is_reported_not_hidden():
    # Newton capped at one iteration cannot reach the tolerance from a poor start
    from rmtgan.solver import make_backend, newton

    model = MixtureModel.from_eigen(np.ones((1, 50)), [20])
    out = newton(make_backend(model), np.array([1.0 + 1e-3j]), np.array([[5.0 + 5.0j]]), maxiter=1)
    assert not out.converged[0] and out.residual[0] > 1e-12 and np.isfinite(out.delta).all()
    with pytest.raises(ValueError, match="z = 0"):
        solve(model, [0.0, 1.0 + 1j])
    # close to the pole at 0 (p > n): delta ~ -(1 - n/p) / z, still solved and finite
    res = solve(model, [1e-9])
    assert res.success
    assert res.delta[0, 0].real == pytest.approx(-(1 - 20 / 50) / 1e-9, rel=1e-6)


def test_bad_input():
    model = _model(6)
    with pytest.raises(ValueError, match="non-finite"):
        solve(model, [1.0, np.nan])
    with pytest.raises(TypeError, match="MixtureModel"):
        solve("model", [1.0j])
    with pytest.raises(ValueError, match="method"):
        solve(model, [1j], method="fast")
    with pytest.raises(TypeError, match="numeric"):
        solve(model, ["a"])
    with pytest.raises(ValueError, match="tol"):
        solve(model, [1j], tol=0.0)
    with pytest.raises(TypeError, match="progress must be True or False"):
        solve(model, [1j], progress="yes")
    noncomm = _model(7, commuting=False)
    with pytest.raises(ValueError, match="do not commute"):
        solve(noncomm, [1j], method="commuting")


def test_import_is_light():
    import subprocess
    import sys

    code = "import sys, rmtgan; print('torch' in sys.modules, 'matplotlib.pyplot' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["False", "False"]
    assert rmtgan.__version__


def test_newton_accepted_points_stay_in_the_closed_upper_half_plane():
    # t(delta) = delta / 2 + Re z (real root 2 Re z), reported Jacobian slightly off: an
    # accepted point's last step ends just below the axis and is projected on it, also
    # when another point of the batch has its step shortened (Herglotz)
    from rmtgan.solver import newton

    class Linear:
        def evaluate(self, z, d, **kw):
            return 0.5 * d + z.real[:, None], np.full((len(z), 1, 1), 0.6 + 0j), np.ones_like(d)

    root = np.array([[2.0], [4.0]])
    for batch in ([0], [0, 1]):
        z = np.array([1.0 + 0j, 2.0 + 0j])[batch]
        start = (root + np.array([[1e-10j], [0.1j]]))[batch]
        out = newton(Linear(), z, start, tol=1e-9, maxiter=1)
        assert out.converged[0] and out.delta[0, 0].imag == 0.0
        assert np.all(out.delta.imag >= 0)


def test_newton_never_accepts_a_step_through_a_singular_jacobian():
    # I - J exactly singular and no root (F = 0.3 everywhere): the least-squares step is
    # zero, which is not a small Newton step
    from rmtgan.solver import newton

    class Singular:
        def evaluate(self, z, d, **kw):
            return d - 0.3, np.ones((len(z), 1, 1), complex), np.ones_like(d)

    for tol_step in (0.0, 1e-9):
        out = newton(Singular(), np.array([1.0 + 1j]), np.array([[1.0 + 1j]]), tol=1e-12, maxiter=5,
                     tol_step=tol_step)
        assert not out.converged[0] and out.residual[0] > 0.2
