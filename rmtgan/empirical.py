"""Empirical spectra and eigenvectors of Gram matrices (the measured side).

Conventions
-----------
Data arrays are ``(n_samples, n_features) = (n, p)``; the paper's ``X`` (``p x n``)
is ``data.T``.  The Gram matrix is ``G = X^T X / p = data @ data.T / p`` (``n x n``);
its *companion* is ``X X^T / p = data.T @ data / p`` (``p x p``).  Both have the
same non-zero eigenvalues, so everything here works through the smaller of the two
and never eigendecomposes an ``n x n`` matrix when ``p < n``.

Products are accumulated in float64 over row chunks (BLAS ``dsyrk``, upper
triangle), so float32 arrays and memory maps never need a float64 copy of the
whole data: the extra memory is ``O(min(n, p)^2)`` plus one chunk.
:class:`GramAccumulator` exposes the same accumulation for data that arrive in
batches (huge ``n``).

This module depends on NumPy and SciPy only (no solver, no torch).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg
from scipy.linalg.blas import dsyrk

from rmtgan._linalg import eigh_subset
from rmtgan._validation import (
    as_labels,
    as_numeric_matrix,
    as_positive_int,
    as_real_array,
    check_finite_block,
    label_group,
)

__all__ = [
    "GramAccumulator",
    "gram_eigenvalues",
    "leading_eigenpairs",
    "class_alignments",
    "class_alignment_matrix",
    "mean_alignments",
]

#: float64 elements in one default chunk (32 MiB).
CHUNK_ELEMENTS = 1 << 22
#: smallest default chunk, in rows.
MIN_CHUNK_ROWS = 256
#: ``method="auto"`` switches to Lanczos when the dense ``m x m`` matrix
#: (``m = min(n, p)``) would exceed this many float64 entries (2 GiB).
DENSE_LIMIT_ELEMENTS = 1 << 28
#: an eigenvalue ``<= ZERO_RTOL * max(n, p) * lambda_max`` is numerically zero.
ZERO_RTOL = np.finfo(np.float64).eps

_METHODS = ("auto", "dense", "lanczos")


# --------------------------------------------------------------------------- #
# the one accumulation kernel
# --------------------------------------------------------------------------- #
def _default_chunk(ncols: int) -> int:
    return max(MIN_CHUNK_ROWS, CHUNK_ELEMENTS // max(ncols, 1))


def _syrk_update(target: np.ndarray, block: np.ndarray) -> np.ndarray:
    """``target += block^T block`` on the upper triangle (``target`` F-ordered float64)."""
    if block.flags.c_contiguous:  # block^T is Fortran-contiguous: no copy
        return dsyrk(1.0, block.T, beta=1.0, c=target, trans=0, lower=0, overwrite_c=1)
    if block.flags.f_contiguous:
        return dsyrk(1.0, block, beta=1.0, c=target, trans=1, lower=0, overwrite_c=1)
    return dsyrk(1.0, np.ascontiguousarray(block).T, beta=1.0, c=target, trans=0, lower=0, overwrite_c=1)


def _accumulate(
    target: np.ndarray,
    M: np.ndarray,
    chunk: int,
    name: str,
    transposed: bool = False,
    on_block: Callable[[int, np.ndarray], None] | None = None,
) -> np.ndarray:
    """Add ``M^T M`` (upper triangle) to ``target``, ``chunk`` rows of ``M`` at a time.

    Each row block is converted to float64, checked for NaN/inf (the error names
    the entry in ``name``'s own axes; ``transposed`` says ``M = name.T``) and fed
    to ``dsyrk``.  ``on_block(start, block)`` sees every float64 block.  Overflow
    of the sum is detected on the diagonal (``|S_ij| <= max(S_ii, S_jj)``).
    """
    for start in range(0, M.shape[0], chunk):
        block = np.asarray(M[start : start + chunk], dtype=np.float64)
        check_finite_block(block, name, start, transposed)
        out = _syrk_update(target, block)
        if out is not target:  # dsyrk could not work in place
            target[...] = out
        if on_block is not None:
            on_block(start, block)
    if not np.isfinite(np.diagonal(target)).all():
        raise ValueError(f"{name}: the sum of squared entries overflows float64; rescale the data")
    return target


def _upper_eigvalsh(upper: np.ndarray, scale: float) -> np.ndarray:
    """Ascending eigenvalues of the symmetric matrix whose upper triangle is ``upper * scale``."""
    return scipy.linalg.eigvalsh(upper * scale, lower=False, check_finite=False, overwrite_a=True)


def _upper_eigh_top(upper: np.ndarray, scale: float, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Top ``s`` eigenpairs (descending) of the symmetric matrix ``upper * scale``."""
    m = upper.shape[0]
    w, V = eigh_subset(upper * scale, m - s, m - 1, vectors=True, lower=False, overwrite_a=True)
    return w[::-1].copy(), np.ascontiguousarray(V[:, ::-1])


def _fix_signs(V: np.ndarray) -> np.ndarray:
    """Flip columns in place so that each column's largest-|entry| is positive."""
    idx = np.argmax(np.abs(V), axis=0)
    signs = np.sign(V[idx, np.arange(V.shape[1])])
    signs[signs == 0] = 1.0
    V *= signs
    return V


def _check_chunk(chunk_size) -> int | None:
    return None if chunk_size is None else as_positive_int(chunk_size, "chunk_size")


# --------------------------------------------------------------------------- #
# streaming accumulation
# --------------------------------------------------------------------------- #
class GramAccumulator:
    r"""Streaming ``X X^T`` and class sums for data that arrive in batches.

    Feed row batches ``(b, p)`` with :meth:`update`; afterwards
    :meth:`eigenvalues` gives the spectrum of ``G = X^T X / p`` over all rows seen,
    :attr:`companion` the ``p x p`` matrix ``X X^T / p`` and :attr:`means` the class
    means.  Memory is ``O(p^2)`` plus one chunk whatever the number of rows.

    Parameters
    ----------
    p : int
        Number of features (columns of every batch).
    chunk_size : int, optional
        Rows per float64 block inside :meth:`update` (default: about 32 MiB per
        block, at least 256 rows).  Any batch dtype is accumulated in float64.

    Notes
    -----
    Only the upper triangle of ``X X^T`` is stored and updated (BLAS ``dsyrk``),
    in float64 whatever the batch dtype.  An update is atomic: a batch that fails
    validation (wrong shape, NaN/inf, overflow) leaves the accumulator unchanged.
    Labels are all-or-nothing: either every batch comes with labels or none does,
    and label types (integers or strings) may not change between batches.
    """

    def __init__(self, p: int, *, chunk_size: int | None = None):
        self._p = as_positive_int(p, "p")
        self._chunk = _check_chunk(chunk_size) or _default_chunk(self._p)
        self._xxt = np.zeros((self._p, self._p), order="F")  # upper triangle of X X^T
        self._n = 0
        self._labelled: bool | None = None
        self._label_group: str | None = None
        self._sums: dict = {}
        self._counts: dict = {}

    # -- feeding ----------------------------------------------------------- #
    def update(self, batch, labels=None) -> GramAccumulator:
        """Add a batch of rows.

        Parameters
        ----------
        batch : array_like, shape (b, p)
            Rows (samples) to add; any real numeric dtype, including memory maps.
        labels : array_like, shape (b,), optional
            Integer or string class labels of the rows.

        Returns
        -------
        GramAccumulator
            ``self``.

        Raises
        ------
        TypeError, ValueError
            Wrong dtype, shape or number of columns, labels of the wrong length or
            type, labels given for some batches only, NaN/inf (the error names the
            row and column of the batch) or a float64 overflow.
        """
        return self._update(as_numeric_matrix(batch, "batch"), labels, "batch")

    def _update(self, X: np.ndarray, labels, name: str) -> GramAccumulator:
        b, p = X.shape
        if p != self._p:
            raise ValueError(f"{name} has {p} columns, expected p = {self._p}")
        labelled = labels is not None
        if self._labelled is not None and labelled != self._labelled:
            raise ValueError(
                "labels must be given for every batch or for none: "
                + ("earlier batches had labels" if self._labelled else "earlier batches had no labels")
            )
        on_block = None
        if labelled:
            lab = as_labels(labels, b)
            group = label_group(lab.dtype.kind)
            if self._label_group is not None and group != self._label_group:
                raise ValueError(
                    f"labels are of kind {group!r} but earlier batches had labels "
                    f"of kind {self._label_group!r}"
                )
            keys, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
            inv = inv.reshape(-1)
            k = keys.size
            batch_sums = np.zeros((k, p))

            def on_block(start: int, block: np.ndarray) -> None:
                rows = block.shape[0]
                ind = scipy.sparse.csr_array(
                    (np.ones(rows), (inv[start : start + rows], np.arange(rows))), shape=(k, rows)
                )
                batch_sums[...] += ind @ block

        fresh = self._n == 0
        target = self._xxt if fresh else np.zeros_like(self._xxt)
        try:
            _accumulate(target, X, self._chunk, name, on_block=on_block)
            if not fresh and not np.isfinite(np.diagonal(self._xxt) + np.diagonal(target)).all():
                raise ValueError("the accumulated X X^T overflows float64; rescale the data")
        except BaseException:
            if fresh:
                target[...] = 0.0
            raise
        # commit
        if not fresh:
            self._xxt += target
        self._n += b
        self._labelled = labelled
        if labelled:
            self._label_group = group
            for a, key in enumerate(keys.tolist()):
                if key in self._counts:
                    self._sums[key] += batch_sums[a]
                    self._counts[key] += int(counts[a])
                else:
                    self._sums[key] = batch_sums[a].copy()
                    self._counts[key] = int(counts[a])
        return self

    # -- reading ----------------------------------------------------------- #
    @property
    def p(self) -> int:
        """Number of features."""
        return self._p

    @property
    def n_samples(self) -> int:
        """Number of rows accumulated so far."""
        return self._n

    @property
    def companion(self) -> np.ndarray:
        """The symmetric ``p x p`` matrix ``X X^T / p`` (float64, a fresh copy)."""
        upper = np.triu(self._xxt)
        return (upper + np.triu(upper, 1).T) / self._p

    @property
    def classes(self) -> np.ndarray:
        """Class labels seen so far, ordered as ``numpy.unique`` orders them."""
        self._need_labels()
        return np.unique(np.asarray(list(self._counts)))

    @property
    def counts(self) -> np.ndarray:
        """Samples per class ``n_a``, shape (k,), in the order of :attr:`classes`."""
        return np.array([self._counts[c] for c in self.classes.tolist()], dtype=np.int64)

    @property
    def means(self) -> np.ndarray:
        """Empirical class means, shape (k, p), rows in the order of :attr:`classes`."""
        return np.stack([self._sums[c] / self._counts[c] for c in self.classes.tolist()])

    def eigenvalues(self, n: int | None = None) -> np.ndarray:
        """Eigenvalues of ``G = X^T X / p`` over the rows seen, ascending.

        Parameters
        ----------
        n : int, optional
            Length of the returned spectrum.  The default, the number of rows
            seen, gives the spectrum of ``G``; ``n = p`` gives the companion's.
            For ``n > p`` the ``p`` eigenvalues of the companion are padded with
            ``n - p`` zeros; for ``n < p`` its ``n`` largest are returned.

        Returns
        -------
        ndarray, shape (n,)
            Ascending float64 eigenvalues (squared feature units).  Rounding may
            leave eigenvalues that are zero in exact arithmetic at
            ``O(eps * max(n, p) * lambda_max)``, of either sign.
        """
        self._need_data()
        n = self._n if n is None else as_positive_int(n, "n")
        w = _upper_eigvalsh(self._xxt, 1.0 / self._p)
        if n < self._p:
            return w[self._p - n :].copy()
        if n > self._p:
            w = np.sort(np.concatenate([w, np.zeros(n - self._p)]))
        return w

    def eigenpairs(self, s: int) -> tuple[np.ndarray, np.ndarray]:
        """Top ``s`` eigenpairs of the companion ``X X^T / p``.

        Parameters
        ----------
        s : int
            Number of eigenpairs, ``1 <= s <= p``.

        Returns
        -------
        values : ndarray, shape (s,)
            Largest eigenvalues, descending.
        vectors : ndarray, shape (p, s)
            Unit eigenvectors ``v_i`` (columns), each signed so that its entry of
            largest absolute value is positive.  Use with :func:`mean_alignments`.
        """
        self._need_data()
        s = as_positive_int(s, "s")
        if s > self._p:
            raise ValueError(f"s = {s} exceeds p = {self._p}")
        w, V = _upper_eigh_top(self._xxt, 1.0 / self._p, s)
        return w, _fix_signs(V)

    def _need_data(self) -> None:
        if self._n == 0:
            raise ValueError("no data accumulated yet: call update() first")

    def _need_labels(self) -> None:
        self._need_data()
        if not self._labelled:
            raise ValueError("no labels were given to update(); class statistics are unavailable")

    def __repr__(self) -> str:
        k = len(self._counts)
        return f"GramAccumulator(p={self._p}, n_samples={self._n}, classes={k})"


# --------------------------------------------------------------------------- #
# one-shot spectra and eigenvectors
# --------------------------------------------------------------------------- #
def _gram_upper(X: np.ndarray, chunk: int | None) -> np.ndarray:
    """Upper triangle of ``X X^T = data @ data.T`` (n x n, float64), for ``n < p``."""
    n, p = X.shape
    target = np.zeros((n, n), order="F")
    return _accumulate(target, X.T, chunk or _default_chunk(n), "data", transposed=True)


def gram_eigenvalues(data, *, chunk_size: int | None = None) -> np.ndarray:
    r"""All ``n`` eigenvalues of ``G = data @ data.T / p``, ascending.

    Parameters
    ----------
    data : array_like, shape (n, p)
        Samples in rows, features in columns (the paper's ``X`` is ``data.T``).
        Any real numeric dtype; float32 arrays and ``numpy.memmap`` are read in
        row chunks and never copied whole.
    chunk_size : int, optional
        Rows per float64 block (default: about 32 MiB per block).  Only the
        memory use depends on it; the result agrees to rounding.

    Returns
    -------
    ndarray, shape (n,)
        Ascending eigenvalues of ``G`` (squared feature units).

    Raises
    ------
    TypeError, ValueError
        Non-numeric or complex data, ``ndim != 2``, empty data, NaN/inf (the
        message names the row and column) or a float64 overflow.

    Notes
    -----
    Computed through the smaller side.  If ``p <= n``, the ``p x p`` companion
    ``data.T @ data / p`` is accumulated in float64 by :class:`GramAccumulator`
    and its eigenvalues are padded with ``n - p`` exact zeros (``G`` has rank at
    most ``p``); no ``n x n`` matrix is formed.  If ``p > n``, the ``n x n`` Gram
    is formed the same way (column chunks) and diagonalised.  The cost is one
    symmetric rank-``n`` update (``n min(n,p)^2`` flops) and one symmetric
    eigenvalue problem of size ``min(n, p)``.
    """
    X = as_numeric_matrix(data, "data")
    chunk = _check_chunk(chunk_size)
    n, p = X.shape
    if p <= n:
        acc = GramAccumulator(p, chunk_size=chunk)
        acc._update(X, None, "data")
        return acc.eigenvalues()
    return _upper_eigvalsh(_gram_upper(X, chunk), 1.0 / p)


def _row_times(X: np.ndarray, V: np.ndarray, chunk: int) -> np.ndarray:
    """``X @ V`` in float64, ``chunk`` rows of ``X`` at a time."""
    out = np.empty((X.shape[0], V.shape[1]))
    for start in range(0, X.shape[0], chunk):
        out[start : start + chunk] = np.asarray(X[start : start + chunk], dtype=np.float64) @ V
    return out


def _rowT_times(X: np.ndarray, U: np.ndarray, chunk: int) -> np.ndarray:
    """``X.T @ U`` in float64, ``chunk`` rows of ``X`` at a time."""
    out = np.zeros((X.shape[1], U.shape[1]))
    for start in range(0, X.shape[0], chunk):
        out += np.asarray(X[start : start + chunk], dtype=np.float64).T @ U[start : start + chunk]
    return out


def _lift(X: np.ndarray, w: np.ndarray, V: np.ndarray, chunk: int) -> np.ndarray:
    """Gram eigenvectors ``u_i = X^T v_i / sqrt(p w_i)`` from companion eigenvectors."""
    n, p = X.shape
    lam_max = max(float(w[0]), 0.0)
    tiny = ZERO_RTOL * max(n, p) * lam_max
    if lam_max == 0.0 or w[-1] <= tiny:
        i = int(np.argmax(w <= tiny)) if lam_max > 0.0 else 0
        raise ValueError(
            f"eigenvalue {i} of G ({w[i]:.3g}) is numerically zero (the data have rank < s = {w.size}); "
            "its eigenvector is not determined from the p side: request fewer eigenpairs"
        )
    U = _row_times(X, V, chunk)
    # ||X^T v_i|| = sqrt(p w_i) exactly; dividing by the computed norm keeps unit norm to rounding
    U /= np.linalg.norm(U, axis=0)
    return U


_ZERO_DATA = "the data are zero: G = 0 has no leading eigenvector"


def leading_eigenpairs(
    data, s: int, *, method: str = "auto", chunk_size: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    r"""Top ``s`` eigenpairs of ``G = data @ data.T / p``.

    Parameters
    ----------
    data : array_like, shape (n, p)
        Samples in rows (the paper's ``X`` is ``data.T``); any real numeric dtype.
    s : int
        Number of eigenpairs, ``1 <= s <= min(n, p)`` (``s < min(n, p)`` for
        Lanczos).
    method : {"auto", "dense", "lanczos"}
        ``"dense"`` forms the smaller of ``G`` and its companion (float64, row
        chunks) and calls LAPACK for the top ``s`` pairs only.  ``"lanczos"``
        runs ARPACK (``scipy.sparse.linalg.eigsh``) on a ``LinearOperator``
        applying the smaller side as ``data.T @ (data @ v) / p`` (or
        ``data @ (data.T @ u) / p``) without forming any matrix: memory
        ``O((n + p) s)`` but many passes over the data.  ``"auto"`` is dense unless
        the ``min(n, p)^2`` matrix would exceed 2 GiB.
    chunk_size : int, optional
        Rows per float64 block when reading ``data``.

    Returns
    -------
    values : ndarray, shape (s,)
        Largest eigenvalues of ``G``, descending (squared feature units).
    vectors : ndarray, shape (n, s)
        Orthonormal eigenvectors ``u_i`` of ``G`` (columns).  Sign convention:
        each column's entry of largest absolute value is positive.

    Raises
    ------
    TypeError, ValueError
        Bad ``data`` (see :func:`gram_eigenvalues`), ``s`` out of range, an unknown
        ``method``, all-zero data, or (``p <= n``) a requested eigenvalue that is
        numerically zero: its eigenvector cannot be obtained from the companion.
    RuntimeError
        ``method="lanczos"`` when ARPACK fails (the dense method does not iterate).

    Notes
    -----
    When ``p <= n`` the eigenvectors ``v_i`` of the companion ``X X^T / p`` are
    computed and lifted, ``u_i = X^T v_i / sqrt(p lambda_i) = data @ v_i /
    sqrt(p lambda_i)`` (unit norm in exact arithmetic; the computed norm is used).
    The relative error of ``u_i`` grows like ``sqrt(lambda_max / lambda_i)``, which is
    harmless for leading eigenvectors.  When ``n < p``, ``G`` itself is used.
    Eigenvectors of (numerically) repeated eigenvalues are only defined up to a
    rotation within their eigenspace.
    """
    X = as_numeric_matrix(data, "data")
    n, p = X.shape
    m = min(n, p)
    s = as_positive_int(s, "s")
    if s > m:
        raise ValueError(f"s = {s} exceeds min(n, p) = {m}: G has at most {m} non-zero eigenvalues")
    if not isinstance(method, str):
        raise TypeError(f"method must be one of {_METHODS}, got {method!r}")
    if method not in _METHODS:
        raise ValueError(f"method must be one of {_METHODS}, got {method!r}")
    chunk = _check_chunk(chunk_size)
    if method == "auto":
        method = "lanczos" if (m * m > DENSE_LIMIT_ELEMENTS and s < m) else "dense"

    if method == "dense":
        if p <= n:
            acc = GramAccumulator(p, chunk_size=chunk)
            acc._update(X, None, "data")
            w, V = acc.eigenpairs(s)
            U = _lift(X, w, V, chunk or _default_chunk(p))
        else:
            w, U = _upper_eigh_top(_gram_upper(X, chunk), 1.0 / p, s)
            if not w[0] > 0:
                raise ValueError(_ZERO_DATA)
        return w, _fix_signs(U)

    # Lanczos on the smaller side, without forming it
    if s >= m:
        raise ValueError(f"method='lanczos' needs s < min(n, p) = {m}, got s = {s}; use method='dense'")
    rows = chunk or _default_chunk(p)
    for start in range(0, n, rows):  # validate once, before any iteration
        check_finite_block(np.asarray(X[start : start + rows]), "data", start)
    if p <= n:

        def apply(V: np.ndarray) -> np.ndarray:
            V = V.reshape(p, -1)
            out = np.zeros_like(V, dtype=np.float64)
            for start in range(0, n, rows):
                B = np.asarray(X[start : start + rows], dtype=np.float64)
                out += B.T @ (B @ V)
            return out / p

    else:

        def apply(V: np.ndarray) -> np.ndarray:
            V = V.reshape(n, -1)
            return _row_times(X, _rowT_times(X, V, rows), rows) / p

    op = scipy.sparse.linalg.LinearOperator((m, m), matvec=apply, matmat=apply, dtype=np.float64)
    v0 = np.random.default_rng(0).standard_normal(m)  # fixed start: reproducible results
    try:
        w, V = scipy.sparse.linalg.eigsh(op, k=s, which="LA", v0=v0, tol=0.0)
    except scipy.sparse.linalg.ArpackError as exc:
        if not np.any(apply(v0[:, None])):  # G v0 = 0 for a generic v0: G = 0
            raise ValueError(_ZERO_DATA) from None
        raise RuntimeError(f"method='lanczos' failed ({exc}); method='dense' does not iterate") from exc
    order = np.argsort(w)[::-1]
    w, V = w[order], np.ascontiguousarray(V[:, order])
    U = _lift(X, w, V, rows) if p <= n else V
    return w, _fix_signs(U)


# --------------------------------------------------------------------------- #
# alignments
# --------------------------------------------------------------------------- #
def _as_vectors(vectors, name: str) -> tuple[np.ndarray, bool]:
    V = as_real_array(vectors, name)
    if V.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (m,) or (m, s), got shape {V.shape}")
    if V.size == 0:
        raise ValueError(f"{name} is empty: shape {V.shape}")
    return (V[:, None], True) if V.ndim == 1 else (V, False)


def _class_projections(vectors, labels) -> tuple[np.ndarray, np.ndarray, bool]:
    """``P[a, i] = j_a^T u_i`` (k, s), the class sizes ``n_a`` and whether input was 1-d."""
    V, one_d = _as_vectors(vectors, "vectors")
    lab = as_labels(labels, V.shape[0], of=f"vectors have {V.shape[0]} rows")
    _, inv, counts = np.unique(lab, return_inverse=True, return_counts=True)
    inv = inv.reshape(-1)
    k = counts.size
    P = np.stack([np.bincount(inv, weights=V[:, i], minlength=k) for i in range(V.shape[1])], axis=1)
    return P, counts, one_d


def class_alignments(vectors, labels) -> np.ndarray:
    r"""Class alignments ``(j_a^T u_i)^2 / n_a`` of Gram eigenvectors.

    Parameters
    ----------
    vectors : array_like, shape (n, s) or (n,)
        Unit eigenvectors ``u_i`` of ``G`` in columns (e.g. from
        :func:`leading_eigenpairs`), rows in the order of the samples.
    labels : array_like, shape (n,)
        Integer or string class labels of the samples.

    Returns
    -------
    ndarray, shape (s, k), or (k,) for 1-d ``vectors``
        Entry ``[i, a]`` is ``(j_a^T u_i)^2 / n_a`` with ``j_a`` the indicator of
        class ``a``; classes are ordered as ``numpy.unique(labels)``.

    Notes
    -----
    Invariant under the sign of ``u_i``.  ``(j_a^T u)^2 / n_a`` is the squared norm
    of the projection of ``u`` on the normalised indicator ``j_a / sqrt(n_a)``, so
    for a unit ``u`` each entry lies in ``[0, 1]`` and each row sums to at most 1
    (the squared norm of ``u``'s projection on the span of the indicators).  The
    vectors are used as given: they are not normalised.
    """
    P, counts, one_d = _class_projections(vectors, labels)
    out = (P**2 / counts[:, None]).T
    return out[0] if one_d else out


def class_alignment_matrix(vectors, labels) -> np.ndarray:
    r"""Class alignments with cross terms ``(j_a^T u_i)(j_b^T u_i) / sqrt(n_a n_b)``.

    Parameters
    ----------
    vectors : array_like, shape (n, s) or (n,)
        Unit eigenvectors ``u_i`` of ``G`` in columns.
    labels : array_like, shape (n,)
        Integer or string class labels; classes ordered as ``numpy.unique(labels)``.

    Returns
    -------
    ndarray, shape (s, k, k), or (k, k) for 1-d ``vectors``
        ``[i, a, b] = (j_a^T u_i)(j_b^T u_i) / sqrt(n_a n_b)``: for each ``i`` a
        rank-one positive semi-definite matrix whose diagonal is
        :func:`class_alignments` and whose trace is at most ``||u_i||^2``.  The
        off-diagonal signs give the joint behaviour of the class means of ``u_i``
        (same or opposite sides); the whole matrix is invariant under ``u_i -> -u_i``.
    """
    P, counts, one_d = _class_projections(vectors, labels)
    Q = P / np.sqrt(counts)[:, None]
    out = np.einsum("ai,bi->iab", Q, Q)
    return out[0] if one_d else out


def mean_alignments(p_vectors, means) -> np.ndarray:
    r"""Alignments ``|v_i^T mu_a|^2`` of companion eigenvectors with class means.

    Parameters
    ----------
    p_vectors : array_like, shape (p, s) or (p,)
        Unit eigenvectors ``v_i`` of the companion ``X X^T / p`` in columns (e.g.
        from :meth:`GramAccumulator.eigenpairs`).
    means : array_like, shape (k, p)
        Class means ``mu_a`` in rows (e.g. :attr:`GramAccumulator.means`).

    Returns
    -------
    ndarray, shape (s, k), or (k,) for 1-d ``p_vectors``
        ``[i, a] = (v_i^T mu_a)^2`` in squared feature units; sign invariant.
    """
    V, one_d = _as_vectors(p_vectors, "p_vectors")
    M = as_real_array(means, "means", ndim=2)
    if M.shape[1] != V.shape[0]:
        raise ValueError(
            f"means have {M.shape[1]} features but p_vectors have {V.shape[0]} rows; "
            "expected means of shape (k, p) and p_vectors of shape (p, s)"
        )
    if M.shape[0] == 0:
        raise ValueError("means is empty: need at least one class")
    out = ((M @ V) ** 2).T
    return out[0] if one_d else out
