r"""The dense path on torch: batched ``p x p`` inverses on a CPU or a GPU.

:class:`TorchDenseBackend` has the interface of :class:`rmtgan.dense.DenseBackend`
(``evaluate``, ``mean_quadratic``, counters, progress) and moves the ``O(p^3)``
work -- the inverses ``R = A^{-1}`` and the products ``Q_a = C_a R`` -- to torch,
batched over the points ``z``; the traces

.. math::

    t_a = \tfrac1p \operatorname{sum}(C_a \circ R),\quad
    \operatorname{tr}(Q_a Q_b) = \operatorname{sum}(Q_a \circ Q_b^T),\quad
    \operatorname{tr}(Q_a R) = \operatorname{sum}(Q_a \circ R)

are reduced on the device too, so only ``O(k^2)`` numbers per point come back.

torch is imported only when this backend is built (``import rmtgan`` stays free
of it).  Every batch of inverses is checked: ``info`` of ``torch.linalg.inv_ex``,
finiteness, and the probe residual ``|A (R v) - v|`` (torch 2.13's CPU build was
seen to fail on large complex inverses through MKL).  A matrix that fails is
inverted again with LAPACK through SciPy (a ``RuntimeWarning`` says so, and
:attr:`TorchDenseBackend.n_fallbacks` counts it); if that fails too,
:class:`rmtgan.dense.InversionError` is raised.  Nothing unchecked is returned.
"""

from __future__ import annotations

import time
import warnings

import numpy as np

from rmtgan.dense import PROBE_RTOL, DenseBackend, symmetric_inverse

__all__ = ["TorchDenseBackend"]

#: largest number of bytes of the ``(m, k, p, p)`` product block held at once.
BATCH_BYTES = 1 << 30


