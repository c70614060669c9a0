r"""The general (non-commuting) path: one complex-symmetric ``p x p`` inverse per point.

For general covariances every evaluation of the fixed-point map needs

.. math::

    A(z, \delta) = \sum_b w_b C_b - z I_p,\qquad w_b = \frac{c_b}{1+\delta_b},\qquad
    R = A^{-1},

a complex *symmetric* matrix (``A^T = A``, not Hermitian).  From ``R`` and the
products ``Q_a = C_a R`` (``k`` real-times-complex matrix products, done as one
real ``dgemm`` on the interleaved real view of ``R``) everything else is a trace:

.. math::

    t_a = \tfrac1p \operatorname{tr} Q_a,\qquad
    \frac{\partial t_a}{\partial z} = \tfrac1p \operatorname{tr}(Q_a R),\qquad
    \frac{\partial t_a}{\partial \delta_b} = \frac{c_b}{(1+\delta_b)^2}\,
        \tfrac1p \operatorname{tr}(Q_a Q_b),

and ``tr(Q_a Q_b) = sum(Q_a * Q_b^T)`` costs ``O(p^2)`` (a tiled numba kernel, no
transposed copies).  When the Jacobian is not needed, ``t_a = (1/p) sum(C_a * R)``
needs no product at all.

The inverse is LAPACK's LU pair ``zgetrf/zgetri`` (OpenBLAS's tuned kernels
beat the complex-symmetric Bunch--Kaufman pair ``zsytrf`` + ``zsytri2``, half the
flops, which stays available as ``inverse='sytri2'``); a real point (real ``z``
and real ``delta``, i.e. outside the support) is done entirely in real
arithmetic (an inverse about 2.7 times cheaper at p = 400).  Every inverse is checked with a random probe
``|A (R v) - v|``; a failed check falls back to the LU inverse and then raises
:class:`InversionError` -- garbage is never returned.

LAPACK is called through ``ctypes`` on ``scipy.linalg.cython_lapack``, which
releases the GIL, so the points of one call run on worker threads
(``DenseBackend(workers=...)``), one inverse and one BLAS thread each.

For folds (support edges) :meth:`DenseBackend.fold_point` also gives the
second derivatives along a direction ``v`` (products in single precision: they
steer Newton steps and predictors only):

.. math::

    \frac{\partial (Jv)_a}{\partial \delta_c} = \frac{2 e_c}{p}\operatorname{tr}(Q_a Q_c Q_v)
        - \frac{2 v_c}{1+\delta_c} J_{ac},\qquad
    \frac{\partial (Jv)_a}{\partial z} = \frac2p \operatorname{tr}(Q_a Q_v R),

with ``e_c = c_c/(1+delta_c)^2`` and ``Q_v = sum_b v_b e_b Q_b``.
"""

from __future__ import annotations

import ctypes
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from contextlib import contextmanager

import numpy as np
import scipy.linalg
from numba import njit
from scipy.linalg import lapack

from rmtgan._cpus import available_cores
from rmtgan._validation import as_workers

__all__ = ["DenseBackend", "InversionError", "negative_count", "symmetric_inverse"]

#: relative probe residual ``|A R v - v| / (|A|_F |R v| + |v|)`` above which an inverse is rejected.
PROBE_RTOL = 1e-7
#: the same for a single-precision inverse (:meth:`DenseBackend.evaluate` with ``single``):
#: above it the point is evaluated in double precision instead.
PROBE_RTOL_SINGLE = 1e-5

#: smallest ``p`` at which a batch of points is spread over worker threads.  Below it
#: one thread is as fast (measured, 2 cores: p = 64 no gain, p = 128 1.8x).
PARALLEL_MIN_P = 96


class InversionError(ArithmeticError):
    """A ``p x p`` inverse failed (singular matrix or a failed accuracy check)."""


# --------------------------------------------------------------------------- LAPACK
def _cython_lapack_function(name: str, nargs: int = 8):
    """A ctypes function for ``scipy.linalg.cython_lapack.<name>`` taking ``nargs`` pointers.

    Calls through ``ctypes.CFUNCTYPE`` release the GIL, so inverses on several
    threads run in parallel (SciPy's own wrappers hold it).
    """
    from scipy.linalg import cython_lapack

    cap = cython_lapack.__pyx_capi__[name]
    get_name = ctypes.pythonapi.PyCapsule_GetName
    get_name.restype = ctypes.c_char_p
    get_name.argtypes = [ctypes.py_object]
    get_ptr = ctypes.pythonapi.PyCapsule_GetPointer
    get_ptr.restype = ctypes.c_void_p
    get_ptr.argtypes = [ctypes.py_object, ctypes.c_char_p]
    ptr = get_ptr(cap, get_name(cap))
    proto = ctypes.CFUNCTYPE(None, *([ctypes.c_void_p] * nargs))
    return proto(ptr)


try:  # LAPACK >= 3.3; present in every SciPy that ships cython_lapack
    _SYTRI2 = {np.dtype(np.complex128): _cython_lapack_function("zsytri2"),
               np.dtype(np.float64): _cython_lapack_function("dsytri2")}
    _GETRF = {np.dtype(np.complex128): _cython_lapack_function("zgetrf", 6),
              np.dtype(np.float64): _cython_lapack_function("dgetrf", 6),
              np.dtype(np.complex64): _cython_lapack_function("cgetrf", 6)}
    _GETRI = {np.dtype(np.complex128): _cython_lapack_function("zgetri", 7),
              np.dtype(np.float64): _cython_lapack_function("dgetri", 7),
              np.dtype(np.complex64): _cython_lapack_function("cgetri", 7)}
    _POTRF = _cython_lapack_function("dpotrf", 5)
    _POTRI = _cython_lapack_function("dpotri", 5)
