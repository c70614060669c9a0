"""The shipped digits models: a conditional GAN and a feature CNN for scikit-learn's digits.

Data
----
``sklearn.datasets.load_digits`` holds 1797 grey 8x8 images with integer
intensities 0..16, ten classes.  Throughout this package images are scaled to
``[-1, 1]`` by ``x / 8 - 1`` (:func:`digits_data`); the generator's ``tanh``
output lives in the same range and the CNN was trained on real digits scaled
the same way.  :func:`to_pixels` maps back to the 0..16 scale.

Models
------
:class:`DigitsGenerator`
    ``(latent (b, 16), labels (b,)) -> images (b, 1, 8, 8)``: three spectrally
    normalised linear layers acting on the latent, each followed by a learned
    scalar gain, with a learned per-class bias after each layer (the class
    enters only through biases, so for a fixed class the map is Lipschitz in
    the latent with constant at most the product of the three gains,
    :attr:`DigitsGenerator.lipschitz_bound`).
:class:`DigitsCNN`
    A small convolutional classifier whose penultimate layer ``"act"`` (ReLU of
    a 512-wide linear layer and batch norm) gives the features, ``p = 512``.

Both were trained by ``python -m rmtgan.gan.train_digits`` (seeded); the
weights and a JSON of metadata (seed, epochs, accuracies, timings) ship in
``rmtgan/gan/weights/``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, DTypeLike

from rmtgan.gan._torch import ensure_threads, import_torch, resolve_device
from rmtgan.gan.features import FeatureExtractor
from rmtgan.gan.generators import ConditionalGenerator, load_state_dict_strict

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = [
    "DigitsGenerator",
    "DigitsCNN",
    "digits_data",
    "to_pixels",
    "digits_generator",
    "digits_cnn",
    "digits_features",
    "weights_metadata",
    "WEIGHTS_DIR",
    "DIGITS_FEATURE_LAYER",
]

#: Directory of the shipped weights.
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
GAN_FILE = "digits_gan.pt"
CNN_FILE = "digits_cnn.pt"
#: Module name of the CNN's feature layer (the penultimate activations).
DIGITS_FEATURE_LAYER = "act"


def digits_data(dtype: DTypeLike = np.float32) -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as images in ``[-1, 1]``.

    Parameters
    ----------
    dtype : numpy dtype
        Floating-point dtype of the images (float32, that of the shipped
        networks, by default); the scaling is computed in float64 and cast.

    Returns
    -------
    images : ndarray of ``dtype``, shape (1797, 1, 8, 8)
        ``pixels / 8 - 1`` (pixels are integers 0..16), one image per sample
        with a single channel, as the networks take them.
    labels : ndarray of int64, shape (1797,)
        The digit (0..9) of each image.
    """
    from sklearn.datasets import load_digits

    d = load_digits()
    images = (d.images.astype(np.float64) / 8.0 - 1.0).astype(dtype)[:, None]
    return images, d.target.astype(np.int64)


def to_pixels(images: ArrayLike | torch.Tensor) -> np.ndarray:
    """Map images in ``[-1, 1]`` (b, 1, 8, 8) back to scikit-learn's scale: rows of 64 pixels in 0..16.

    The inverse of the scaling of :func:`digits_data`: ``(x + 1) * 8``, clipped
    to ``[0, 16]`` (generated images may leave the range slightly) and not
    rounded.

    Parameters
    ----------
    images : array_like or torch.Tensor, shape (b, ...) with 64 values per image
        Images in ``[-1, 1]``, e.g. (b, 1, 8, 8) from a generator (a tensor is
        detached and copied to the CPU).

    Returns
    -------
    ndarray of float64, shape (b, 64)
        One flattened image per row, as ``sklearn.datasets.load_digits().data``.

    Raises
    ------
    ValueError
        An image does not have 64 values.
    """
    x = images.detach().cpu().numpy() if isinstance(images, torch.Tensor) else np.asarray(images)
    x = np.asarray(x, dtype=np.float64).reshape(x.shape[0], -1)
    if x.shape[1] != 64:
        raise ValueError(f"digits images must have 64 pixels, got shape {np.shape(images)}")
    return np.clip((x + 1.0) * 8.0, 0.0, 16.0)


def _sn(layer):
    return nn.utils.parametrizations.spectral_norm(layer)


