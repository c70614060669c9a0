"""The k-class mixture model: class sizes, means and covariances.

Conventions
-----------
A sample of class ``a`` is a vector ``x`` in ``R^p`` with mean ``mu_a`` and
*centred* covariance ``C_a``.  Class ``a`` holds ``n_a`` samples, ``n = sum n_a``.
The object of interest is the Gram matrix ``G = X^T X / p`` (``n x n``) where the
paper's ``X`` is ``p x n``.  **Data arrays in this library are
``(n_samples, n_features) = (n, p)``**, i.e. ``X = data.T``.

Ratios: ``c_a = n_a / p`` and ``gamma = n / p``.

A :class:`MixtureModel` is validated once when it is built; every solver trusts
it afterwards.  Covariances are stored either dense ``(k, p, p)`` or in
*commuting* (eigen) form ``C_a = U diag(eigenvalues[a]) U^T`` with one shared
orthogonal ``U``; a dense model whose covariances commute is detected on first
use and takes the fast path.
"""

from __future__ import annotations

import hashlib
import numbers
from collections.abc import Iterator
from dataclasses import dataclass
from itertools import combinations

import numpy as np
import scipy.linalg

from rmtgan._linalg import eigh_subset
from rmtgan._validation import as_flag, as_labels, as_positive_int, as_real_array, as_sizes, label_group

__all__ = ["MixtureModel", "MomentAccumulator", "EigenForm"]

#: relative tolerance for symmetry of a covariance (max-abs norm).
SYMMETRY_RTOL = 1e-8
#: relative tolerance for the smallest admissible eigenvalue, ``-PSD_RTOL * ||C||``.
PSD_RTOL = 1e-9
#: relative tolerance under which covariances are declared to commute.
COMMUTE_RTOL = 1e-10
#: for the atom at 0, an eigenvalue of ``C_a`` below this fraction of the largest is a zero.
RANK_RTOL = 1e-10
#: two ranges share a direction when a singular value of their joined bases is below this.
UNION_RTOL = 1e-8


def _frozen(arr: np.ndarray, source=None) -> np.ndarray:
    """``arr`` as a read-only array the model owns (copied when it may share memory with ``source``).

    A model is validated once, when it is built: neither the caller's array nor one a
    property hands out may change it afterwards.
    """
    if source is not None and np.may_share_memory(arr, np.asarray(source)) and not _read_only(source):
        arr = arr.copy()
    arr.setflags(write=False)
    return arr


def _read_only(x) -> bool:
    """Whether ``x`` is an array nobody can write to (read-only, and so is what it views)."""
    while isinstance(x, np.ndarray):
        if x.flags.writeable:
            return False
        x = x.base
    return x is None


@dataclass(frozen=True)
class EigenForm:
    """Commuting covariances ``C_a = U diag(eigenvalues[a]) U^T``.

    Attributes
    ----------
    eigenvalues : ndarray, shape (k, p)
        Eigenvalue ``lambda_{a,i}`` of class ``a`` along basis vector ``i``.
    basis : ndarray of shape (p, p) or None
        The orthogonal ``U`` (columns are the shared eigenvectors); ``None``
        means the identity (diagonal covariances).
    """

    eigenvalues: np.ndarray
    basis: np.ndarray | None

    def rotate(self, vectors: np.ndarray) -> np.ndarray:
        """Coordinates ``U^T v`` of the columns of ``vectors`` (p, m)."""
        return vectors if self.basis is None else self.basis.T @ vectors