except Exception:  # pragma: no cover - very old SciPy
    _SYTRI2, _GETRF, _GETRI, _POTRF, _POTRI = {}, {}, {}, None, None

_LWORK: dict = {}  # (routine, dtype, p) -> optimal workspace


def _with_workspace(fn, args: list, dtype, p: int) -> int:
    """Call a LAPACK routine whose last arguments are ``work, lwork, info``; returns ``info``.

    The optimal ``lwork`` is asked once per routine, dtype and size (``lwork = -1``)
    and remembered.
    """
    info = ctypes.c_int(0)
    key = (id(fn), np.dtype(dtype), p)
    lw = _LWORK.get(key)
    if lw is None:
        query = np.zeros(2, dtype)
        lwork = ctypes.c_int(-1)
        fn(*args, query.ctypes.data, ctypes.addressof(lwork), ctypes.addressof(info))
        lw = _LWORK[key] = max(int(np.real(query[0])), p, 1)
    work = np.empty(lw, dtype)
    lwork = ctypes.c_int(lw)
    info = ctypes.c_int(0)
    fn(*args, work.ctypes.data, ctypes.addressof(lwork), ctypes.addressof(info))
    return int(info.value)


def _lu_inverse(A: np.ndarray) -> np.ndarray | None:
    """``A^{-1}`` by ``?getrf/?getri`` without the GIL; ``None`` when ``A`` is singular.

    The C-ordered copy of ``A`` is ``A^T`` in LAPACK's (Fortran) order, so the buffer
    LAPACK leaves holds ``(A^T)^{-1}`` in Fortran order, i.e. ``A^{-1}`` in C order:
    no transposed copies.
    """
    if A.dtype not in _GETRF:  # pragma: no cover - very old SciPy
        try:
            return np.ascontiguousarray(scipy.linalg.inv(A, check_finite=False))
        except (np.linalg.LinAlgError, ValueError):
            return None
    a = np.array(A, order="C", copy=True)
    p = a.shape[0]
    n = ctypes.c_int(p)
    info = ctypes.c_int(0)
    ipiv = np.empty(p, np.int32)
    _GETRF[a.dtype](ctypes.addressof(n), ctypes.addressof(n), a.ctypes.data, ctypes.addressof(n),
                    ipiv.ctypes.data, ctypes.addressof(info))
    if info.value < 0:  # pragma: no cover - a bug here, not a property of A
        raise ValueError(f"?getrf: illegal argument {-info.value}")
    if info.value > 0:
        return None
    info = _with_workspace(_GETRI[a.dtype], [ctypes.addressof(n), a.ctypes.data, ctypes.addressof(n),
                                             ipiv.ctypes.data], a.dtype, p)
    if info < 0:  # pragma: no cover - a bug here, not a property of A
        raise ValueError(f"?getri: illegal argument {-info}")
    return a if info == 0 else None


def definite_inverse(A: np.ndarray) -> tuple[np.ndarray | None, int]:
    r"""Inverse of a real symmetric matrix that is positive or negative definite, and which.

    Cholesky (``dpotrf/dpotri``, without the GIL) of ``A`` or ``-A``, tried when every
    diagonal entry has the sign it needs: half the flops of an LU inverse, and the
    inertia comes with it.  Returns ``(R, s)`` with ``s = 1`` (positive definite) or
    ``-1`` (negative definite), or ``(None, 0)`` when ``A`` is neither to working
    precision or the inverse fails the probe check (the caller then uses
    :func:`symmetric_inverse`).
    """
    if np.iscomplexobj(A) or _POTRF is None:
        return None, 0
    d = np.diagonal(A)
    sign = 1 if np.all(d > 0) else (-1 if np.all(d < 0) else 0)
    if sign == 0:
        return None, 0
    a = np.array(A, order="C", dtype=np.float64)  # one copy, negated in place when needed
    if sign < 0:
        np.negative(a, out=a)
    # the C-ordered array is its own transpose in LAPACK's order: "U" there is the lower
    # triangle here, which _fill_upper copies on to the upper one
    uplo = ctypes.c_char(b"U")
    n = ctypes.c_int(a.shape[0])
    info = ctypes.c_int(0)
    args = (ctypes.addressof(uplo), ctypes.addressof(n), a.ctypes.data, ctypes.addressof(n),
            ctypes.addressof(info))
    _POTRF(*args)
    if info.value == 0:
        _POTRI(*args)
    if info.value != 0:
        return None, 0
    _fill_upper(a)
    if sign < 0:
        np.negative(a, out=a)
    return (a, sign) if _probe_ok(A, a) else (None, 0)


def _sytri2(lu: np.ndarray, ipiv: np.ndarray) -> int:
    """In-place ``?sytri2`` on the Fortran-ordered Bunch--Kaufman factor (lower); returns ``info``."""
    n = ctypes.c_int(lu.shape[0])
    ipiv = np.ascontiguousarray(ipiv, dtype=np.int32)
    uplo = ctypes.c_char(b"L")
    args = [ctypes.addressof(uplo), ctypes.addressof(n), lu.ctypes.data, ctypes.addressof(n),
            ipiv.ctypes.data]
    return _with_workspace(_SYTRI2[lu.dtype], args, lu.dtype, lu.shape[0])


