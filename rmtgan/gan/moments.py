"""Streaming class moments of deep features of generated images.

    latent draws --> generator --> images --> representation network --> features
                                                                            |
                           float64 MomentAccumulator (per-class means, covariances)

:func:`feature_moments` runs this chain batch by batch (nothing of size ``n``
is kept, only the ``k`` running means and ``p x p`` scatter matrices) and returns
:class:`FeatureMoments`, whose :meth:`FeatureMoments.to_model` builds the
:class:`rmtgan.model.MixtureModel` that the solver takes.  On request it also
returns an *independent* labelled sample of features (the empirical side of a
comparison), which :func:`generate_features` draws on its own.

Seeds
-----
Latents of class ``c`` are drawn from ``numpy.random.default_rng([seed, c,
stream])`` (``stream`` 0 for the moments, 1 for the sample), in order.  Hence
the latents do not depend on the batch size or on which other classes are
requested (the features may differ in the last float32 bits, as the network's
kernels may round differently for other batch shapes), and the sample never
reuses a latent of the moment estimate.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rmtgan._validation import as_flag
from rmtgan.gan._torch import available_cores, ensure_threads, import_torch, resolve_device
from rmtgan.gan.features import as_features
from rmtgan.gan.generators import ConditionalGenerator, as_generator
from rmtgan.model import MixtureModel, MomentAccumulator

torch = import_torch()

__all__ = ["FeatureMoments", "feature_moments", "generate_features"]

MOMENT_STREAM = 0
SAMPLE_STREAM = 1


@dataclass
class FeatureMoments:
    """Per-class moments of generated features, ready for :class:`~rmtgan.model.MixtureModel`.

    Attributes
    ----------
    means : ndarray, shape (k, p)
        Class means (float64), rows in the order of :attr:`classes`.
    covariances : ndarray, shape (k, p, p)
        Unbiased class covariances (divided by ``count - 1``).
    counts : ndarray of int64, shape (k,)
        Samples accumulated per class.
    classes : ndarray of int64, shape (k,)
        Generator class indices, in the order requested.
    sample : ndarray of shape (m, p) or None
        Independent labelled features (float64), rows grouped by class in the
        order of :attr:`classes`; data convention (n_samples, n_features).
    sample_labels : ndarray of int64, shape (m,), or None
        Generator class index of each sample row.
    seed : int
        Seed of the latent draws (see the module docstring).
    timings : dict
        For the moment pass: ``forward_s`` (generator and network, main
        thread), ``accumulate_s`` (conversion to float64 numpy and moment
        updates) and ``wait_s`` (main thread waiting for the accumulation).
    accumulator : MomentAccumulator
        The accumulator (class keys ``0 .. k-1``, the positions in ``classes``);
        more batches can be added to it, labelled by those positions.  ``means``,
        ``covariances`` and ``counts`` above are the values at the end of the run;
        :meth:`to_model` reads the accumulator as it is.
    """

    means: np.ndarray
    covariances: np.ndarray
    counts: np.ndarray
    classes: np.ndarray
    sample: np.ndarray | None
    sample_labels: np.ndarray | None
    seed: int
    timings: dict[str, float]
    accumulator: MomentAccumulator = field(repr=False)

    @property
    def k(self) -> int:
        """Number of classes ``k`` (rows of :attr:`means`)."""
        return int(self.means.shape[0])

    @property
    def p(self) -> int:
        """Feature dimension ``p`` (columns of :attr:`means`)."""
        return int(self.means.shape[1])

    def to_model(self, sizes: Sequence[int] | None = None) -> MixtureModel:
        """The :class:`~rmtgan.model.MixtureModel` with these moments.

        Parameters
        ----------
        sizes : sequence of int, optional
            Class sizes ``n_a`` of the Gram matrix to predict (default: the
            counts accumulated).

        Returns
        -------
        MixtureModel
            Its ``class_labels`` are the generator class indices.
        """
        keys = self.accumulator.classes
        if keys != list(range(self.classes.size)):
            raise ValueError(f"the accumulator holds classes {keys}, but its keys must be the positions "
                             f"0..{self.classes.size - 1} of classes {self.classes.tolist()}")
        model = self.accumulator.to_model(sizes)
        model.class_labels = self.classes.copy()
        return model

    def __repr__(self) -> str:
        s = None if self.sample is None else self.sample.shape
        return (f"FeatureMoments(k={self.k}, p={self.p}, classes={self.classes.tolist()}, "
                f"counts={self.counts.tolist()}, sample={s})")


# ----------------------------------------------------------------------- validation
def _int(v, name: str, minimum: int) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
        raise TypeError(f"{name} must be an integer, got {v!r}")
    if v < minimum:
        raise ValueError(f"{name} must be >= {minimum}, got {v!r}")
    return int(v)


def _classes(gen: ConditionalGenerator, classes) -> np.ndarray:
    if classes is None:
        if gen.num_classes is None:
            raise ValueError("classes is required: the generator does not say how many classes it has")
        classes = range(gen.num_classes)
    if isinstance(classes, (str, int, np.integer)):
        classes = [classes]
    ids = [gen.class_index(c.item() if isinstance(c, np.generic) else c) for c in classes]
    if not ids:
        raise ValueError("classes is empty")
    if len(set(ids)) != len(ids):
        raise ValueError(f"classes has duplicates: {ids}")
    return np.asarray(ids, dtype=np.int64)


def _per_class(v, k: int, name: str, minimum: int) -> np.ndarray:
    if isinstance(v, (int, np.integer)) and not isinstance(v, bool):
        return np.full(k, _int(v, name, minimum), dtype=np.int64)
    try:
        vals = list(v)
    except TypeError:
        raise TypeError(f"{name} must be an integer or a sequence of k = {k} integers, got {v!r}") from None
    if len(vals) != k:
        raise ValueError(f"{name} has {len(vals)} entries but there are k = {k} classes")
    return np.asarray([_int(x, f"{name}[{a}]", minimum) for a, x in enumerate(vals)], dtype=np.int64)


def _model_dtype(*modules) -> Any:
    for m in modules:
        if isinstance(m, torch.nn.Module):
            for p in m.parameters():
                if p.is_floating_point():
                    return p.dtype
    return torch.float32


class _Setup:
    """Validated arguments shared by the public functions; puts modules in eval mode."""

    def __init__(self, generator, features, classes, layer, batch_size, seed, device):
        self.gen = as_generator(generator)
        self.ext = as_features(features, layer)
        self.classes = _classes(self.gen, classes)
        self.batch_size = _int(batch_size, "batch_size", 1)
        self.seed = _int(seed, "seed", 0)
        self.device = resolve_device(device)
        ensure_threads()
        self.modules = [m for m in (self.gen, self.ext) if isinstance(m, torch.nn.Module)]
        for m in self.modules:
            m.to(self.device)
        self.dtype = _model_dtype(*self.modules)

    def __enter__(self):
        self._modes = [(m, m.training) for mod in self.modules for m in mod.modules()]
        for mod in self.modules:
            mod.eval()
        return self

    def __exit__(self, *exc):
        for m, mode in self._modes:
            m.training = mode
        return False

    def batches(self, counts: np.ndarray, stream: int) -> Iterator[tuple[int, int, Any]]:
        """Yield ``(position, offset, features tensor (b, p))`` class by class (one ``p`` throughout)."""
        width = None
        for pos, (cid, n) in enumerate(zip(self.classes.tolist(), counts.tolist(), strict=True)):
            rng = np.random.default_rng([self.seed, cid, stream])
            done = 0
            while done < n:
                b = min(self.batch_size, n - done)
                z = torch.from_numpy(self.gen.sample_latent(b, rng)).to(self.device, self.dtype)
                y = torch.full((b,), cid, dtype=torch.int64, device=self.device)
                images = self.gen(z, y)
                if not isinstance(images, torch.Tensor) or images.ndim < 2 or images.shape[0] != b:
                    got = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
                    raise ValueError(f"the generator must return images (b, C, H, W) with b = {b}, got {got}")
                if images.is_complex():  # the features would silently drop the imaginary part
                    raise TypeError(f"the generator returned complex images ({images.dtype})")
                feats = images.flatten(1) if self.ext is None else self.ext(images)
                if feats.is_complex():
                    raise TypeError(f"the network returned complex features ({feats.dtype})")
                if width is None:
                    width = feats.shape[1]
                elif feats.shape[1] != width:
                    raise ValueError(f"the network returned {feats.shape[1]} features, "
                                     f"earlier batches {width}")
                yield pos, done, feats
                done += b


def _to_numpy(feats, cid: int, lo: int) -> np.ndarray:
    arr = feats.detach().cpu().double().numpy()
    if not np.isfinite(arr).all():
        raise ValueError(f"non-finite features for class {cid} (samples {lo}..{lo + arr.shape[0] - 1}): "
                         "check the generator and the network (e.g. uninitialised spectral-norm vectors)")
    return arr


# ------------------------------------------------------------------------- pipeline
def feature_moments(generator: Any, features: Any = None, classes: Sequence[int | str] | None = None,
                    n_per_class: int | Sequence[int] = 1000, *, batch_size: int = 256, seed: int = 0,
                    device: Any = "cpu", layer: str | None = None, return_sample: int | Sequence[int] = 0,
                    progress: bool = False, overlap: bool = True) -> FeatureMoments:
    """Per-class means and covariances of the features of generated images.

    Parameters
    ----------
    generator : ConditionalGenerator, torch module or callable
        ``generator(latent (b, d), labels (b,) int64) -> images (b, C, H, W)``
        (see :func:`rmtgan.gan.as_generator`).
    features : torch module or callable, optional
        Representation network ``images -> features (b, p)`` (outputs are
        flattened).  ``None``: the flattened images are the features.
    classes : sequence of int or str, optional
        Generator class indices or names (e.g. ``["mushroom", "pizza",
        "cheeseburger"]`` for BigGAN); default: all classes.
    n_per_class : int or sequence of int
        Samples per class for the moments (``>= 2``).
    batch_size : int
        Images per forward pass.
    seed : int
        Seed of the latent draws (see the module docstring).
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ...; the modules are moved there.
    layer : str, optional
        Name of the submodule of ``features`` whose output is the feature
        (forward hook; the pass stops there).
    return_sample : int or sequence of int
        Also return this many features per class, drawn independently of the
        moments (0: none).
    progress : bool
        Show a tqdm progress bar.
    overlap : bool
        Accumulate in a worker thread while the next forward passes run (same
        results, in the same order).  During the call numpy's BLAS
        is limited to the cores torch leaves free (``threadpoolctl``, at least 1).

    Returns
    -------
    FeatureMoments
        ``means`` (k, p), ``covariances`` (k, p, p), ``counts`` (k,), in the
        order of ``classes``; ``sample`` (m, p) and ``sample_labels`` (m,) when
        ``return_sample`` asks for rows, else ``None``.

    Raises
    ------
    TypeError
        A count or the seed is not an integer; the generator or the network
        returns complex values.
    ValueError
        Bad counts, duplicate or unknown classes, images or features of the
        wrong shape, or non-finite features (naming the class and rows).

    Notes
    -----
    Modules run in eval mode (their modes are restored afterwards) under
    ``torch.inference_mode``.  Features are converted with
    ``.detach().cpu().double().numpy()`` and accumulated in float64 by
    :class:`~rmtgan.model.MomentAccumulator` (pairwise updates) in chunks of
    consecutive batches of one class (about 4 MB of float64, at least one
    batch), in a fixed order.  ``timings`` reports the forward time of the main
    thread, the accumulation time of the worker and the time the main thread
    waited for it.
    """
    progress, overlap = as_flag(progress, "progress"), as_flag(overlap, "overlap")
    setup = _Setup(generator, features, classes, layer, batch_size, seed, device)
    k = len(setup.classes)
    counts = _per_class(n_per_class, k, "n_per_class", 2)
    sample_counts = _per_class(return_sample, k, "return_sample", 0)
    acc = MomentAccumulator()
    timings = {"forward_s": 0.0, "accumulate_s": 0.0, "wait_s": 0.0}
    from tqdm.auto import tqdm

    def accumulate(chunk: list, pos: int, lo: int) -> None:
        t = time.perf_counter()
        with torch.inference_mode():
            feats = chunk[0] if len(chunk) == 1 else torch.cat(chunk)
            arr = _to_numpy(feats, int(setup.classes[pos]), lo)
        acc.update(arr, np.full(arr.shape[0], pos))
        timings["accumulate_s"] += time.perf_counter() - t

    with setup, torch.inference_mode(), _blas_threads(), \
            tqdm(total=int(counts.sum() + sample_counts.sum()), disable=not progress, unit="img",
                 desc="feature moments") as bar, \
            concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="rmtgan-moments") as pool:
        pending: collections.deque = collections.deque()
        chunk: list = []
        chunk_pos = chunk_lo = chunk_rows = 0
        target = 0

        def flush() -> None:
            nonlocal chunk, chunk_rows
            if not chunk:
                return
            if overlap:
                pending.append(pool.submit(accumulate, chunk, chunk_pos, chunk_lo))
                if len(pending) > 1:  # at most one chunk in flight besides the one being computed
                    t = time.perf_counter()
                    pending.popleft().result()
                    timings["wait_s"] += time.perf_counter() - t
            else:
                accumulate(chunk, chunk_pos, chunk_lo)
            chunk, chunk_rows = [], 0

        t0 = time.perf_counter()
        for pos, lo, feats in setup.batches(counts, MOMENT_STREAM):
            timings["forward_s"] += time.perf_counter() - t0
            if not target:
                target = _chunk_rows(setup.batch_size, feats.shape[1] if feats.ndim == 2 else 1)
            if chunk and pos != chunk_pos:
                flush()
            if not chunk:
                chunk_pos, chunk_lo = pos, lo
            # a copy: the chunk outlives the forward pass, and a network may write every
            # batch into the same output tensor (CUDA graphs, torch.compile)
            chunk.append(feats.clone())
            chunk_rows += feats.shape[0]
            if chunk_rows >= target:
                flush()
            bar.update(feats.shape[0])
            t0 = time.perf_counter()
        flush()
        t = time.perf_counter()
        while pending:
            pending.popleft().result()
        timings["wait_s"] += time.perf_counter() - t
        sample = labels = None
        if sample_counts.sum() > 0:
            sample, labels = _collect(setup, sample_counts, bar)
    return FeatureMoments(means=acc.means, covariances=acc.covariances, counts=acc.counts,
                          classes=setup.classes.copy(), sample=sample, sample_labels=labels, seed=setup.seed,
                          timings=timings, accumulator=acc)


def _chunk_rows(batch_size: int, p: int) -> int:
    """Rows per moment update: about 4 MB of float64 (the p x p merge costs are then amortised)."""
    return max(batch_size, min(8192, 2**19 // max(p, 1)))


@contextlib.contextmanager
def _blas_threads() -> Iterator[None]:
    """Limit numpy's BLAS to the cores torch leaves free (its idle threads spin and slow torch down)."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - scikit-learn (gan extra) brings it
        yield
        return
    n = max(1, available_cores() - torch.get_num_threads())
    with threadpool_limits(limits=n, user_api="blas"):
        yield


