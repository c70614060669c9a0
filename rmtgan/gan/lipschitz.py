"""Concentration diagnostics: Lipschitz estimates and empirical concentration.

The paper's argument: ``z ~ N(0, I_d)`` is concentrated, a Lipschitz generator
``G`` and a Lipschitz network ``phi`` keep it so, hence the features
``phi(G(z))`` are concentrated vectors and their Gram matrix behaves like that
of the Gaussian mixture with the same moments.  Two diagnostics:

* :func:`lipschitz_estimate` (and :func:`generator_lipschitz`,
  :func:`features_lipschitz`): the local Lipschitz constant ``||J(x)||_2`` at
  sample points, by power iteration on ``J^T J`` with Jacobian-vector products
  (``torch.func.jvp``) and vector-Jacobian products (``torch.func.vjp``).  The
  maximum over points is a *lower* bound on the global constant.
* :func:`concentration_check`: fluctuations of Lipschitz observables of a
  labelled feature sample: ``||x|| / sqrt(p)``, ``||x - mu_a|| / sqrt(p)`` and
  random unit projections ``u^T x``, compared with the Gaussian with the same
  class mean and covariance.  (numpy only.)
"""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import ArrayLike

from rmtgan._validation import as_nonnegative_int
from rmtgan.gan._torch import ensure_threads, import_torch, resolve_device

if TYPE_CHECKING:
    import torch

__all__ = [
    "LipschitzEstimate",
    "lipschitz_estimate",
    "generator_lipschitz",
    "features_lipschitz",
    "ConcentrationReport",
    "concentration_check",
]


@dataclass(frozen=True)
class LipschitzEstimate:
    """Local Lipschitz constants ``||J(x_i)||_2`` (largest singular value of the Jacobian).

    Attributes
    ----------
    values : ndarray, shape (m,)
        One estimate per input point (each a lower bound of the true local
        norm that increases to it with the iterations).
    iterations : int
        Power iterations run.
    converged : bool
        Whether every point's estimate changed by less than ``tol``
        (relative) in the last iteration.
    """

    values: np.ndarray
    iterations: int
    converged: bool

    @property
    def max(self) -> float:
        """Largest local constant: a lower bound of the global Lipschitz constant.

        Returns
        -------
        float
            ``max_i values[i]``, in the units of the output norm per unit of the
            input norm (Euclidean norms of the flattened rows).
        """
        return float(np.max(self.values))

    @property
    def median(self) -> float:
        """Median local constant.

        Returns
        -------
        float
            ``median_i values[i]`` (same units as :attr:`max`).
        """
        return float(np.median(self.values))

    def __repr__(self) -> str:
        return (f"LipschitzEstimate(max={self.max:.4g}, median={self.median:.4g}, points={self.values.size}, "
                f"iterations={self.iterations}, converged={self.converged})")


def _check_count(v: Any, name: str) -> int:
    """``v`` as a positive int (NumPy integers accepted); anything else is a ``ValueError`` naming ``name``.

    A ``ValueError`` also for non-integers: the type these counts have always raised.
    """
    if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
        raise ValueError(f"{name} must be a positive integer, got {v!r}")
    return int(v)


def _check_tol(tol: Any) -> float:
    """A positive finite real number, else ``TypeError``/``ValueError`` naming ``tol``."""
    if isinstance(tol, (bool, np.bool_)) or not isinstance(tol, numbers.Real):
        raise TypeError(f"tol must be a positive real number, got {tol!r}")
    t = float(tol)
    if not (np.isfinite(t) and t > 0):
        raise ValueError(f"tol must be a positive finite number, got {tol!r}")
    return t


