"""Input validation shared by the public entry points.

Validation happens once, at the boundary (model construction, public function
arguments); inner code trusts what passed through here.  Every failure raises a
``TypeError`` (wrong kind of object) or ``ValueError`` (wrong value or shape)
whose message names the argument and, where it applies, the offending entry.
Nothing is repaired silently.
"""

from __future__ import annotations

import numbers

import numpy as np


def _check_numeric_dtype(arr: np.ndarray, name: str, data: bool = False) -> None:
    """``TypeError`` naming ``name`` unless ``arr`` holds real numbers.

    Booleans are numbers (0 and 1) in data matrices only (``data=True``: binary
    features); anywhere else (moments, vectors, points) they are a mistake.
    """
    if arr.dtype == np.bool_:
        if data:
            return
        raise TypeError(f"{name} must hold numbers, got booleans")
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype}")
    if np.iscomplexobj(arr):
        raise TypeError(f"{name} must be real, got a complex array")


def as_real_array(x, name: str, ndim: int | None = None, data: bool = False) -> np.ndarray:
    """Return ``x`` as a finite float64 array, or raise naming ``name``.

    Booleans are refused unless ``data`` (a data matrix: binary features are 0 and 1).
    """
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = np.asarray(x)
    _check_numeric_dtype(arr, name, data)
    arr = np.asarray(arr, dtype=np.float64)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimensions, got shape {arr.shape}")
    return _finite(arr, name)


def _finite(arr: np.ndarray, name: str) -> np.ndarray:
    """``arr``, or ``ValueError`` naming the index of its first NaN/inf."""
    bad = ~np.isfinite(arr)
    if bad.any():
        idx = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} contains a non-finite value ({arr[idx].item()!r}) at index {idx}")
    return arr


def as_points(z, name: str = "z") -> np.ndarray:
    """Return evaluation points as a complex128 array; NaN/inf are rejected."""
    arr = np.asarray(z)
    if arr.dtype == object or not np.issubdtype(arr.dtype, np.number):
        raise TypeError(f"{name} must be numeric, got dtype {arr.dtype}")
    return _finite(arr.astype(np.complex128), name)


#: moduli of ``z`` accepted by the solvers: ``m_G(z) ~ -atom / z`` and ``-1 / z`` stay
#: representable in double precision within it.
Z_RANGE = (1e-300, 1e300)


def as_spectral_points(z, name: str = "z") -> np.ndarray:
    """Points where ``delta(z)`` and ``m_G(z)`` are evaluated: finite, ``|z|`` in :data:`Z_RANGE`."""
    arr = as_points(z, name)
    mod = np.abs(arr)
    if np.any(mod == 0):
        raise ValueError(f"{name} = 0 is not allowed: the equations are in 1/z (a pole when G has an atom "
                         "at 0; otherwise take the limit from small |z|)")
    out = (mod < Z_RANGE[0]) | (mod > Z_RANGE[1])
    if np.any(out):
        v = arr.reshape(-1)[np.flatnonzero(out.reshape(-1))[0]].item()
        raise ValueError(f"|{name}| must lie in [{Z_RANGE[0]:g}, {Z_RANGE[1]:g}], where m_G(z) is "
                         f"representable in double precision; got {name} = {v!r}")
    return arr


def as_real_points(x, name: str = "x") -> np.ndarray:
    """Return real evaluation points as float64; NaN/inf/complex/bool are rejected."""
    return as_real_array(x, name)


def as_sizes(sizes, name: str = "sizes") -> np.ndarray:
    """Validate class sizes: a 1-d sequence of positive integers."""
    arr = np.asarray(sizes)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-d sequence of class sizes, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: a model needs at least one class")
    out = np.empty(arr.size, dtype=np.int64)
    for a, v in enumerate(arr.tolist()):
        if isinstance(v, bool) or not isinstance(v, numbers.Real):
            raise TypeError(f"{name}[{a}] must be a positive integer, got {v!r}")
        if not np.isfinite(v) or v != int(v):
            raise ValueError(f"{name}[{a}] must be a positive integer, got {v!r}")
        if v <= 0:
            raise ValueError(f"{name}[{a}] must be positive, got {v!r}")
        if v > 2 ** 53:  # beyond exact floats, and sums would overflow int64
            raise ValueError(f"{name}[{a}] = {v!r} is too large (at most 2**53)")
        out[a] = int(v)
    return out