class DigitsGenerator(ConditionalGenerator):
    """Conditional generator of 8x8 digits with a controlled Lipschitz constant in the latent.

    ``h1 = lrelu(g1 W1 z + a1[y])``, ``h2 = lrelu(g2 W2 h1 + a2[y])``,
    ``x = tanh(g3 W3 h2 + a3[y])`` reshaped to (b, 1, 8, 8), with ``W_i``
    spectrally normalised (``||W_i|| = 1``), scalar gains ``g_i = exp(log_gain_i)``
    and per-class biases ``a_i[y]``.

    Parameters
    ----------
    latent_dim : int
        Latent dimension (16 for the shipped weights).
    hidden : int
        Width of the two hidden layers.
    num_classes : int
        Number of classes (10 digits); the class names are ``"0"`` .. ``"9"``.
    """

    def __init__(self, latent_dim: int = 16, hidden: int = 256, num_classes: int = 10):
        super().__init__(latent_dim, num_classes, {str(i): i for i in range(num_classes)})
        self.fc1 = _sn(nn.Linear(latent_dim, hidden, bias=False))
        self.fc2 = _sn(nn.Linear(hidden, hidden, bias=False))
        self.fc3 = _sn(nn.Linear(hidden, 64, bias=False))
        self.bias1 = nn.Embedding(num_classes, hidden)
        self.bias2 = nn.Embedding(num_classes, hidden)
        self.bias3 = nn.Embedding(num_classes, 64)
        self.log_gain = nn.Parameter(torch.zeros(3))
        for e in (self.bias1, self.bias2, self.bias3):
            nn.init.normal_(e.weight, 0.0, 0.1)

    @property
    def lipschitz_bound(self) -> float:
        """Upper bound ``g1 g2 g3`` of the Lipschitz constant in the latent (Euclidean norms)."""
        return float(torch.exp(self.log_gain.detach().sum()))

    def forward(self, latent: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Images of the given latents and classes.

        Parameters
        ----------
        latent : torch.Tensor, shape (b, latent_dim)
            Latents, of the weights' dtype (checked by :meth:`check_inputs`).
        labels : torch.Tensor of int64, shape (b,)
            Class indices in ``[0, num_classes)``.

        Returns
        -------
        torch.Tensor, shape (b, 1, 8, 8)
            Images in ``[-1, 1]``.
        """
        self.check_inputs(latent, labels)
        g = torch.exp(self.log_gain)
        h = F.leaky_relu(g[0] * self.fc1(latent) + self.bias1(labels), 0.2)
        h = F.leaky_relu(g[1] * self.fc2(h) + self.bias2(labels), 0.2)
        x = torch.tanh(g[2] * self.fc3(h) + self.bias3(labels))
        return x.view(-1, 1, 8, 8)


class DigitsCNN(nn.Module):
    """Small CNN for 8x8 digits in ``[-1, 1]``; the penultimate layer ``act`` gives ``p`` features.

    ``body``: conv 3x3 (1->32), ReLU, conv 3x3 (32->64), ReLU, max-pool 2,
    conv 3x3 (64->64), ReLU, max-pool 2, flatten (256); ``fc``: linear
    256 -> p; ``norm``: batch norm (a fixed affine map in eval mode; it keeps
    every feature alive: no ReLU unit is dead on the data); ``act``: ReLU (the
    features); ``dropout``; ``head``: linear p -> 10.

    Parameters
    ----------
    width : int
        Feature dimension ``p``.
    num_classes : int
        Number of classes of the head.
    dropout : float
        Dropout probability before the head (active in training mode only).
    """

    def __init__(self, width: int = 512, num_classes: int = 10, dropout: float = 0.3):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(1, 32, 3, padding=1), nn.ReLU(),
            nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
            nn.Flatten(),
        )
        self.fc = nn.Linear(256, width)
        self.norm = nn.BatchNorm1d(width)
        self.act = nn.ReLU()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(width, num_classes)
        self.width = width

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """Penultimate features.

        Parameters
        ----------
        images : torch.Tensor, shape (b, 1, 8, 8)
            Images in ``[-1, 1]`` (see :func:`digits_data`).

        Returns
        -------
        torch.Tensor, shape (b, p)
            The ReLU activations ``act`` (non-negative).
        """
        return self.act(self.norm(self.fc(self.body(images))))

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Class logits.

        Parameters
        ----------
        images : torch.Tensor, shape (b, 1, 8, 8)
            Images in ``[-1, 1]`` (see :func:`digits_data`).

        Returns
        -------
        torch.Tensor, shape (b, num_classes)
        """
        return self.head(self.dropout(self.features(images)))


# -------------------------------------------------------------------------- loading
def weights_metadata(name: str = "gan") -> dict[str, Any]:
    """Metadata of a shipped network: seed, epochs or steps, accuracies, timings, sha256.

    Parameters
    ----------
    name : {"gan", "cnn"}
        Which network: the digits GAN or the feature CNN.

    Returns
    -------
    dict
        The JSON written beside the weights by ``python -m rmtgan.gan.train_digits``
        (``digits_gan.json`` or ``digits_cnn.json`` in :data:`WEIGHTS_DIR`),
        parsed.

    Raises
    ------
    ValueError
        ``name`` is neither ``"gan"`` nor ``"cnn"``.
    FileNotFoundError
        The shipped files are missing.
    """
    file = _weights_file(name)
    return json.loads(file.with_suffix(".json").read_text(encoding="utf-8"))


def _weights_file(name: str) -> Path:
    files = {"gan": GAN_FILE, "cnn": CNN_FILE}
    if name not in files:
        raise ValueError(f"name must be 'gan' or 'cnn', got {name!r}")
    file = WEIGHTS_DIR / files[name]
    if not file.is_file() or not file.with_suffix(".json").is_file():
        raise FileNotFoundError(
            f"shipped weights {file} (or its .json) are missing: reinstall rmtgan or run "
            "`python -m rmtgan.gan.train_digits`"
        )
    return file


def _load_shipped(name: str, weights_dir: str | Path | None):
    if weights_dir is None:
        file = _weights_file(name)
    else:
        file = Path(weights_dir) / {"gan": GAN_FILE, "cnn": CNN_FILE}[name]
        if not file.is_file():
            raise FileNotFoundError(f"weights file {file} does not exist")
    meta_file = file.with_suffix(".json")
    if meta_file.is_file():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
        if meta.get("sha256") not in (None, digest):
            raise ValueError(f"{file} does not match the sha256 recorded in {meta_file.name}: "
                             "re-run `python -m rmtgan.gan.train_digits`")
        arch = meta.get("architecture", {})
    else:
        arch = {}
    state = torch.load(str(file), map_location="cpu", weights_only=True)
    return state, arch


def digits_generator(device: Any = "cpu", weights_dir: str | Path | None = None) -> DigitsGenerator:
    """The shipped conditional GAN for scikit-learn's digits.

    ``gen(latent, labels)`` with ``latent`` (b, 16) float and ``labels`` (b,)
    int64 in 0..9 returns images (b, 1, 8, 8) in ``[-1, 1]``; latents are
    standard normal.

    Parameters
    ----------
    device : str or torch.device
        Where the model lives (see :func:`rmtgan.gan.resolve_device`).
    weights_dir : path, optional
        Directory holding ``digits_gan.pt`` (default: the shipped weights);
        checked against the sha256 of a ``digits_gan.json`` beside it when
        there is one.

    Returns
    -------
    DigitsGenerator
        In eval mode, parameters frozen.
    """
    ensure_threads()
    dev = resolve_device(device)
    state, arch = _load_shipped("gan", weights_dir)
    gen = DigitsGenerator(**{k: arch[k] for k in ("latent_dim", "hidden", "num_classes") if k in arch})
    load_state_dict_strict(gen, state, "the digits GAN weights")
    return gen.to(dev).eval().requires_grad_(False)


def digits_cnn(device: Any = "cpu", weights_dir: str | Path | None = None) -> DigitsCNN:
    """The shipped digits CNN (classifier; ``.features`` gives the (b, 512) penultimate features).

    Parameters
    ----------
    device : str or torch.device
        Where the model lives (see :func:`rmtgan.gan.resolve_device`).
    weights_dir : path, optional
        Directory holding ``digits_cnn.pt`` (default: the shipped weights);
        checked against the sha256 of a ``digits_cnn.json`` beside it when
        there is one.

    Returns
    -------
    DigitsCNN
        In eval mode, parameters frozen.
    """
    ensure_threads()
    dev = resolve_device(device)
    state, arch = _load_shipped("cnn", weights_dir)
    cnn = DigitsCNN(**{k: arch[k] for k in ("width", "num_classes") if k in arch})
    load_state_dict_strict(cnn, state, "the digits CNN weights")
    return cnn.to(dev).eval().requires_grad_(False)


def digits_features(layer: str = DIGITS_FEATURE_LAYER, device: Any = "cpu",
                    weights_dir: str | Path | None = None) -> FeatureExtractor:
    """The shipped digits CNN as a representation network: images (b, 1, 8, 8) -> features (b, p).

    Parameters
    ----------
    layer : str
        Module name of the layer whose output is the feature (default ``"act"``,
        the 512 penultimate ReLU activations; e.g. ``"norm"`` for the same
        before the ReLU, ``"body"`` for the 256 flattened convolutional
        features).
    device : str or torch.device
        Where the model lives (see :func:`rmtgan.gan.resolve_device`).
    weights_dir : path, optional
        Directory holding ``digits_cnn.pt`` (default: the shipped weights).

    Returns
    -------
    rmtgan.gan.features.FeatureExtractor
        A module; the forward pass stops at ``layer``.
    """
    return FeatureExtractor(digits_cnn(device, weights_dir), layer=layer)
