"""Tests of the empirical side: Gram spectra, streaming, eigenpairs, alignments.

Reference values come from slow, obviously correct computations (the full
``n x n`` Gram and ``numpy.linalg.eigh``), from exact algebra (traces, hand-built
vectors, ``j_a^T u = n_a mu_a^T v / sqrt(p lambda)``) or from random-matrix theory
(Marchenko-Pastur edges).  Tolerances for floating-point agreement are
*norm-relative*: a backward-stable symmetric eigensolver has eigenvalue errors
``<= c * m * eps * ||G||`` (Weyl), far below the ``1e-10 * lambda_max`` used here.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from rmtgan.empirical import (
    GramAccumulator,
    class_alignment_matrix,
    class_alignments,
    gram_eigenvalues,
    leading_eigenpairs,
    mean_alignments,
)

RTOL = 1e-10  # norm-relative agreement of two float64 computations of one spectrum


def full_gram(data) -> np.ndarray:
    data = np.asarray(data, dtype=np.float64)
    return data @ data.T / data.shape[1]


def ref_eigenvalues(data) -> np.ndarray:
    """The slow reference: every eigenvalue of the n x n Gram."""
    return np.linalg.eigvalsh(full_gram(data))


def assert_spectra_close(a, b, rtol=RTOL):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape
    scale = max(np.abs(a).max(initial=0.0), np.abs(b).max(initial=0.0), np.finfo(float).tiny)
    np.testing.assert_allclose(a, b, rtol=0, atol=rtol * scale)


def spiked(n_per_class, p, seed=0, strength=6.0):
    """k-class Gaussian mixture with well-separated means; rows grouped by class."""
    rng = np.random.default_rng(seed)
    k = len(n_per_class)
    means = rng.standard_normal((k, p))
    means *= strength / np.linalg.norm(means, axis=1, keepdims=True) * np.arange(1, k + 1)[:, None] ** 0.5
    labels = np.repeat(np.arange(k), n_per_class)
    data = means[labels] + rng.standard_normal((labels.size, p))
    return data, labels, means


# --------------------------------------------------------------------------- #
# eigenvalues
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,p", [(60, 17), (17, 60), (40, 40), (1, 5), (5, 1), (300, 3), (3, 300)])
def test_gram_eigenvalues_match_full_gram(n, p):
    data = np.random.default_rng(n * 1000 + p).standard_normal((n, p)) * 3.0 + 0.5
    w = gram_eigenvalues(data)
    assert w.shape == (n,)
    assert w.dtype == np.float64
    assert np.all(np.diff(w) >= 0)
    assert_spectra_close(w, ref_eigenvalues(data))


def test_padding_zeros_are_exact_and_count_is_n_minus_p():
    n, p = 50, 8
    data = np.random.default_rng(3).standard_normal((n, p))
    w = gram_eigenvalues(data)
    assert np.count_nonzero(w == 0.0) >= n - p
    assert np.all(w[n - p :] > 0.1)  # full-rank data: p positive eigenvalues


def test_p_less_than_n_never_diagonalises_n_by_n(monkeypatch):
    sizes = []
    for fn in ("eigvalsh", "eigh"):
        orig = getattr(scipy.linalg, fn)

        def spy(a, *args, _orig=orig, **kw):
            sizes.append(np.shape(a))
            return _orig(a, *args, **kw)

        monkeypatch.setattr(scipy.linalg, fn, spy)
    monkeypatch.setattr(np.linalg, "eigvalsh", None)  # any numpy fallback would fail loudly
    monkeypatch.setattr(np.linalg, "eigh", None)
    p = 7
    data, _, _ = spiked([40, 40, 40], p, seed=1)  # n = 120
    gram_eigenvalues(data)
    leading_eigenpairs(data, 3, method="dense")
    assert sizes and all(s == (p, p) for s in sizes)


@pytest.mark.parametrize("n,p", [(97, 13), (13, 97)])
@pytest.mark.parametrize("chunk", [1, 7, 13, 96, 97, 1000])
def test_chunked_equals_unchunked(n, p, chunk):
    data = np.random.default_rng(5).standard_normal((n, p))
    assert_spectra_close(gram_eigenvalues(data, chunk_size=chunk), gram_eigenvalues(data), rtol=1e-12)


@pytest.mark.parametrize("n,p", [(400, 30), (30, 400)])
def test_float32_is_accumulated_in_float64(n, p):
    # entries of a float32 array are exact in float64, so the float64 reference of the
    # *same* numbers must be matched to float64 rounding; float32 accumulation would be
    # off by ~1e-7 relative and fail.
    rng = np.random.default_rng(11)
    data32 = (rng.standard_normal((n, p)) + 3.0).astype(np.float32)
    w = gram_eigenvalues(data32, chunk_size=64)
    assert w.dtype == np.float64
    assert_spectra_close(w, ref_eigenvalues(data32.astype(np.float64)))


def test_memmap_input(tmp_path):
    n, p = 1000, 24
    rng = np.random.default_rng(2)
    mm = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="w+", shape=(n, p))
    mm[:] = rng.standard_normal((n, p))
    mm.flush()
    ro = np.memmap(tmp_path / "x.dat", dtype=np.float32, mode="r", shape=(n, p))
    w = gram_eigenvalues(ro, chunk_size=100)
    assert_spectra_close(w, ref_eigenvalues(np.array(ro, dtype=np.float64)))
    vals, U = leading_eigenpairs(ro, 2, chunk_size=100)
    vals_ref, U_ref = leading_eigenpairs(np.array(ro, dtype=np.float64), 2)
    assert_spectra_close(vals, vals_ref)


@pytest.mark.parametrize("dtype", [np.int16, np.int64, np.bool_, np.float16])
def test_other_real_dtypes(dtype):
    data = (np.random.default_rng(4).standard_normal((30, 9)) * 3).astype(dtype)
    assert_spectra_close(gram_eigenvalues(data), ref_eigenvalues(data.astype(np.float64)))


def test_list_input():
    data = [[1.0, 2.0], [3.0, 4.0], [5.0, 7.0]]
    assert_spectra_close(gram_eigenvalues(data), ref_eigenvalues(np.array(data)))


def test_fortran_ordered_and_strided_input():
    data = np.random.default_rng(8).standard_normal((80, 22))
    ref = gram_eigenvalues(data)
    assert_spectra_close(gram_eigenvalues(np.asfortranarray(data), chunk_size=9), ref)
    big = np.random.default_rng(8).standard_normal((160, 44))
    assert_spectra_close(gram_eigenvalues(big[::2, ::2]), ref_eigenvalues(big[::2, ::2]))


# --------------------------------------------------------------------------- #
# exact algebra and invariances (hypothesis)
# --------------------------------------------------------------------------- #
finite_entries = st.floats(-50, 50, allow_nan=False, allow_infinity=False, allow_subnormal=False, width=64)
small_data = st.tuples(st.integers(1, 25), st.integers(1, 25)).flatmap(
    lambda shape: hnp.arrays(np.float64, shape, elements=finite_entries)
)


@settings(max_examples=60, deadline=None)
@given(small_data)
def test_trace_identities(data):
    # sum of eigenvalues = tr G = ||data||_F^2 / p ; sum of squares = ||G||_F^2 (exact algebra)
    n, p = data.shape
    w = gram_eigenvalues(data)
    G = full_gram(data)
    scale = max(np.abs(w).max(), np.finfo(float).tiny)
    assert abs(w.sum() - np.trace(G)) <= 1e-10 * n * scale
    # in units of scale: squares of tiny data underflow to subnormals (scale 7e-161 was seen)
    assert abs(((w / scale) ** 2).sum() - ((G / scale) ** 2).sum()) <= 1e-10 * n
    assert w.min() >= -1e-10 * scale  # G is positive semi-definite


@settings(max_examples=60, deadline=None)
@given(small_data, st.randoms(use_true_random=False))
def test_row_permutation_invariance(data, rnd):
    perm = np.array(rnd.sample(range(data.shape[0]), data.shape[0]))
    assert_spectra_close(gram_eigenvalues(data[perm]), gram_eigenvalues(data))


@settings(max_examples=60, deadline=None)
@given(small_data, st.floats(1e-3, 1e3))
def test_scaling_data_scales_eigenvalues_quadratically(data, s):
    assert_spectra_close(gram_eigenvalues(s * data), s**2 * gram_eigenvalues(data))


@settings(max_examples=40, deadline=None)
@given(small_data, st.integers(1, 9))
def test_matches_full_gram_property(data, chunk):
    assert_spectra_close(gram_eigenvalues(data, chunk_size=chunk), ref_eigenvalues(data))


# --------------------------------------------------------------------------- #
# streaming
# --------------------------------------------------------------------------- #
def test_streaming_equals_one_shot():
    data, labels, _ = spiked([70, 50, 83], 19, seed=7)
    n, p = data.shape
    perm = np.random.default_rng(0).permutation(n)
    data, labels = data[perm], labels[perm]
    names = np.array(["mushroom", "pizza", "hamburger"])[labels]
    acc = GramAccumulator(p, chunk_size=5)
    cuts = [0, 1, 2, 40, 41, 150, n]
    for a, b in zip(cuts[:-1], cuts[1:], strict=True):
        acc.update(data[a:b].astype(np.float32) if a == 40 else data[a:b], names[a:b])
    data = data.copy()
    data[40:41] = data[40:41].astype(np.float32)  # what was fed
    assert acc.n_samples == n
    np.testing.assert_allclose(acc.companion, data.T @ data / p, rtol=0, atol=1e-12 * np.abs(data).max() ** 2)
    np.testing.assert_array_equal(acc.companion, acc.companion.T)
    assert_spectra_close(acc.eigenvalues(), gram_eigenvalues(data))
    assert_spectra_close(acc.eigenvalues(), ref_eigenvalues(data))
    np.testing.assert_array_equal(acc.classes, ["hamburger", "mushroom", "pizza"])
    np.testing.assert_array_equal(acc.counts, [np.sum(names == c) for c in acc.classes])
    expected = np.stack([data[names == c].mean(axis=0) for c in acc.classes])
    np.testing.assert_allclose(acc.means, expected, rtol=0, atol=1e-12 * np.abs(data).max())


def test_accumulator_eigenvalue_lengths():
    data = np.random.default_rng(1).standard_normal((12, 30))  # n < p
    acc = GramAccumulator(30).update(data)
    companion = np.linalg.eigvalsh(data.T @ data / 30)
    assert_spectra_close(acc.eigenvalues(), ref_eigenvalues(data))  # top 12 of the companion
    assert_spectra_close(acc.eigenvalues(30), companion)
    assert_spectra_close(acc.eigenvalues(40), np.sort(np.concatenate([companion, np.zeros(10)])))
    assert_spectra_close(acc.eigenvalues(3), companion[-3:])


def test_accumulator_eigenpairs_and_mean_alignment_identity():
    # exact algebra: j_a^T u = j_a^T X^T v / sqrt(p lam) = n_a mu_a^T v / sqrt(p lam),
    # so (j_a^T u)^2 / n_a = n_a (mu_a^T v)^2 / (p lam) with mu_a the empirical class mean.
    data, labels, _ = spiked([60, 90, 75], 25, seed=9)
    n, p = data.shape
    acc = GramAccumulator(p).update(data[:100], labels[:100]).update(data[100:], labels[100:])
    lam, V = acc.eigenpairs(3)
    np.testing.assert_allclose(lam, np.linalg.eigvalsh(acc.companion)[::-1][:3], rtol=1e-12)
    C = data.T @ data / p
    np.testing.assert_allclose(C @ V, V * lam, rtol=0, atol=1e-10 * lam[0])
    w, U = leading_eigenpairs(data, 3)
    np.testing.assert_allclose(w, lam, rtol=1e-12)
    lhs = class_alignments(U, labels)
    rhs = acc.counts[None, :] * mean_alignments(V, acc.means) / (p * lam[:, None])
    np.testing.assert_allclose(lhs, rhs, rtol=1e-9, atol=1e-13)


def test_accumulator_update_is_atomic():
    rng = np.random.default_rng(0)
    good = rng.standard_normal((30, 6))
    bad = rng.standard_normal((25, 6))
    bad[17, 4] = np.nan
    acc = GramAccumulator(6, chunk_size=4)
    with pytest.raises(ValueError, match=r"row 17, column 4"):
        acc.update(bad)  # fails on a fresh accumulator, after some chunks went in
    assert acc.n_samples == 0
    np.testing.assert_array_equal(acc.companion, 0.0)
    acc.update(good)
    before = acc.companion
    with pytest.raises(ValueError, match=r"row 17, column 4"):
        acc.update(bad)
    with pytest.raises(ValueError, match="overflow"):
        acc.update(np.full((3, 6), 1e200))
    assert acc.n_samples == 30
    np.testing.assert_array_equal(acc.companion, before)
    assert_spectra_close(acc.eigenvalues(), ref_eigenvalues(good))


def test_accumulator_misuse():
    acc = GramAccumulator(4)
    with pytest.raises(ValueError, match="no data"):
        acc.eigenvalues()
    with pytest.raises(ValueError, match="no data"):
        _ = acc.means
    with pytest.raises(ValueError, match="expected p = 4"):
        acc.update(np.ones((3, 5)))
    with pytest.raises(ValueError, match="2 dimensions"):
        acc.update(np.ones(4))
    acc.update(np.ones((3, 4)))
    with pytest.raises(ValueError, match="no labels"):
        _ = acc.means
    with pytest.raises(ValueError, match="every batch or for none"):
        acc.update(np.ones((2, 4)), labels=[0, 1])
    lab = GramAccumulator(4).update(np.ones((2, 4)), labels=[0, 1])
    with pytest.raises(ValueError, match="every batch or for none"):
        lab.update(np.ones((2, 4)))
    with pytest.raises(ValueError, match="kind"):
        lab.update(np.ones((2, 4)), labels=["a", "b"])
    with pytest.raises(ValueError, match="length 3"):
        lab.update(np.ones((2, 4)), labels=[0, 1, 2])
    assert lab.n_samples == 2
    with pytest.raises(ValueError, match="exceeds p"):
        lab.eigenpairs(5)
    with pytest.raises(ValueError):
        GramAccumulator(0)
    with pytest.raises(TypeError):
        GramAccumulator(2.5)
    with pytest.raises(ValueError):
        GramAccumulator(3, chunk_size=0)


# --------------------------------------------------------------------------- #
# eigenpairs
# --------------------------------------------------------------------------- #
def check_eigenpairs(data, vals, U, s):
    n = data.shape[0]
    G = full_gram(data)
    ref = np.linalg.eigvalsh(G)[::-1][:s]
    assert vals.shape == (s,) and U.shape == (n, s)
    np.testing.assert_allclose(vals, ref, rtol=0, atol=RTOL * ref[0])
    np.testing.assert_allclose(G @ U, U * vals, rtol=0, atol=RTOL * ref[0])  # G u = lambda u
    np.testing.assert_allclose(U.T @ U, np.eye(s), rtol=0, atol=1e-10)  # orthonormal
    idx = np.argmax(np.abs(U), axis=0)
    assert np.all(U[idx, np.arange(s)] > 0)  # documented sign convention


@pytest.mark.parametrize("sizes,p", [([80, 60, 100], 30), ([20, 15, 25], 90), ([30, 30, 30], 90)])
@pytest.mark.parametrize("method", ["dense", "lanczos", "auto"])
def test_leading_eigenpairs(sizes, p, method):
    data, _, _ = spiked(sizes, p, seed=len(sizes) + p)
    s = 4
    vals, U = leading_eigenpairs(data, s, method=method)
    check_eigenpairs(data, vals, U, s)


@pytest.mark.parametrize("sizes,p", [([80, 60, 100], 30), ([20, 15, 25], 90)])
def test_lanczos_equals_dense(sizes, p):
    data, _, _ = spiked(sizes, p, seed=3)
    vd, Ud = leading_eigenpairs(data, 3, method="dense")
    vl, Ul = leading_eigenpairs(data, 3, method="lanczos", chunk_size=17)
    gaps = -np.diff(np.linalg.eigvalsh(full_gram(data))[::-1][:4])
    assert gaps.min() > 0.05 * vd[0]  # precondition: eigenvectors well separated
    np.testing.assert_allclose(vl, vd, rtol=1e-10)
    # eigenvector error <= eps ||G|| / gap (Davis-Kahan), << 1e-8 here; same sign convention
    np.testing.assert_allclose(Ul, Ud, rtol=0, atol=1e-8)


def test_eigenpairs_all_s_and_square():
    data = np.random.default_rng(1).standard_normal((9, 9))
    vals, U = leading_eigenpairs(data, 9)
    check_eigenpairs(data, vals, U, 9)


def test_eigenpairs_rank_deficient_p_side():
    rng = np.random.default_rng(2)
    base = rng.standard_normal((40, 3))
    data = np.hstack([base, base[:, :2]])  # p = 5, rank 3
    vals, U = leading_eigenpairs(data, 3)
    check_eigenpairs(data, vals, U, 3)
    with pytest.raises(ValueError, match="numerically zero"):
        leading_eigenpairs(data, 4)
    with pytest.raises(ValueError, match="numerically zero"):
        leading_eigenpairs(np.zeros((10, 3)), 1)


def test_sign_convention_is_deterministic_under_flips():
    data, _, _ = spiked([30, 30, 30], 20, seed=4)
    _, U1 = leading_eigenpairs(data, 3)
    _, U2 = leading_eigenpairs(-data, 3)  # same G
    np.testing.assert_allclose(U1, U2, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- #
# alignments
# --------------------------------------------------------------------------- #
def test_alignment_of_class_indicator_is_one():
    labels = np.array([2, 0, 2, 1, 1, 2, 0, 2])
    n_a = {0: 2, 1: 2, 2: 4}
    for a in (0, 1, 2):
        u = (labels == a) / np.sqrt(n_a[a])
        expected = np.zeros(3)
        expected[a] = 1.0
        np.testing.assert_allclose(class_alignments(u, labels), expected, atol=1e-15)
        np.testing.assert_allclose(class_alignment_matrix(u, labels), np.diag(expected), atol=1e-15)


def test_alignment_of_contrast_vector():
    # u = (j_a / n_a - j_b / n_b) / sqrt(1/n_a + 1/n_b): alignment n_b/(n_a+n_b) for a,
    # n_a/(n_a+n_b) for b, cross term -sqrt(n_a n_b)/(n_a+n_b), 0 elsewhere.
    labels = np.array(["x"] * 3 + ["y"] * 5 + ["z"] * 4)
    na, nb = 3, 5
    u = ((labels == "x") / na - (labels == "y") / nb) / np.sqrt(1 / na + 1 / nb)
    A = class_alignments(np.column_stack([u, -u]), labels)
    np.testing.assert_allclose(A, [[nb / 8, na / 8, 0.0]] * 2, atol=1e-15)
    B = class_alignment_matrix(u, labels)
    cross = -np.sqrt(na * nb) / (na + nb)
    np.testing.assert_allclose(B, [[nb / 8, cross, 0], [cross, na / 8, 0], [0, 0, 0]], atol=1e-15)


def test_string_and_integer_labels_agree_and_order_is_unique():
    rng = np.random.default_rng(0)
    ints = rng.integers(0, 3, 50)
    strs = np.array(["c", "a", "b"])[ints]  # classes sorted: a (=1), b (=2), c (=0)
    U = np.linalg.qr(rng.standard_normal((50, 4)))[0]
    np.testing.assert_allclose(class_alignments(U, strs), class_alignments(U, ints)[:, [1, 2, 0]])
    np.testing.assert_allclose(class_alignments(U, ints.astype(float)), class_alignments(U, ints))


@settings(max_examples=60, deadline=None)
@given(st.integers(2, 40), st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**32 - 1))
def test_alignment_properties(n, s, k, seed):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, k, n)
    U = rng.standard_normal((n, s))
    U /= np.linalg.norm(U, axis=0)
    A = class_alignments(U, labels)
    kk = np.unique(labels).size
    assert A.shape == (s, kk)
    assert np.all(A >= 0)
    assert np.all(A.sum(axis=1) <= 1 + 1e-12)  # Cauchy-Schwarz: projection on span{j_a}
    flips = rng.choice([-1.0, 1.0], s)
    np.testing.assert_allclose(class_alignments(U * flips, labels), A, rtol=1e-13, atol=0)
    B = class_alignment_matrix(U, labels)
    assert B.shape == (s, kk, kk)
    np.testing.assert_allclose(np.diagonal(B, axis1=1, axis2=2), A, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(class_alignment_matrix(U * flips, labels), B, rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(B, np.swapaxes(B, 1, 2))
    assert np.linalg.matrix_rank(B[0], tol=1e-12) <= 1
    # permuting samples together with their labels changes nothing
    perm = rng.permutation(n)
    np.testing.assert_allclose(class_alignments(U[perm], labels[perm]), A, rtol=1e-12, atol=1e-15)


def test_alignments_of_gram_eigenvectors_track_class_structure():
    # two well-separated classes: the top eigenvector is close to the contrast of the
    # class indicators, so its alignments must be large; sum bound holds.
    data, labels, _ = spiked([100, 100], 40, seed=5, strength=8.0)
    _, U = leading_eigenpairs(data, 2)
    A = class_alignments(U, labels)
    assert np.all(A.sum(axis=1) <= 1 + 1e-12)
    assert A[:2].sum() > 1.0


def test_mean_alignments_exact():
    rng = np.random.default_rng(0)
    means = rng.standard_normal((3, 7))
    v = means[1] / np.linalg.norm(means[1])
    got = mean_alignments(v, means)
    assert got.shape == (3,)
    np.testing.assert_allclose(got[1], np.sum(means[1] ** 2), rtol=1e-14)
    np.testing.assert_allclose(got, (means @ v) ** 2, rtol=1e-14)
    V = np.linalg.qr(rng.standard_normal((7, 7)))[0]
    A = mean_alignments(V, means)
    assert A.shape == (7, 3)
    np.testing.assert_allclose(A.sum(axis=0), np.sum(means**2, axis=1), rtol=1e-13)  # Parseval
    np.testing.assert_allclose(mean_alignments(-V, means), A)


# --------------------------------------------------------------------------- #
# Marchenko-Pastur sanity check (C = I)
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,p", [(4000, 2000), (1000, 3000)])
def test_marchenko_pastur_edges(n, p):
    # G = X^T X / p with i.i.d. N(0,1) entries: the extreme non-zero eigenvalues tend to
    # (1 +- sqrt(gamma))^2, gamma = n/p, with Tracy-Widom fluctuations on the scale
    # sigma = (sqrt n +- sqrt p)(1/sqrt n +- 1/sqrt p)^(1/3) / p = O(n^(-2/3)) (Johnstone 2001,
    # Ma 2012).  TW1 has mean -1.21 and sd 1.27, so 6 sigma is a generous, fixed-seed bound.
    data = np.random.default_rng(20200712).standard_normal((n, p))
    w = gram_eigenvalues(data)
    gamma = n / p
    rn, rp = np.sqrt(n), np.sqrt(p)
    top = (1 + np.sqrt(gamma)) ** 2
    bottom = (1 - np.sqrt(gamma)) ** 2
    sigma_top = (rn + rp) * (1 / rn + 1 / rp) ** (1 / 3) / p
    sigma_bottom = abs(rn - rp) * abs(1 / rp - 1 / rn) ** (1 / 3) / p
    m = min(n, p)
    nonzero = w[n - m :]
    assert np.all(w[: n - m] == 0.0)
    assert abs(nonzero[-1] - top) < 6 * sigma_top
    assert abs(nonzero[0] - bottom) < 6 * sigma_bottom
    # the mean of the non-zero eigenvalues is tr(G)/m, and E tr G = n: within a few sd
    assert abs(nonzero.sum() / n - 1.0) < 6 * np.sqrt(2.0 / (n * p))


# --------------------------------------------------------------------------- #
# bad input
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("n,p", [(20, 5), (5, 20)])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_data_is_named(n, p, bad):
    data = np.random.default_rng(0).standard_normal((n, p))
    data[3, 4] = bad
    with pytest.raises(ValueError, match=r"data contains a non-finite value .* at row 3, column 4"):
        gram_eigenvalues(data, chunk_size=2)
    with pytest.raises(ValueError, match=r"row 3, column 4"):
        leading_eigenpairs(data, 2)
    with pytest.raises(ValueError, match=r"row 3, column 4"):
        leading_eigenpairs(data, 2, method="lanczos", chunk_size=2)
    with pytest.raises(ValueError, match=r"row 3, column 4"):
        GramAccumulator(p).update(data)


def test_overflow_is_reported():
    with pytest.raises(ValueError, match="overflow"):
        gram_eigenvalues(np.full((10, 3), 1e200))


@pytest.mark.parametrize(
    "data,exc,msg",
    [
        (np.ones(5), ValueError, "2 dimensions"),
        (np.ones((2, 3, 4)), ValueError, "2 dimensions"),
        (np.ones((0, 3)), ValueError, "empty"),
        (np.ones((3, 0)), ValueError, "empty"),
        (np.ones((3, 3), dtype=complex), TypeError, "real"),
        (np.array([["a", "b"]]), TypeError, "numeric"),
        (np.array([[1, None]], dtype=object), TypeError, "numeric"),
        (None, TypeError, "None"),
    ],
)
def test_bad_data(data, exc, msg):
    with pytest.raises(exc, match=msg):
        gram_eigenvalues(data)
    with pytest.raises(exc, match=msg):
        leading_eigenpairs(data, 1)


def test_bad_arguments():
    data = np.random.default_rng(0).standard_normal((10, 4))
    for s, exc in [(0, ValueError), (-1, ValueError), (5, ValueError), (1.5, TypeError), (True, TypeError)]:
        with pytest.raises(exc, match="s"):
            leading_eigenpairs(data, s)
    with pytest.raises(ValueError, match="exceeds min"):
        leading_eigenpairs(data.T, 5)
    with pytest.raises(ValueError, match="method"):
        leading_eigenpairs(data, 1, method="arpack")
    with pytest.raises(TypeError, match="method"):
        leading_eigenpairs(data, 1, method=None)
    with pytest.raises(ValueError, match="lanczos"):
        leading_eigenpairs(data, 4, method="lanczos")
    for chunk, exc in [(0, ValueError), (2.0, TypeError)]:
        with pytest.raises(exc, match="chunk_size"):
            gram_eigenvalues(data, chunk_size=chunk)


def test_bad_alignment_inputs():
    U = np.linalg.qr(np.random.default_rng(0).standard_normal((6, 2)))[0]
    with pytest.raises(ValueError, match="length 5 but vectors have 6 rows"):
        class_alignments(U, [0, 1, 0, 1, 0])
    with pytest.raises(TypeError, match="vectors must hold numbers, got booleans"):
        class_alignments(U > 0, [0, 1] * 3)
    with pytest.raises(TypeError, match="means must hold numbers, got booleans"):
        mean_alignments(np.ones((4, 2)), np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="1-d"):
        class_alignments(U, np.zeros((6, 1), dtype=int))
    with pytest.raises(ValueError, match="non-integer"):
        class_alignment_matrix(U, [0, 1, 0.5, 1, 0, 1])
    with pytest.raises(TypeError, match="labels"):
        class_alignments(U, [None] * 6)
    with pytest.raises(ValueError, match="shape"):
        class_alignments(np.ones((6, 2, 1)), [0] * 6)
    bad = U.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        class_alignments(bad, [0, 1] * 3)
    with pytest.raises(ValueError, match="p_vectors"):
        mean_alignments(np.ones((5, 2)), np.ones((3, 4)))
    with pytest.raises(ValueError, match="2 dimensions"):
        mean_alignments(np.ones((4, 2)), np.ones(4))
    with pytest.raises(ValueError, match="non-finite"):
        mean_alignments(np.ones((4, 2)), np.full((2, 4), np.inf))


@pytest.mark.parametrize("shape", [(5, 3), (3, 5), (40, 30), (30, 40)])
@pytest.mark.parametrize("method", ["dense", "lanczos"])
def test_zero_data_have_no_leading_eigenvector(shape, method):
    with pytest.raises(ValueError, match="zero"):
        leading_eigenpairs(np.zeros(shape), 1, method=method)


def test_lanczos_failure_is_named(monkeypatch):
    import scipy.sparse.linalg

    def fail(*args, **kw):
        raise scipy.sparse.linalg.ArpackNoConvergence("no convergence", np.zeros(0), np.zeros((3, 0)))

    monkeypatch.setattr(scipy.sparse.linalg, "eigsh", fail)
    with pytest.raises(RuntimeError, match="method='lanczos' failed.*method='dense'"):
        leading_eigenpairs(np.random.default_rng(0).standard_normal((40, 30)), 2, method="lanczos")
