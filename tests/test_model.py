"""MixtureModel: validation, commuting detection, atom, sampling, moment estimation."""

import numpy as np
import pytest

from rmtgan import MixtureModel, MomentAccumulator


def _rotation(p, seed):
    q, r = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    return q * np.sign(np.diag(r))


def test_basic_properties():
    p = 5
    cov = np.stack([np.eye(p), 2 * np.eye(p)])
    m = MixtureModel(np.zeros((2, p)), cov, [3, 7])
    assert (m.k, m.p, m.n) == (2, 5, 10)
    assert m.sizes.tolist() == [3, 7]
    np.testing.assert_allclose(m.ratios, [3 / 5, 7 / 5])
    assert m.gamma == 2.0
    np.testing.assert_allclose(m.traces(), [1.0, 2.0])


@pytest.mark.parametrize(
    "kwargs, exc, words",
    [
        (dict(covariances=np.ones((2, 3, 4))), ValueError, "(k, p, p)"),
        (dict(covariances=np.ones((3, 3))), ValueError, "(k, p, p)"),
        (dict(sizes=[3, 0]), ValueError, "sizes[1]"),
        (dict(sizes=[3, 2.5]), ValueError, "sizes[1]"),
        (dict(sizes=[3, -1]), ValueError, "positive"),
        (dict(sizes=[3]), ValueError, "k = 2"),
        (dict(sizes=["a", 3]), TypeError, "sizes[0]"),
        (dict(sizes=[]), ValueError, "empty"),
        (dict(means=np.zeros((2, 4))), ValueError, "means"),
        (dict(means=np.full((2, 3), np.nan)), ValueError, "non-finite"),
    ],
)
def test_bad_input_named(kwargs, exc, words):
    args = dict(means=np.zeros((2, 3)), covariances=np.stack([np.eye(3)] * 2), sizes=[3, 4])
    args.update(kwargs)
    with pytest.raises(exc) as info:
        MixtureModel(**args)
    assert words in str(info.value)


def test_nonsymmetric_and_non_psd_name_the_class():
    good = np.eye(3)
    asym = np.eye(3)
    asym[0, 1] = 0.5
    with pytest.raises(ValueError, match="class 1 is not symmetric"):
        MixtureModel(np.zeros((2, 3)), np.stack([good, asym]), [2, 2])
    neg = np.diag([1.0, 1.0, -0.1])
    with pytest.raises(ValueError, match=r"class 0 is not positive semi-definite.*-0\.1"):
        MixtureModel(np.zeros((2, 3)), np.stack([neg, good]), [2, 2])
    with pytest.raises(ValueError, match="class 1"):
        MixtureModel.from_eigen([[1.0, 2.0], [1.0, -3.0]], [2, 2])


def test_nan_and_complex_rejected():
    cov = np.stack([np.eye(3)])
    cov[0, 2, 2] = np.inf
    with pytest.raises(ValueError, match="non-finite"):
        MixtureModel(np.zeros((1, 3)), cov, [4])
    with pytest.raises(TypeError, match="real"):
        MixtureModel(np.zeros((1, 3)), np.stack([np.eye(3)]) + 0j, [4])
    with pytest.raises(TypeError, match="numeric"):
        MixtureModel(np.zeros((1, 3)), [[["a"] * 3] * 3], [4])


def test_commuting_detection():
    p = 6
    U = _rotation(p, 0)
    lam = np.array([[1, 2, 3, 4, 5, 6], [6, 1, 1, 2, 0.5, 3.0]])
    dense = np.einsum("ij,aj,kj->aik", U, lam, U)
    m = MixtureModel(np.zeros((2, p)), dense, [4, 5])
    assert m.is_commuting
    e = m.eigen
    # the recovered eigenvalues, paired by eigenvector, reproduce the covariances
    rebuilt = np.einsum("ij,aj,kj->aik", e.basis, e.eigenvalues, e.basis)
    np.testing.assert_allclose(rebuilt, dense, atol=1e-12)
    # diagonal: identity basis
    assert MixtureModel(np.zeros((2, p)), np.stack([np.diag(v) for v in lam]), [4, 5]).eigen.basis is None
    # a generic pair does not commute
    A = np.random.default_rng(1).standard_normal((p, p))
    other = np.stack([np.eye(p) + np.diag(np.arange(p)), A @ A.T])
    assert not MixtureModel(np.zeros((2, p)), other, [4, 5]).is_commuting