class MixtureModel:
    r"""A k-class mixture: sizes ``n_a``, means ``mu_a``, covariances ``C_a``.

    Parameters
    ----------
    means : array_like, shape (k, p)
        Class means ``mu_a`` (row ``a``).  Use zeros for a bulk-only model.
    covariances : array_like, shape (k, p, p)
        Centred class covariances ``C_a``: real, symmetric (relative tolerance
        ``1e-8``) and positive semi-definite (eigenvalues ``>= -1e-9 p max|C_a|``).
    sizes : sequence of int, length k
        Class sizes ``n_a`` (positive integers); ``n = sum(sizes)``.

    Raises
    ------
    TypeError, ValueError
        Naming the argument, the class and the value that is wrong.

    Notes
    -----
    Under the model, ``G = X^T X / p`` with ``X = data.T`` has a limiting
    spectrum described by the fixed point of :func:`rmtgan.solve`.
    """

    def __init__(self, means, covariances, sizes):
        cov = as_real_array(covariances, "covariances")
        if cov.ndim != 3 or cov.shape[1] != cov.shape[2]:
            raise ValueError(
                f"covariances must have shape (k, p, p), got {cov.shape}"
            )
        k, p = cov.shape[0], cov.shape[1]
        if k == 0 or p == 0:
            raise ValueError(f"covariances is empty (shape {cov.shape}): a model needs k >= 1 and p >= 1")
        for a in range(k):
            _check_covariance(cov[a], a)
        self._init_common(means, sizes, k, p)
        self._cov = _frozen(cov, covariances)
        self._eigen: EigenForm | None = None
        self._eigen_checked = False

    # ------------------------------------------------------------------ builders
    @classmethod
    def from_eigen(cls, eigenvalues, sizes, means=None, basis=None) -> MixtureModel:
        r"""Build a model with commuting covariances ``C_a = U diag(eigenvalues[a]) U^T``.

        Parameters
        ----------
        eigenvalues : array_like, shape (k, p)
            Non-negative eigenvalues ``lambda_{a,i}`` (negative values down to
            ``-1e-9 max|lambda|`` are accepted as rounding noise).
        sizes : sequence of int, length k
            Class sizes ``n_a``.
        means : array_like, shape (k, p), optional
            Class means, in the *original* coordinates; zeros by default.
        basis : array_like, shape (p, p), optional
            Orthogonal ``U`` whose columns are the common eigenvectors; the
            identity by default (diagonal covariances).
        """
        lam = as_real_array(eigenvalues, "eigenvalues")
        if lam.ndim == 1:
            raise ValueError(
                f"eigenvalues must have shape (k, p), got {lam.shape}; use eigenvalues[None] for one class"
            )
        if lam.ndim != 2 or lam.shape[0] == 0 or lam.shape[1] == 0:
            raise ValueError(f"eigenvalues must have shape (k, p) with k, p >= 1, got {lam.shape}")
        k, p = lam.shape
        scale = np.max(np.abs(lam), axis=1)
        for a in range(k):
            i = int(np.argmin(lam[a]))
            if lam[a, i] < -PSD_RTOL * max(scale[a], np.finfo(float).tiny):
                raise ValueError(
                    f"covariance of class {a} is not positive semi-definite: "
                    f"eigenvalue {i} is {lam[a, i].item()!r}"
                )
        U = None
        if basis is not None:
            U = _frozen(as_real_array(basis, "basis", ndim=2), basis)
            if U.shape != (p, p):
                raise ValueError(f"basis must have shape (p, p) = ({p}, {p}), got {U.shape}")
            err = np.max(np.abs(U.T @ U - np.eye(p)))
            if err > 1e-8:
                raise ValueError(f"basis is not orthogonal: max |U^T U - I| = {err:.3g}")
        self = cls.__new__(cls)
        self._init_common(means, sizes, k, p)
        self._cov = None
        self._eigen = EigenForm(_frozen(lam, eigenvalues), U)
        self._eigen_checked = True
        self._built_from_eigen = True
        return self

    @classmethod
    def isotropic(cls, variances, sizes, p: int, means=None) -> MixtureModel:
        """Classes with covariance ``sigma_a^2 I_p``.

        Parameters
        ----------
        variances : array_like, shape (k,)
            ``sigma_a^2 >= 0``, one per class.
        sizes : sequence of k positive int
            Class sizes ``n_a``.
        p : int
            Feature dimension.
        means : array_like, shape (k, p), optional
            Class means (zeros by default).

        Returns
        -------
        MixtureModel
            In eigen form (diagonal covariances): the commuting path applies.
        """
        p = as_positive_int(p, "p")
        var = as_real_array(variances, "variances", ndim=1)
        if var.size == 0:
            raise ValueError("variances is empty: a model needs at least one class")
        if np.any(var < 0):
            a = int(np.flatnonzero(var < 0)[0])
            raise ValueError(f"variances[{a}] is {var[a].item()!r}: a variance cannot be negative")
        return cls.from_eigen(np.repeat(var[:, None], p, axis=1), sizes, means=means)

    @classmethod
    def from_features(cls, features, labels, sizes=None) -> MixtureModel:
        """Estimate class means and covariances from labelled features.

        Parameters
        ----------
        features : array_like, shape (n_samples, p)
            One feature vector per row.
        labels : array_like, shape (n_samples,)
            Class label of each row (integers or strings); classes are ordered
            as ``numpy.unique(labels)``.
        sizes : sequence of int, optional
            Class sizes ``n_a`` of the Gram matrix to predict; by default the
            class counts in ``features``.

        Notes
        -----
        Covariances are the unbiased estimates (divided by ``count - 1``),
        accumulated in float64 with a numerically stable pairwise update.
        """
        acc = MomentAccumulator()
        acc.update(features, labels)
        return acc.to_model(sizes)

    def _init_common(self, means, sizes, k: int, p: int) -> None:
        n_a = as_sizes(sizes)
        if n_a.size != k:
            raise ValueError(f"sizes has {n_a.size} entries but there are k = {k} classes")
        if means is None:
            mu = np.zeros((k, p))
        else:
            mu = as_real_array(means, "means")
            if mu.shape != (k, p):
                raise ValueError(f"means must have shape (k, p) = ({k}, {p}), got {mu.shape}")
        self._means = _frozen(mu, means)
        self._sizes = _frozen(n_a, sizes)
        self._k = k
        self._p = p
        self._factors: list[np.ndarray] | None = None
        self._digests: dict[bool, str] = {}
        self._built_from_eigen = False
        self._class_labels = _frozen(np.arange(k))

    @property
    def class_labels(self) -> np.ndarray:
        """The label of each class, shape (k,) (read-only; ``arange(k)`` unless set).

        :func:`rmtgan.compare` maps the labels of data through it.  Setting it
        validates and copies: ``k`` distinct integer or string labels.
        """
        return self._class_labels

    @class_labels.setter
    def class_labels(self, labels) -> None:
        if labels is None:
            raise TypeError("class_labels must be a sequence of k labels, got None")
        lab = as_labels(labels, self._k, "class_labels", f"the model has k = {self._k} classes")
        if np.unique(lab).size != self._k:
            raise ValueError(f"class_labels must be distinct, got {lab.tolist()}")
        self._class_labels = _frozen(np.array(lab))

    # ---------------------------------------------------------------- properties
    @property
    def k(self) -> int:
        """Number of classes."""
        return self._k

    @property
    def p(self) -> int:
        """Dimension of the feature space."""
        return self._p

    @property
    def n(self) -> int:
        """Total number of samples ``sum(sizes)``."""
        return int(self._sizes.sum())

    @property
    def sizes(self) -> np.ndarray:
        """Class sizes ``n_a`` (int64 copy)."""
        return self._sizes.copy()

    @property
    def ratios(self) -> np.ndarray:
        """``c_a = n_a / p``."""
        return self._sizes / self._p

    @property
    def gamma(self) -> float:
        """``n / p``."""
        return self.n / self._p

    @property
    def means(self) -> np.ndarray:
        """Class means, shape (k, p) (read-only)."""
        return self._means

    @property
    def covariances(self) -> np.ndarray:
        """Dense covariances, shape (k, p, p) (read-only; materialised for eigen-form models)."""
        if self._cov is None:
            lam, U = self._eigen.eigenvalues, self._eigen.basis
            if U is None:
                cov = np.stack([np.diag(la) for la in lam])
            else:
                cov = np.einsum("ij,aj,kj->aik", U, lam, U)
            self._cov = _frozen(cov)
        return self._cov

    @property
    def eigen(self) -> EigenForm | None:
        """The commuting form of the covariances, or ``None`` if they do not commute.

        For a dense model this is detected on first access (pairwise commutators
        below ``1e-10`` relative, then a joint eigenbasis from a generic linear
        combination, verified to the same tolerance).
        """
        if not self._eigen_checked:
            self._eigen = _detect_commuting(self._cov)
            self._eigen_checked = True
        return self._eigen

    @property
    def is_commuting(self) -> bool:
        """Whether the fast (commuting) path applies."""
        return self.eigen is not None

    def fingerprint(self, means: bool = True) -> str:
        """A digest of the moments the predictions depend on.

        The bulk spectrum depends on the sizes and the covariances only
        (``means=False``); the spikes and eigenvectors on the means too.  Results
        computed for one model and handed to a function with another are checked with
        it.  The digest is of the form the model was built from (dense, or eigenvalues
        and basis), whatever is cached later: the same covariances built both ways have
        different digests.  :meth:`with_means` keeps the bulk's digest.
        """
        key = as_flag(means, "means")
        if key not in self._digests:
            h = hashlib.blake2b(digest_size=16)
            h.update(np.array([self._k, self._p], np.int64).tobytes())
            h.update(np.ascontiguousarray(self._sizes, np.int64).tobytes())
            if key:
                h.update(b"bulk:" + self.fingerprint(means=False).encode())
                h.update(np.ascontiguousarray(self._means).tobytes())
            elif not self._built_from_eigen:
                h.update(b"dense")
                h.update(np.ascontiguousarray(self._cov).tobytes())
            else:
                h.update(b"eigen")
                h.update(np.ascontiguousarray(self._eigen.eigenvalues).tobytes())
                if self._eigen.basis is not None:
                    h.update(np.ascontiguousarray(self._eigen.basis).tobytes())
            self._digests[key] = h.hexdigest()
        return self._digests[key]

    def traces(self) -> np.ndarray:
        """``(1/p) tr C_a`` for each class."""
        if self._eigen is not None:
            return self._eigen.eigenvalues.mean(axis=1)
        return np.trace(self._cov, axis1=1, axis2=2) / self._p

    def spectral_norms(self) -> np.ndarray:
        """Largest eigenvalue of each ``C_a``."""
        if self._eigen is not None:
            return self._eigen.eigenvalues.max(axis=1)
        return np.array([eigh_subset(c, self._p - 1, self._p - 1)[0]
                         for c in self._cov])

    def ranks(self, rtol: float = RANK_RTOL) -> list[np.ndarray]:
        """Orthonormal bases of the ranges of the covariances (for the atom at 0)."""
        return [self._range_basis(a, rtol) for a in range(self._k)]

    def _range_basis(self, a: int, rtol: float = RANK_RTOL) -> np.ndarray:
        """Orthonormal basis of the range of ``C_a`` (eigenvalues above ``rtol`` of the largest)."""
        if self._eigen is not None:
            lam = self._eigen.eigenvalues[a]
            keep = lam > rtol * max(np.max(np.abs(lam)), np.finfo(float).tiny)
            U = self._eigen.basis
            return np.eye(self._p)[:, keep] if U is None else U[:, keep]
        w, V = scipy.linalg.eigh(self._cov[a])
        keep = w > rtol * max(np.max(np.abs(w)), np.finfo(float).tiny)
        return V[:, keep]

    def _full_rank(self, a: int, rtol: float = RANK_RTOL) -> bool:
        """Whether ``C_a`` has rank ``p`` in the sense of :meth:`ranks` (eigenvalues only).

        First a Cholesky factorisation of ``C_a - tau I`` (a sixth of the eigenvalues'
        cost) with ``tau = (2 rtol + 2 (p + 1)^2 eps) b`` and ``b = ||C_a||_inf``, a bound
        of the largest eigenvalue: a computed factor is exact for a perturbation of norm
        at most about ``(p + 1)^2 eps b`` (Wilkinson), so when it succeeds every eigenvalue
        of ``C_a`` exceeds ``rtol b`` and the answer is yes; when it fails, the eigenvalues
        decide.
        """
        c = self._cov[a]
        p = self._p
        bound = float(np.max(np.sum(np.abs(c), axis=1)))  # >= the spectral radius
        if bound > 0:
            tau = 2.0 * (rtol + (p + 1) ** 2 * np.finfo(float).eps) * bound
            _, info = scipy.linalg.lapack.dpotrf(c - tau * np.eye(p), lower=1, clean=0)
            if info == 0:
                return True
        w = scipy.linalg.eigvalsh(c, check_finite=False)
        return bool(np.all(w > rtol * max(np.max(np.abs(w)), np.finfo(float).tiny)))

    def zero_mass(self) -> float:
        r"""Mass at 0 of the limiting spectrum of ``G`` (the atom).

        Gaussian columns drawn from the ranges of the ``C_a`` are in general
        position, so ``rank X = min_S ( sum_{a not in S} n_a + dim sum_{a in S} range C_a )``
        (Rado's theorem on the union of the class matroids); the atom is
        ``1 - rank X / n``.  For full-rank covariances this is ``max(0, 1 - p/n)``.

        Ranks are numerical: an eigenvalue of ``C_a`` below :data:`RANK_RTOL`
        (1e-10) of its largest counts as zero, and joined ranges lose a dimension
        at a singular value below :data:`UNION_RTOL` (1e-8).  The density, on the
        other hand, is solved from the covariances as they are: a covariance whose
        eigenvalues reach below 1e-10 of its largest without being zero makes the
        atom and the density disagree, and the spectrum's mass certificate fails
        (``success=False``, with the masses in its message).  Round such
        eigenvalues to zero, or keep them above the threshold, to say which is meant.
        """
        k, n = self._k, self.n
        if self._eigen is not None:
            lam = self._eigen.eigenvalues
            top = np.maximum(np.max(np.abs(lam), axis=1, keepdims=True), np.finfo(float).tiny)
            pos = lam > RANK_RTOL * top
            dims = lambda S: int(np.count_nonzero(pos[list(S)].any(axis=0)))  # noqa: E731
        else:
            # a class of full rank spans everything: bases (eigenvectors) are needed only
            # for unions of rank-deficient classes
            full = [self._full_rank(a) for a in range(k)]
            bases: dict[int, np.ndarray] = {}

            def dims(S):
                if not S:
                    return 0
                if any(full[a] for a in S):
                    return self._p
                for a in S:
                    if a not in bases:
                        bases[a] = self._range_basis(a)
                B = np.concatenate([bases[a] for a in S], axis=1)
                if B.shape[1] == 0:
                    return 0
                s = np.linalg.svd(B, compute_uv=False)
                return int(np.count_nonzero(s > UNION_RTOL * s[0]))
        best = n
        for r in range(k + 1):
            for S in combinations(range(k), r):
                outside = int(sum(self._sizes[a] for a in range(k) if a not in S))
                best = min(best, outside + dims(S))
        return 1.0 - best / n

    # ------------------------------------------------------------------ variants
    def with_sizes(self, sizes) -> MixtureModel:
        """The same moments (and ``class_labels``) with other class sizes.

        Parameters
        ----------
        sizes : sequence of k positive int
            The new ``n_a``.

        Returns
        -------
        MixtureModel
            Built the same way as this one (dense or eigen form), so that its
            ``fingerprint(means=False)`` changes with the sizes only.
        """
        return self._replace(sizes=sizes)

    def with_means(self, means) -> MixtureModel:
        """The same covariances, sizes and ``class_labels`` with other means.

        Parameters
        ----------
        means : (k, p) array or None
            The new class means; ``None`` for zeros (the bulk only), as in the
            constructors.

        Returns
        -------
        MixtureModel
            With the same ``fingerprint(means=False)`` as this one.
        """
        return self._replace(means=np.zeros((self._k, self._p)) if means is None else means)

    def scaled(self, s: float) -> MixtureModel:
        """Covariances multiplied by ``s`` and means by ``sqrt(s)`` (``G -> s G``)."""
        if isinstance(s, (bool, np.bool_)) or not isinstance(s, numbers.Real):
            raise TypeError(f"scale must be a real number, got {s!r}")
        s = float(s)
        if not np.isfinite(s) or s <= 0:
            raise ValueError(f"scale must be positive and finite, got {s!r}")
        return self._replace(means=self._means * np.sqrt(s), scale=s)

    def _replace(self, means=None, sizes=None, scale: float = 1.0) -> MixtureModel:
        means = self._means if means is None else means
        sizes = self._sizes if sizes is None else sizes
        # built as this one was (what its fingerprint digests), whatever has been cached since
        if self._built_from_eigen:
            e = self._eigen
            new = MixtureModel.from_eigen(e.eigenvalues * scale, sizes, means=means, basis=e.basis)
        else:
            new = MixtureModel.__new__(MixtureModel)
            new._init_common(means, sizes, self._k, self._p)
            new._cov = self._cov if scale == 1.0 else _frozen(self._cov * scale)  # read-only: shared
            new._eigen_checked = self._eigen_checked
            if self._eigen is not None:
                new._eigen = EigenForm(_frozen(self._eigen.eigenvalues * scale), self._eigen.basis)
            else:
                new._eigen = None
        new._class_labels = self._class_labels  # the same classes (read-only: shared)
        if sizes is self._sizes and scale == 1.0:
            new._digests[False] = self.fingerprint(means=False)  # the same bulk (with_means)
        return new

    # ------------------------------------------------------------------ sampling
    def _factor(self, a: int) -> np.ndarray:
        """The symmetric square root ``C_a^{1/2}`` (its diagonal when ``C_a`` is; cached).

        Unlike ``V sqrt(w)``, it is unique: a draw for a given seed does not depend
        on the signs (or, within a repeated eigenvalue, the rotation) of the
        eigenvectors LAPACK returns, which differ between CPUs and BLAS builds, and
        it changes continuously with the covariance.
        """
        if self._factors is None:
            self._factors = [None] * self._k
        if self._factors[a] is None:
            if self._eigen is not None:
                w, V = self._eigen.eigenvalues[a], self._eigen.basis
            else:
                w, V = scipy.linalg.eigh(self._cov[a])
            root = np.sqrt(np.clip(w, 0.0, None))  # clipped: rounding noise only (validated)
            self._factors[a] = root if V is None else (V * root) @ V.T
        return self._factors[a]

    def _sample_sizes(self, sizes) -> np.ndarray:
        if sizes is None:
            return self._sizes
        sizes = as_sizes(sizes)
        if len(sizes) != self._k:
            raise ValueError(f"sizes has {len(sizes)} entries but the model has k = {self._k} classes")
        return sizes

    def sample(self, sizes=None, *, rng=None, chunk_size: int = 4096, dtype=np.float64):
        """Draw a Gaussian-surrogate data set with the model's moments.

        Parameters
        ----------
        sizes : sequence of int, optional
            Samples per class (default: the model's sizes).
        rng : int or numpy.random.Generator, optional
            Seed or generator.
        chunk_size : int
            Rows generated per block (bounds the temporary memory).
        dtype : numpy floating dtype
            Output dtype (computations are float64).

        Returns
        -------
        data : ndarray, shape (n, p)
            Rows grouped by class, class 0 first.
        labels : ndarray, shape (n,)
            Class index of each row.

        Notes
        -----
        Row ``i`` of class ``a`` is ``mu_a + C_a^{1/2} z_i`` with the symmetric
        square root and ``z_i`` standard normal from ``rng``: the draw for a seed is
        a function of the moments alone (not of an eigenvector convention).
        """
        sizes = self._sample_sizes(sizes)
        try:
            dt = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"dtype must be a numpy floating dtype, got {dtype!r}") from exc
        if dt.kind != "f":
            raise TypeError(f"dtype must be a floating dtype (Gaussian draws), got {dt}")
        n = int(np.sum(sizes))
        out = np.empty((n, self._p), dtype=dt)
        labels = np.repeat(np.arange(self._k), sizes)
        for lo, block, _ in self.iter_samples(sizes, rng=rng, chunk_size=chunk_size):
            out[lo:lo + block.shape[0]] = block
        return out, labels

    def iter_samples(self, sizes=None, *, rng=None, chunk_size: int = 4096) -> Iterator:
        """Yield ``(offset, block, labels)`` chunks of a Gaussian-surrogate draw."""
        sizes = self._sample_sizes(sizes)
        chunk_size = as_positive_int(chunk_size, "chunk_size")
        gen = np.random.default_rng(rng)
        offset = 0
        for a in range(self._k):
            L = self._factor(a)
            left = int(sizes[a])
            while left > 0:
                b = min(chunk_size, left)
                Z = gen.standard_normal((b, self._p))
                block = (Z * L if L.ndim == 1 else Z @ L.T) + self._means[a]
                yield offset, block, np.full(b, a)
                offset += b
                left -= b

    def __setstate__(self, state: dict) -> None:
        # unpickled arrays come back writable: the model's are read-only again; models
        # pickled before the fingerprints existed get their (empty) caches
        state = dict(state)
        if "class_labels" in state:  # pickled when it was a plain attribute
            state["_class_labels"] = np.array(state.pop("class_labels"))
        self.__dict__.update(state)
        self.__dict__.setdefault("_digests", {})
        self.__dict__.setdefault("_built_from_eigen", state.get("_cov") is None)
        arrays = [self._cov, self._means, self._sizes, self._class_labels]
        if self._eigen is not None:
            arrays += [self._eigen.eigenvalues, self._eigen.basis]
        for arr in arrays:
            if arr is not None:
                arr.setflags(write=False)

    def __repr__(self) -> str:
        kind = "commuting" if (self._eigen_checked and self._eigen is not None) else "dense"
        return f"MixtureModel(k={self._k}, p={self._p}, sizes={self._sizes.tolist()}, {kind})"