def _collect(setup: _Setup, counts: np.ndarray, bar=None) -> tuple[np.ndarray, np.ndarray]:
    offsets = np.concatenate([[0], np.cumsum(counts)])
    out = None
    for pos, lo, feats in setup.batches(counts, SAMPLE_STREAM):
        arr = _to_numpy(feats, int(setup.classes[pos]), lo)
        if out is None:
            out = np.empty((int(offsets[-1]), arr.shape[1]))
        start = offsets[pos] + lo
        out[start:start + arr.shape[0]] = arr
        if bar is not None:
            bar.update(arr.shape[0])
    labels = np.repeat(setup.classes, counts)
    return out, labels


def generate_features(generator: Any, features: Any = None, classes: Sequence[int | str] | None = None,
                      n_per_class: int | Sequence[int] = 500, *, batch_size: int = 256, seed: int = 0,
                      device: Any = "cpu", layer: str | None = None, progress: bool = False
                      ) -> tuple[np.ndarray, np.ndarray]:
    """A labelled sample of features of generated images (the empirical side).

    The draws are those of the ``return_sample`` of :func:`feature_moments`
    (latent stream 1; same ``seed`` and counts: same rows), independent of its
    moments.

    Parameters
    ----------
    generator : ConditionalGenerator, torch module or callable
        ``generator(latent (b, d), labels (b,) int64) -> images (b, C, H, W)``
        (see :func:`rmtgan.gan.as_generator`).
    features : torch module or callable, optional
        Representation network ``images -> features (b, p)`` (outputs are
        flattened).  ``None``: the flattened images are the features.
    classes : sequence of int or str, optional
        Generator class indices or names; default: all classes.
    n_per_class : int or sequence of int
        Rows per class (``>= 1``; one number, or one per class in the order of
        ``classes``).
    batch_size : int
        Images per forward pass (``>= 1``).
    seed : int
        Non-negative seed of the latent draws: class ``c`` uses
        ``numpy.random.default_rng([seed, c, 1])``.
    device : str or torch.device
        ``"cpu"``, ``"cuda"``, ...; the modules are moved there.
    layer : str, optional
        Name of the submodule of ``features`` whose output is the feature.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    data : ndarray of float64, shape (n, p)
        One feature vector per row, ``n = sum(n_per_class)`` (data convention
        (n_samples, n_features): the paper's ``X`` is ``data.T``), rows grouped
        by class in the order of ``classes``.
    labels : ndarray of int64, shape (n,)
        Generator class index of each row.

    Raises
    ------
    TypeError
        A count or the seed is not an integer; the generator or the network
        returns complex values.
    ValueError
        Bad counts, duplicate or unknown classes, images or features of the
        wrong shape, or non-finite features (naming the class and rows).

    Notes
    -----
    Modules run in eval mode (their modes are restored afterwards) under
    ``torch.inference_mode``; features are converted with
    ``.detach().cpu().double().numpy()``.
    """
    progress = as_flag(progress, "progress")
    setup = _Setup(generator, features, classes, layer, batch_size, seed, device)
    counts = _per_class(n_per_class, len(setup.classes), "n_per_class", 1)
    from tqdm.auto import tqdm

    with setup, torch.inference_mode(), tqdm(total=int(counts.sum()), disable=not progress, unit="img",
                                             desc="features") as bar:
        return _collect(setup, counts, bar)
