"""Conditional generators: the interface, wrappers for callables, and BigGAN.

The generator contract
----------------------
A generator is called as ``gen(latent, labels)``:

* ``latent``: float tensor of shape ``(b, gen.latent_dim)``;
* ``labels``: int64 tensor of shape ``(b,)`` with class indices;
* returns images of shape ``(b, C, H, W)``.

:class:`ConditionalGenerator` is the base class of every generator built by this
package; it adds ``latent_dim``, ``num_classes``, the latent distribution
(:meth:`ConditionalGenerator.sample_latent`, numpy-seeded so that a draw does
not depend on the batch size) and class names.  Any torch module or plain
callable with that call signature becomes one through :func:`as_generator`.

BigGAN
------
:func:`load_biggan` reads the pretrained BigGAN-deep generator of
``pytorch-pretrained-biggan`` from a *local* directory (``config.json`` and
``pytorch_model.bin``); nothing is ever downloaded.  :func:`random_biggan`
builds a randomly initialised BigGAN of any configuration, properly initialised
(the package's own initialisation produces NaN in eval mode, see
:func:`random_biggan`).
"""

from __future__ import annotations

import json
import math
import numbers
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import scipy.special

from rmtgan.gan._torch import ensure_threads, import_torch

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = [
    "ConditionalGenerator",
    "CallableGenerator",
    "BigGANGenerator",
    "StateDictMismatchError",
    "as_generator",
    "load_biggan",
    "save_biggan",
    "random_biggan",
    "biggan_config",
    "converge_spectral_norm",
    "truncated_normal",
    "IMAGENET_CLASSES",
    "BIGGAN_DIR_ENV",
]

#: Environment variable naming the local BigGAN weights directory.
BIGGAN_DIR_ENV = "RMTGAN_BIGGAN_DIR"
#: File names inside a BigGAN weights directory (those of pytorch-pretrained-biggan).
BIGGAN_CONFIG_NAME = "config.json"
BIGGAN_WEIGHTS_NAME = "pytorch_model.bin"

#: ImageNet class indices of the classes used in the paper (and a few aliases).
IMAGENET_CLASSES: dict[str, int] = {
    "mushroom": 947,
    "pizza": 963,
    "cheeseburger": 933,
    "hamburger": 933,  # the paper's name for ImageNet's "cheeseburger"
}


# --------------------------------------------------------------------------- latents
def truncated_normal(rng: np.random.Generator, shape: tuple[int, ...], truncation: float = 1.0,
                     bound: float = 2.0) -> np.ndarray:
    """Standard normal draws truncated to ``[-bound, bound]``, scaled by ``truncation``.

    This is BigGAN's "truncation trick" latent (``pytorch_pretrained_biggan.
    truncated_noise_sample`` uses ``bound = 2``).  It is sampled by inverting the
    CDF of one uniform draw per entry, so a draw of ``n`` rows equals the
    concatenation of draws of ``n1 + n2 = n`` rows from the same generator.

    Parameters
    ----------
    rng : numpy.random.Generator
        Source of the uniform draws (``rng.random(shape)``, advanced by one draw
        per entry).
    shape : tuple of int
        Shape of the output, e.g. ``(n, latent_dim)``.
    truncation : float
        Scale factor in ``(0, 1]``.
    bound : float
        Truncation bound of the standard normal (``> 0``).

    Returns
    -------
    ndarray of float32, shape ``shape``
        Entries in ``[-bound * truncation, bound * truncation]``.
    """
    truncation = _check_truncation(truncation)
    if not (bound > 0):
        raise ValueError(f"bound must be positive, got {bound!r}")
    lo = scipy.special.ndtr(-bound)
    u = rng.random(shape)
    z = scipy.special.ndtri(lo + u * (1.0 - 2.0 * lo))
    return (z * truncation).astype(np.float32)


def _check_truncation(truncation: float) -> float:
    if isinstance(truncation, (bool, np.bool_)) or not isinstance(truncation, numbers.Real):
        raise TypeError(f"truncation must be a number in (0, 1], got {truncation!r}")
    t = float(truncation)
    if not (0.0 < t <= 1.0):
        raise ValueError(f"truncation must lie in (0, 1], got {truncation!r}")
    return t


