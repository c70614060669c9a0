"""The general (non-commuting) path: dense backend, fast spectrum construction, torch backend.

Every fast piece is checked against a slow, plain reference written here:
explicit ``numpy.linalg.inv`` per point, damped fixed-point iteration to 1e-14,
and the commuting (numba) path where the model allows it.
"""

import numpy as np
import pytest
from _mixtures import outlier_model, wiggly

from rmtgan import MixtureModel, gram_spectrum, solve
from rmtgan.dense import DenseBackend, InversionError, negative_count, symmetric_inverse
from rmtgan.solver import make_backend


# --------------------------------------------------------------------------- references
def ref_traces(model, z, delta):
    """t, dt/ddelta, dt/dz and M^T R M, M^T R^2 M by the textbook formulas."""
    C, c, p, k = model.covariances, model.ratios, model.p, model.k
    w = c / (1.0 + delta)
    R = np.linalg.inv(np.tensordot(w, C, axes=1) - z * np.eye(p))
    t = np.array([np.trace(C[a] @ R) / p for a in range(k)])
    J = np.array([[w[b] ** 2 / c[b] * np.trace(C[a] @ R @ C[b] @ R) / p for b in range(k)] for a in range(k)])
    tz = np.array([np.trace(C[a] @ R @ R) / p for a in range(k)])
    M = model.means.T
    return t, J, tz, M.T @ R @ M, M.T @ R @ R @ M


def ref_delta(model, z, iters=200000):
    """Damped fixed point with explicit inverses, to 1e-14 (contraction for Im z of order one)."""
    C, c, p = model.covariances, model.ratios, model.p
    d = np.zeros(model.k, complex)
    for _ in range(iters):
        R = np.linalg.inv(np.tensordot(c / (1 + d), C, axes=1) - z * np.eye(p))
        new = np.array([np.trace(Ca @ R) / p for Ca in C])
        if np.max(np.abs(new - d)) < 1e-14 * max(1.0, np.max(np.abs(new))):
            return new
        d = 0.5 * d + 0.5 * new
    raise AssertionError("reference did not converge")


def ref_stieltjes(model, z):
    d = ref_delta(model, z)
    return -np.sum(model.sizes / (1 + d)) / (model.n * z)