def test_from_eigen_basis_must_be_orthogonal():
    with pytest.raises(ValueError, match="not orthogonal"):
        MixtureModel.from_eigen(np.ones((1, 3)), [3], basis=np.ones((3, 3)))
    with pytest.raises(ValueError, match="shape"):
        MixtureModel.from_eigen(np.ones(3), [3])


def test_eigen_covariances_materialise():
    p = 4
    U = _rotation(p, 3)
    m = MixtureModel.from_eigen([[1.0, 2.0, 3.0, 4.0]], [5], basis=U)
    np.testing.assert_allclose(m.covariances[0], U @ np.diag([1, 2, 3, 4.0]) @ U.T, atol=1e-14)


@pytest.mark.parametrize(
    "lam, sizes, expected",
    [
        ([[1.0] * 10], [30], 1 - 10 / 30),  # p < n, full rank
        ([[1.0] * 10], [4], 0.0),  # p > n
        # two classes on disjoint 3-dim subspaces of R^10, 5 samples each: rank 3 + 3
        ([[1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 0, 0, 0, 0]], [5, 5], 1 - 6 / 10),
        # same subspace: rank min(10 samples, 3)
        ([[1, 1, 1, 0, 0, 0, 0, 0, 0, 0], [2, 2, 2, 0, 0, 0, 0, 0, 0, 0]], [5, 5], 1 - 3 / 10),
        # one class rank 2 with 5 samples, other full rank with 4 samples: rank 2 + 4
        ([[1, 1, 0, 0, 0, 0, 0, 0, 0, 0], [1.0] * 10], [5, 4], 1 - 6 / 9),
    ],
)
def test_zero_mass_matches_rank_of_a_draw(lam, sizes, expected):
    m = MixtureModel.from_eigen(np.array(lam, float), sizes)
    assert m.zero_mass() == pytest.approx(expected, abs=1e-15)
    # the rank of an actual Gaussian draw (general position) agrees
    X, _ = m.sample(rng=0)
    r = np.linalg.matrix_rank(X)
    assert 1 - r / m.n == pytest.approx(expected, abs=1e-15)
    # the dense path of the rank formula agrees as well
    dense = MixtureModel(np.zeros((m.k, m.p)), m.covariances + 0.0, sizes)
    dense._eigen_checked = True  # force the dense code path of zero_mass
    dense._eigen = None
    assert dense.zero_mass() == pytest.approx(expected, abs=1e-15)


def test_sample_moments_and_seed():
    p = 4
    U = _rotation(p, 2)
    lam = np.array([[1.0, 2.0, 0.5, 0.1], [3.0, 0.2, 1.0, 1.0]])
    mu = np.arange(2 * p, dtype=float).reshape(2, p)
    m = MixtureModel.from_eigen(lam, [40000, 30000], means=mu, basis=U)
    X, y = m.sample(rng=5, chunk_size=7000)
    X2, _ = m.sample(rng=5, chunk_size=7000)
    np.testing.assert_array_equal(X, X2)
    assert X.shape == (70000, p) and y.tolist().count(1) == 30000
    for a in range(2):
        Xa = X[y == a]
        n_a = Xa.shape[0]
        # sample-mean error is C_a^{1/2} z / sqrt(n_a): 5 standard errors
        se = np.sqrt(np.diag(m.covariances[a]) / n_a)
        assert np.all(np.abs(Xa.mean(0) - mu[a]) < 5 * se)
        emp = np.cov(Xa.T)
        # covariance entries fluctuate by sqrt((C_ii C_jj + C_ij^2) / n_a)
        C = m.covariances[a]
        sd = np.sqrt((np.outer(np.diag(C), np.diag(C)) + C ** 2) / n_a)
        assert np.all(np.abs(emp - C) < 5 * sd)