# ------------------------------------------------------------------------ interface
class ConditionalGenerator(nn.Module):
    """Base class of class-conditional generators ``(latent, labels) -> images``.

    Subclasses implement ``forward(latent, labels)`` (and may call
    :meth:`check_inputs`).

    Parameters
    ----------
    latent_dim : int
        Dimension ``d`` of the latent vector (``>= 1``).
    num_classes : int, optional
        Number of classes (``>= 1``); ``None`` when unknown.
    class_names : mapping of str to int, optional
        Class names (lower case) and their indices, for :meth:`class_index`.

    Attributes
    ----------
    latent_dim : int
        Dimension ``d`` of the latent vector.
    num_classes : int or None
        Number of classes (labels must lie in ``[0, num_classes)``); ``None``
        when unknown.
    class_names : dict of str to int
        Names accepted by :meth:`class_index`.
    """

    latent_dim: int
    num_classes: int | None
    class_names: dict[str, int]

    def __init__(self, latent_dim: int, num_classes: int | None = None,
                 class_names: Mapping[str, int] | None = None):
        super().__init__()
        if isinstance(latent_dim, bool) or not isinstance(latent_dim, (int, np.integer)) or latent_dim < 1:
            raise ValueError(f"latent_dim must be a positive integer, got {latent_dim!r}")
        if num_classes is not None and (
            isinstance(num_classes, bool) or not isinstance(num_classes, (int, np.integer)) or num_classes < 1
        ):
            raise ValueError(f"num_classes must be a positive integer or None, got {num_classes!r}")
        self.latent_dim = int(latent_dim)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.class_names = dict(class_names or {})

    def sample_latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` latent vectors from the generator's latent distribution.

        The default is the standard normal ``N(0, I_d)``; subclasses may change
        it (BigGAN uses a truncated normal).  Draws are consecutive: ``n`` rows
        equal the concatenation of ``n1`` then ``n2`` rows drawn from the same
        ``rng``.

        Parameters
        ----------
        n : int
            Number of latent vectors (``>= 0``).
        rng : numpy.random.Generator
            Source of randomness (advanced by the draw).

        Returns
        -------
        ndarray of float32, shape (n, latent_dim)
            One latent vector per row.
        """
        return rng.standard_normal((n, self.latent_dim), dtype=np.float32)

    def class_index(self, c: int | str) -> int:
        """Resolve a class given by index or by name to its index.

        Parameters
        ----------
        c : int or str
            A class index (Python or NumPy integer) or a name of
            :attr:`class_names` (case and surrounding spaces are ignored).

        Returns
        -------
        int
            The class index, in ``[0, num_classes)`` (``>= 0`` when
            ``num_classes`` is ``None``).

        Raises
        ------
        TypeError
            ``c`` is neither an integer nor a string (bools are refused).
        ValueError
            Unknown name, or index outside ``[0, num_classes)``.
        """
        if isinstance(c, str):
            key = c.strip().lower()
            if key not in self.class_names:
                known = ", ".join(sorted(self.class_names)) or "none"
                raise ValueError(f"unknown class name {c!r} (known names: {known}); "
                                 "pass the class index instead")
            return int(self.class_names[key])
        if isinstance(c, bool) or not isinstance(c, (int, np.integer)):
            raise TypeError(f"a class must be an integer index or a name, got {c!r}")
        c = int(c)
        if c < 0 or (self.num_classes is not None and c >= self.num_classes):
            raise ValueError(f"class index {c} is outside [0, {self.num_classes})")
        return c

    def check_inputs(self, latent: torch.Tensor, labels: torch.Tensor) -> None:
        """Validate ``latent`` (b, latent_dim) float and ``labels`` (b,) int64 tensors.

        The latent's dtype must be the weights' (when the generator has any) and the
        labels must lie in ``[0, num_classes)``.

        Parameters
        ----------
        latent : torch.Tensor, shape (b, latent_dim)
            Floating-point latents.
        labels : torch.Tensor of int64, shape (b,)
            Class indices.

        Raises
        ------
        TypeError
            Wrong tensor types or dtypes.
        ValueError
            Wrong shapes, or a label outside ``[0, num_classes)``.
        """
        if not isinstance(latent, torch.Tensor) or not latent.is_floating_point():
            raise TypeError(f"latent must be a floating-point tensor, got {type(latent).__name__}")
        if latent.ndim != 2 or latent.shape[1] != self.latent_dim:
            raise ValueError(f"latent must have shape (b, {self.latent_dim}), got {tuple(latent.shape)}")
        weight = next(self.parameters(), None)
        if weight is not None and latent.dtype != weight.dtype:
            raise TypeError(f"latent has dtype {latent.dtype} but the generator's weights are {weight.dtype}")
        if not isinstance(labels, torch.Tensor) or labels.dtype != torch.int64:
            raise TypeError(f"labels must be an int64 tensor, got "
                            f"{labels.dtype if isinstance(labels, torch.Tensor) else type(labels).__name__}")
        if labels.shape != (latent.shape[0],):
            raise ValueError(f"labels must have shape ({latent.shape[0]},), got {tuple(labels.shape)}")
        if labels.numel() and self.num_classes is not None:
            lo, hi = int(labels.min()), int(labels.max())
            if lo < 0 or hi >= self.num_classes:
                bad = lo if lo < 0 else hi
                raise ValueError(f"label {bad} is outside [0, {self.num_classes})")


class CallableGenerator(ConditionalGenerator):
    """A :class:`ConditionalGenerator` around any module or callable ``(latent, labels) -> images``.

    Built by :func:`as_generator`.  A wrapped ``nn.Module`` is registered as the
    submodule ``net``, so ``.to(device)`` and ``.eval()`` reach it.

    Parameters
    ----------
    fn : torch.nn.Module or callable
        ``fn(latent (b, latent_dim), labels (b,) int64) -> images (b, C, H, W)``.
    latent_dim : int
        Latent dimension ``d``.
    num_classes : int, optional
        Number of classes; ``None`` when unknown.
    latent_sampler : callable ``(n, rng) -> array (n, latent_dim)``, optional
        Latent distribution (``rng`` a ``numpy.random.Generator``); default the
        standard normal.
    class_names : mapping of str to int, optional
        Names accepted by :meth:`class_index`.
    """

    def __init__(self, fn: Callable, latent_dim: int, num_classes: int | None = None,
                 latent_sampler: Callable[[int, np.random.Generator], np.ndarray] | None = None,
                 class_names: Mapping[str, int] | None = None):
        super().__init__(latent_dim, num_classes, class_names)
        if isinstance(fn, nn.Module):
            self.net = fn
        else:
            self._fn = fn
        self._sampler = latent_sampler

    def forward(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """The wrapped callable's images.

        Parameters
        ----------
        latent : torch.Tensor, shape (b, latent_dim)
            Floating-point latents.
        labels : torch.Tensor of int64, shape (b,)
            Class indices.

        Returns
        -------
        torch.Tensor
            What the callable returns (images (b, C, H, W) under the contract);
            the inputs are passed as they are, unchecked.
        """
        fn = self.net if hasattr(self, "net") else self._fn
        return fn(latent, labels)

    def sample_latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` latents from ``latent_sampler`` (the standard normal without one).

        Parameters
        ----------
        n : int
            Number of latent vectors.
        rng : numpy.random.Generator
            Passed to the sampler.

        Returns
        -------
        ndarray of float32, shape (n, latent_dim)

        Raises
        ------
        ValueError
            The sampler returned another shape.
        """
        if self._sampler is None:
            return super().sample_latent(n, rng)
        z = np.asarray(self._sampler(n, rng), dtype=np.float32)
        if z.shape != (n, self.latent_dim):
            raise ValueError(f"latent_sampler returned shape {z.shape}, expected ({n}, {self.latent_dim})")
        return z


def as_generator(gen: Any, latent_dim: int | None = None, num_classes: int | None = None,
                 latent_sampler: Callable[[int, np.random.Generator], np.ndarray] | None = None
                 ) -> ConditionalGenerator:
    """Turn a module or callable ``(latent, labels) -> images`` into a :class:`ConditionalGenerator`.

    Parameters
    ----------
    gen : ConditionalGenerator, torch.nn.Module or callable
        Called as ``gen(latent, labels)`` with ``latent`` (b, latent_dim) float
        and ``labels`` (b,) int64 tensors; must return images (b, C, H, W).
    latent_dim : int, optional
        Latent dimension; read from ``gen.latent_dim`` when omitted.
    num_classes : int, optional
        Number of classes; read from ``gen.num_classes`` when present.
    latent_sampler : callable ``(n, rng) -> array (n, latent_dim)``, optional
        Latent distribution (``rng`` a ``numpy.random.Generator``); standard
        normal by default, or ``gen.sample_latent`` when ``gen`` has one.

    Returns
    -------
    ConditionalGenerator
        ``gen`` itself when it already is one and nothing is overridden.

    Raises
    ------
    TypeError
        ``gen`` is not callable, or its latent dimension is unknown.
    """
    if isinstance(gen, ConditionalGenerator) and latent_dim is None and num_classes is None \
            and latent_sampler is None:
        return gen
    if not callable(gen):
        raise TypeError(f"a generator must be a torch module or a callable (latent, labels) -> images, "
                        f"got {type(gen).__name__}")
    if latent_dim is None:
        latent_dim = getattr(gen, "latent_dim", None)
        if latent_dim is None:
            raise TypeError("the generator has no `latent_dim` attribute: pass latent_dim= to as_generator")
    if num_classes is None:
        num_classes = getattr(gen, "num_classes", None)
    if latent_sampler is None and callable(getattr(gen, "sample_latent", None)):
        latent_sampler = gen.sample_latent
    names = getattr(gen, "class_names", None)
    return CallableGenerator(gen, latent_dim, num_classes, latent_sampler,
                             names if isinstance(names, Mapping) else None)


# --------------------------------------------------------------- spectral norm state
def converge_spectral_norm(module) -> int:
    """Set the power-iteration vectors of every spectrally normalised layer to their limit.

    Both flavours of torch spectral normalisation keep vectors ``u, v`` and use
    ``sigma = u^T W v`` in eval mode without iterating; if the vectors are not
    converged (e.g. a freshly built model) ``sigma`` is wrong, possibly ~0, and
    the outputs explode.  This sets ``u, v`` to the exact leading singular
    vectors of each weight matrix (power iteration run to convergence,
    computed directly from the smaller Gram matrix), so every normalised layer
    has spectral norm 1 (to rounding).

    Handles ``torch.nn.utils.spectral_norm`` (hooks; BigGAN) and
    ``torch.nn.utils.parametrizations.spectral_norm``.

    Parameters
    ----------
    module : torch.nn.Module
        Updated in place (all its submodules).

    Returns
    -------
    int
        Number of normalised weights updated.

    Raises
    ------
    ValueError
        A normalised weight is zero or not finite.
    """
    from torch.nn.utils.parametrizations import _SpectralNorm
    from torch.nn.utils.spectral_norm import SpectralNorm

    count = 0
    with torch.no_grad():
        for name, mod in module.named_modules():
            for hook in list(mod._forward_pre_hooks.values()):
                if isinstance(hook, SpectralNorm):
                    w = getattr(mod, hook.name + "_orig")
                    u, v = _top_singular(hook.reshape_weight_to_matrix(w), f"{name}.{hook.name}")
                    getattr(mod, hook.name + "_u").copy_(u)
                    getattr(mod, hook.name + "_v").copy_(v)
                    # the hook caches the normalised weight as a plain attribute
                    setattr(mod, hook.name, hook.compute_weight(mod, do_power_iteration=False))
                    count += 1
            params = getattr(mod, "parametrizations", None)
            if params is not None:
                for pname, plist in params.items():
                    for p in plist:
                        if isinstance(p, _SpectralNorm):
                            w = plist.original
                            u, v = _top_singular(p._reshape_weight_to_matrix(w), f"{name}.{pname}")
                            p._u.copy_(u)
                            p._v.copy_(v)
                            count += 1
    return count


def _top_singular(mat, where: str):
    """Leading singular vectors ``(u, v)`` of ``mat`` (h, w), from the smaller Gram matrix.

    ``eigh`` of the ``min(h, w)``-sided Gram matrix in float64 is several times
    cheaper than a full SVD and exact to rounding for the top pair; one power
    step polishes the other vector.
    """
    m = mat.detach().double()
    h, w = m.shape
    gram = m @ m.T if h <= w else m.T @ m
    evals, evecs = torch.linalg.eigh(gram)
    top = evals[-1]
    if not torch.isfinite(evals).all() or top <= 0:
        raise ValueError(f"spectrally normalised weight {where!r} is zero or not finite")
    if h <= w:
        u = evecs[:, -1]
        v = m.T @ u
        v = v / v.norm()
        u = m @ v
        u = u / u.norm()
    else:
        v = evecs[:, -1]
        u = m @ v
        u = u / u.norm()
        v = m.T @ u
        v = v / v.norm()
    return u.to(mat.dtype), v.to(mat.dtype)


# ---------------------------------------------------------------------------- BigGAN
def _biggan():
    try:
        import pytorch_pretrained_biggan as ppb
    except ImportError as exc:
        raise ImportError(
            "BigGAN needs the package pytorch-pretrained-biggan, plus scipy and pillow, which it "
            "imports without declaring them: pip install 'rmtgan[gan]'"
        ) from exc
    return ppb


class StateDictMismatchError(ValueError):
    """A weights file does not match the model: missing, unexpected or mis-shaped keys.

    Parameters
    ----------
    source : str
        What the weights came from (e.g. the quoted file name), for the message.
    missing, unexpected : iterable of str
        Keys the model expects but the file lacks, and keys the model does not
        have.
    mismatched : iterable of (str, tuple, tuple)
        ``(key, shape in file, shape expected)``.

    Attributes
    ----------
    missing, unexpected : list of str
    mismatched : list of (str, tuple, tuple)
        ``(key, shape in file, shape expected)``.
    """

    def __init__(self, source: str, missing: Iterable[str] = (), unexpected: Iterable[str] = (),
                 mismatched: Iterable[tuple[str, tuple, tuple]] = ()):
        self.missing = list(missing)
        self.unexpected = list(unexpected)
        self.mismatched = list(mismatched)

        def show(items):
            items = list(items)
            head = ", ".join(str(i) for i in items[:8])
            return head + (f", ... ({len(items)} in all)" if len(items) > 8 else "")

        parts = []
        if self.missing:
            parts.append(f"missing keys: {show(self.missing)}")
        if self.unexpected:
            parts.append(f"unexpected keys: {show(self.unexpected)}")
        if self.mismatched:
            parts.append("shape mismatches: " + show(f"{k} {tuple(a)} in file vs {tuple(b)} expected"
                                                      for k, a, b in self.mismatched))
        super().__init__(f"weights in {source} do not match the model's configuration ("
                         + "; ".join(parts) + ")")


def load_state_dict_strict(model, state: Mapping[str, Any], source: str) -> None:
    """Load ``state`` into ``model``, raising :class:`StateDictMismatchError` on any mismatch."""
    if not isinstance(state, Mapping):
        raise ValueError(f"{source} does not hold a state dict (got {type(state).__name__})")
    expected = model.state_dict()
    mismatched = [(k, tuple(v.shape), tuple(expected[k].shape)) for k, v in state.items()
                  if k in expected and isinstance(v, torch.Tensor) and v.shape != expected[k].shape]
    if mismatched:
        raise StateDictMismatchError(source, mismatched=mismatched)
    # load_state_dict casts silently: integer or complex weights for a float parameter (or
    # real ones for a complex one) mean a wrong file, not a precision choice (float16
    # checkpoints are fine; so are counters such as num_batches_tracked stored as floats)
    def kind(t):
        return t.is_complex(), t.is_floating_point()

    kinds = [(k, v.dtype, expected[k].dtype) for k, v in state.items()
             if k in expected and isinstance(v, torch.Tensor)
             and any(kind(expected[k])) and kind(v) != kind(expected[k])]
    if kinds:
        raise TypeError(f"weights in {source} have the wrong kind of dtype: "
                        + ", ".join(f"{k} {a} in file vs {b} expected" for k, a, b in kinds[:5])
                        + (f" (+{len(kinds) - 5} more)" if len(kinds) > 5 else ""))
    result = model.load_state_dict(state, strict=False)  # load pre-hooks may rename keys
    if result.missing_keys or result.unexpected_keys:
        raise StateDictMismatchError(source, result.missing_keys, result.unexpected_keys)


class BigGANGenerator(ConditionalGenerator):
    """BigGAN-deep (``pytorch_pretrained_biggan.BigGAN``) behind the generator contract.

    ``gen(latent, labels)`` maps latents (b, z_dim) and ImageNet class indices
    (b,) to RGB images (b, 3, R, R) in ``[-1, 1]`` (``R = config.output_dim``).
    Latents are drawn by :meth:`sample_latent` from the truncated normal of the
    truncation trick (``[-2, 2]`` scaled by ``truncation``); the same
    ``truncation`` selects the batch-norm statistics.

    Parameters
    ----------
    model : pytorch_pretrained_biggan.BigGAN
        The network (its ``config`` gives ``latent_dim = z_dim`` and
        ``num_classes``; 1000-class models know the names of
        :data:`IMAGENET_CLASSES`).
    truncation : float
        In ``(0, 1]``; the paper's images use small values (e.g. 0.4).
    """

    def __init__(self, model, truncation: float = 0.4):
        ppb = _biggan()
        if not isinstance(model, ppb.BigGAN):
            raise TypeError(f"model must be a pytorch_pretrained_biggan.BigGAN, got {type(model).__name__}")
        cfg = model.config
        super().__init__(cfg.z_dim, cfg.num_classes,
                         IMAGENET_CLASSES if cfg.num_classes == 1000 else None)
        self.model = model
        self.truncation = _check_truncation(truncation)

    @property
    def config(self) -> Any:
        """The ``pytorch_pretrained_biggan.BigGANConfig`` of the wrapped model."""
        return self.model.config

    def forward(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images of the given latents and classes.

        Parameters
        ----------
        latent : torch.Tensor, shape (b, z_dim)
            Latents, of the weights' dtype (checked by :meth:`check_inputs`).
        labels : torch.Tensor of int64, shape (b,)
            ImageNet class indices in ``[0, num_classes)``.

        Returns
        -------
        torch.Tensor, shape (b, 3, output_dim, output_dim)
            RGB images in ``[-1, 1]``, of the latent's dtype.
        """
        self.check_inputs(latent, labels)
        one_hot = F.one_hot(labels, self.num_classes).to(latent.dtype)
        return self.model(latent, one_hot, self.truncation)

    def sample_latent(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Draw ``n`` latents of the truncation trick (:func:`truncated_normal`, bound 2).

        Parameters
        ----------
        n : int
            Number of latent vectors.
        rng : numpy.random.Generator
            Source of randomness.

        Returns
        -------
        ndarray of float32, shape (n, z_dim)
            Entries in ``[-2 truncation, 2 truncation]``.
        """
        return truncated_normal(rng, (n, self.latent_dim), self.truncation)

    def extra_repr(self) -> str:
        c = self.config
        return f"output_dim={c.output_dim}, channel_width={c.channel_width}, truncation={self.truncation}"


def _resolve_dir(weights_dir) -> Path:
    if weights_dir is None:
        env = os.environ.get(BIGGAN_DIR_ENV, "").strip()
        if not env:
            raise FileNotFoundError(
                f"no BigGAN weights directory: pass weights_dir= or set the environment variable "
                f"{BIGGAN_DIR_ENV} to a directory holding {BIGGAN_CONFIG_NAME} and {BIGGAN_WEIGHTS_NAME} "
                f"(e.g. the files of 'biggan-deep-128' from pytorch-pretrained-biggan); nothing is downloaded"
            )
        weights_dir = env
        source = f" (from the environment variable {BIGGAN_DIR_ENV})"
    else:
        source = ""
    if not isinstance(weights_dir, (str, os.PathLike)):
        raise TypeError(f"weights_dir must be a path, got {type(weights_dir).__name__}")
    path = Path(weights_dir).expanduser()
    if path.exists() and not path.is_dir():
        raise FileNotFoundError(f"BigGAN weights directory {str(path)!r}{source} exists but is not a "
                                f"directory: pass the directory holding {BIGGAN_CONFIG_NAME} and "
                                f"{BIGGAN_WEIGHTS_NAME}")
    if not path.is_dir():
        raise FileNotFoundError(f"BigGAN weights directory {str(path)!r}{source} does not exist")
    missing = [f for f in (BIGGAN_CONFIG_NAME, BIGGAN_WEIGHTS_NAME) if not (path / f).is_file()]
    if missing:
        raise FileNotFoundError(
            f"BigGAN weights directory {str(path)!r} lacks {' and '.join(missing)} "
            f"(expected {BIGGAN_CONFIG_NAME} and {BIGGAN_WEIGHTS_NAME})"
        )
    return path


def load_biggan(weights_dir: str | os.PathLike | None = None, *, truncation: float = 0.4,
                device: Any = "cpu") -> BigGANGenerator:
    """Load a pretrained BigGAN-deep generator from a local directory.

    Parameters
    ----------
    weights_dir : path, optional
        Directory with ``config.json`` and ``pytorch_model.bin`` (the layout of
        ``pytorch-pretrained-biggan``); defaults to the environment variable
        ``RMTGAN_BIGGAN_DIR``.  Nothing is ever downloaded.
    truncation : float
        Truncation in ``(0, 1]``.
    device : str or torch.device
        Where the model lives.

    Returns
    -------
    BigGANGenerator
        In eval mode, parameters frozen.

    Raises
    ------
    TypeError
        ``weights_dir`` is not a path.
    FileNotFoundError
        No directory given, the path does not exist or is not a directory, or a
        file is missing.
    StateDictMismatchError (a ValueError)
        The weights do not match ``config.json`` exactly (missing, unexpected
        or mis-shaped keys).
    ValueError
        Unreadable ``config.json``, non-finite weights, or weights that give
        non-finite images (checked on one image, e.g. a zeroed spectral-norm
        vector).
    """
    from rmtgan.gan._torch import resolve_device

    ppb = _biggan()
    dev = resolve_device(device)
    path = _resolve_dir(weights_dir)
    try:
        config = ppb.BigGANConfig.from_json_file(str(path / BIGGAN_CONFIG_NAME))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path / BIGGAN_CONFIG_NAME} is not a valid JSON config: {exc}") from None
    except (AttributeError, TypeError) as exc:  # valid JSON, but not an object of settings
        raise ValueError(f"{path / BIGGAN_CONFIG_NAME} is not a JSON object of BigGAN settings: "
                         f"{exc}") from None
    model = _build_biggan(ppb, config)
    wfile = path / BIGGAN_WEIGHTS_NAME
    try:
        state = torch.load(str(wfile), map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle/zip errors of many kinds
        raise ValueError(f"cannot read BigGAN weights {str(wfile)!r}: {exc}") from exc
    load_state_dict_strict(model, state, repr(str(wfile)))
    for k, v in model.state_dict().items():
        if v.is_floating_point() and not torch.isfinite(v).all():
            raise ValueError(f"BigGAN weights {str(wfile)!r}: tensor {k!r} has non-finite values")
    model.eval().requires_grad_(False)
    gen = BigGANGenerator(model, truncation).to(dev).eval()
    # finite weights can still give NaN images (a zero spectral-norm vector divides by 0)
    z = torch.from_numpy(gen.sample_latent(1, np.random.default_rng(0))).to(dev)
    with torch.inference_mode():
        out = gen(z, torch.zeros(1, dtype=torch.int64, device=dev))
    if not torch.isfinite(out).all():
        raise ValueError(f"BigGAN weights {str(wfile)!r} give non-finite images (a zero or broken "
                         "spectral-norm vector?)")
    return gen


def save_biggan(gen, weights_dir: str | os.PathLike) -> Path:
    """Write a BigGAN as ``config.json`` + ``pytorch_model.bin`` (readable by :func:`load_biggan`).

    Parameters
    ----------
    gen : BigGANGenerator or pytorch_pretrained_biggan.BigGAN
        The model to save (its weights are copied to the CPU).
    weights_dir : path
        Created if needed; existing files of the same names are overwritten.

    Returns
    -------
    pathlib.Path
        The directory.

    Raises
    ------
    TypeError
        ``gen`` is neither a :class:`BigGANGenerator` nor a BigGAN.
    """
    ppb = _biggan()
    model = gen.model if isinstance(gen, BigGANGenerator) else gen
    if not isinstance(model, ppb.BigGAN):
        raise TypeError(f"gen must be a BigGANGenerator or a BigGAN, got {type(gen).__name__}")
    path = Path(weights_dir)
    path.mkdir(parents=True, exist_ok=True)
    (path / BIGGAN_CONFIG_NAME).write_text(model.config.to_json_string(), encoding="utf-8")
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    torch.save(state, str(path / BIGGAN_WEIGHTS_NAME))
    return path


def biggan_config(output_dim: int = 32, channel_width: int = 8, z_dim: int = 128,
                  num_classes: int = 1000, attention: bool = True):
    """A BigGAN-deep configuration of any resolution and width (small ones for tests).

    The layout follows the 128x128 model: pairs of blocks (keep, up-sample),
    channels going from ``16 ch`` (the 4x4 input) down to ``ch`` by halvings on
    the up-sampling blocks of the last four pairs (and, below 64x64, on the
    first keep blocks), self-attention before the last pair.
    ``biggan_config(128, 128)`` has the shape of ``biggan-deep-128``.

    Parameters
    ----------
    output_dim : int
        Image side ``4 * 2**m`` with ``m >= 2`` (16, 32, 64, 128, ...).
    channel_width : int
        Base width ``ch >= 4`` (the last block has ``ch`` channels; the
        attention layer needs ``ch * multiplier >= 8``).
    z_dim : int
        Latent dimension (the class embedding has the same size).
    num_classes : int
        Number of classes (1000 for ImageNet).
    attention : bool
        Include the self-attention layer.

    Returns
    -------
    pytorch_pretrained_biggan.BigGANConfig
        Its ``layers`` list ``(up-sample, in, out)`` channel multiples per block.

    Raises
    ------
    ValueError
        A size is not a positive integer, ``output_dim`` is not ``4 * 2**m``
        with ``m >= 2``, ``channel_width < 4``, or the attention layer would be
        too narrow.
    """
    ppb = _biggan()
    for name, v in (("output_dim", output_dim), ("channel_width", channel_width), ("z_dim", z_dim),
                    ("num_classes", num_classes)):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ValueError(f"{name} must be a positive integer, got {v!r}")
    m = math.log2(output_dim / 4) if output_dim >= 16 else 0.0
    if m < 2 or m != int(m):
        raise ValueError(f"output_dim must be 4 * 2**m with m >= 2 (16, 32, 64, 128, ...), got {output_dim}")
    m = int(m)
    if channel_width < 4:
        raise ValueError(f"channel_width must be >= 4, got {channel_width}")
    extra = max(0, 4 - m)  # halvings that do not fit on the up-sampling blocks
    layers, c = [], 16
    for i in range(m):
        c_keep = c // 2 if i < extra else c
        layers.append((False, c, c_keep))
        c_up = c_keep // 2 if i >= m - 4 else c_keep
        layers.append((True, c_keep, c_up))
        c = c_up
    assert c == 1, layers
    attn = 2 * (m - 1) if attention else len(layers) + 1
    if attention and channel_width * layers[2 * (m - 1)][1] < 8:
        raise ValueError(f"channel_width={channel_width} is too small for the attention layer "
                         f"(needs channel_width * {layers[2 * (m - 1)][1]} >= 8); use attention=False "
                         "or a wider model")
    return ppb.BigGANConfig(output_dim=output_dim, z_dim=z_dim, class_embed_dim=z_dim,
                            channel_width=channel_width, num_classes=num_classes,
                            layers=[list(x) for x in layers], attention_layer_position=attn)


def _build_biggan(ppb, config):
    if not isinstance(config, ppb.BigGANConfig):
        raise TypeError("config must be a pytorch_pretrained_biggan.BigGANConfig, "
                        f"got {type(config).__name__}")
    layers = [tuple(x) for x in config.layers]
    n_up = sum(1 for layer in layers if layer[0])
    if config.output_dim != 4 * 2 ** n_up:
        raise ValueError(f"BigGAN config is inconsistent: {n_up} up-sampling layers give images of side "
                         f"{4 * 2 ** n_up}, but output_dim = {config.output_dim}")
    if not layers or layers[0][1] != 16 or layers[-1][2] != 1:
        raise ValueError("BigGAN config is inconsistent: the first layer must take 16 * channel_width "
                         "channels and the last give channel_width channels")
    for i, (_, a, b) in enumerate(layers):
        if b != a and 2 * b != a:
            raise ValueError(f"BigGAN config is inconsistent: layer {i} maps {a} -> {b} channel multiples "
                             "(a block keeps or halves its channels)")
        if i and layers[i - 1][2] != a:
            raise ValueError(f"BigGAN config is inconsistent: layer {i} takes {a} channel multiples but "
                             f"layer {i - 1} gives {layers[i - 1][2]}")
    try:
        return ppb.BigGAN(config)
    except Exception as exc:  # the constructor's own shape errors
        raise ValueError(f"cannot build a BigGAN from this config: {exc}") from exc


def random_biggan(config=None, seed: int = 0, *, truncation: float = 0.4, calibration_size: int = 64,
                  device: Any = "cpu") -> BigGANGenerator:
    """A randomly initialised BigGAN-deep generator with finite, class-dependent outputs.

    ``pytorch_pretrained_biggan.BigGAN(config)`` as shipped produces NaN: its
    spectral-norm vectors ``u, v`` start random and eval mode never iterates
    them (``sigma = u^T W v`` can be ~0 or negative), and the final batch-norm
    weight and bias are uninitialised memory.  Here:

    1. weights get torch's default initialisation under ``seed``; the class
       embedding gets N(0, 1) entries so that the class matters as much as the
       latent;
    2. every spectrally normalised layer gets converged ``u, v``
       (:func:`converge_spectral_norm`): each such layer has spectral norm 1;
    3. the final batch norm gets weight 1 and bias 0;
    4. the batch-norm running statistics (all ``n_stats`` truncation slots) are
       calibrated, layer by layer, to the actual mean and variance of their
       inputs on ``calibration_size`` seeded latents of random classes at this
       ``truncation`` (instead of mean 0 / variance 1, which lets activations
       drift across blocks).

    Parameters
    ----------
    config : pytorch_pretrained_biggan.BigGANConfig, optional
        Any configuration (default: ``BigGANConfig()``, the 128x128 model,
        ~56M parameters; use :func:`biggan_config` for small ones).
    seed : int
        Seed of the initialisation and of the calibration batch.  The global
        torch RNG state is left untouched.
    truncation : float
        In ``(0, 1]``.
    calibration_size : int
        Calibration batch size (``>= 2``).
    device : str or torch.device
        Where the model lives (the calibration runs there).

    Returns
    -------
    BigGANGenerator
        In eval mode, parameters frozen.
    """
    from rmtgan.gan._torch import resolve_device

    ppb = _biggan()
    ensure_threads()
    dev = resolve_device(device)
    if config is None:
        config = ppb.BigGANConfig()
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
    if isinstance(calibration_size, bool) or not isinstance(calibration_size, (int, np.integer)) \
            or calibration_size < 2:
        raise ValueError(f"calibration_size must be an integer >= 2, got {calibration_size!r}")
    truncation = _check_truncation(truncation)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(int(seed))
        model = _build_biggan(ppb, config)
        with torch.no_grad():
            model.embeddings.weight.normal_(0.0, 1.0)
            model.generator.bn.weight.fill_(1.0)
            model.generator.bn.bias.zero_()
    converge_spectral_norm(model)
    model.eval().requires_grad_(False)
    gen = BigGANGenerator(model, truncation).to(dev).eval()
    rng = np.random.default_rng([int(seed), 0x5EED])
    z = torch.from_numpy(gen.sample_latent(calibration_size, rng)).to(dev)
    y = torch.from_numpy(rng.integers(0, config.num_classes, calibration_size)).to(dev)
    _calibrate_batchnorm(gen, z, y)
    with torch.no_grad():
        out = gen(z, y)
    if not torch.isfinite(out).all():  # pragma: no cover - a bug if it happens
        raise RuntimeError("random BigGAN initialisation produced non-finite images")
    return gen


def _calibrate_batchnorm(gen: BigGANGenerator, z, y) -> None:
    """Set each BigGAN batch norm's running stats to its input's batch statistics (in order)."""
    from pytorch_pretrained_biggan.model import BigGANBatchNorm

    def pre_hook(module, args):
        x = args[0]
        dims = [0, 2, 3] if x.ndim == 4 else [0]
        mean = x.mean(dim=dims)
        var = x.var(dim=dims, unbiased=False)
        module.running_means.copy_(mean.expand_as(module.running_means))
        module.running_vars.copy_(var.expand_as(module.running_vars))

    handles = [m.register_forward_pre_hook(pre_hook) for m in gen.modules() if isinstance(m, BigGANBatchNorm)]
    try:
        with torch.no_grad():
            gen(z, y)
    finally:
        for h in handles:
            h.remove()