@njit(cache=True, nogil=True)
def _fill_upper(a):  # pragma: no cover - compiled
    """Copy the lower triangle onto the upper one (in place)."""
    n = a.shape[0]
    for j in range(n):
        for i in range(j + 1, n):
            a[j, i] = a[i, j]


def _probe_ok(A: np.ndarray, R: np.ndarray, rtol: float = PROBE_RTOL) -> bool:
    """Cheap ``O(p^2)`` check of an inverse: ``|A (R v) - v|`` for a fixed random ``v``."""
    p = A.shape[0]
    v = np.cos(np.arange(p) * 0.7548776662466927 + 0.3)  # deterministic, no RNG state
    y = R @ v
    if not np.all(np.isfinite(y)):
        return False
    res = np.linalg.norm(A @ y - v)
    return bool(res <= rtol * (np.linalg.norm(A) * np.linalg.norm(y) + np.linalg.norm(v)))


def symmetric_inverse(A: np.ndarray, *, method: str = "getri") -> np.ndarray:
    r"""Inverse of a (real or complex) symmetric matrix, full storage, C-contiguous.

    Parameters
    ----------
    A : ndarray, shape (p, p)
        ``A = A^T`` (complex symmetric, not Hermitian, when complex); not modified.
    method : {'getri', 'sytri2'}
        ``'getri'``: LU (``?getrf/?getri``, called without the GIL); ``'sytri2'``: Bunch--Kaufman
        ``?sytrf`` and the blocked ``?sytri2``.  A failed probe check of the second
        falls back to the first.

    Raises
    ------
    InversionError
        ``A`` is singular to working precision or both methods fail the check.
    """
    if method not in ("sytri2", "getri"):
        raise ValueError(f"method must be 'sytri2' or 'getri', got {method!r}")
    R = None
    if method == "sytri2" and A.dtype in _SYTRI2:
        sytrf = lapack.zsytrf if np.iscomplexobj(A) else lapack.dsytrf
        lu, ipiv, info = sytrf(A, lower=1)
        if info == 0 and _sytri2(lu, ipiv) == 0:
            R = lu.T  # C-contiguous; symmetric, so the transpose of the lower factor is the full inverse
            _fill_upper(lu)
            if not _probe_ok(A, R):
                R = None
    if R is None:
        R = _lu_inverse(A)
        if R is None:
            raise InversionError(f"singular {A.shape[0]}x{A.shape[0]} matrix (zero pivot in ?getrf)")
        if not _probe_ok(A, R):
            raise InversionError(f"inverse of a {A.shape[0]}x{A.shape[0]} matrix failed the accuracy check "
                                 "(ill-conditioned or a faulty LAPACK)")
    return R


def negative_count(A: np.ndarray) -> int:
    r"""Number of negative eigenvalues of a real symmetric matrix (Sylvester's law of inertia).

    From the Bunch--Kaufman factorisation ``A = L D L^T`` (LAPACK ``dsytrf``,
    ``p^3 / 3`` flops, a third of an inverse): the inertia of ``A`` is that of the
    block-diagonal ``D`` (``1 x 1`` and ``2 x 2`` blocks).

    Raises
    ------
    InversionError
        ``A`` is singular to working precision (a zero pivot).
    """
    if np.iscomplexobj(A):
        raise TypeError("negative_count needs a real symmetric matrix")
    lu, ipiv, info = lapack.dsytrf(A, lower=1)
    if info < 0:  # pragma: no cover - argument error
        raise ValueError(f"dsytrf: illegal argument {-info}")
    d = np.diag(lu)
    off = np.diag(lu, -1)
    p = d.size
    neg = 0
    i = 0
    while i < p:
        if ipiv[i] > 0 or i == p - 1:  # 1 x 1 block
            if d[i] == 0.0:
                raise InversionError(f"singular {p}x{p} matrix (zero pivot in dsytrf)")
            neg += d[i] < 0.0
            i += 1
        else:  # 2 x 2 block [[d_i, o], [o, d_{i+1}]]: signs of its two eigenvalues
            det = d[i] * d[i + 1] - off[i] * off[i]
            if det == 0.0:
                raise InversionError(f"singular {p}x{p} matrix (singular 2x2 pivot in dsytrf)")
            neg += 1 if det < 0.0 else (2 if d[i] + d[i + 1] < 0.0 else 0)
            i += 2
    return int(neg)


# --------------------------------------------------------------------------- threads
_POOLS: dict[int, ThreadPoolExecutor] = {}
_POOL_LOCK = threading.Lock()
_IN_WORKER = threading.local()


def _as_worker(fn):
    """``fn`` marked as running on a worker thread (its own evaluations stay serial)."""
    def run(*args):
        before = getattr(_IN_WORKER, "flag", False)
        _IN_WORKER.flag = True
        try:
            return fn(*args)
        finally:
            _IN_WORKER.flag = before
    return run


def _pool(workers: int) -> ThreadPoolExecutor:
    with _POOL_LOCK:
        ex = _POOLS.get(workers)
        if ex is None:
            ex = _POOLS[workers] = ThreadPoolExecutor(workers, thread_name_prefix="rmtgan-dense")
        return ex