def test_sample_depends_on_the_moments_only():
    """The draw for a seed is the same whatever eigenvector signs or form give the covariances."""
    p = 5
    U = _rotation(p, 4)
    lam = np.array([[1.0, 2.0, 0.5, 0.1, 0.0], [3.0, 0.2, 1.0, 1.0, 1.0]])  # a kernel, a repeat
    flips = U * np.array([1, -1, -1, 1, -1])
    a = MixtureModel.from_eigen(lam, [7, 9], basis=U)
    b = MixtureModel.from_eigen(lam, [7, 9], basis=flips)
    c = MixtureModel(None, a.covariances, [7, 9])  # dense: eigenvectors from LAPACK
    Xa = a.sample(rng=3)[0]
    np.testing.assert_allclose(b.sample(rng=3)[0], Xa, rtol=0, atol=1e-13)
    # from LAPACK the zero eigenvalue comes out as ~ p eps ||C||, whose root is ~ sqrt(p eps ||C||):
    # the square root is continuous, but only Hoelder-1/2 at a kernel
    tol = 10 * np.sqrt(p * np.finfo(float).eps * lam.max())
    np.testing.assert_allclose(c.sample(rng=3)[0], Xa, rtol=0, atol=tol)
    # the root is C^{1/2}: symmetric, squaring to C
    for k in range(2):
        L = a._factor(k)
        np.testing.assert_allclose(L, L.T, atol=1e-15)
        np.testing.assert_allclose(L @ L, a.covariances[k], atol=1e-14)


def test_moment_accumulator_matches_numpy():
    rng = np.random.default_rng(0)
    X = rng.standard_normal((500, 6)) * 3 + 1e4  # large mean: the streaming update must not cancel
    y = rng.integers(0, 3, 500)
    acc = MomentAccumulator()
    for lo in range(0, 500, 37):
        acc.update(X[lo:lo + 37], y[lo:lo + 37])
    for a in range(3):
        np.testing.assert_allclose(acc.means[a], X[y == a].mean(0), rtol=1e-13)
        np.testing.assert_allclose(acc.covariances[a], np.cov(X[y == a].T), rtol=1e-9)
    m = MixtureModel.from_features(X, y)
    assert m.sizes.tolist() == np.bincount(y).tolist()
    np.testing.assert_allclose(m.covariances, acc.covariances)
    m2 = MixtureModel.from_features(X, y, sizes=[10, 10, 10])
    assert m2.n == 30


def test_from_features_bad_input():
    X = np.ones((5, 3))
    with pytest.raises(ValueError, match="length 4"):
        MixtureModel.from_features(X, [0, 0, 1, 1])
    y = np.array([0, 0, 0, 0, 1])
    with pytest.raises(ValueError, match="class 1 has 1 sample"):
        MixtureModel.from_features(np.random.default_rng(0).standard_normal((5, 3)), y)
    Xn = np.ones((5, 3))
    Xn[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"non-finite.*\(2, 1\)"):
        MixtureModel.from_features(Xn, [0, 0, 0, 1, 1])


def test_scaled_and_variants():
    m = MixtureModel.from_eigen([[1.0, 2.0]], [3], means=[[1.0, 1.0]])
    s = m.scaled(4.0)
    np.testing.assert_allclose(s.eigen.eigenvalues, [[4.0, 8.0]])
    np.testing.assert_allclose(s.means, [[2.0, 2.0]])
    assert m.with_sizes([7]).n == 7
    with pytest.raises(ValueError, match="scale"):
        m.scaled(-1.0)
    for bad in ("2", True, None):
        with pytest.raises(TypeError, match="scale"):
            m.scaled(bad)


def test_bad_sizes_and_samples_named():
    m = MixtureModel.isotropic([1.0, 2.0], [4, 5], 3)
    for big in ([1e30, 3], [2 ** 63, 3]):
        with pytest.raises(ValueError, match=r"sizes\[0\].*too large"):
            m.with_sizes(big)
    for method in (m.sample, lambda s: list(m.iter_samples(s))):
        with pytest.raises(ValueError, match="k = 2"):
            method([5])
        with pytest.raises(ValueError, match="k = 2"):
            method([5, 5, 5])
    with pytest.raises(TypeError, match="floating"):
        m.sample(dtype=int)
    with pytest.raises(TypeError, match="dtype"):
        m.sample(dtype="no such type")
    data, _ = m.sample(rng=0, dtype=np.float32)
    assert data.dtype == np.float32 and np.any(data != 0)


def test_moment_accumulator_keeps_one_kind_of_label():
    X = np.random.default_rng(0).standard_normal((20, 3))
    acc = MomentAccumulator().update(X[:10], [0] * 10)
    with pytest.raises(ValueError, match="kind"):
        acc.update(X[10:], ["a"] * 10)
    acc.update(X[10:], np.full(10, 1, np.int8))  # integers of another width are the same kind
    assert acc.classes == [0, 1] and acc.counts.tolist() == [10, 10]