def lipschitz_estimate(fn: Callable[[torch.Tensor], torch.Tensor], inputs: torch.Tensor, *, n_iter: int = 50,
                       tol: float = 1e-4, seed: int = 0) -> LipschitzEstimate:
    """Spectral norm of the Jacobian of ``fn`` at each input point (power iteration).

    Parameters
    ----------
    fn : callable
        Maps a batch (m, ...) to a batch (m, ...), each output row depending on
        its own input row only (true of networks in eval mode).  It must be
        differentiable by ``torch.func.jvp`` and ``torch.func.vjp``.
    inputs : torch.Tensor, shape (m, ...)
        The points (floating point), one per row of the batch axis.
    n_iter : int
        Maximal number of power iterations (``>= 1``; each is one ``jvp`` and
        one ``vjp``).
    tol : float
        Positive; stop when every estimate's relative change in one iteration is
        below ``tol``.
    seed : int
        Non-negative seed of the random start vectors (a CPU
        ``torch.Generator``; the global torch RNG is not used).

    Returns
    -------
    LipschitzEstimate
        ``values`` of shape (m,): ``||J(x_i)||_2`` for the Euclidean norms of the
        flattened input and output rows.

    Raises
    ------
    TypeError
        ``fn`` is not callable, ``inputs`` is not a floating-point tensor, ``tol``
        is not a real number or ``seed`` is not an integer.
    ValueError
        Empty batch, ``n_iter`` not a positive integer, ``tol`` not positive and
        finite, negative ``seed``, or non-finite Jacobian-vector products.
    """
    torch = import_torch()
    if not callable(fn):
        raise TypeError(f"fn must be a callable (a function or module mapping a batch to a batch), "
                        f"got {type(fn).__name__}")
    if not isinstance(inputs, torch.Tensor) or not inputs.is_floating_point():
        raise TypeError("inputs must be a floating-point tensor (m, ...)")
    if inputs.ndim < 1 or inputs.shape[0] < 1:
        raise ValueError(f"inputs must have a non-empty batch axis, got shape {tuple(inputs.shape)}")
    n_iter = _check_count(n_iter, "n_iter")
    tol = _check_tol(tol)
    seed = as_nonnegative_int(seed, "seed")
    ensure_threads()
    x = inputs.detach()
    m = x.shape[0]

    def rows(t):
        return t.reshape(m, -1)

    def normalise(t):
        n = rows(t).norm(dim=1).clamp_min(torch.finfo(t.dtype).tiny)
        return t / n.view((m,) + (1,) * (t.ndim - 1))

    gen = torch.Generator(device="cpu").manual_seed(seed)
    v = normalise(torch.randn(x.shape, generator=gen, dtype=x.dtype).to(x.device))
    with torch.enable_grad():
        _, vjp_fn = torch.func.vjp(fn, x)
    sigma = torch.zeros(m, dtype=torch.float64)
    converged = False
    it = 0
    for it in range(1, n_iter + 1):  # noqa: B007 - it is reported
        with warnings.catch_warnings():
            # torch's forward-mode AD scripts its decompositions on first use (torch-internal noise)
            warnings.filterwarnings("ignore", message=".*torch.jit.script.* is deprecated",
                                    category=DeprecationWarning)
            _, jv = torch.func.jvp(fn, (x,), (v,))
        new = rows(jv).norm(dim=1).detach().double().cpu()
        (w,) = vjp_fn(jv)
        change = (new - sigma).abs() / new.clamp_min(1e-300)
        sigma = new
        if not torch.isfinite(sigma).all():
            raise ValueError("the Jacobian-vector products are not finite")
        if it > 1 and bool((change < tol).all()):
            converged = True
            break
        if bool((rows(w).norm(dim=1) == 0).all()):
            converged = True  # J = 0 everywhere: the constant is 0
            break
        v = normalise(w.detach())
    return LipschitzEstimate(values=sigma.numpy(), iterations=it, converged=converged)


