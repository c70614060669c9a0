"""Torch plumbing shared by :mod:`rmtgan.gan`: lazy import, threads, devices.

Threads
-------
torch's intra-op pool (OpenMP) spins while it waits; as soon as its threads
compete for cores -- with another process, with numpy's BLAS threads, or with
a pool sized from the host's core count rather than from the cores this process
may use -- small models become many times slower.  Measured on the 2-core
development machine with other jobs running, the digits pipeline (GAN + CNN,
batches of 256) took 2.8 s with 1 thread and 15 s with torch's default of 2;
the BLAS update of the moments 25 ms with 1 OpenBLAS thread and 71 ms with 2.

The first time a function of :mod:`rmtgan.gan` loads or runs a network it
therefore fixes the thread count *once*, unless the user has already decided:

* ``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` set in the environment is respected
  as is (torch reads them at start-up);
* a call to :func:`set_threads` (or use of :func:`threads`) wins over the
  default;
* otherwise the count becomes ``max(1, min(2, cores - 1))`` (1 on a 2-core
  machine, 2 from 3 cores on), the available cores being the process's CPU
  affinity capped by a cgroup CPU quota.  One core is left to numpy, which
  accumulates the moments in a worker thread while torch runs the next batch
  (:func:`rmtgan.gan.feature_moments`).

A plain ``torch.set_num_threads`` made before is not seen (torch cannot tell it
from its default) and is replaced then: use :func:`set_threads`, or set the count
after loading.  Call :func:`set_threads` with a larger number for big models
(BigGAN, ResNet50) on a machine with many free cores.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from rmtgan._cpus import available_cores
from rmtgan._validation import as_int

if TYPE_CHECKING:
    import torch

__all__ = ["import_torch", "set_threads", "threads", "available_cores", "default_threads", "resolve_device"]

DEFAULT_MAX_THREADS = 2

_threads_decided = False


def import_torch():
    """Import torch, or raise an ImportError that says how to get it."""
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - torch is installed in the dev venv
        raise ImportError(
            "rmtgan.gan needs PyTorch: install it with `pip install 'rmtgan[gan]'` (or `pip install torch`)"
        ) from exc
    return torch


def default_threads() -> int:
    """The thread count used when nobody chose one.

    Returns
    -------
    int
        ``max(1, min(2, available_cores() - 1))``: 1 on a 2-core machine, 2 from
        3 cores on (see the module docstring).
    """
    return max(1, min(DEFAULT_MAX_THREADS, available_cores() - 1))


def set_threads(n: int | None = None) -> int:
    """Set torch's intra-op thread count for this process.

    Parameters
    ----------
    n : int, optional
        Number of threads (``>= 1``; a Python or NumPy integer, not a bool).
        ``None`` means ``OMP_NUM_THREADS`` when it is set to a positive integer,
        else :func:`default_threads`.

    Returns
    -------
    int
        The previous thread count.

    Raises
    ------
    TypeError
        ``n`` is not an integer (or is a bool).
    ValueError
        ``n < 1``.
    """
    global _threads_decided
    torch = import_torch()
    if n is None:
        env = os.environ.get("OMP_NUM_THREADS", "").strip()
        n = int(env) if env.isdigit() and int(env) > 0 else default_threads()
    n = as_int(n, "n", "a positive integer")
    if n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    old = torch.get_num_threads()
    if n != old:
        torch.set_num_threads(n)
    _threads_decided = True
    return old


@contextlib.contextmanager
def threads(n: int) -> Iterator[int]:
    """Context manager running its body with ``n`` torch threads, restoring the count after.

    Parameters
    ----------
    n : int
        Number of threads (``>= 1``), validated as by :func:`set_threads`.

    Yields
    ------
    int
        ``n``, as given.

    Examples
    --------
    >>> with threads(1):          # doctest: +SKIP
    ...     moments = feature_moments(gen, net, classes=[0, 1], n_per_class=500)
    """
    torch = import_torch()
    old = torch.get_num_threads()
    set_threads(n)
    try:
        yield n
    finally:
        torch.set_num_threads(old)


def ensure_threads() -> None:
    """Apply the default thread policy once (see the module docstring)."""
    global _threads_decided
    if _threads_decided:
        return
    if any(os.environ.get(v, "").strip() for v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")):
        _threads_decided = True  # torch already follows it
        return
    set_threads(default_threads())


def resolve_device(device: Any = "cpu") -> torch.device:
    """Validate a device argument and return a ``torch.device``.

    Parameters
    ----------
    device : str or torch.device or None
        ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ...; ``None`` or ``"auto"`` picks
        CUDA when available, else the CPU.

    Returns
    -------
    torch.device
        The device (``cpu``, ``cuda``, ``mps`` or ``xpu``), checked to be present.

    Raises
    ------
    TypeError
        ``device`` is neither a string, a ``torch.device`` nor ``None``.
    ValueError
        If the string is not a device, the device type is unsupported, or the
        requested accelerator (or CUDA index) is unavailable.
    """
    torch = import_torch()
    if device is None or (isinstance(device, str) and device == "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if not isinstance(device, (str, torch.device)):
        raise TypeError(f"device must be a string or torch.device, got {type(device).__name__}")
    try:
        dev = torch.device(device)
    except RuntimeError as exc:
        raise ValueError(f"device {device!r} is not a valid torch device: {exc}") from None
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"device {device!r} was requested but CUDA is not available")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) present")
    elif dev.type == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ValueError(f"device {device!r} was requested but MPS is not available")
    elif dev.type == "xpu":
        xpu = getattr(torch, "xpu", None)
        if xpu is None or not xpu.is_available():
            raise ValueError(f"device {device!r} was requested but XPU is not available")
    elif dev.type != "cpu":
        raise ValueError(f"unsupported device type {dev.type!r} (use 'cpu' or 'cuda')")
    return dev