def test_model_owns_read_only_arrays():
    """Validation holds for the model's lifetime: neither the caller's arrays nor the properties change it."""
    p = 6
    cov = np.stack([np.eye(p), 2.0 * np.eye(p)])
    cov[1, 0, 1] = cov[1, 1, 0] = 0.5
    mu = np.zeros((2, p))
    sizes = np.array([8, 9])
    m = MixtureModel(mu, cov, sizes)
    cov[0, 0, 1] = 7.0  # would make class 0 non-symmetric
    mu[0, 0] = np.nan
    sizes[0] = -3
    assert m.covariances[0, 0, 1] == 0.0 and m.means[0, 0] == 0.0 and m.sizes.tolist() == [8, 9]
    for arr in (m.covariances, m.means):
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0] = 1.0
    lam = np.ones((1, p))
    e = MixtureModel.from_eigen(lam, [12], basis=_rotation(p, 1))
    lam[0, 0] = -5.0
    assert e.eigen.eigenvalues[0, 0] == 1.0
    for arr in (e.eigen.eigenvalues, e.eigen.basis, e.covariances):
        with pytest.raises(ValueError, match="read-only"):
            arr[0, 0] = -5.0
    d = MixtureModel(np.zeros((2, p)), np.stack([np.eye(p), np.diag(np.arange(1.0, p + 1))]), [5, 5])
    assert d.is_commuting
    with pytest.raises(ValueError, match="read-only"):
        d.eigen.eigenvalues[0, 0] = -1.0
    import pickle

    for model in (m, e, d):  # and after a pickle round trip
        back = pickle.loads(pickle.dumps(model))
        assert back.fingerprint() == model.fingerprint()
        arrays = [back.covariances, back.means] + ([back.eigen.eigenvalues] if back.is_commuting else [])
        for arr in arrays:
            with pytest.raises(ValueError, match="read-only"):
                arr[0, 0] = 2.0


def test_variants_keep_class_labels():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((40, 3))
    y = np.repeat(["cat", "dog"], 20)
    m = MixtureModel.from_features(X, y)
    for v in (m.with_sizes([30, 31]), m.with_means(np.ones((2, 3))), m.scaled(2.0)):
        assert v.class_labels.tolist() == ["cat", "dog"]
    e = MixtureModel.from_eigen(np.ones((2, 3)), [4, 5])
    e.class_labels = np.array([7, 3])
    assert e.with_sizes([6, 6]).class_labels.tolist() == [7, 3]


def test_fingerprint_separates_moments():
    p = 8
    Q = _rotation(p, 2)
    lam = np.linspace(0.02, 1.98, p)
    a = MixtureModel(np.zeros((1, p)), np.eye(p)[None], [16])
    b = MixtureModel(np.zeros((1, p)), ((Q * lam) @ Q.T)[None], [16])  # the same trace
    assert np.isclose(a.traces()[0], b.traces()[0])
    assert a.fingerprint(means=False) != b.fingerprint(means=False)
    again = MixtureModel(np.zeros((1, p)), np.eye(p)[None], [16])
    assert a.fingerprint(means=False) == again.fingerprint(means=False)
    moved = a.with_means(np.ones((1, p)))
    assert moved.fingerprint(means=False) == a.fingerprint(means=False)  # the same bulk
    assert moved.fingerprint() != a.fingerprint()
    assert a.with_sizes([17]).fingerprint(False) != a.fingerprint(False)
    assert a.scaled(2.0).fingerprint(False) != a.fingerprint(False)
    e = MixtureModel.from_eigen(np.ones((1, p)), [16])
    assert e.with_means(np.ones((1, p))).fingerprint(False) == e.fingerprint(False)
    # the digest is of the form a model was built from, whatever is cached later
    r = MixtureModel.from_eigen(np.linspace(1.0, 2.0, p)[None], [16], basis=Q)
    before = r.fingerprint(False)
    assert r.covariances.shape == (1, p, p)  # materialises the dense form
    assert r.fingerprint(False) == before
    # variants share the (read-only) arrays they do not change, and do not keep their parent
    import pickle

    v = r.with_means(np.ones((1, p)))
    assert v.eigen.basis is r.eigen.basis and v.fingerprint(False) == before
    assert len(pickle.dumps(v)) < 1.5 * len(pickle.dumps(r))


def _two_cluster_covariance(seed, p=136):
    """Eigenvalues 0.965896 (63 times) and 1.977015: LAPACK's dsyevr has failed on such matrices."""
    Q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((p, p)))
    lam = np.where(np.arange(p) < 63, 0.965896, 1.977015)
    C = (Q * lam) @ Q.T
    return 0.5 * (C + C.T)