class TorchDenseBackend(DenseBackend):
    """Dense evaluations with torch (``device='cpu'`` or ``'cuda'``), batched over points.

    Parameters
    ----------
    model : MixtureModel
    device : str or torch.device, optional
        Default ``'cuda'`` when available, else ``'cpu'``.

    Attributes
    ----------
    lapack_seconds : float
        Unlike the base class, wall-clock time of the device calls (a GPU's time is
        not this process's CPU time, and torch runs its own CPU threads).
    """

    array_backend = "torch"

    def __init__(self, model, *, device=None):
        try:
            import torch
        except ImportError as exc:  # pragma: no cover - depends on the environment
            raise ImportError("backend='torch' needs torch (pip install torch)") from exc
        super().__init__(model, inverse="getri")
        self._torch = torch
        if device is None:
            device = "cuda" if torch.cuda.is_available() else "cpu"
        try:
            dev = torch.device(device)
        except (RuntimeError, TypeError) as exc:
            raise ValueError(f"device must name a torch device, got {device!r}") from exc
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise ValueError("device='cuda' requested but torch sees no CUDA device")
        self.device = dev
        with warnings.catch_warnings():
            # the model's covariances are read-only; the tensor shares them on the CPU and
            # is only ever read
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            self._cov_r = torch.as_tensor(self.cov, device=dev)
        self._cov_c = self._cov_r.to(torch.complex128)
        probe = np.cos(np.arange(self.p) * 0.7548776662466927 + 0.3)
        self._probe = torch.as_tensor(probe, device=dev).to(torch.complex128)
        self.n_fallbacks = 0

    def _threads(self, m: int) -> int:
        """One: torch batches the points itself (and has its own threads on the CPU)."""
        return 1

    # ------------------------------------------------------------------ inverses
    def _matrices(self, z: np.ndarray, delta: np.ndarray):
        torch = self._torch
        w = torch.as_tensor(self.c[None, :] / (1.0 + delta), device=self.device)
        A = torch.einsum("mk,kpq->mpq", w, self._cov_c)
        zt = torch.as_tensor(z, device=self.device)
        A.diagonal(dim1=-2, dim2=-1).sub_(zt[:, None])
        return A

    def _inverse_batch(self, A):
        """Checked inverses of the batch ``A`` (m, p, p); failures are redone with LAPACK."""
        torch = self._torch
        t0 = time.perf_counter()
        R, info = torch.linalg.inv_ex(A)
        y = R @ self._probe
        res = torch.linalg.vector_norm((A @ y[..., None])[..., 0] - self._probe, dim=-1)
        bound = PROBE_RTOL * (torch.linalg.matrix_norm(A) * torch.linalg.vector_norm(y, dim=-1)
                              + torch.linalg.vector_norm(self._probe))
        ok = (info == 0) & torch.isfinite(res) & (res <= bound)
        ok_np = ok.cpu().numpy()
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        self.lapack_seconds += time.perf_counter() - t0
        if not ok_np.all():
            bad = np.flatnonzero(~ok_np)
            warnings.warn(f"torch inverse failed its check on {bad.size} of {ok_np.size} matrices "
                          f"(p = {self.p}, device {self.device}); redone with LAPACK", RuntimeWarning,
                          stacklevel=3)
            for i in bad:
                Ai = A[i].cpu().numpy()
                Ri = symmetric_inverse(Ai, method="getri")  # raises InversionError when hopeless
                R[i] = torch.as_tensor(Ri, device=self.device)
                self.n_fallbacks += 1
        return R

    def resolvent(self, z: complex, delta: np.ndarray) -> np.ndarray:
        A = self._matrices(np.array([complex(z)]), np.asarray(delta, np.complex128)[None])
        R = self._inverse_batch(A)[0].cpu().numpy()
        if np.imag(z) == 0 and np.all(np.imag(delta) == 0):
            R = np.ascontiguousarray(R.real)
        return R

    def _products(self, R: np.ndarray, single: bool = False) -> np.ndarray:
        """``Q_a = C_a R`` on the device, in double precision (``single`` is ignored)."""
        torch = self._torch
        t0 = time.perf_counter()
        Rt = torch.as_tensor(R, device=self.device)
        cov = self._cov_c if Rt.is_complex() else self._cov_r
        Q = torch.matmul(cov, Rt).cpu().numpy()
        self.lapack_seconds += time.perf_counter() - t0
        return Q

    # ------------------------------------------------------------------ API
    def evaluate(self, z: np.ndarray, delta: np.ndarray, *, jac: bool = True, fast_jac: bool = False,
                 single: bool = False):
        r"""``t``, ``dt/ddelta``, ``dt/dz`` at each point (batched on the device); see the base class.

        ``fast_jac`` and ``single`` are accepted for the common interface; inverses and
        products on the device stay in double precision.
        """
        torch = self._torch
        z = np.asarray(z, np.complex128)
        delta = np.asarray(delta, np.complex128)
        m, k, p = z.shape[0], self.k, self.p
        t = np.empty((m, k), np.complex128)
        J = np.empty((m, k, k), np.complex128) if jac else None
        tz = np.empty((m, k), np.complex128) if jac else None
        chunk = max(1, int(BATCH_BYTES // (16 * (k + 2) * p * p)))
        for s in range(0, m, chunk):
            sl = slice(s, min(m, s + chunk))
            A = self._matrices(z[sl], delta[sl])
            R = self._inverse_batch(A)
            t0 = time.perf_counter()
            t[sl] = (torch.einsum("kpq,mpq->mk", self._cov_c, R) / p).cpu().numpy()
            if jac:
                Q = torch.einsum("kpq,mqr->mkpr", self._cov_c, R)
                pair = torch.einsum("maij,mbji->mab", Q, Q) / p
                tzs = torch.einsum("maij,mij->ma", Q, R) / p
                e = self.c[None, :] / (1.0 + delta[sl]) ** 2
                J[sl] = pair.cpu().numpy() * e[:, None, :]
                tz[sl] = tzs.cpu().numpy()
                self.n_jacobians += sl.stop - sl.start
            self.lapack_seconds += time.perf_counter() - t0
            real = (z[sl].imag == 0) & np.all(delta[sl].imag == 0, axis=1)
            self.n_real += int(real.sum())
            for arr in (t, J, tz):
                if arr is not None:
                    arr[sl][real] = arr[sl][real].real
            self._tick(sl.stop - sl.start)
        return t, J, tz

    def mean_quadratic(self, z: np.ndarray, delta: np.ndarray):
        """``M^T R M`` and ``M^T R^2 M`` (each ``(m, k, k)``), batched on the device."""
        torch = self._torch
        z = np.asarray(z, np.complex128)
        delta = np.asarray(delta, np.complex128)
        m, k, p = z.shape[0], self.k, self.p
        out = np.empty((m, k, k), np.complex128)
        dz = np.empty((m, k, k), np.complex128)
        M = torch.as_tensor(self.means.T, device=self.device).to(torch.complex128)
        chunk = max(1, int(BATCH_BYTES // (16 * 2 * p * p)))
        for s in range(0, m, chunk):
            sl = slice(s, min(m, s + chunk))
            R = self._inverse_batch(self._matrices(z[sl], delta[sl]))
            RM = R @ M
            out[sl] = (M.T @ RM).cpu().numpy()
            dz[sl] = (RM.transpose(-1, -2) @ RM).cpu().numpy()
            self._tick(sl.stop - sl.start)
        return out, dz