class _OneBlasThread:
    """Process-wide "BLAS on one thread" while any parallel region is active (re-entrant).

    threadpoolctl's limits are process-wide: the first region to enter sets one
    thread, the last to leave restores the previous setting, whichever threads they
    run on.
    """

    def __init__(self):
        self.lock = threading.Lock()
        self.depth = 0
        self.controller = None
        self.limiter = None

    def __enter__(self):
        with self.lock:
            if self.depth == 0:
                try:
                    if self.controller is None:
                        from threadpoolctl import ThreadpoolController

                        self.controller = ThreadpoolController()
                    self.limiter = self.controller.limit(limits=1, user_api="blas")
                except ImportError:  # pragma: no cover - threadpoolctl is a dependency
                    self.limiter = None
            self.depth += 1
        return self

    def __exit__(self, *exc):
        with self.lock:
            self.depth -= 1
            if self.depth == 0 and self.limiter is not None:
                self.limiter.restore_original_limits()
                self.limiter = None
        return False


_ONE_BLAS_THREAD = _OneBlasThread()


def _one_blas_thread() -> _OneBlasThread:
    """Context in which BLAS/LAPACK run on one thread each (the workers supply the parallelism)."""
    return _ONE_BLAS_THREAD


def _forget_threads() -> None:
    """In a forked child the parent's threads do not exist: pools, locks and limits start afresh.

    (Forking while another thread evaluates is still unsafe: BLAS's own locks may be held.)
    """
    global _POOL_LOCK, _WARM, _ONE_BLAS_THREAD
    _POOLS.clear()
    _POOL_LOCK = threading.Lock()
    _WARM = threading.Lock()
    _ONE_BLAS_THREAD = _OneBlasThread()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_threads)


# --------------------------------------------------------------------------- traces
@njit(cache=True, nogil=True)
def _pair_traces(Q, pair):  # pragma: no cover - compiled
    """``pair[a, b] = tr(Q_a Q_b)`` for all ``a, b``; ``Q`` is ``(k, p, p)``.

    Tiles keep the transposed reads in cache.
    """
    k, p = Q.shape[0], Q.shape[1]
    B = 48
    nb = (p + B - 1) // B
    part = np.zeros((nb, k, k), pair.dtype)  # accumulate in the output's precision
    for ib in range(nb):
        i0 = ib * B
        i1 = min(p, i0 + B)
        for jb in range(nb):
            j0 = jb * B
            j1 = min(p, j0 + B)
            for a in range(k):
                for b in range(a, k):
                    s = part[ib, a, b] * 0
                    for i in range(i0, i1):
                        for j in range(j0, j1):
                            s += Q[a, i, j] * Q[b, j, i]
                    part[ib, a, b] += s
    for a in range(k):
        for b in range(a, k):
            s = part[0, a, b] * 0  # zero of the output type (never read the output: it may be np.empty)
            for ib in range(nb):
                s += part[ib, a, b]
            pair[a, b] = s
            pair[b, a] = s


@njit(cache=True, nogil=True)
def _cross_traces(Q, M, out):  # pragma: no cover - compiled
    """``out[a] = tr(Q_a M) = sum(Q_a * M^T)`` for ``Q`` of shape ``(k, p, p)``."""
    k, p = Q.shape[0], Q.shape[1]
    B = 48
    nb = (p + B - 1) // B
    part = np.zeros((nb, k), out.dtype)
    for ib in range(nb):
        i0 = ib * B
        i1 = min(p, i0 + B)
        for jb in range(nb):
            j0 = jb * B
            j1 = min(p, j0 + B)
            for a in range(k):
                s = part[ib, a] * 0
                for i in range(i0, i1):
                    for j in range(j0, j1):
                        s += Q[a, i, j] * M[j, i]
                part[ib, a] += s
    for a in range(k):
        s = part[0, a] * 0
        for ib in range(nb):
            s += part[ib, a]
        out[a] = s


def _cache_key(z: complex, delta: np.ndarray) -> tuple:
    """Key of a point in a thread's resolvent cache (real and complex ``delta`` alike)."""
    return complex(z), np.asarray(delta, np.complex128).tobytes()


def _real_if_real(z: complex, delta: np.ndarray) -> np.ndarray:
    """``delta`` as a real array at a real point (real ``z`` and ``delta``: real arithmetic)."""
    return delta.real if z.imag == 0 and np.all(delta.imag == 0) else delta


_WARM = threading.Lock()
_warmed = False


def _warm_kernels() -> None:
    """Compile (or load from numba's cache) every specialisation of the trace kernels, once.

    Called from the thread that creates a backend, before any worker thread runs a
    kernel: numba then never compiles inside a worker (in fresh environments, first
    calls compiling on two worker threads at once went with nondeterministic failures
    of the walk that were not reproduced once the kernels were compiled).
    """
    global _warmed
    with _WARM:
        if _warmed:
            return
        k, p = 2, 3
        for cdt, rdt in ((np.complex128, np.complex128), (np.complex64, np.complex128),
                         (np.float64, np.float64), (np.float32, np.float64)):
            Q = np.ones((k, p, p), cdt)
            _pair_traces(Q, np.empty((k, k), rdt))
            _cross_traces(Q, np.ones((p, p), rdt), np.empty(k, rdt))
            _cross_traces(Q, np.ones((p, p), cdt), np.empty(k, rdt))  # single-precision R
        # second derivatives: single-precision products, double accumulation, strided output
        Q = np.ones((k, p, p), np.float32)
        _cross_traces(Q, np.ones((p, p), np.float32), np.empty(k))
        _cross_traces(Q, np.ones((p, p), np.float32), np.empty((k, k))[:, 0])
        for dt in (np.complex128, np.float64):
            _fill_upper(np.ones((p, p), dt))
            _fill_upper(np.ones((p, p), dt, order="F"))  # the Bunch-Kaufman factor from LAPACK
        _warmed = True