@pytest.mark.parametrize("seed", [1, 10, 17])  # dsyevr said "Internal Error" for these here
def test_tightly_clustered_covariance_eigenvalues(seed):
    C = _two_cluster_covariance(seed)
    m = MixtureModel(np.zeros((2, C.shape[0])), np.stack([np.eye(C.shape[0]), C]), [300, 400])
    np.testing.assert_allclose(m.spectral_norms(), [1.0, 1.977015], rtol=1e-12)


def test_eigh_subset_falls_back_when_lapack_fails(monkeypatch):
    import scipy.linalg

    from rmtgan import _linalg

    A = np.random.default_rng(3).standard_normal((40, 40))
    C = A + A.T  # distinct eigenvalues: eigenvectors defined up to sign
    full_w, full_V = np.linalg.eigh(C)
    real_eigh = scipy.linalg.eigh
    tried, broken = [], set()

    def failing(a, *args, driver=None, **kw):
        tried.append(driver)
        if driver in broken:
            raise np.linalg.LinAlgError("Internal Error.")
        return real_eigh(a, *args, driver=driver, **kw)

    monkeypatch.setattr(_linalg.scipy.linalg, "eigh", failing)
    for fail, expect in ((("evr",), ["evr", "evx"]), (("evr", "evx"), ["evr", "evx", "evd"])):
        tried.clear()
        broken.clear()
        broken.update(fail)
        w = _linalg.eigh_subset(C, 38, 39)
        np.testing.assert_allclose(w, full_w[38:], rtol=1e-12)
        w, V = _linalg.eigh_subset(C, 0, 2, vectors=True)
        np.testing.assert_allclose(w, full_w[:3], rtol=1e-12)
        np.testing.assert_allclose(np.abs(V.T @ full_V[:, 3:]), 0.0, atol=1e-10)  # the right subspace
        assert tried[:len(expect)] == expect


def test_commuting_detection_at_any_scale():
    # a class of entries far below 1e-162 squares to 0 in a plain Frobenius norm: it must
    # still be recognised as commuting with the others (and a 1e+150 one not overflow)
    rng = np.random.default_rng(2)
    p = 12
    q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    lam = rng.uniform(0.5, 2.0, (2, p))
    for s in (1e-200, 1e-300, 1e150):
        covs = np.stack([(q * lam[0]) @ q.T, s * (q * lam[1]) @ q.T])
        covs = 0.5 * (covs + covs.transpose(0, 2, 1))
        assert MixtureModel(np.zeros((2, p)), covs, [20, 30]).is_commuting
    rot, _ = np.linalg.qr(rng.standard_normal((p, p)))
    other = np.stack([(q * lam[0]) @ q.T, 1e-200 * (rot * lam[1]) @ rot.T])
    other = 0.5 * (other + other.transpose(0, 2, 1))
    assert not MixtureModel(np.zeros((2, p)), other, [20, 30]).is_commuting


def test_with_means_none_means_zeros_as_in_the_constructors():
    p = 6
    mu = np.zeros((2, p))
    mu[0, 0] = mu[1, 1] = 3.0
    for m in (MixtureModel.from_eigen(np.stack([np.ones(p), 2 * np.ones(p)]), [9, 12], means=mu),
              MixtureModel(mu, np.stack([np.eye(p), 2 * np.eye(p)]), [9, 12])):
        z = m.with_means(None)
        assert np.all(z.means == 0) and z.fingerprint(False) == m.fingerprint(False)
        assert z.fingerprint() == m.with_means(np.zeros((2, p))).fingerprint()


def test_class_labels_are_validated_and_copied():
    m = MixtureModel.from_eigen(np.ones((2, 3)), [4, 5])
    lab = np.array([5, 6])
    m.class_labels = lab
    lab[0] = 7
    assert m.class_labels.tolist() == [5, 6]  # a copy
    with pytest.raises(ValueError, match="read-only"):
        m.class_labels[0] = 1
    m.class_labels = ["cat", "dog"]
    assert m.class_labels.tolist() == ["cat", "dog"]
    for bad, exc, words in ((None, TypeError, "None"), (5, ValueError, "1-d"),
                            ([0, 1, 2], ValueError, "k = 2 classes"), ([7, 7], ValueError, "distinct"),
                            ([0.5, 1.0], ValueError, "integer"), ([[0, 1]], ValueError, "1-d")):
        with pytest.raises(exc, match=words):
            m.class_labels = bad
    assert m.class_labels.tolist() == ["cat", "dog"]  # a refused value changes nothing