def generator_lipschitz(generator: Any, classes: Sequence[int | str] | None = None, *, features: Any = None,
                        layer: str | None = None, n_points: int = 16, seed: int = 0, n_iter: int = 50,
                        tol: float = 1e-4, device: Any = "cpu") -> LipschitzEstimate:
    """Local Lipschitz constants of ``z -> G(z, y)`` (or of ``z -> phi(G(z, y))``) at sampled latents.

    Parameters
    ----------
    generator : ConditionalGenerator, module or callable
        ``generator(latent (b, d), labels (b,) int64) -> images (b, C, H, W)``
        (see :func:`rmtgan.gan.as_generator`).
    classes : sequence of int or str, optional
        Classes (indices or names) cycled over the points (default: all, or
        class 0 when the generator does not say how many it has).
    features : module or callable, optional
        Representation network ``phi``, ``images -> features (b, p)``: estimate
        the composite map instead.
    layer : str, optional
        Feature layer of ``features`` (see :class:`FeatureExtractor`).
    n_points : int
        Number ``m`` of latent points (``>= 1``, drawn by
        ``generator.sample_latent`` from ``numpy.random.default_rng([seed, 0x11C])``).
    seed : int
        Non-negative seed of the latents and of the power iteration's start
        vectors.
    n_iter, tol
        See :func:`lipschitz_estimate`.
    device : str or torch.device
        Where the modules run (see :func:`rmtgan.gan.resolve_device`); they are
        moved there and put in eval mode, their training flags restored after.

    Returns
    -------
    LipschitzEstimate
        ``values`` of shape (m,): norms of the Jacobian with respect to the
        latent (Euclidean norms on the latent and on the flattened images or
        features).
    """
    from rmtgan.gan.features import as_features
    from rmtgan.gan.generators import as_generator
    from rmtgan.gan.moments import _classes

    torch = import_torch()
    gen = as_generator(generator)
    ext = as_features(features, layer)
    dev = resolve_device(device)
    n_points = _check_count(n_points, "n_points")
    seed = as_nonnegative_int(seed, "seed")
    if classes is None and gen.num_classes is None:
        classes = [0]
    ids = _classes(gen, classes)
    mods = [mod for mod in (gen, ext) if isinstance(mod, torch.nn.Module)]
    modes = [(mm, mm.training) for mod in mods for mm in mod.modules()]
    for mod in mods:
        mod.to(dev).eval()
    try:
        floats = (p.dtype for mod in mods for p in mod.parameters() if p.is_floating_point())
        dtype = next(floats, torch.float32)
        rng = np.random.default_rng([seed, 0x11C])
        z = torch.from_numpy(gen.sample_latent(n_points, rng)).to(dev, dtype)
        y = torch.from_numpy(np.resize(ids, n_points)).to(dev)

        def fn(latent):
            images = gen(latent, y)
            return images.flatten(1) if ext is None else ext(images)

        return lipschitz_estimate(fn, z, n_iter=n_iter, tol=tol, seed=seed)
    finally:
        for mm, mode in modes:
            mm.training = mode


def features_lipschitz(features: Any, images: torch.Tensor, *, layer: str | None = None, n_iter: int = 50,
                       tol: float = 1e-4, seed: int = 0) -> LipschitzEstimate:
    """Local Lipschitz constants of a representation network at the given images.

    Parameters
    ----------
    features : module or callable
        ``images (m, C, H, W) -> features (m, p)``; a module runs in eval mode
        (its training flags are restored after).
    images : torch.Tensor, shape (m, C, H, W)
        Floating-point images, on the device and of the dtype of ``features``.
    layer : str, optional
        Feature layer of ``features`` (see :class:`FeatureExtractor`).
    n_iter, tol, seed
        See :func:`lipschitz_estimate`.

    Returns
    -------
    LipschitzEstimate
        ``values`` of shape (m,): norms of the Jacobian from flattened images to
        features (Euclidean).
    """
    from rmtgan.gan.features import as_features

    ext = as_features(features, layer)
    if ext is None:
        raise TypeError("features must be a module or a callable, got None")
    modes = [(mm, mm.training) for mm in ext.modules()]
    ext.eval()
    try:
        return lipschitz_estimate(ext, images, n_iter=n_iter, tol=tol, seed=seed)
    finally:
        for mm, mode in modes:
            mm.training = mode