def as_int(v, name: str, what: str = "an integer") -> int:
    """``v`` as a Python int; bools and non-integers are a ``TypeError`` naming ``what`` was expected."""
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, numbers.Integral):
        raise TypeError(f"{name} must be {what}, got {v!r}")
    return int(v)


def as_flag(v, name: str) -> bool:
    """``v`` as a bool; anything but ``True``/``False`` (NumPy's included) is a ``TypeError``.

    A string such as ``"no"`` is truthy: taking its truth value would do the opposite
    of what was asked.
    """
    if not isinstance(v, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {v!r}")
    return bool(v)


def as_positive_int(v, name: str) -> int:
    v = as_int(v, name, "a positive integer")
    if v <= 0:
        raise ValueError(f"{name} must be positive, got {v!r}")
    return v


def as_nonnegative_int(v, name: str) -> int:
    v = as_int(v, name, "a non-negative integer")
    if v < 0:
        raise ValueError(f"{name} must be a non-negative integer, got {v!r}")
    return v


def as_workers(workers) -> int | None:
    """A thread count: ``None`` (the default) or a positive integer."""
    if workers is None:
        return None
    workers = as_int(workers, "workers", "a positive int or None")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers!r}")
    return int(workers)


#: smallest accepted solver tolerance: residuals are computed in double precision.
MIN_TOL = 1e-15


def as_tolerance(tol, name: str = "tol") -> float:
    """A relative tolerance in ``[MIN_TOL, 1)`` as a float, or raise naming ``name``."""
    if isinstance(tol, np.ndarray) and tol.ndim == 0:
        tol = tol[()]  # a 0-d array is a number
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {tol!r}")
    t = float(tol)
    if not (np.isfinite(t) and MIN_TOL <= t < 1):
        raise ValueError(f"{name} must lie in [{MIN_TOL:g}, 1) (double precision reaches no further), "
                         f"got {t!r}")
    return t


def label_group(kind: str) -> str:
    """The family of a label dtype ``kind``: integers of any width are one (``'numeric'``).

    Labels of different families cannot be sorted together, so a stream of batches
    must keep to one.
    """
    return "numeric" if kind in "iu" else kind


def as_labels(labels, n: int, name: str = "labels", of: str | None = None) -> np.ndarray:
    """Validate a 1-d label vector of length ``n`` (integers or strings).

    ``of`` says where ``n`` comes from in the length error (default: "the data have
    ``n`` samples").
    """
    arr = np.asarray(labels)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be 1-d, got shape {arr.shape}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} has length {arr.shape[0]} but {of or f'the data have {n} samples'}")
    if arr.dtype.kind == "f":
        if not np.all(np.isfinite(arr)) or np.any(arr != np.round(arr)):
            raise ValueError(f"{name} must be integer class labels, got non-integer floats")
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iuUSb":
        raise TypeError(f"{name} must hold integer or string class labels, got dtype {arr.dtype}")
    return arr


def as_numeric_matrix(x, name: str) -> np.ndarray:
    """Return ``x`` as a non-empty 2-d real numeric array, without copying or casting it.

    For inputs whose float64 copy may not fit in memory (float32 arrays, memory
    maps): the dtype and shape are checked here; finiteness is checked block by
    block by the caller with :func:`check_finite_block`.
    """
    if x is None:
        raise TypeError(f"{name} must be an array, got None")
    arr = x if isinstance(x, np.ndarray) else np.asarray(x)
    _check_numeric_dtype(arr, name, data=True)
    if arr.ndim != 2:
        raise ValueError(f"{name} must have 2 dimensions (n_samples, n_features), got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    return arr


def check_finite_block(block: np.ndarray, name: str, row_offset: int = 0, transposed: bool = False) -> None:
    """Raise ``ValueError`` naming the (row, column) of the first NaN/inf in ``block``.

    ``block`` holds rows ``row_offset, row_offset + 1, ...`` of ``name`` (of its
    transpose when ``transposed``); the reported index is in ``name``'s own axes.
    """
    if np.issubdtype(block.dtype, np.integer) or block.dtype == np.bool_:
        return
    finite = np.isfinite(block)
    if finite.all():
        return
    r, c = (int(i) for i in np.argwhere(~finite)[0])
    value = float(block[r, c])
    r += row_offset
    if transposed:
        r, c = c, r
    raise ValueError(f"{name} contains a non-finite value ({value!r}) at row {r}, column {c}")