@pytest.mark.parametrize("first", ["spectrum", "nothing"])
def test_variants_keep_the_bulk_fingerprint_whatever_was_cached(first):
    """``with_sizes(model.sizes)`` is the same bulk before and after the eigen form is cached."""
    from rmtgan import gram_spectrum

    p = 12
    dense = MixtureModel(np.zeros((2, p)), np.stack([np.eye(p), 2 * np.eye(p)]), [20, 30])
    eig = MixtureModel.from_eigen(np.stack([np.ones(p), 2 * np.ones(p)]), [20, 30])
    for m in (dense, eig):
        if first == "spectrum":
            gram_spectrum(m)  # caches the (diagonal) eigen form of the dense model
            assert m.covariances.shape == (2, p, p)  # materialises the dense form of the eigen one
        same = m.with_sizes(m.sizes)
        assert same.fingerprint(False) == m.fingerprint(False)
        assert m.scaled(1.0).fingerprint(False) == m.fingerprint(False)
        assert m.with_sizes([21, 30]).fingerprint(False) != m.fingerprint(False)


def test_booleans_are_not_moments():
    p = 3
    with pytest.raises(TypeError, match="booleans"):
        MixtureModel(np.zeros((1, p), bool), np.eye(p)[None], [5])
    with pytest.raises(TypeError, match="booleans"):
        MixtureModel(None, np.eye(p, dtype=bool)[None], [5])
    with pytest.raises(TypeError, match="booleans"):
        MixtureModel.from_eigen(np.ones((1, p), bool), [5])
    # binary features are data: 0 and 1
    X = np.random.default_rng(0).standard_normal((10, p)) > 0
    acc = MomentAccumulator().update(X, np.repeat([0, 1], 5))
    np.testing.assert_allclose(acc.means, [X[:5].mean(0), X[5:].mean(0)])


def test_flags_and_messages_name_the_argument():
    m = MixtureModel.from_eigen(np.ones((1, 3)), [5])
    with pytest.raises(TypeError, match="means must be True or False"):
        m.fingerprint(means="no")
    with pytest.raises(ValueError, match=r"variances\[1\] is -2.0"):
        MixtureModel.isotropic([1.0, -2.0], [3, 4], 5)
    with pytest.raises(ValueError, match="variances is empty"):
        MixtureModel.isotropic([], [], 4)
    for name in ("means", "covariances"):
        with pytest.raises(ValueError, match="no features were accumulated"):
            getattr(MomentAccumulator(), name)
    with pytest.raises(ValueError, match=r"value \(nan\)"):  # not np.float64(nan)
        MixtureModel.from_eigen(np.array([[1.0, np.nan]]), [4])


def test_models_pickled_with_plain_class_labels_still_load():
    import pickle

    m = MixtureModel.from_eigen(np.ones((2, 3)), [4, 5])
    m.class_labels = ["cat", "dog"]
    old = dict(m.__dict__)
    old["class_labels"] = np.array(old.pop("_class_labels"))  # as pickled before the property
    back = MixtureModel.__new__(MixtureModel)
    back.__setstate__(old)
    assert back.class_labels.tolist() == ["cat", "dog"] and not back.class_labels.flags.writeable
    again = pickle.loads(pickle.dumps(back))
    assert again.class_labels.tolist() == ["cat", "dog"] and again.fingerprint() == m.fingerprint()


def test_full_rank_cholesky_shortcut_matches_the_eigenvalue_rule():
    # _full_rank tries a Cholesky factorisation before the eigenvalues: its answer must be the
    # eigenvalue rule's (smallest eigenvalue above RANK_RTOL of the largest) on both sides of
    # the threshold, including where the shortcut cannot decide (then the eigenvalues do)
    from rmtgan.model import RANK_RTOL

    rng = np.random.default_rng(7)
    p = 60
    Q, _ = np.linalg.qr(rng.standard_normal((p, p)))
    for low in (0.0, 0.5, 0.99, 1.01, 3.0, 1e3, 1e9):
        lam = np.linspace(1.0, 2.0, p)
        lam[0] = low * RANK_RTOL * 2.0
        C = (Q * lam) @ Q.T
        C = 0.5 * (C + C.T)
        m = MixtureModel(np.zeros((2, p)), np.stack([C, np.eye(p)]), [p, p])
        w = np.linalg.eigvalsh(C)
        assert m._full_rank(0) == bool(np.all(w > RANK_RTOL * np.max(np.abs(w)))), low