# -------------------------------------------------------------------- concentration
@dataclass(frozen=True)
class ConcentrationReport:
    """Fluctuations of Lipschitz observables of features, per class, against the Gaussian reference.

    For class ``a`` with sample mean ``mu_a``, covariance ``C_a`` and ``n_a``
    rows, ``p`` features:

    Attributes
    ----------
    classes : ndarray, shape (k,)
        The distinct labels, sorted (``numpy.unique`` of the labels).
    counts : ndarray of int64, shape (k,)
        Rows ``n_a`` per class.
    p : int
        Feature dimension.
    norm_mean : ndarray, shape (k,)
        Mean of ``||x|| / sqrt(p)``.
    norm_std : ndarray, shape (k,)
        Standard deviation of ``||x|| / sqrt(p)``; ``O(1/sqrt(p))`` for a
        concentrated vector whose observable diameter is ``O(1)``.
    norm_std_gaussian : ndarray, shape (k,)
        The same for ``N(mu_a, C_a)``:
        ``sqrt(2 tr C^2 + 4 mu^T C mu) / (2 sqrt(p (||mu||^2 + tr C)))``
        (first order; ``tr C^2`` estimated without its ``(tr C)^2 / n`` bias).
    norm_ratio : ndarray, shape (k,)
        ``norm_std / norm_std_gaussian``: about 1 when ``||x||`` fluctuates like
        for the Gaussian mixture, ``>> 1`` for heavy (e.g. radial) fluctuations.
    centred_std : ndarray, shape (k,)
        Standard deviation of ``||x - mu_a|| / sqrt(p)`` (a 1/sqrt(p)-Lipschitz
        observable).
    centred_std_gaussian : ndarray, shape (k,)
        The same for ``N(mu_a, C_a)``: ``sqrt(2 tr C^2) / (2 sqrt(p tr C))``.
    projection_std : ndarray, shape (k, m)
        Standard deviations of ``u_j^T x`` for ``m`` random unit vectors (1-Lipschitz
        observables; equal to ``sqrt(u^T C u)`` by construction).
    projection_kurtosis : ndarray, shape (k, m)
        Their excess kurtosis (0 for a Gaussian; large positive values mean
        heavy tails).
    """

    classes: np.ndarray
    counts: np.ndarray
    p: int
    norm_mean: np.ndarray
    norm_std: np.ndarray
    norm_std_gaussian: np.ndarray
    norm_ratio: np.ndarray
    centred_std: np.ndarray
    centred_std_gaussian: np.ndarray
    projection_std: np.ndarray
    projection_kurtosis: np.ndarray

    def summary(self) -> str:
        """A small text table, one line per class.

        Returns
        -------
        str
            Columns: class, ``n``, mean of ``||x|| / sqrt(p)``, its standard
            deviation, the Gaussian value, their ratio, the same ratio for
            ``||x - mu_a||`` and the largest ``|excess kurtosis|`` of the
            projections.
        """
        lines = [f"concentration check (p = {self.p})",
                 "class      n   |x|/sqrt(p)   std      std(gauss)  ratio   |x-mu| ratio  max|kurt|"]
        for a, c in enumerate(self.classes):
            lines.append(
                f"{c!s:>5} {self.counts[a]:>6}   {self.norm_mean[a]:9.4g}   {self.norm_std[a]:8.3g} "
                f"{self.norm_std_gaussian[a]:10.3g}  {self.norm_ratio[a]:6.3f}   "
                f"{self.centred_std[a] / self.centred_std_gaussian[a]:10.3f}   "
                f"{np.max(np.abs(self.projection_kurtosis[a])):8.3f}")
        return "\n".join(lines)


def _tr_c2_unbiased(X: np.ndarray, mu: np.ndarray, cov: np.ndarray) -> float:
    """Unbiased estimate of tr(C^2) for Gaussian rows (Srivastava 2005)."""
    n = X.shape[0]
    fro2 = float(np.sum(cov * cov))
    tr = float(np.trace(cov))
    if n < 4:
        return fro2
    est = (n - 1) ** 2 / ((n - 2) * (n + 1)) * (fro2 - tr * tr / (n - 1))
    return max(est, 0.0)