def check_same_bulk(other: MixtureModel, model: MixtureModel, what: str) -> None:
    """Raise ``ValueError`` unless ``other`` has the sizes and covariances of ``model``."""
    if other is model:
        return
    if other.p != model.p or other.k != model.k or not np.array_equal(other.sizes, model.sizes):
        raise ValueError(
            f"{what} was computed for a model with p = {other.p}, sizes = {other.sizes.tolist()}, "
            f"but this model has p = {model.p}, sizes = {model.sizes.tolist()}"
        )
    if other.fingerprint(means=False) != model.fingerprint(means=False):
        raise ValueError(f"{what} was computed for a model with other covariances "
                         "(MixtureModel.fingerprint(means=False) differs)")


def _check_covariance(c: np.ndarray, a: int) -> None:
    scale = float(np.max(np.abs(c)))
    asym = float(np.max(np.abs(c - c.T)))
    if asym > SYMMETRY_RTOL * max(scale, np.finfo(float).tiny):
        raise ValueError(
            f"covariance of class {a} is not symmetric: max |C - C^T| = {asym:.3g} (max |C| = {scale:.3g})"
        )
    if scale == 0.0:
        return
    tau = PSD_RTOL * scale * c.shape[0]
    try:
        scipy.linalg.cholesky(c + tau * np.eye(c.shape[0]), lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        w = eigh_subset(c, 0, 0)[0]
        raise ValueError(
            f"covariance of class {a} is not positive semi-definite: smallest eigenvalue {w:.6g}"
        ) from None


def _detect_commuting(cov: np.ndarray) -> EigenForm | None:
    k, p = cov.shape[0], cov.shape[1]
    offdiag = np.abs(cov).sum(axis=(1, 2)) - np.abs(np.diagonal(cov, axis1=1, axis2=2)).sum(axis=1)
    if np.all(offdiag == 0):
        return EigenForm(_frozen(np.diagonal(cov, axis1=1, axis2=2).copy()), None)
    # Frobenius norms and the commutators of the normalised covariances: no over- or
    # underflow at any scale (a class of entries below 1e-162 would square to 0)
    top = np.maximum(np.abs(cov).max(axis=(1, 2)), np.finfo(float).tiny)
    norms = top * np.array([np.linalg.norm(cov[a] / top[a]) for a in range(k)])

    def unit(a):
        return cov[a] / max(norms[a], np.finfo(float).tiny)

    for a, b in combinations(range(k), 2):
        comm = unit(a) @ unit(b)
        if np.linalg.norm(comm - comm.T) > COMMUTE_RTOL:
            return None
    # joint eigenbasis from a generic combination (distinct weights split degeneracies)
    weights = 1.0 + np.sqrt(np.arange(2, k + 2)) / 7.0
    combo = np.tensordot(weights / np.maximum(norms, np.finfo(float).tiny), cov, axes=1)
    _, U = scipy.linalg.eigh(combo)
    lam = np.empty((k, p))
    for a in range(k):
        D = U.T @ cov[a] @ U
        lam[a] = np.diagonal(D)
        off = np.linalg.norm(D - np.diag(lam[a]))
        if off > COMMUTE_RTOL * 10 * max(norms[a], np.finfo(float).tiny):
            return None
    return EigenForm(_frozen(lam), _frozen(U))


class MomentAccumulator:
    """Streaming, numerically stable class means and covariances.

    Feed labelled batches with :meth:`update`; read :attr:`means`,
    :attr:`covariances` (unbiased) and :attr:`counts` at any time, or build a
    :class:`MixtureModel` with :meth:`to_model`.  Accumulation is in float64;
    batches are merged with the pairwise (Chan et al.) update, so large means do
    not cancel the covariance.

    Parameters
    ----------
    n_features : int, optional
        Feature dimension ``p``; fixed by the first batch otherwise.
    """

    def __init__(self, n_features: int | None = None):
        self._p = None if n_features is None else as_positive_int(n_features, "n_features")
        self._count: dict = {}
        self._mean: dict = {}
        self._m2: dict = {}
        self._label_group: str | None = None

    def update(self, batch, labels) -> MomentAccumulator:
        """Add a batch ``(b, p)`` with its labels ``(b,)``; returns ``self``."""
        X = as_real_array(batch, "features", ndim=2, data=True)
        if self._p is None:
            self._p = X.shape[1]
        elif X.shape[1] != self._p:
            raise ValueError(f"features have {X.shape[1]} columns, expected p = {self._p}")
        lab = as_labels(labels, X.shape[0])
        group = label_group(lab.dtype.kind)
        if self._label_group is not None and group != self._label_group:
            raise ValueError(f"labels are of kind {group!r} but earlier batches had labels "
                             f"of kind {self._label_group!r}")
        self._label_group = group
        for cls in np.unique(lab):
            key = cls.item()
            rows = X[lab == cls]
            m = rows.shape[0]
            mu_b = rows.mean(axis=0)
            D = rows - mu_b
            m2_b = D.T @ D
            if key not in self._count:
                self._count[key], self._mean[key], self._m2[key] = m, mu_b, m2_b
                continue
            na = self._count[key]
            tot = na + m
            d = mu_b - self._mean[key]
            self._mean[key] = self._mean[key] + d * (m / tot)
            self._m2[key] = self._m2[key] + m2_b + np.outer(d, d) * (na * m / tot)
            self._count[key] = tot
        return self

    @property
    def classes(self) -> list:
        """Class labels seen so far, sorted."""
        return sorted(self._count)

    def _classes_seen(self) -> list:
        if not self._count:
            raise ValueError("no features were accumulated (call update first)")
        return self.classes

    @property
    def counts(self) -> np.ndarray:
        """Samples seen per class, shape (k,), in the order of :attr:`classes`."""
        return np.array([self._count[c] for c in self.classes], dtype=np.int64)

    @property
    def means(self) -> np.ndarray:
        """Class means, shape (k, p), in the order of :attr:`classes`."""
        return np.stack([self._mean[c] for c in self._classes_seen()])

    @property
    def covariances(self) -> np.ndarray:
        """Unbiased covariances ``M2 / (count - 1)``, shape (k, p, p)."""
        for c in self._classes_seen():
            if self._count[c] < 2:
                raise ValueError(f"class {c!r} has {self._count[c]} sample(s); a covariance needs at least 2")
        return np.stack([0.5 * (self._m2[c] + self._m2[c].T) / (self._count[c] - 1) for c in self.classes])

    def to_model(self, sizes=None) -> MixtureModel:
        """A :class:`MixtureModel` with the estimated moments (sizes default to the counts)."""
        cov, means = self.covariances, self.means
        cov.setflags(write=False)  # fresh arrays nobody else holds: the model keeps them, uncopied
        means.setflags(write=False)
        model = MixtureModel(means, cov, self.counts if sizes is None else sizes)
        model.class_labels = np.array(self.classes)
        return model