def _as_real_view(R: np.ndarray) -> np.ndarray:
    """``(p, p)`` complex C-contiguous -> ``(p, 2p)`` real view (Re/Im interleaved by column)."""
    return R.view(np.float32 if R.dtype == np.complex64 else np.float64)


# --------------------------------------------------------------------------- backend
class DenseBackend:
    r"""Evaluate the fixed-point map for general covariances with LAPACK (NumPy/SciPy).

    Parameters
    ----------
    model : MixtureModel
    inverse : {'getri', 'sytri2'}
        Inversion routine (see :func:`symmetric_inverse`).  LU is the default: with
        the OpenBLAS shipped with SciPy it measured faster than the Bunch--Kaufman
        pair despite twice the flops (p = 1024, one thread: complex 0.38 s vs 0.52 s,
        real 0.14 s vs 0.51 s).
    workers : int or None
        Threads over which :meth:`evaluate` and :meth:`mean_quadratic` spread the
        points of one call (``None``: every CPU this process may use).  Each thread
        runs its own inverse with one BLAS thread (the LU inverse releases the GIL),
        which on 2 cores beat one inverse on two BLAS threads (p = 400: 2.5x against
        1.3x).  Used for batches of at least two points when ``p >= PARALLEL_MIN_P``.
        Results and evaluation counts do not depend on it (bit for bit when BLAS runs
        one thread, as the worker threads always do; otherwise to rounding).  The
        one-thread limit is process-wide while a batch runs: call a backend with
        ``workers > 1`` from one thread at a time (OpenBLAS does not reliably restore
        a thread count from another thread).

    Attributes
    ----------
    n_evaluations : int
        Points evaluated (one ``p x p`` inverse each).
    n_real : int
        Of which in real arithmetic (real ``z`` and ``delta``).
    n_jacobians : int
        Of which with the Jacobian (``k`` matrix products more).
    lapack_seconds : float
        CPU time spent inside LAPACK/BLAS (inverses and matrix products): the
        calling threads' own time (``time.thread_time``), summed over worker threads,
        so that it compares with ``time.process_time`` whatever else loads the
        machine.  A call on several BLAS threads (``workers=1`` with a
        multi-threaded BLAS) counts its calling thread only.
    progress : object or None
        A ``tqdm`` bar updated once per evaluated point (see :meth:`progress_bar`).
    """

    name = "dense"

    def __init__(self, model, *, inverse: str = "getri", workers: int | None = None):
        if inverse not in ("sytri2", "getri"):
            raise ValueError(f"inverse must be 'sytri2' or 'getri', got {inverse!r}")
        workers = as_workers(workers)
        self.workers = available_cores() if workers is None else workers
        self.k = model.k
        self.p = model.p
        self.c = np.asarray(model.ratios, dtype=np.float64)
        cov = np.ascontiguousarray(model.covariances, dtype=np.float64)
        self.cov = cov
        self._cov_stack = cov.reshape(self.k * self.p, self.p)  # rows: C_1; C_2; ... (C-contiguous)
        self._cov_flat = cov.reshape(self.k, self.p * self.p)
        self._cov_stack32 = None  # single-precision copy, made on first use (fast_jac)
        # single precision spans 1e-38..3e38 only: beyond 2^{+-40} the copy is of C / s and
        # R enters as s R, with s a power of two near the covariances' scale (exact; C_a R
        # is scale-free)
        top = float(np.max(np.abs(cov))) if cov.size else 0.0
        self._s32 = 2.0 ** round(np.log2(top)) if top > 0 and abs(np.log2(top)) > 40 else 1.0
        self.means = model.means
        self.sizes = np.asarray(model.sizes, dtype=np.int64)
        self.inverse = inverse
        self.n_evaluations = 0
        self.n_real = 0
        self.n_jacobians = 0
        self.lapack_seconds = 0.0
        self.progress = None
        self._local = threading.local()  # per-thread cache of the last resolvents
        self._lock = threading.Lock()  # counters, when points run on worker threads
        _warm_kernels()

    # ------------------------------------------------------------------ helpers
    def _tick(self, m: int) -> None:
        with self._lock:
            self.n_evaluations += m
            if self.progress is not None:
                self.progress.update(m)

    def _count(self, *, seconds: float = 0.0, real: int = 0, jacobians: int = 0) -> None:
        with self._lock:
            self.lapack_seconds += seconds
            self.n_real += real
            self.n_jacobians += jacobians

    def _threads(self, m: int) -> int:
        """Worker threads for ``m`` independent tasks (1: run them in the calling thread)."""
        if getattr(_IN_WORKER, "flag", False) or self.p < PARALLEL_MIN_P:
            return 1  # no nested pools (a waiting task could hold the thread its subtasks need)
        return min(self.workers, m)

    def _run(self, tasks: list) -> list:
        """Run callables on the backend's pool; wait for all, then raise the first error in order."""
        with _one_blas_thread():
            futures = [_pool(self.workers).submit(_as_worker(task)) for task in tasks]
            wait(futures)
        return [f.result() for f in futures]  # the first error in task order is raised

    def _map(self, fn, m: int) -> list:
        """``[fn(j) for j in range(m)]``, on worker threads when that pays; ticks per point."""
        out = []
        if self._threads(m) <= 1:
            for j in range(m):
                out.append(fn(j))
                self._tick(1)
            return out

        def point(j):
            r = fn(j)
            self._tick(1)
            return r

        return self._run([lambda j=j: point(j) for j in range(m)])

    def concurrently(self, *tasks) -> list:
        """Run independent callables (each a sequence of evaluations) side by side; their results.

        On worker threads when ``workers > 1`` and ``p >= PARALLEL_MIN_P``, else one
        after the other; the first exception (in task order) is raised once all have
        ended, so the same evaluations are made either way.
        """
        if self._threads(len(tasks)) <= 1:
            # every task runs even when an earlier one fails, as on threads: the same
            # evaluations either way
            out, error = [], None
            for task in tasks:
                try:
                    out.append(task())
                except Exception as exc:  # re-raised below; KeyboardInterrupt is not held back
                    out.append(None)
                    error = error or exc
            if error is not None:
                raise error
            return out
        return self._run(list(tasks))

    @contextmanager
    def progress_bar(self, enabled: bool, desc: str):
        """Context in which every evaluated point advances a ``tqdm`` bar (when ``enabled``)."""
        if not enabled or self.progress is not None:
            yield
            return
        from tqdm.auto import tqdm

        bar = tqdm(desc=desc, unit="inv", leave=False)
        self.progress = bar
        try:
            yield
        finally:
            self.progress = None
            bar.close()

    def matrix(self, z: complex, delta: np.ndarray) -> np.ndarray:
        """``A = sum_b c_b C_b / (1 + delta_b) - z I`` (real when ``z`` and ``delta`` are real)."""
        w = self.c / (1.0 + delta)
        real = np.imag(z) == 0 and np.all(np.imag(w) == 0)
        if real:
            A = (np.real(w) @ self._cov_flat).reshape(self.p, self.p)
        else:
            # real and imaginary parts by one real product (``w @ cov`` would first copy
            # the covariances to complex)
            parts = np.stack([w.real, w.imag]) @ self._cov_flat
            A = np.empty(self.p * self.p, np.complex128)
            A.real, A.imag = parts
            A = A.reshape(self.p, self.p)
        A[np.diag_indices(self.p)] -= np.real(z) if real else z
        return A

    def negative_count(self, x: float, delta: np.ndarray) -> int:
        r"""Predicted number of eigenvalues of ``X X^T / p`` below a real ``x > 0`` in a gap.

        With the real ``delta(x)`` of the physical branch, it is the number of negative
        eigenvalues of the real ``A(x, delta) = sum_b c_b C_b / (1 + delta_b) - x I``
        less the ``n_b`` of every class with ``1 + delta_b < 0`` (exact separation; the
        second term appears when ``n < p``, where ``1 + delta_b`` is negative near 0).
        The limiting CDF of ``G`` there is ``1 - (p - count) / n``, so the mass of the
        support between two gap points is the difference of their counts over ``n``.
        """
        d = np.asarray(delta, np.float64)
        key = _cache_key(x, d)
        sign = next((sg for kk, _, sg in getattr(self._local, "cache", []) if kk == key), 0)
        if sign:  # the resolvent there came from a Cholesky factor: the inertia is known
            neg = self.p if sign < 0 else 0
        else:
            A = self.matrix(float(x), d)
            t0 = time.thread_time()
            try:
                neg = negative_count(A)
            finally:
                self._count(seconds=time.thread_time() - t0)
        return int(neg - np.sum(self.sizes[1.0 + d < 0]))

    def resolvent(self, z: complex, delta: np.ndarray) -> np.ndarray:
        """``R(z) = A^{-1}`` at one point (cached for the last two points of the calling thread).

        A real ``A`` that is definite is inverted through its Cholesky factor
        (:func:`definite_inverse`; right of the support ``A`` is negative definite, and
        left of it positive definite when no ``1 + delta_b`` is negative, e.g. ``n >= p``;
        otherwise the factorisation fails and the LU inverse is used), and
        :meth:`negative_count` then reads the inertia from the cache instead of
        factorising ``A`` again.
        """
        key = _cache_key(z, delta)
        # per thread: which entries a concurrent task finds would otherwise depend on timing
        cache = getattr(self._local, "cache", [])
        for kk, R, _ in cache:
            if kk == key:
                return R
        A = self.matrix(z, np.asarray(delta))
        t0 = time.thread_time()
        R, sign = definite_inverse(A)
        if R is None:
            R = symmetric_inverse(A, method=self.inverse)
        self._count(seconds=time.thread_time() - t0)
        self._local.cache = [(key, R, sign)] + cache[:1]  # sign: definite (Cholesky), for the inertia
        return R

    def _products(self, R: np.ndarray, single: bool = False) -> np.ndarray:
        """``Q_a = C_a R`` for all classes, ``(k, p, p)``: one real ``dgemm`` (``sgemm`` if ``single``)."""
        t0 = time.thread_time()
        if single:
            if self._cov_stack32 is None:  # made once (a concurrent first use makes the same array)
                self._cov_stack32 = (self._cov_stack / self._s32).astype(np.float32)
            if np.iscomplexobj(R):
                Q = (self._cov_stack32 @ self._single(_as_real_view(R))).view(np.complex64)
            else:
                Q = self._cov_stack32 @ self._single(R)
        elif np.iscomplexobj(R):
            Q = (self._cov_stack @ _as_real_view(R)).view(np.complex128)
        else:
            Q = self._cov_stack @ R
        self._count(seconds=time.thread_time() - t0)
        return Q.reshape(self.k, self.p, self.p)

    def _single(self, R: np.ndarray) -> np.ndarray:
        """``s R`` in single precision (``R`` real, or the real view of a complex one)."""
        return (R if self._s32 == 1.0 else self._s32 * R).astype(np.float32)

    def _last_point(self, z: complex, d: np.ndarray, fast_jac: bool):
        """The calling thread's last evaluation with the Jacobian if it was at ``(z, d)``, else ``None``."""
        last = getattr(self._local, "point", None)
        if last is not None and last[1] == fast_jac and last[0] == _cache_key(z, d):
            return last[2]
        return None

    def _single_resolvent(self, z: complex, delta: np.ndarray) -> np.ndarray | None:
        """``R(z)`` from a single-precision LU inverse (``complex64``), or ``None``.

        ``None`` when ``A`` is real (the Cholesky inverse is cheap already), its entries
        are not all within ``2^{+-40}`` (``A`` or ``R`` near the range of single precision),
        ``A`` is singular, or the inverse fails the probe check at
        :data:`PROBE_RTOL_SINGLE`.  Not cached.
        """
        A = self.matrix(z, np.asarray(delta))
        top = float(np.max(np.abs(A))) if np.iscomplexobj(A) else 0.0
        if not 2.0 ** -40 < top < 2.0 ** 40:  # real, or A or R near single precision's range
            return None
        A32 = A.astype(np.complex64)
        t0 = time.thread_time()
        R = _lu_inverse(A32)
        ok = R is not None and _probe_ok(A32, R, PROBE_RTOL_SINGLE)
        self._count(seconds=time.thread_time() - t0)
        return R if ok else None

    def _point(self, z: complex, d: np.ndarray, jac: bool, fast_jac: bool = False, single: bool = False):
        if single and fast_jac:
            R = self._single_resolvent(z, d)
            if R is not None:
                self._local.point = None
                return self._from_resolvent(z, d, R, jac, True)
        out = self._from_resolvent(z, d, self.resolvent(z, d), jac, fast_jac)
        # kept for real points only (a walk's, whose fold data :meth:`fold_point` reads
        # next), read-only so that no caller changes what a later hit returns; a complex
        # point drops it
        self._local.point = None
        if jac and not np.iscomplexobj(out[3]):
            for a in out:
                a.flags.writeable = False
            self._local.point = (_cache_key(z, d), fast_jac, out)
        return out

    def release(self) -> None:
        """Drop every thread's cached resolvents and products (memory: ``(k + 2) p^2`` numbers each)."""
        self._local = threading.local()

    def _from_resolvent(self, z: complex, d: np.ndarray, R: np.ndarray, jac: bool, fast_jac: bool):
        """``t``, ``J``, ``dt/dz``, ``R`` and the products ``Q_a = C_a R`` (``None`` without ``jac``)."""
        p, k = self.p, self.k
        if np.iscomplexobj(R):
            if not jac or fast_jac:
                tv = self._cov_flat @ _as_real_view(R).reshape(p * p, 2)
                t = (tv[:, 0] + 1j * tv[:, 1]) / p
        else:
            self._count(real=1)
            if not jac or fast_jac:
                t = (self._cov_flat @ R.reshape(-1)) / p
        if not jac:
            return t, None, None, R, None
        Q = self._products(R, fast_jac)
        self._count(jacobians=1)
        acc = np.result_type(R.dtype, np.float64)  # traces accumulate in double precision
        pair = np.empty((k, k), acc)
        tz = np.empty(k, acc)
        _pair_traces(Q, pair)
        _cross_traces(Q, R, tz)  # tr(Q_a R)
        if not fast_jac:
            t = np.trace(Q, axis1=1, axis2=2) / p
        e = self.c / (1.0 + d) ** 2
        J = pair * e[None, :] / p
        return t, J, tz / p, R, Q

    # ------------------------------------------------------------------ API
    def evaluate(self, z: np.ndarray, delta: np.ndarray, *, jac: bool = True, fast_jac: bool = False,
                 single: bool = False):
        r"""``t (m,k)``, ``dt/ddelta (m,k,k)`` and ``dt/dz (m,k)`` at each point.

        With ``jac=False`` only ``t`` is computed (no matrix products) and the
        other two are returned as ``None``.  With ``fast_jac=True`` the products
        run in single precision (``sgemm``): ``dt/ddelta`` and
        ``dt/dz`` are then accurate to about ``1e-7`` relative, enough for Newton
        steps and predictors, while ``t`` stays in double precision (so does every
        residual, hence every solution).  With ``single=True`` as well, a complex
        point's inverse is in single precision too (half the time), so that ``t`` is
        accurate to about ``1e-7`` times the condition number of ``A``: for a first
        Newton step from a guess, never for a residual that decides convergence.  A
        point whose single-precision inverse fails its probe check
        (:data:`PROBE_RTOL_SINGLE`) is evaluated in double precision.
        """
        z = np.asarray(z, np.complex128)
        delta = np.asarray(delta, np.complex128)
        m, k = z.shape[0], self.k
        t = np.empty((m, k), np.complex128)
        J = np.empty((m, k, k), np.complex128) if jac else None
        tz = np.empty((m, k), np.complex128) if jac else None
        def one(j):
            tj, Jj, tzj, _, _ = self._point(z[j], _real_if_real(z[j], delta[j]), jac, fast_jac, single)
            t[j] = tj
            if jac:
                J[j] = Jj
                tz[j] = tzj

        self._map(one, m)
        return t, J, tz

    def fold_point(self, x: float, delta: np.ndarray, *, fast_jac: bool = False):
        r"""Real-axis data for the fold (edge) system at a real point (see :mod:`rmtgan._folds`).

        Returns ``t, J, tz, along`` with ``along(v) = (Dd, Dx)``,
        ``Dd[a, c] = d (J v)_a / d delta_c`` and ``Dx[a] = d (J v)_a / dx`` (see the
        module notes), and ``along(v, w) = (w^T Dd, w^T Dx)``, one matrix product
        instead of ``k + 1`` (what the fold system needs, with ``w`` the left Perron
        vector).  ``x`` and ``delta`` must be real.  ``t`` is in double precision; so
        are ``J`` and ``tz`` unless ``fast_jac`` (then about 1e-7 relative, as in
        :meth:`evaluate`).  ``Dd`` and ``Dx`` only steer Newton steps and predictors:
        their products always run in single precision (about 1e-7 relative).
        """
        d = np.asarray(delta, np.float64)
        z = float(x) + 0j
        # a walk's point is the Newton iterate whose data are read here: no inverse, no products
        point = self._last_point(z, d, fast_jac)
        if point is None:
            point = self._point(z, d, True, fast_jac)
            self._tick(1)
        t, J, tz, R, Q = point
        J = J.real

        def along(v, w=None):
            v = np.asarray(v, np.float64)
            if w is None:
                return self._second_derivatives(d, v, J, R, Q)
            return self._contracted_second_derivatives(d, v, np.asarray(w, np.float64), J, R, Q)

        return t.real, J, tz.real, along

    def _second_derivatives(self, d, v, J, R, Q):
        """``d (J v) / d delta`` and ``d (J v) / dz`` at a real point from ``R`` and ``Q_a = C_a R``.

        The products are in single precision (``sgemm``), the traces accumulate in double.
        """
        k, p = self.k, self.p
        e = self.c / (1.0 + d) ** 2
        t0 = time.thread_time()
        Q = Q.astype(np.float32, copy=False)
        Qv = np.tensordot((v * e).astype(np.float32), Q, axes=1)
        QQ = (Q.reshape(k * p, p) @ Qv).reshape(k, p, p)  # Q_c Q_v
        N = Qv @ self._single(R)  # s Q_v R: O(1) whatever the scale
        self._count(seconds=time.thread_time() - t0)
        pair = np.empty((k, k))
        tzv = np.empty(k)
        Dd = np.empty((k, k))
        for c in range(k):
            # tr(Q_a (Q_c Q_v)) for all a: pair traces of the stacked [Q_a] with QQ_c
            _cross_traces(Q, QQ[c], pair[:, c])
        _cross_traces(Q, N, tzv)
        Dd[:] = 2.0 * e[None, :] * pair / p
        Dd -= 2.0 * (v / (1.0 + d))[None, :] * J
        return Dd, 2.0 * tzv / (p * self._s32)

    def _contracted_second_derivatives(self, d, v, w, J, R, Q):
        r"""``w^T d (J v) / d delta`` and ``w^T d (J v) / dz`` from one product.

        With ``Q_v = sum_b e_b v_b Q_b``, ``Q_w = sum_a w_a Q_a`` and ``W = Q_v Q_w``:
        ``sum_a w_a tr(Q_a Q_c Q_v) = tr(Q_c W)``, and ``sum_a w_a tr(Q_a Q_v R) =
        tr(W R)`` (transpose the trace: ``C_a`` and ``R`` are symmetric).  Single-precision
        product, traces accumulated in double.
        """
        p = self.p
        e = self.c / (1.0 + d) ** 2
        t0 = time.thread_time()
        Q = Q.astype(np.float32, copy=False)
        Qv = np.tensordot((v * e).astype(np.float32), Q, axes=1)
        Qw = np.tensordot(w.astype(np.float32), Q, axes=1)
        W = Qv @ Qw
        self._count(seconds=time.thread_time() - t0)
        cols = np.empty(self.k)
        _cross_traces(Q, W, cols)  # tr(Q_c W)
        dx = float(np.sum(W * R))  # tr(W R) = sum(W * R^T): R is symmetric
        gd = 2.0 * e * cols / p - 2.0 * (v / (1.0 + d)) * (w @ J)
        return gd, 2.0 * dx / p

    def mean_quadratic(self, z: np.ndarray, delta: np.ndarray):
        """``M^T R M`` and ``M^T R^2 M`` (each ``(m, k, k)``) with ``R`` the no-means resolvent."""
        z = np.asarray(z, np.complex128)
        delta = np.asarray(delta, np.complex128)
        m, k = z.shape[0], self.k
        out = np.empty((m, k, k), np.complex128)
        dz = np.empty((m, k, k), np.complex128)
        M = self.means.T

        def one(j):
            R = self.resolvent(z[j], _real_if_real(z[j], delta[j]))
            RM = R @ M
            out[j] = M.T @ RM
            dz[j] = RM.T @ RM

        self._map(one, m)
        return out, dz