def noncommuting(seed=0, p=40, k=3, sizes=None, means_scale=0.0):
    rng = np.random.default_rng(seed)
    covs = []
    for a in range(k):
        Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
        lam = rng.uniform(0.5, 2.0, p) * (1 + a) / 2
        C = (Q * lam) @ Q.T
        covs.append(0.5 * (C + C.T))
    sizes = [p, 3 * p // 2, 2 * p][:k] if sizes is None else sizes
    means = means_scale * rng.standard_normal((k, p))
    return MixtureModel(means, np.stack(covs), sizes)


def rotated_commuting(seed=3, p=30, sizes=(20, 45)):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = np.stack([rng.uniform(0.5, 2, p), rng.uniform(1, 3, p)])
    return MixtureModel.from_eigen(lam, list(sizes), basis=q)


# --------------------------------------------------------------------------- backend
@pytest.fixture(scope="module")
def model():
    return noncommuting(0, p=30, means_scale=0.3)


@pytest.mark.parametrize("z, delta", [
    (1.0 + 0.3j, [0.3 + 0.2j, 0.1 + 0.4j, 0.5 + 0.1j]),   # complex point
    (2.0 + 0.0j, [0.2, 0.3, 0.1]),                        # real point: real arithmetic
    (-1.0 + 0.0j, [0.5, 0.2, 0.3]),
    (0.5 + 1e-9j, [1.0 + 1e-3j, 2.0 + 1e-2j, 0.5 + 1e-4j]),
])
def test_backend_against_explicit_formulas(model, z, delta):
    be = DenseBackend(model)
    zz, dd = np.array([z]), np.array([delta], complex)
    t, J, tz = be.evaluate(zz, dd)
    mq, mq2 = be.mean_quadratic(zz, dd)
    rt, rJ, rtz, rmq, rmq2 = ref_traces(model, z, dd[0])
    for got, ref in ((t[0], rt), (J[0], rJ), (tz[0], rtz), (mq[0], rmq), (mq2[0], rmq2)):
        np.testing.assert_allclose(got, ref, rtol=1e-11, atol=1e-13 * np.max(np.abs(ref)))
    t2, none1, none2 = be.evaluate(zz, dd, jac=False)
    assert none1 is None and none2 is None
    np.testing.assert_allclose(t2, t, rtol=1e-13)
    assert be.n_evaluations == 3 and be.n_real == (2 if np.imag(z) == 0 else 0)
    # fast_jac: products in single precision (unit roundoff 6e-8, sums of p terms), t still exact
    t3, J3, tz3 = be.evaluate(zz, dd, fast_jac=True)
    np.testing.assert_allclose(t3[0], rt, rtol=1e-11, atol=1e-13 * np.max(np.abs(rt)))
    for got, ref in ((J3[0], rJ), (tz3[0], rtz)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-6 * np.max(np.abs(ref)))
        assert np.max(np.abs(got - ref)) > 0  # single precision really was used


def test_fold_derivatives_against_central_differences(model):
    # d(Jv)/ddelta and d(Jv)/dx vs central differences of the exact J: the differences are
    # right to O(h^2) ~ 1e-10 relative, the products behind Dd, Dx are in single precision
    # (unit roundoff 6e-8, sums of p = 30 terms): 1e-6 relative
    be = DenseBackend(model)
    x, d, v = 3.0, np.array([0.2, 0.3, 0.1]), np.array([0.3, 0.5, 0.2])
    t, J, tz, along = be.fold_point(x, d)
    Dd, Dx = along(v)
    tf, Jf, tzf, along_f = be.fold_point(x, d, fast_jac=True)
    Ddf, Dxf = along_f(v)
    np.testing.assert_allclose(tf, t, rtol=1e-14)  # t always in double precision
    np.testing.assert_allclose(Jf, J, rtol=1e-6)
    np.testing.assert_allclose(tzf, tz, rtol=1e-6)
    np.testing.assert_allclose(Ddf, Dd, rtol=1e-6, atol=1e-7 * np.abs(Dd).max())
    h = 1e-5
    for c in range(3):
        e = np.zeros(3)
        e[c] = h
        Jp = be.evaluate(np.array([x + 0j]), (d + e)[None] + 0j)[1][0].real
        Jm = be.evaluate(np.array([x + 0j]), (d - e)[None] + 0j)[1][0].real
        np.testing.assert_allclose(Dd[:, c], (Jp - Jm) @ v / (2 * h), rtol=1e-6, atol=1e-7 * np.abs(Dd).max())
    Jp = be.evaluate(np.array([x + h + 0j]), d[None] + 0j)[1][0].real
    Jm = be.evaluate(np.array([x - h + 0j]), d[None] + 0j)[1][0].real
    np.testing.assert_allclose(Dx, (Jp - Jm) @ v / (2 * h), rtol=1e-6)


def test_commuting_fold_point_against_dense_and_differences():
    # the commuting backend's fold data (closed forms over eigenvalues) against the dense
    # backend on the same commuting model, and its second derivatives against central
    # differences of its own J (double precision throughout: O(h^2) ~ 1e-10)
    from rmtgan.commuting import CommutingBackend

    model = outlier_model()
    fast, slow = CommutingBackend(model), DenseBackend(model)
    sup = gram_spectrum(model, method="commuting").support
    for x in (0.5 * sup[0][0], 0.5 * (sup[0][1] + sup[1][0]), 2.0 * sup[-1][1]):
        d = solve(model, np.array([x + 0j]), method="commuting").delta[0].real
        v = np.array([0.7, 0.3])[: model.k]
        t, J, tz, along = fast.fold_point(x, d)
        ts, Js, tzs, along_s = slow.fold_point(x, d)
        np.testing.assert_allclose(t, ts, rtol=1e-12)
        np.testing.assert_allclose(J, Js, rtol=1e-11, atol=1e-14 * np.abs(J).max())
        np.testing.assert_allclose(tz, tzs, rtol=1e-11)
        Dd, Dx = along(v)
        Dds, Dxs = along_s(v)  # single-precision products on the dense side
        np.testing.assert_allclose(Dd, Dds, rtol=1e-5, atol=1e-6 * np.abs(Dd).max())
        np.testing.assert_allclose(Dx, Dxs, rtol=1e-5)
        assert fast.negative_count(x, d) == slow.negative_count(x, d)
        h = 1e-5 * (1.0 + np.abs(d).max())
        for c in range(model.k):
            e = np.zeros(model.k)
            e[c] = h
            Jp, Jm = fast.fold_point(x, d + e)[1], fast.fold_point(x, d - e)[1]
            diff = (Jp - Jm) @ v / (2 * h)
            np.testing.assert_allclose(Dd[:, c], diff, rtol=1e-7, atol=1e-9 * np.abs(Dd).max())
        hx = 1e-5 * abs(x)
        Jp, Jm = fast.fold_point(x + hx, d)[1], fast.fold_point(x - hx, d)[1]
        np.testing.assert_allclose(Dx, (Jp - Jm) @ v / (2 * hx), rtol=1e-7)


@pytest.mark.parametrize("method", ["sytri2", "getri"])
@pytest.mark.parametrize("dtype", [complex, float])
def test_symmetric_inverse(method, dtype):
    rng = np.random.default_rng(1)
    B = rng.standard_normal((50, 50))
    A = (B + B.T).astype(dtype)
    if dtype is complex:
        A = A + 1j * np.diag(rng.uniform(0.1, 1, 50))  # complex symmetric, not Hermitian
    R = symmetric_inverse(A, method=method)
    assert R.flags.c_contiguous and R.dtype == A.dtype
    np.testing.assert_allclose(A @ R, np.eye(50), atol=1e-10)
    if method == "sytri2":  # one triangle, mirrored
        np.testing.assert_array_equal(R, R.T)
    else:  # LU does not see the symmetry: symmetric to rounding
        np.testing.assert_allclose(R, R.T, rtol=0, atol=1e-13 * np.abs(R).max())
    with pytest.raises(InversionError):
        symmetric_inverse(np.zeros((4, 4), dtype), method=method)
    with pytest.raises(ValueError, match="method"):
        symmetric_inverse(A, method="lu")


@pytest.mark.parametrize("dtype", [complex, float])
def test_lu_inverse_general_matrix(dtype):
    """The LU inverse without the GIL reads C order as the transpose: right for any matrix."""
    from rmtgan.dense import _lu_inverse

    rng = np.random.default_rng(2)
    A = rng.standard_normal((37, 37)).astype(dtype)
    if dtype is complex:
        A = A + 1j * rng.standard_normal((37, 37))
    R = _lu_inverse(A)
    np.testing.assert_allclose(R, np.linalg.inv(A), rtol=1e-10, atol=1e-12 * np.abs(R).max())
    assert _lu_inverse(np.ones((5, 5), dtype)) is None  # singular: reported, not returned


def test_hermite_predictor_against_closed_forms():
    """Values and slopes at n Lobatto points fix degree 2n - 1 exactly; they predict the next level."""
    from numpy.polynomial import chebyshev as C

    from rmtgan._dense_spectrum import _chebval, hermite_coefficients, lobatto, lobatto_coefficients

    rng = np.random.default_rng(4)
    t = lobatto(9)
    c = rng.standard_normal((18, 2)) + 1j * rng.standard_normal((18, 2))  # degree 17, two columns
    f = np.stack([C.chebval(t, c[:, i]) for i in range(2)], axis=1)
    df = np.stack([C.chebval(t, C.chebder(c[:, i])) for i in range(2)], axis=1)
    np.testing.assert_allclose(hermite_coefficients(t, f, df), c, atol=1e-12)
    # an analytic function with poles at +-0.3i, from 17 nodes at the midpoints of level 33:
    # errors ~ rho^-degree (Bernstein ellipse through the poles, rho = 0.3 + sqrt(1.09))
    g, dg = (lambda x: 1.0 / (0.09 + x ** 2)), (lambda x: -2.0 * x / (0.09 + x ** 2) ** 2)
    t = lobatto(17)
    mid = lobatto(33)[1::2]
    herm = np.max(np.abs(_chebval(mid, hermite_coefficients(t, g(t), dg(t))) - g(mid)))
    plain = np.max(np.abs(_chebval(mid, lobatto_coefficients(g(t))) - g(mid)))
    rho, top = 0.3 + np.sqrt(1.09), g(0.0)
    assert herm <= 10 * top * rho ** -33  # degree 33 from 17 values and 17 slopes
    assert plain >= 0.1 * top * rho ** -17  # degree 16: the plain interpolant is far worse


def test_hopeless_series_extrapolates_geometric_decay_exactly():
    """A tail ``exp(-alpha n)`` is extrapolated exactly; algebraic decay is given up on."""
    from rmtgan._dense_spectrum import MAX_NODES, hopeless

    def tail(n, alpha):
        return np.exp(-alpha * (n - 1))

    # geometric decay reaching 1e-12 at MAX_NODES: still worth it, and so with less than
    # the margin of 100 to spare; 1e4 short of it: given up at 65 nodes
    alpha = -np.log(1e-12) / (MAX_NODES - 1)
    assert not hopeless(tail(65, alpha), tail(33, alpha), 65, 1e-12)
    assert not hopeless(tail(65, alpha), tail(33, alpha), 65, 1e-13)
    assert hopeless(tail(65, alpha), tail(33, alpha), 65, 1e-16)
    # algebraic decay n^-2 (a feature narrower than the node spacing) cannot reach 1e-10;
    # neither can a tail that stopped decreasing
    assert hopeless(65.0 ** -2, 33.0 ** -2, 65, 1e-10)
    assert hopeless(1e-3, 1e-3, 129, 1e-10)
    # too early to judge, or no previous level
    assert not hopeless(1e-3, 1e-3, 33, 1e-10)
    assert not hopeless(1e-3, np.inf, 65, 1e-10)


# --------------------------------------------------------------------------- threads
def test_workers_do_not_change_results():
    """Points spread over threads give the serial numbers bit for bit, counts included.

    Bit for bit when BLAS runs one thread everywhere (as under the Makefile): worker
    threads always run it on one, and an LU inverse on two BLAS threads differs from
    one on a single thread in the last bits.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1, user_api="blas"):
        _workers_do_not_change_results()


def _workers_do_not_change_results():
    from rmtgan.dense import PARALLEL_MIN_P

    m = noncommuting(5, p=PARALLEL_MIN_P + 4, means_scale=0.3)
    serial, threaded = DenseBackend(m, workers=1), DenseBackend(m, workers=2)
    rng = np.random.default_rng(3)
    z = np.array([1.0 + 0.3j, 2.0 + 0.0j, 0.5 + 1e-6j, -1.0 + 0.0j, 3.0 + 0.1j])
    d = rng.uniform(0.1, 1, (5, 3)) + 1j * rng.uniform(0, 0.5, (5, 3)) * (z.imag[:, None] != 0)
    for kw in ({}, {"jac": False}, {"fast_jac": True}):
        for x, y in zip(serial.evaluate(z, d, **kw), threaded.evaluate(z, d, **kw), strict=True):
            if x is None:
                assert y is None
            else:
                np.testing.assert_array_equal(x, y)
    for x, y in zip(serial.mean_quadratic(z, d), threaded.mean_quadratic(z, d), strict=True):
        np.testing.assert_array_equal(x, y)
    for name in ("n_evaluations", "n_real", "n_jacobians"):
        assert getattr(serial, name) == getattr(threaded, name)
    t, J, tz, A, _ = ref_traces(m, z[0], d[0])
    np.testing.assert_allclose(threaded.evaluate(z[:2], d[:2])[1][0], J, rtol=1e-10)
    np.testing.assert_allclose(threaded.mean_quadratic(z[:2], d[:2])[0][0], A, rtol=1e-10)
    # the whole spectrum: same edges, same evaluations, same density
    s1, s2 = gram_spectrum(m, workers=1), gram_spectrum(m, workers=2)
    assert s1.success and s2.success and s2._backend.workers == 2
    assert s1.support == s2.support and s1.n_evaluations == s2.n_evaluations
    x = np.linspace(s1.support[0][0], s1.support[-1][1], 40)
    np.testing.assert_array_equal(s1.density(x, exact=True), s2.density(x, exact=True))
    # an error in a threaded batch is raised once every point has ended, the first in order
    ran = []

    def point(j):
        ran.append(j)
        if j in (3, 1):
            raise ValueError(j)
        return j

    with pytest.raises(ValueError, match="^1$"):
        threaded._map(point, 6)
    assert sorted(ran) == list(range(6))


def test_concurrent_tasks_run_on_workers_with_one_blas_thread():
    import threading

    from rmtgan.dense import PARALLEL_MIN_P

    m = noncommuting(6, p=PARALLEL_MIN_P)
    be = DenseBackend(m, workers=2)

    def where():
        from threadpoolctl import threadpool_info

        blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        return threading.current_thread().name, blas

    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=2, user_api="blas"):  # a threaded BLAS outside
        assert all(b == 2 for b in where()[1])
        out = be.concurrently(where, where)
        assert all(b == 2 for b in where()[1])  # restored
    assert all(name.startswith("rmtgan-dense") and all(b == 1 for b in blas) for name, blas in out)
    # a batch inside a task runs serially on that worker (no nested pool to wait on)
    z = np.array([1.0 + 0.2j, 2.0 + 0.1j, 3.0 + 0.3j])
    d = np.full((3, 3), 0.3 + 0.1j)
    with threadpool_limits(limits=1, user_api="blas"):  # as on the workers, whatever the environment
        ref = DenseBackend(m, workers=1).evaluate(z, d)[0]
    for t in be.concurrently(lambda: be.evaluate(z, d)[0], lambda: be.evaluate(z, d)[0]):
        np.testing.assert_array_equal(t, ref)
    with pytest.raises(ZeroDivisionError):
        be.concurrently(lambda: 1, lambda: 1 / 0)
    # serially too, every task runs (the same evaluations as on threads); the first error is raised
    ran = []
    with pytest.raises(ZeroDivisionError):
        DenseBackend(m, workers=1).concurrently(lambda: 1 / 0, lambda: ran.append(1), lambda: [][0])
    assert ran == [1]
    # one worker, or a small p: the calling thread
    assert DenseBackend(m, workers=1).concurrently(where)[0][0] == threading.current_thread().name
    small = DenseBackend(noncommuting(6, p=20), workers=2)
    assert small.concurrently(where, where)[0][0] == threading.current_thread().name


def test_one_blas_thread_region_is_reentrant_across_threads():
    """An overlapping region of another thread neither lifts the limit early nor leaves it set.

    (OpenBLAS does not reliably honour a thread count set from a thread other than the
    one that changed it before, so the check has the calling thread leave last.)
    """
    import threading

    from threadpoolctl import threadpool_info, threadpool_limits

    from rmtgan.dense import _one_blas_thread

    def blas():
        return {i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"}

    inside, leave, left = threading.Event(), threading.Event(), threading.Event()

    def other():
        with _one_blas_thread():
            inside.set()
            leave.wait(10)
        left.set()

    with threadpool_limits(limits=2, user_api="blas"):
        t = threading.Thread(target=other)
        with _one_blas_thread():
            t.start()
            inside.wait(10)
            leave.set()
            left.wait(10)
            assert blas() == {1}  # the other region ended, this one still runs
        t.join()
        assert blas() == {2}  # restored by the last region to leave
        with _one_blas_thread():
            with _one_blas_thread():  # nested in one thread
                assert blas() == {1}
            assert blas() == {1}
        assert blas() == {2}


def _threaded_t(model, z, d):
    return DenseBackend(model, workers=2).evaluate(z, d)[0]


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # Python >= 3.12 warns about fork with threads
def test_worker_pool_in_a_forked_child():
    """The pool's threads do not survive fork: a child must start its own, not wait forever."""
    import multiprocessing
    import os

    from rmtgan.dense import PARALLEL_MIN_P

    if not hasattr(os, "fork"):
        pytest.skip("no fork on this platform")
    m = noncommuting(8, p=PARALLEL_MIN_P)
    z = np.array([1.0 + 0.2j, 2.0 + 0.1j, 3.0 + 0.3j])
    d = np.full((3, 3), 0.3 + 0.1j)
    ref = _threaded_t(m, z, d)  # the parent's pool now exists
    with multiprocessing.get_context("fork").Pool(1) as pool:
        out = pool.apply_async(_threaded_t, (m, z, d)).get(timeout=120)
    np.testing.assert_array_equal(out, ref)


def test_threaded_build_compiles_no_kernel_on_a_worker():
    """Every specialisation of the trace kernels exists before worker threads run them.

    (Compiling them inside worker threads went with rare nondeterministic failures.)
    """
    from rmtgan.dense import PARALLEL_MIN_P, _cross_traces, _fill_upper, _pair_traces

    m = noncommuting(9, p=PARALLEL_MIN_P + 4, means_scale=0.5)
    DenseBackend(m)  # warms the kernels
    kernels = (_pair_traces, _cross_traces, _fill_upper)
    before = [list(f.signatures) for f in kernels]
    spec = gram_spectrum(m, workers=2)
    spec.density(np.linspace(spec.support[0][0], spec.support[-1][1], 9), exact=True)
    solve(m, np.array([1.0 + 1j, 3.0 + 0.5j]), workers=2)
    z, d = np.array([2.0 + 0.3j, 1.0 + 0j]), np.array([[0.3 + 0.1j] * 3, [0.2] * 3])
    DenseBackend(m, inverse="sytri2", workers=2).evaluate(z, d, fast_jac=True)
    assert [list(f.signatures) for f in kernels] == before


@pytest.mark.parametrize("qdt, odt", [(np.complex128, np.complex128), (np.complex64, np.complex128),
                                       (np.float64, np.float64), (np.float32, np.float64)])
@pytest.mark.parametrize("p", [1, 2, 50, 97])
def test_trace_kernels_never_read_their_output(qdt, odt, p):
    """The outputs are ``np.empty`` arrays: whatever they held (here NaN) must not leak in.

    ``_pair_traces`` once seeded its sums with ``pair[a, b] * 0``; after a computation
    had freed NaNs into memory every Jacobian came out NaN, Newton abandoned every
    point, and a dense build failed (or all later solves in the process did).
    """
    from rmtgan.dense import _cross_traces, _pair_traces

    rng = np.random.default_rng(p)
    k = 3
    Q = rng.standard_normal((k, p, p))
    M = rng.standard_normal((p, p))
    if np.issubdtype(qdt, np.complexfloating):
        Q = Q + 1j * rng.standard_normal((k, p, p))
        M = M + 1j * rng.standard_normal((p, p))
    Q, M = Q.astype(qdt), M.astype(odt)
    pair = np.full((k, k), np.nan, odt)
    _pair_traces(Q, pair)
    ref = np.einsum("aij,bji->ab", Q.astype(odt), Q.astype(odt))
    np.testing.assert_allclose(pair, ref, rtol=1e-4 if qdt in (np.complex64, np.float32) else 1e-12)
    out = np.full(k, np.nan, odt)
    _cross_traces(Q, M, out)
    np.testing.assert_allclose(out, np.einsum("aij,ji->a", Q.astype(odt), M),
                               rtol=1e-4 if qdt in (np.complex64, np.float32) else 1e-12)


def test_workers_validation(model):
    with pytest.raises(ValueError, match="workers"):
        DenseBackend(model, workers=0)
    with pytest.raises(TypeError, match="workers"):
        DenseBackend(model, workers=1.5)
    with pytest.raises(ValueError, match="workers"):
        gram_spectrum(model, workers=-1)
    assert DenseBackend(model).workers >= 1


def test_lapack_seconds_is_cpu_time_not_wall_time(model, monkeypatch):
    """Waiting (a loaded machine, another process on the core) is not LAPACK time."""
    import time

    import rmtgan.dense as dense

    inverse = dense.symmetric_inverse

    def slow(A, **kw):
        time.sleep(0.05)  # wall time, no CPU time
        return inverse(A, **kw)

    monkeypatch.setattr(dense, "symmetric_inverse", slow)
    be = DenseBackend(model, workers=1)
    z = np.array([1.0 + 0.5j, 2.0 + 0.3j, 3.0 + 0.2j, 4.0 + 0.1j])
    c0, w0 = time.process_time(), time.perf_counter()
    be.evaluate(z, np.full((4, model.k), 0.2 + 0.1j))
    cpu, wall = time.process_time() - c0, time.perf_counter() - w0
    assert wall >= 0.2 and 0 < be.lapack_seconds <= cpu + 1e-3

# --------------------------------------------------------------------------- solve
def test_solve_dense_stieltjes_against_slow_reference(model):
    z = np.array([0.5 + 1.0j, 4.0 + 0.7j, -1.0 + 0.5j, 12.0 + 2.0j, 2.0 - 0.8j])
    res = solve(model, z)
    assert res.method == "dense" and res.success
    ref = np.array([ref_stieltjes(model, zj) if zj.imag > 0 else np.conj(ref_stieltjes(model, np.conj(zj)))
                    for zj in z])
    np.testing.assert_allclose(res.stieltjes, ref, rtol=1e-8)
    assert np.all(res.stieltjes[z.imag > 0].imag > 0)
    again = solve(model, z, progress=True)  # a tqdm bar, same numbers
    np.testing.assert_array_equal(again.delta, res.delta)


def test_make_backend_selection_and_bad_input(model):
    assert make_backend(model).name == "dense"
    assert make_backend(rotated_commuting()).name == "commuting"
    assert make_backend(rotated_commuting(), "dense").name == "dense"
    with pytest.raises(ValueError, match="backend"):
        make_backend(model, backend="jax")
    with pytest.raises(ValueError, match="device"):
        make_backend(model, device="cpu")
    with pytest.raises(ValueError, match="method"):
        make_backend(model, "fast")


# --------------------------------------------------------------------------- spectrum
@pytest.mark.parametrize("p, workers", [(30, None), (120, 2)])  # p = 120: on worker threads
def test_commuting_model_by_dense_path_equals_fast_path(p, workers):
    comm = rotated_commuting(p=p, sizes=(2 * p // 3, 3 * p // 2))
    fast = gram_spectrum(comm, method="commuting")
    dense = gram_spectrum(comm, method="dense", workers=workers)
    assert dense.method == "dense" and dense.success, dense.message
    assert dense._dense_note == ""  # the walk, not the generic fallback
    assert len(dense.support) == len(fast.support)
    for (a1, b1), (a2, b2) in zip(fast.support, dense.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    x = np.linspace(fast.support[0][0], fast.support[-1][1], 60)[1:-1]
    ref = fast.density(x)
    np.testing.assert_allclose(dense.density(x, exact=True), ref, rtol=1e-10, atol=1e-13)
    if dense._interp_certified:
        np.testing.assert_allclose(dense.density(x), ref, rtol=1e-9, atol=1e-12)
    assert dense.mass == pytest.approx(fast.mass, abs=1e-10)
    q = np.linspace(0.05, 0.95, 7)
    np.testing.assert_allclose(dense.quantiles(q), fast.quantiles(q), rtol=1e-9)
    # an evaluation budget: the walk spends a few hundred inverses, not thousands
    assert dense.n_evaluations < 600


def test_two_intervals_by_dense_path():
    rng = np.random.default_rng(2)
    p = 40
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = np.concatenate([np.full(p // 2, 1.0), np.full(p // 2, 10.0)])[None]
    comm = MixtureModel.from_eigen(lam, [10 * p], basis=q)
    fast = gram_spectrum(comm, method="commuting")
    dense = gram_spectrum(comm, method="dense")
    assert dense.success and len(dense.support) == 2 == len(fast.support)
    for (a1, b1), (a2, b2) in zip(fast.support, dense.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    np.testing.assert_allclose([iv.mass for iv in dense.intervals], [0.05, 0.05], atol=1e-9)


def test_negative_count_against_eigvalsh():
    rng = np.random.default_rng(11)
    for p in (1, 2, 7, 60, 200):
        for shift in (-3.0, 0.0, 0.7, 4.0):
            A = rng.standard_normal((p, p))
            A = A + A.T + shift * np.eye(p)
            assert negative_count(A) == np.count_nonzero(np.linalg.eigvalsh(A) < 0)
    with pytest.raises(TypeError, match="real symmetric"):
        negative_count(np.eye(3, dtype=complex))
    with pytest.raises(InversionError, match="singular"):
        negative_count(np.zeros((3, 3)))


def test_definite_inverse_and_the_inertia_it_gives():
    from rmtgan.dense import definite_inverse

    rng = np.random.default_rng(12)
    B = rng.standard_normal((60, 90))
    P = B @ B.T / 90 + 0.05 * np.eye(60)  # positive definite
    for A, sign in ((P, 1), (-P, -1)):
        R, s = definite_inverse(A)
        assert s == sign and R.flags.c_contiguous
        np.testing.assert_allclose(R, np.linalg.inv(A), rtol=1e-9, atol=1e-12 * np.abs(R).max())
        np.testing.assert_array_equal(R, R.T)  # one triangle, mirrored
    # indefinite with a positive diagonal, complex, mixed-sign diagonal: not this path
    S = P.copy()
    S[0, 1] = S[1, 0] = 2.0 * np.sqrt(S[0, 0] * S[1, 1])  # a 2 x 2 minor of negative determinant
    assert np.all(np.diag(S) > 0) and negative_count(S) > 0
    for A in (S, P.astype(complex), np.diag(np.r_[1.0, -1.0, 2.0])):
        assert definite_inverse(A) == (None, 0)
    # through the backend: the count read from a Cholesky resolvent is LDL's count, on
    # both sides of the support (A(x, delta) positive definite left of it, negative right)
    model = outlier_model()
    fast = gram_spectrum(model, method="commuting")
    be = DenseBackend(model)
    seen = set()
    for x in (0.5 * fast.support[0][0], 2.0 * fast.support[-1][1]):
        d = solve(model, np.array([x + 0j]), method="commuting").delta[0].real
        be.resolvent(x + 0j, d)
        seen.add(be._local.cache[0][2])
        assert be.negative_count(x, d) == negative_count(be.matrix(x, d)) - np.sum(model.sizes[1.0 + d < 0])
    assert seen == {1, -1}


def test_exact_separation_counts_eigenvalues_left_of_a_gap():
    # in a gap, the count (negative eigenvalues of A(x, delta(x)), less n_b for each class
    # with 1 + delta_b < 0) is p times the X X^T / p CDF: the limiting CDF of G there is
    # 1 - (p - count) / n (checked on the commuting path); n > p and n < p (where
    # 1 + delta_b < 0 below the bulk)
    base = outlier_model()
    signs = set()
    for sizes in ([288, 288], [20, 20]):
        model = MixtureModel(base.means, base.covariances, sizes)
        fast = gram_spectrum(model, method="commuting")
        sup = fast.support
        gaps = [0.5 * sup[0][0]] + [0.5 * (sup[i][1] + sup[i + 1][0]) for i in range(len(sup) - 1)]
        gaps.append(2.0 * sup[-1][1])
        be = DenseBackend(model)
        for x in gaps:
            d = solve(model, np.array([x + 0j]), method="commuting").delta[0]
            assert np.all(np.abs(d.imag) <= 1e-30)  # a gap: real delta
            signs.add(bool(np.all(1.0 + d.real > 0)))
            count = be.negative_count(x, d.real)
            assert fast.cdf(x) == pytest.approx(1.0 - (model.p - count) / model.n, abs=1e-10)
    assert signs == {True, False}  # both cases were met


def test_outlier_intervals_by_dense_path():
    model = outlier_model()
    fast = gram_spectrum(model, method="commuting")
    dense = gram_spectrum(model, method="dense")
    assert dense.success and dense._dense_note == "", dense._dense_note  # the walk did it all
    assert len(dense.support) == len(fast.support) == 6
    for (a1, b1), (a2, b2) in zip(fast.support, dense.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    # every interval holds a whole number of eigenvalues: 42 in the bulk, 1 or 2 per outlier
    counts = np.array([iv.mass for iv in dense.intervals]) * model.n
    np.testing.assert_allclose(counts, [42, 1, 1, 2, 1, 1], atol=1e-8)
    x = np.concatenate([np.linspace(a, b, 9)[1:-1] for a, b in fast.support])
    np.testing.assert_allclose(dense.density(x, exact=True), fast.density(x), rtol=1e-9)
    # certificates are per interval: the default serves each certified interval's
    # interpolant and solves only inside the others
    served = dense.density(x, exact=False)
    for iv in dense.intervals:
        iv.certified = True
    before = dense.n_evaluations
    np.testing.assert_array_equal(dense.density(x), served)
    assert dense.n_evaluations == before
    dense.intervals[1].certified = False
    inside = (x > dense.intervals[1].left) & (x < dense.intervals[1].right)
    mixed = dense.density(x)
    assert dense.n_evaluations > before
    np.testing.assert_array_equal(mixed[~inside], served[~inside])
    np.testing.assert_allclose(mixed[inside], fast.density(x[inside]), rtol=1e-9)


@pytest.mark.parametrize("tol", [1e-12, 1e-4])
def test_walk_then_generic_below_a_hard_edge(tol):
    # n = p: the bulk reaches 0 (a hard edge, which the walk does not handle); the outlier
    # intervals above it are walked and certified, the generic construction does the rest
    # (at a loose tol the walked intervals are certified to that tol's mass tolerance, and
    # the generic construction's certificate must allow for it)
    from rmtgan._dense_spectrum import tolerances

    base = outlier_model()
    model = MixtureModel(base.means, base.covariances, [24, 24])
    fast = gram_spectrum(model, method="commuting")
    dense = gram_spectrum(model, method="dense", tol=tol)
    assert dense.success, dense.message
    assert "then generic below" in dense._dense_path and "hard edge" in dense._dense_note
    assert len(dense.support) == len(fast.support) >= 3
    assert dense.support[0][0] == 0.0
    for (a1, b1), (a2, b2) in zip(fast.support, dense.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    np.testing.assert_allclose([iv.mass for iv in dense.intervals], [iv.mass for iv in fast.intervals],
                               atol=tolerances(tol, model.n)["mass"])
    # the panels' interpolant is certified by exact solves, then served without solves
    cert = tolerances(tol, model.n)["cert"]
    assert dense._interp_certified and dense._interp_error <= cert
    x = np.concatenate([np.linspace(a, b, 12)[1:-1] for a, b in fast.support])
    before = dense.n_evaluations
    np.testing.assert_allclose(dense.density(x), fast.density(x), rtol=cert)
    assert dense.n_evaluations == before


def _record_lobatto_panels(monkeypatch):
    import rmtgan._dense_spectrum as ds

    made, real = [], ds.lobatto_panels
    monkeypatch.setattr(ds, "lobatto_panels", lambda root: made.append(real(root)) or made[-1])
    return made


def test_unresolved_interval_is_halved_into_lobatto_panels(monkeypatch):
    from rmtgan._dense_spectrum import tolerances

    made = _record_lobatto_panels(monkeypatch)
    m = wiggly()
    dense = gram_spectrum(m, method="dense")
    fast = gram_spectrum(m, method="commuting")  # the same model in closed form
    assert dense.success and fast.success, (dense.message, fast.message)
    assert made and all(len(iv.panels) > 1 for iv in made), "no interval needed panels: nothing tested"
    assert len(dense.support) == len(fast.support)
    for (a1, b1), (a2, b2) in zip(fast.support, dense.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    tol = tolerances(dense.tol, m.n)
    for iv in made:
        # the panels tile [0, pi/2] of theta, and their masses add up to the eigenvalue count
        los, his = [pn.lo for pn in iv.panels], [pn.hi for pn in iv.panels]
        assert los[0] == 0.0 and his[-1] == np.pi / 2 and los[1:] == his[:-1]
        ref = next(r for r in fast.intervals if abs(r.left - iv.left) <= 1e-9 * iv.right)
        assert iv.mass == pytest.approx(ref.mass, abs=tol["mass"])
        # what is served between the nodes is the interpolant: each panel's series is cut where
        # its coefficients fell below TAIL_RTOL (1e-12) of their largest, but the node values
        # next to an edge carry the solver's tol amplified by 1 / (1 - lambda) ~ |x - edge|^{-1/2}
        # (the first Lobatto node of a 65-node panel at an edge is ~1e-7 of the width away:
        # 1e-12 becomes ~1e-9 of the density's scale); the generic panels were off by 5.8e-8
        # of the largest density on this interval
        x = iv.x_of(np.linspace(0.0, np.pi / 2, 401)[1:-1])
        served, exact = dense.density(x, exact=False), fast.density(x)
        assert np.max(np.abs(served - exact)) <= 1e-8 * np.max(exact)


def test_series_accepted_only_at_its_node_budget_is_split_when_its_certificate_fails(monkeypatch):
    # a series whose tail stopped above the 1e-12 target only because the node budget was
    # spent (a slowly converging tail, not a rounding plateau) used to be kept; when its
    # interpolant fails the certificate (3.4e-9 to 3.8e-6 seen), it is split into Lobatto
    # panels, which certify, instead of serving exact solves.  The 257-node series of
    # [0.455, 0.595] that showed it (tail 2.3e-11) now resolves (8e-14, better guesses and
    # fills); a budget of 129 nodes, where its tail is 4.8e-9, and a plateau allowance above
    # that recreate the case
    import rmtgan._dense_spectrum as ds

    monkeypatch.setattr(ds, "MAX_NODES", 129)
    monkeypatch.setattr(ds, "PLATEAU_RTOL", 1e-8)
    roots, real = [], ds.lobatto_panels
    monkeypatch.setattr(ds, "lobatto_panels", lambda root: roots.append((root, real(root))) or roots[-1][1])
    m = wiggly(seed=0)
    dense = gram_spectrum(m, method="dense")
    fast = gram_spectrum(m, method="commuting")
    split = [(root, iv) for root, iv in roots if root.at_budget]
    assert split, "no series was accepted at its budget: nothing tested"
    for root, iv in split:
        assert root.n == ds.MAX_NODES and root.tail > ds.TAIL_RTOL
        assert root.certify() > ds.CERT_RTOL  # why it was split
        assert len(iv.panels) > 1 and iv.certified
        # away from the edges (where rho -> 0 and relative errors grow, see docs/dense.md)
        x = iv.x_of(np.linspace(0.02, np.pi / 2 - 0.02, 200))
        np.testing.assert_allclose(dense.density(x), fast.density(x), rtol=ds.CERT_RTOL)


def test_lobatto_panels_beyond_their_budget_hand_over_to_the_generic_panels(monkeypatch):
    import rmtgan._dense_spectrum as ds

    monkeypatch.setattr(ds, "PANEL_BUDGET", 2)
    m = wiggly()
    dense = gram_spectrum(m, method="dense")
    assert "unresolved at the budget of 2 panels" in dense._dense_note
    _matches_commuting(dense, gram_spectrum(m, method="commuting"))


@pytest.mark.slow
def test_lobatto_panels_on_worker_threads():
    # p >= PARALLEL_MIN_P: the nodes of each level run on the worker threads; the result
    # must not depend on how many (bit for bit on one BLAS thread) and must match the
    # closed form of the commuting path
    from threadpoolctl import threadpool_limits

    from rmtgan.dense import PARALLEL_MIN_P

    m = wiggly(seed=2, p=100, ratio=4)
    assert m.p >= PARALLEL_MIN_P
    with threadpool_limits(limits=1, user_api="blas"):
        with pytest.MonkeyPatch.context() as mp:
            made = _record_lobatto_panels(mp)
            two = gram_spectrum(m, method="dense", workers=2)
        one = gram_spectrum(m, method="dense", workers=1)
    fast = gram_spectrum(m, method="commuting")
    assert two.success and one.success and fast.success
    assert made and max(len(iv.panels) for iv in made) > 4
    assert two.n_evaluations == one.n_evaluations
    x = np.concatenate([iv.x_of(np.linspace(0.02, np.pi / 2 - 0.02, 60)) for iv in two.intervals])
    np.testing.assert_array_equal(two.density(x, exact=False), one.density(x, exact=False))
    for (a1, b1), (a2, b2) in zip(fast.support, two.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    # away from the edges (docs/dense.md, step 4)
    np.testing.assert_allclose(two.density(x), fast.density(x), rtol=1e-9)


def _fills(monkeypatch):
    """Record what :meth:`_Expansion._fill` returns (``None``: refused)."""
    import rmtgan._dense_spectrum as ds

    out, real = [], ds._Expansion._fill
    monkeypatch.setattr(ds._Expansion, "_fill", lambda self, *a: out.append(real(self, *a)) or out[-1])
    return out


def _without_fill(m, monkeypatch):
    import rmtgan._dense_spectrum as ds

    with monkeypatch.context() as mp:
        mp.setattr(ds, "RATIONAL_FROM", 10 ** 9)
        return gram_spectrum(m, method="dense")


def test_rational_fill_matches_exact_solves_for_fewer_inverses(monkeypatch):
    # the last Lobatto level filled from an AAA rational of the previous one (checked by the
    # certificate's exact solves) instead of solved node by node
    import rmtgan._dense_spectrum as ds

    m = noncommuting(7, p=60)
    fills = _fills(monkeypatch)
    spec = gram_spectrum(m, method="dense")
    assert spec.success and spec._interp_certified, spec.message
    assert any(f is not None for f in fills), "no level was filled: nothing tested"
    solved = _without_fill(m, monkeypatch)
    assert solved._interp_certified
    assert spec.n_evaluations < solved.n_evaluations
    assert spec.mass == pytest.approx(solved.mass, abs=ds.tolerances(spec.tol, m.n)["mass"])
    # served between every pair of nodes, against exact solves: the certificate's accuracy,
    # away from the edges (where rho -> 0 and relative errors grow, see docs/dense.md)
    for iv in spec.intervals:
        x = iv.x_of(np.linspace(0.02, np.pi / 2 - 0.02, 150))
        exact = spec.density(x, exact=True)
        np.testing.assert_allclose(spec.density(x), exact, rtol=ds.CERT_RTOL)
        np.testing.assert_allclose(solved.density(x), exact, rtol=ds.CERT_RTOL)


def _perturbed_fill(monkeypatch, bump):
    """The rational interpolant plus ``bump(t, scale)``; returns the model's dense spectrum and the fills."""
    import rmtgan._dense_spectrum as ds

    real = ds.rational_interpolant

    def perturbed(t, values, rtol, **kw):
        f = real(t, values, rtol, **kw)
        scale = float(np.max(np.abs(values)))
        return lambda tq: f(tq) + bump(np.asarray(tq), t.size, scale)[:, None]

    m = noncommuting(7, p=60)
    with monkeypatch.context() as mp:
        mp.setattr(ds, "rational_interpolant", perturbed)
        fills = _fills(mp)
        spec = gram_spectrum(m, method="dense")
    return m, spec, fills


def test_rational_fill_refused_when_the_exact_solves_disagree(monkeypatch):
    # an error of 1e-10 of the scale times the polynomial of degree n that vanishes at the n
    # nodes the rational interpolates (sin(theta) sin((n - 1) theta), t = cos theta): invisible
    # to the tail of the completed level (degree n of 2n - 2) and to the comparison with the
    # polynomial through it, caught by the certificate's exact solves (7 inverses spent),
    # after which the level is solved node by node as without the fill
    def node_polynomial(t, n, s):
        th = np.arccos(np.clip(t, -1.0, 1.0))
        return 1e-10 * s * np.sin(th) * np.sin((n - 1) * th)

    m, spec, fills = _perturbed_fill(monkeypatch, node_polynomial)
    assert fills and all(f is None for f in fills)
    solved = _without_fill(m, monkeypatch)
    # a refusal after the exact solves costs the certificate's 7 inverses
    assert solved.n_evaluations < spec.n_evaluations <= solved.n_evaluations + 7 * len(fills)
    x = np.concatenate([np.linspace(a, b, 60)[1:-1] for a, b in solved.support])
    np.testing.assert_array_equal(spec.density(x), solved.density(x))


def test_rational_fill_refused_for_a_pole_between_nodes(monkeypatch):
    # a narrow spike at a midpoint of the completed level (a pole of the rational just off the
    # interval): 1e-14 at the nodes, so the tail does not see it, 1e-6 at the midpoint, where
    # the polynomial through the filled nodes disagrees; refused without an exact solve
    def spike(t, n, s):
        n2 = 2 * n - 1
        tm = np.cos(0.5 * np.pi / (n2 - 1))  # the first midpoint of the completed level
        h = 1e-4 * (1.0 - tm)
        return 1e-6 * s * h ** 2 / ((t - tm) ** 2 + h ** 2)

    m, spec, fills = _perturbed_fill(monkeypatch, spike)
    assert fills and all(f is None for f in fills)
    solved = _without_fill(m, monkeypatch)
    assert spec.n_evaluations == solved.n_evaluations
    x = np.concatenate([np.linspace(a, b, 60)[1:-1] for a, b in solved.support])
    np.testing.assert_array_equal(spec.density(x), solved.density(x))


def test_rational_fill_refused_when_its_certificate_solves_fail(monkeypatch):
    # Newton not settling at a certificate point from the rational's guess is no reason to
    # give up the expansion: the level is then solved node by node, as without the fill
    import rmtgan._dense_spectrum as ds

    real = ds._Expansion._certificate

    def failing(self, n, cu, cJ, guess):
        if guess is not cu:  # the fill's check
            raise ds._Fallback("Newton failed")
        return real(self, n, cu, cJ, guess)

    m = noncommuting(7, p=60)
    with monkeypatch.context() as mp:
        mp.setattr(ds._Expansion, "_certificate", failing)
        fills = _fills(mp)
        spec = gram_spectrum(m, method="dense")
    assert fills and all(f is None for f in fills)
    assert spec._dense_note == "" and spec._interp_certified
    solved = _without_fill(m, monkeypatch)
    assert spec.n_evaluations == solved.n_evaluations
    x = np.concatenate([np.linspace(a, b, 60)[1:-1] for a, b in solved.support])
    np.testing.assert_array_equal(spec.density(x), solved.density(x))


def _matches_commuting(dense, fast):
    assert dense.success and fast.success, (dense.message, fast.message)
    assert len(dense.support) == len(fast.support)
    for (a1, b1), (a2, b2) in zip(fast.support, dense.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1
    x = np.concatenate([np.linspace(a, b, 40)[1:-1] for a, b in fast.support])
    np.testing.assert_allclose(dense.density(x), fast.density(x), rtol=1e-9)


@pytest.mark.slow
def test_walk_into_an_interval_past_a_near_cusp():
    # the density of [2.251, 3.266] dips to 2.6e-4 (from 3e-3) at x = 2.41925 without
    # vanishing; Newton from the walk's predictor landed on a real root of another branch
    # there, no edge was found, the steps shrank to nothing and everything below 3.37 went
    # to the generic construction (50 136 evaluations); continuation in Im z gives the
    # physical value and the walk goes on
    m = wiggly(seed=1, p=96, ratio=12)
    dense = gram_spectrum(m, method="dense")
    _matches_commuting(dense, gram_spectrum(m, method="commuting"))
    assert "generic" not in dense._dense_path, dense._dense_path


@pytest.mark.slow
def test_part_of_a_split_interval_whose_sweep_stops_is_walked_into():
    # a gap inside [11.60, 45.4] splits it; the sweep of the part [11.60, 33.22] stops at a
    # near-cusp (x = 22.41), which handed everything below 45.4 to the generic
    # construction; the walk from the part's right edge resolves it
    m = wiggly(seed=0, p=96, ratio=6)
    dense = gram_spectrum(m, method="dense")
    _matches_commuting(dense, gram_spectrum(m, method="commuting"))
    path = dense._dense_path
    below = float(path.rsplit("generic below ", 1)[1]) if "generic below " in path else 0.0
    assert below < 11.5, path


def test_noncommuting_spectrum_invariants():
    m = noncommuting(4, p=40)
    spec = gram_spectrum(m)
    assert spec.method == "dense" and spec.success, spec.message
    assert spec.mass + spec.atom == pytest.approx(1.0, abs=1e-9)
    # first moment: (1/n) sum_a n_a (1/p) tr C_a
    assert spec.mean() == pytest.approx(np.sum(m.sizes * m.traces()) / m.n, rel=1e-9)
    a, b = spec.support[0]
    x = a + (b - a) * np.array([1e-4, 0.01, 0.2, 0.5, 0.8, 0.99, 1 - 1e-4])
    exact = spec.density(x, exact=True)
    # the exact density is the eta -> 0 limit of Im m / pi: compare with the slow reference at small eta
    ref = np.array([ref_stieltjes(m, xi + 1e-9j).imag / np.pi for xi in x[2:5]])
    np.testing.assert_allclose(exact[2:5], ref, rtol=1e-6)
    assert spec._interp_certified, spec._interp_error
    np.testing.assert_allclose(spec.density(x), exact, rtol=1e-8)
    np.testing.assert_allclose(spec.density(x, exact=False), exact, rtol=1e-8)
    # outside the support: zero; real delta (folds) at the edges
    assert np.all(spec.density(np.array([0.5 * a, b * 1.01])) == 0.0)
    z = np.array([0.5 * (a + b) + 0.3j, 2 * b + 1j])
    np.testing.assert_allclose(spec.stieltjes(z), [ref_stieltjes(m, zj) for zj in z], rtol=1e-8)


def test_looser_tol_costs_fewer_inverses_and_keeps_its_accuracy():
    from rmtgan._dense_spectrum import tolerances

    m = noncommuting(7, p=60)
    tight = gram_spectrum(m)
    loose = gram_spectrum(m, tol=1e-6)
    assert tight.success and loose.success and loose._dense_note == ""
    # asking for less accuracy must not cost more (node values accurate to tol made the
    # tail plateau at about tol, which the default 1e-12 target never accepted)
    assert loose.n_evaluations < tight.n_evaluations
    cert = tolerances(1e-6, m.n)["cert"]
    assert loose._interp_certified and loose._interp_error <= cert
    for (a1, b1), (a2, b2) in zip(tight.support, loose.support, strict=True):
        assert abs(a1 - a2) <= 1e-10 * b1 and abs(b1 - b2) <= 1e-10 * b1  # edges: fold Newton, always tight
    a, b = tight.support[0][0], tight.support[-1][1]
    x = np.linspace(a, b, 50)[1:-1]
    np.testing.assert_allclose(loose.density(x), tight.density(x), rtol=cert)
    assert loose.mass + loose.atom == pytest.approx(1.0, abs=tolerances(1e-6, m.n)["mass"])


def test_scaled_quadratic_acceptance_at_a_loose_tol(monkeypatch):
    # above tol = 1e-10 the dense build accepts a Newton step from residual 0.01 sqrt(tol)
    # (1e-5 at tol = 1e-6) instead of 1e-7: fewer evaluations (on a model of 18 intervals:
    # with a single interval the rational fills leave it nothing to save), the density
    # within the certificate's tolerance at that tol of the default one (the error after the
    # step is C r^2 <= tol up to C = 1e4), and within tol itself on a smooth model
    import rmtgan._dense_spectrum as ds
    from rmtgan.solver import quadratic_tolerance

    assert quadratic_tolerance(1e-6, scaled=True) == pytest.approx(1e-5)
    assert quadratic_tolerance(1e-6) == quadratic_tolerance(1e-12) == quadratic_tolerance(1e-12, scaled=True)
    assert quadratic_tolerance(1e-16, scaled=True) == quadratic_tolerance(1e-16) == pytest.approx(1e-9)
    for m, rtol in ((noncommuting(7, p=60), 1e-6), (wiggly(), ds.tolerances(1e-6, 1)["cert"])):
        tight = gram_spectrum(m, method="dense")
        loose = gram_spectrum(m, tol=1e-6, method="dense")
        x = np.concatenate([np.linspace(a, b, 60)[1:-1] for a, b in tight.support])
        np.testing.assert_allclose(loose.density(x), tight.density(x), rtol=rtol)
    with monkeypatch.context() as mp:  # the wiggly() model's again, without the scaling
        mp.setattr(ds, "quadratic_tolerance", lambda tol, scaled=False: quadratic_tolerance(tol))
        capped = gram_spectrum(m, tol=1e-6, method="dense")
    assert loose.n_evaluations < capped.n_evaluations


def test_fallback_to_generic_construction_hard_edge():
    # gamma = 1: a hard edge at 0, which the walk hands back to the generic construction
    p = 30
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((p, p)))
    mp = MixtureModel.from_eigen(np.ones((1, p)), [p], basis=q)
    spec = gram_spectrum(mp, method="dense")
    assert spec.success and spec._dense_note
    (a, b), = spec.support
    assert a == 0.0 and b == pytest.approx(4.0, rel=1e-10)
    # Marchenko-Pastur, c = 1: rho(x) = sqrt((4 - x) x) / (2 pi x), served from the certified panels
    assert spec._interp_certified
    x = np.linspace(0.0, 4.0, 30)[1:-1]
    np.testing.assert_allclose(spec.density(x), np.sqrt((4 - x) * x) / (2 * np.pi * x), rtol=1e-9)


def test_progress_bar_runs(model):
    spec = gram_spectrum(noncommuting(5, p=20), progress=True)
    assert spec.success
    assert spec._backend.progress is None  # closed after the build


# --------------------------------------------------------------------------- torch
@pytest.fixture
def torch():
    return pytest.importorskip("torch", reason="the torch backend needs torch")


@pytest.mark.torch
def test_torch_backend_matches_numpy(model, torch):
    tb = make_backend(model, backend="torch", device="cpu")
    nb = make_backend(model)
    assert tb.array_backend == "torch" and tb.name == "dense"
    z = np.array([1.0 + 0.3j, 2.0 + 0.0j, 0.7 + 0.01j])
    d = np.array([[0.3 + 0.2j, 0.1 + 0.4j, 0.5 + 0.1j], [0.2, 0.3, 0.1],
                  [1.0 + 1e-3j, 0.4 + 1e-2j, 0.2 + 0.3j]])
    for a, b in zip(tb.evaluate(z, d), nb.evaluate(z, d), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    for a, b in zip(tb.mean_quadratic(z, d), nb.mean_quadratic(z, d), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-11, atol=1e-14)
    zs = np.array([0.5 + 1.0j, 4.0 + 0.7j])
    np.testing.assert_allclose(solve(model, zs, backend="torch", device="cpu").delta, solve(model, zs).delta,
                               rtol=1e-11)
    spec_t = gram_spectrum(noncommuting(6, p=20), backend="torch", device="cpu")
    spec_n = gram_spectrum(noncommuting(6, p=20))
    assert spec_t.success
    np.testing.assert_allclose(np.array(spec_t.support), np.array(spec_n.support), rtol=1e-11)


@pytest.mark.torch
def test_prepared_gpu_script_runs_on_cpu(torch, tmp_path):
    # benchmarks/gpu_dense.py is the one script a GPU session runs (issue 3): keep it working
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "benchmarks" / "gpu_dense.py"
    mod_spec = importlib.util.spec_from_file_location("gpu_dense", path)
    mod = importlib.util.module_from_spec(mod_spec)
    mod_spec.loader.exec_module(mod)
    info = mod.main(["--device", "cpu", "--p", "40", "--points", "16", "--out", str(tmp_path)])
    assert info["success"] and info["certified"] and info["density_positive"]
    assert info["interp_vs_exact_max_rel"] < 1e-8
    assert (tmp_path / "gpu_dense.json").exists()


@pytest.mark.torch
def test_torch_bad_inverse_falls_back_loudly(model, monkeypatch, torch):
    tb = make_backend(model, backend="torch", device="cpu")
    real_inv_ex = torch.linalg.inv_ex

    def broken(A):  # what a faulty MKL call looks like: info 0, garbage inside
        R, info = real_inv_ex(A)
        return torch.zeros_like(R) + 1e3, info

    monkeypatch.setattr(torch.linalg, "inv_ex", broken)
    z = np.array([1.0 + 0.3j])
    d = np.array([[0.3 + 0.2j, 0.1 + 0.4j, 0.5 + 0.1j]])
    with pytest.warns(RuntimeWarning, match="redone with LAPACK"):
        t, J, tz = tb.evaluate(z, d)
    assert tb.n_fallbacks == 1
    rt, rJ, rtz, _, _ = ref_traces(model, z[0], d[0])
    np.testing.assert_allclose(t[0], rt, rtol=1e-11)
    np.testing.assert_allclose(J[0], rJ, rtol=1e-11)


@pytest.mark.torch
def test_torch_device_validation(model, torch):
    with pytest.raises(ValueError, match="device"):
        make_backend(model, backend="torch", device="not-a-device")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="cuda"):
            make_backend(model, backend="torch", device="cuda")


# --------------------------------------------------------------------------- Monte Carlo
@pytest.mark.slow
def test_monte_carlo_noncommuting():
    """Sorted eigenvalues of G against predicted quantiles (rigidity: O(width / n) on average)."""
    m = noncommuting(7, p=120)
    spec = gram_spectrum(m)
    assert spec.success
    rng = np.random.default_rng(8)
    n = m.n
    eig = []
    z = np.array([0.5, 1.0, 2.0]) * spec.mean() + 0.5j * spec.mean()
    mz = []
    for _ in range(20):
        data, _ = m.sample(rng=rng)  # (n, p); G = data data^T / p is n x n
        ev = np.linalg.eigvalsh(data @ data.T / m.p)
        eig.append(ev)
        mz.append(np.mean(1.0 / (ev[None] - z[:, None]), axis=1))
    eig = np.mean(eig, axis=0)
    qs = spec.quantiles((np.arange(n) + 0.5) / n)
    width = spec.support[-1][1] - spec.support[0][0]
    assert np.mean(np.abs(eig - qs)) <= 2.0 * width / n
    err = np.abs(np.mean(mz, axis=0) - spec.stieltjes(z))
    assert np.all(err <= spec.mean() / (n * z.imag ** 2))


@pytest.mark.parametrize("fast_jac", [False, True])
def test_contracted_fold_derivatives_against_full(model, fast_jac):
    # along(v, w) = (w^T Dd, w^T Dx) from one product: against the contraction of the full
    # second derivatives (both from single-precision products: 1e-6 relative), on both backends
    from rmtgan.commuting import CommutingBackend

    be = DenseBackend(model)
    x, d, v, w = 3.0, np.array([0.2, 0.3, 0.1]), np.array([0.3, 0.5, 0.2]), np.array([1.2, 0.4, 0.7])
    along = be.fold_point(x, d, fast_jac=fast_jac)[3]
    Dd, Dx = along(v)
    gd, gx = along(v, w)
    np.testing.assert_allclose(gd, w @ Dd, rtol=1e-6, atol=1e-7 * np.abs(w @ Dd).max())
    np.testing.assert_allclose(gx, w @ Dx, rtol=1e-6)
    cm = outlier_model()
    sup = gram_spectrum(cm, method="commuting").support
    xc = 2.0 * sup[-1][1]
    dc = solve(cm, np.array([xc + 0j]), method="commuting").delta[0].real
    vc, wc = np.array([0.7, 0.3])[: cm.k], np.array([0.2, 0.9])[: cm.k]
    Ddc, Dxc = CommutingBackend(cm).fold_point(xc, dc)[3](vc)
    gdc, gxc = CommutingBackend(cm).fold_point(xc, dc)[3](vc, wc)
    np.testing.assert_allclose(gdc, wc @ Ddc, rtol=1e-13)
    np.testing.assert_allclose(gxc, wc @ Dxc, rtol=1e-13)
    gds, gxs = DenseBackend(cm).fold_point(xc, dc)[3](vc, wc)
    np.testing.assert_allclose(gds, gdc, rtol=1e-5, atol=1e-6 * np.abs(gdc).max())
    np.testing.assert_allclose(gxs, gxc, rtol=1e-5)


def test_single_precision_evaluation_and_its_fallback(model, monkeypatch):
    # evaluate(single=True): a complex64 inverse; t, J and dt/dz to single precision times the
    # conditioning of A (this model: 1e-5 relative), never bit for bit the double result; a
    # failed probe check evaluates the point in double precision instead (then bit for bit)
    import rmtgan.dense as dn

    z = np.array([1.0 + 0.3j, 2.5 + 0.05j])
    d = solve(model, z, method="dense").delta
    ref = DenseBackend(model).evaluate(z, d, fast_jac=True)
    be = DenseBackend(model)
    got = be.evaluate(z, d, fast_jac=True, single=True)
    assert be.n_evaluations == 2
    for g, r in zip(got, ref, strict=True):
        np.testing.assert_allclose(g, r, rtol=1e-5, atol=1e-5 * np.abs(r).max())
        assert np.max(np.abs(g - r)) > 0
    monkeypatch.setattr(dn, "PROBE_RTOL_SINGLE", 0.0)
    again = DenseBackend(model).evaluate(z, d, fast_jac=True, single=True)
    for g, r in zip(again, ref, strict=True):
        np.testing.assert_array_equal(g, r)


def test_newton_single_first_accepts_only_on_double_residuals(model):
    # the first evaluation in single precision steers the first step only: started at the
    # solution itself, a point still takes a second (double-precision) evaluation, and the
    # solutions agree with plain Newton's to the tolerance
    from rmtgan.solver import newton

    z = np.array([1.0 + 0.3j, 2.5 + 0.05j, 4.0 + 0.2j])
    exact = solve(model, z, method="dense").delta
    be = DenseBackend(model)
    out = newton(be, z, exact, tol=1e-12, fast_jac=True, single_first=True)
    assert out.converged.all() and np.all(out.iterations == 2)
    # at a loose tol a single-precision residual (about 1e-7 here) would pass both tol and
    # the quadratic acceptance: it must not be the one that accepts
    out = newton(DenseBackend(model), z, exact, tol=1e-6, tol_quad=1e-5, fast_jac=True, single_first=True)
    assert out.converged.all() and np.all(out.iterations == 2)
    guess = exact * (1.0 + 1e-3)
    plain = newton(DenseBackend(model), z, guess, tol=1e-12, fast_jac=True)
    rough = newton(DenseBackend(model), z, guess, tol=1e-12, fast_jac=True, single_first=True)
    assert plain.converged.all() and rough.converged.all()
    np.testing.assert_allclose(rough.delta, exact, rtol=1e-10)
    np.testing.assert_allclose(plain.delta, exact, rtol=1e-10)


def test_rational_hermite_reproduces_a_rational_function_and_refuses_a_pole():
    # values and slopes of rational functions of types (1, 2) and (0, 1) at 9 Lobatto points,
    # a pole 0.3 off the interval: the type (9, 8) fit is those functions to rounding between
    # the points, where the polynomial Hermite interpolant (degree 17) is not; a pole 1e-10
    # off the interval is refused (the denominator nearly vanishes on [-1, 1])
    import rmtgan._dense_spectrum as ds

    t = ds.lobatto(9)
    tq = np.linspace(-0.99, 0.99, 101)

    def f(x, pole):
        return np.stack([(1 + 0.3 * x) / ((x - pole) * (x - 2.5)), 1 / (x - pole)], axis=-1)

    def df(x, pole):
        q = (x - pole) * (x - 2.5)
        return np.stack([(0.3 * q - (1 + 0.3 * x) * (2 * x - pole - 2.5)) / q ** 2, -1 / (x - pole) ** 2],
                        axis=-1)

    pole = 0.2 + 0.3j
    fit = ds.rational_hermite(t, f(t, pole), df(t, pole))
    ref = f(tq, pole)
    err = np.max(np.abs(fit(tq) - ref)) / np.max(np.abs(ref))
    assert err <= 1e-12
    poly = ds._chebval(tq, ds.hermite_coefficients(t, f(t, pole), df(t, pole)))
    assert np.max(np.abs(poly - ref)) / np.max(np.abs(ref)) > 1e-6
    near = 0.31 + 1e-10j
    assert ds.rational_hermite(t, f(t, near), df(t, near)) is None


def test_fill_from_the_first_level_at_a_loose_tol(monkeypatch):
    # at tol = 1e-6 the rational Hermite interpolant of the first level (9 nodes and their
    # slopes) fills the next two levels: no node of level 17 is solved, the certificate's
    # exact solves check it, and the density is that of the default tol to 1e-6
    import rmtgan._dense_spectrum as ds

    m = noncommuting(7, p=60)
    fills = _fills(monkeypatch)
    loose = gram_spectrum(m, tol=1e-6, method="dense")
    assert loose.success and loose._interp_certified
    assert fills and fills[0] is not None and fills[0][0] == 33  # from 9 nodes, two levels
    with monkeypatch.context() as mp:
        mp.setattr(ds, "rational_hermite", lambda *a, **k: None)
        solved = gram_spectrum(m, tol=1e-6, method="dense")
    assert loose.n_evaluations < solved.n_evaluations
    tight = gram_spectrum(m, method="dense")
    x = np.concatenate([np.linspace(a, b, 60)[1:-1] for a, b in tight.support])
    np.testing.assert_allclose(loose.density(x), tight.density(x), rtol=1e-6)


def test_fill_candidates_share_one_certificate(monkeypatch):
    # the first AAA size is off by a node polynomial that only exact solves see; the next
    # size is checked against the same seven solves, without solving again
    import rmtgan._dense_spectrum as ds

    real = ds.rational_interpolant

    def first_off(t, values, rtol, max_terms=None):
        f = real(t, values, rtol, max_terms=max_terms)
        if f is None or max_terms != (t.size + 1) // 2:
            return f
        n, s = t.size, float(np.max(np.abs(values)))

        def g(tq):
            th = np.arccos(np.clip(tq, -1.0, 1.0))
            return f(tq) + (1e-10 * s * np.sin(th) * np.sin((n - 1) * th))[:, None]

        return g

    m = noncommuting(7, p=60)
    with monkeypatch.context() as mp:
        mp.setattr(ds, "rational_hermite", lambda *a, **k: None)
        plain = gram_spectrum(m, method="dense")
        mp.setattr(ds, "rational_interpolant", first_off)
        fills = _fills(mp)
        spec = gram_spectrum(m, method="dense")
    assert any(f is not None for f in fills)
    assert spec._interp_certified and spec.n_evaluations == plain.n_evaluations


def test_newton_returns_the_evaluated_iterate_without_a_last_step(model):
    # last_step=False: the point returned is the iterate whose residual met tol (or whose
    # Newton step met tol_step), and its data are cached: fold data there cost no inverse
    from rmtgan.solver import newton

    be = DenseBackend(model)
    x = 3.0 * gram_spectrum(model, method="dense").support[-1][1]
    d0 = np.full((1, model.k), -0.01 + 0j)
    out = newton(be, np.array([x + 0j]), d0, tol=1e-6, fast_jac=True, last_step=False)
    assert out.converged[0]
    t = DenseBackend(model).evaluate(np.array([x + 0j]), out.delta)[0]
    r = np.max(np.abs(out.delta - t))
    assert r == pytest.approx(out.residual[0], rel=1e-6) and r <= 1e-6
    assert r > 1e-15  # not the solution polished by one more step
    before = be.n_evaluations
    t, J, tz, _ = be.fold_point(x, out.delta[0].real, fast_jac=True)
    assert be.n_evaluations == before
    with pytest.raises(ValueError):  # what a later cache hit returns cannot be changed
        J[0, 0] = 0.0
    be.release()
    be.fold_point(x, out.delta[0].real, fast_jac=True)
    assert be.n_evaluations == before + 1
    step = newton(DenseBackend(model), np.array([x + 0j]), d0, tol=1e-300, fast_jac=True, last_step=False,
                  tol_step=1e-4)
    assert step.converged[0] and step.residual[0] > 1e-300


def test_sweep_guesses_through_the_walks_outside_points(monkeypatch):
    # the walks' last points outside the edges, as points of u at complex theta, make the
    # sweep's first guesses better: fewer evaluations for the same spectrum
    import rmtgan._dense_spectrum as ds

    m = noncommuting(7, p=60)
    with_points = gram_spectrum(m, method="dense")
    monkeypatch.setattr(ds, "outside_point", lambda *a, **k: None)
    without = gram_spectrum(m, method="dense")
    assert with_points.n_evaluations < without.n_evaluations
    x = np.concatenate([np.linspace(a, b, 40)[1:-1] for a, b in without.support])
    np.testing.assert_allclose(with_points.density(x), without.density(x), rtol=1e-9)