def concentration_check(data: ArrayLike, labels: ArrayLike, *, n_projections: int = 8,
                        seed: int = 0) -> ConcentrationReport:
    """Empirical concentration of labelled features, against the Gaussian mixture with the same moments.

    Parameters
    ----------
    data : array_like, shape (n, p)
        One feature vector per row (data convention (n_samples, n_features), e.g.
        ``FeatureMoments.sample``; the paper's ``X`` is ``data.T``); finite reals.
    labels : array_like, shape (n,)
        Class of each row (integers or strings); each class needs at least 4
        rows.
    n_projections : int
        Number ``m`` of random unit directions ``u_j`` (``>= 1``; seeded,
        shared by classes).
    seed : int
        Non-negative seed of the directions (``numpy.random.default_rng(seed)``).

    Returns
    -------
    ConcentrationReport
        Per-class statistics, classes in sorted order.

    Raises
    ------
    TypeError
        Non-numeric ``data``, labels of another type, or a ``seed`` that is not
        an integer.
    ValueError
        Bad shapes or non-finite ``data``, ``n_projections`` not a positive
        integer, a negative ``seed``, a class with fewer than 4 rows or with
        constant features.
    """
    from rmtgan._validation import as_labels, as_real_array

    X = as_real_array(data, "data", ndim=2)
    lab = as_labels(labels, X.shape[0])
    n_projections = _check_count(n_projections, "n_projections")
    seed = as_nonnegative_int(seed, "seed")
    n, p = X.shape
    classes = np.unique(lab)
    rng = np.random.default_rng(seed)
    U = rng.standard_normal((p, n_projections))
    U /= np.linalg.norm(U, axis=0)
    fields: dict[str, list] = {k: [] for k in ("counts", "norm_mean", "norm_std", "norm_std_gaussian",
                                               "centred_std", "centred_std_gaussian", "projection_std",
                                               "projection_kurtosis")}
    for c in classes:
        Xa = X[lab == c]
        na = Xa.shape[0]
        if na < 4:
            raise ValueError(f"class {c!r} has {na} rows; the concentration check needs at least 4")
        mu = Xa.mean(axis=0)
        D = Xa - mu
        cov = D.T @ D / (na - 1)
        trc = float(np.trace(cov))
        if trc <= 0.0:
            raise ValueError(f"class {c!r} has constant features: there are no fluctuations to compare")
        trc2 = _tr_c2_unbiased(Xa, mu, cov)
        muCmu = float(mu @ cov @ mu)
        norms = np.linalg.norm(Xa, axis=1) / np.sqrt(p)
        centred = np.linalg.norm(D, axis=1) / np.sqrt(p)
        proj = D @ U
        s = proj.std(axis=0, ddof=1)
        kurt = np.mean(proj ** 4, axis=0) / np.maximum(np.mean(proj ** 2, axis=0) ** 2, 1e-300) - 3.0
        fields["counts"].append(na)
        fields["norm_mean"].append(norms.mean())
        fields["norm_std"].append(norms.std(ddof=1))
        fields["norm_std_gaussian"].append(
            np.sqrt(max(2 * trc2 + 4 * muCmu, 0.0)) / (2 * np.sqrt(p * max(mu @ mu + trc, 1e-300))))
        fields["centred_std"].append(centred.std(ddof=1))
        fields["centred_std_gaussian"].append(np.sqrt(2 * trc2) / (2 * np.sqrt(p * max(trc, 1e-300))))
        fields["projection_std"].append(s)
        fields["projection_kurtosis"].append(kurt)
    arr = {k: np.asarray(v) for k, v in fields.items()}
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(arr["norm_std_gaussian"] > 0, arr["norm_std"] / arr["norm_std_gaussian"], np.inf)
    return ConcentrationReport(classes=classes, counts=arr["counts"].astype(np.int64), p=p,
                               norm_mean=arr["norm_mean"], norm_std=arr["norm_std"],
                               norm_std_gaussian=arr["norm_std_gaussian"], norm_ratio=ratio,
                               centred_std=arr["centred_std"],
                               centred_std_gaussian=arr["centred_std_gaussian"],
                               projection_std=arr["projection_std"],
                               projection_kurtosis=arr["projection_kurtosis"])
