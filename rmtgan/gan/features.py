"""Representation networks: any module or callable, layer selection by module name.

A representation network maps images ``(b, C, H, W)`` to features ``(b, p)``.
:class:`FeatureExtractor` wraps a torch module (or a callable) and, when a layer
is named, captures that layer's output (or input) with a forward hook and stops
the forward pass there, so the layers after it cost nothing.  Feature maps are
flattened (or averaged over space) to rows of ``p`` features.

:func:`torchvision_features` builds the paper's networks (ResNet50, VGG16,
DenseNet201) from torchvision when it is installed, with the feature layer of
the paper (the input of the final classifier: p = 2048, 4096, 1920) and an
ImageNet preprocessing of generator images in ``[-1, 1]``.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable
from typing import Any

from rmtgan.gan._torch import import_torch

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = [
    "FeatureExtractor",
    "as_features",
    "imagenet_preprocess",
    "torchvision_features",
    "TORCHVISION_LAYERS",
]

#: Default feature layers of torchvision families: (module name, "input" or "output").
TORCHVISION_LAYERS: dict[str, tuple[str, str]] = {
    "resnet": ("fc", "input"),        # global-average-pooled features (2048 for resnet50)
    "resnext": ("fc", "input"),
    "wide_resnet": ("fc", "input"),
    "vgg": ("classifier.6", "input"),  # second 4096-wide fully connected layer, after ReLU
    "densenet": ("classifier", "input"),  # pooled features (1920 for densenet201)
}

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _Stop(Exception):
    """Raised from a hook to skip the rest of a forward pass once the features are captured.

    It carries the extractor that raised it: an extractor around another one lets the
    inner one's forward pass through, and only stops its own.
    """

    def __init__(self, owner):
        super().__init__()
        self.owner = owner


class FeatureExtractor(nn.Module):
    """Features of a network at a chosen layer: images (b, C, H, W) -> features (b, p).

    Parameters
    ----------
    network : torch.nn.Module or callable
        The representation network.  A callable that is not a module can only
        be used whole (``layer=None``).
    layer : str, optional
        Name of a submodule (as in ``network.named_modules()``, e.g.
        ``"layer4"`` or ``"classifier.6"``) whose output (or input, see
        ``capture``) is the feature.  ``None``: the network's output.  The module
        must run once per forward pass: one that runs several times (a ReLU shared
        inside a ResNet block, such as ``"layer4.2.relu"``) is refused on the first
        call, which runs the whole network to check.
    capture : {"output", "input"}
        Take the layer's output or the first positional input it receives.
    reduce : {"flatten", "mean"}
        How a feature map (b, c, h, w) becomes a row: flatten all of it
        (``p = c h w``) or average over the spatial axes (``p = c``).
    preprocess : callable, optional
        Applied to the images first (e.g. :func:`imagenet_preprocess`).
    stop_early : bool
        Abort the forward pass once the layer has fired (default True), from the
        second call on.

    Raises
    ------
    ValueError
        Unknown layer name (the message lists close matches), bad ``capture``
        or ``reduce``; at the first call, a layer that runs more than once.
    TypeError
        ``network`` is not callable, or a layer is named for a non-module.
    """

    def __init__(self, network: Any, layer: str | None = None, *, capture: str = "output",
                 reduce: str = "flatten", preprocess: Callable | None = None, stop_early: bool = True):
        super().__init__()
        if not callable(network):
            raise TypeError(f"network must be a torch module or a callable, got {type(network).__name__}")
        if capture not in ("output", "input"):
            raise ValueError(f"capture must be 'output' or 'input', got {capture!r}")
        if reduce not in ("flatten", "mean"):
            raise ValueError(f"reduce must be 'flatten' or 'mean', got {reduce!r}")
        if preprocess is not None and not callable(preprocess):
            raise TypeError(f"preprocess must be callable, got {type(preprocess).__name__}")
        if isinstance(network, nn.Module):
            self.network = network
        else:
            self._fn = network
        self.layer = layer
        self.capture = capture
        self.reduce = reduce
        self.preprocess = preprocess
        self.stop_early = stop_early
        self._checked = False  # the layer was seen to run exactly once per forward pass
        self._target = None
        if layer is not None:
            if not isinstance(network, nn.Module):
                raise TypeError("a layer can only be selected in a torch.nn.Module network")
            if not isinstance(layer, str):
                raise TypeError(f"layer must be a module name (str), got {type(layer).__name__}")
            modules = dict(network.named_modules())
            if layer not in modules or layer == "":
                close = difflib.get_close_matches(layer, [m for m in modules if m], n=5)
                hint = f"; close matches: {', '.join(close)}" if close else ""
                raise ValueError(f"network has no submodule named {layer!r}{hint} "
                                 f"(see network.named_modules())")
            self._target = modules[layer]

    @property
    def net(self) -> Any:
        """The wrapped network (module or callable)."""
        return self.network if hasattr(self, "network") else self._fn

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """Features of ``images``.

        Parameters
        ----------
        images : torch.Tensor, shape (b, C, H, W)
            A batch of images, as the network (after ``preprocess``) takes them.

        Returns
        -------
        torch.Tensor, shape (b, p)
            The layer's (or network's) output, flattened or averaged over space
            (``reduce``); dtype and device those of the network's output.

        Raises
        ------
        TypeError
            The layer returned something other than a tensor.
        ValueError
            The output has no batch axis of size ``b``; at the first call, the
            layer runs more than once per forward pass.
        RuntimeError
            The named layer did not run during the forward pass.
        """
        if self.preprocess is not None:
            images = self.preprocess(images)
        if self._target is None:
            out = self.net(images)
        else:
            out = self._run_to_layer(images)
        if not isinstance(out, torch.Tensor):
            raise TypeError(f"the feature layer returned {type(out).__name__}, expected a tensor")
        if out.ndim < 2 or out.shape[0] != images.shape[0]:
            raise ValueError(f"features must have a batch axis of size {images.shape[0]}, got shape "
                             f"{tuple(out.shape)}")
        if self.reduce == "mean" and out.ndim > 2:
            return out.mean(dim=tuple(range(2, out.ndim)))
        return out.flatten(1)

    def _run_to_layer(self, images):
        box: list = []
        stop = self.stop_early and self._checked

        def grab(value):
            if isinstance(value, (tuple, list)):
                value = value[0]
            box.append(value)
            if stop:
                raise _Stop(self)

        if self.capture == "output":
            handle = self._target.register_forward_hook(lambda m, args, out: grab(out))
        else:
            handle = self._target.register_forward_pre_hook(lambda m, args: grab(args[0]))
        try:
            self.net(images)
        except _Stop as signal:
            if signal.owner is not self:
                raise
        finally:
            handle.remove()
        if not box:
            raise RuntimeError(f"layer {self.layer!r} was not called during the forward pass")
        if len(box) > 1:
            raise ValueError(f"layer {self.layer!r} runs {len(box)} times in one forward pass (a module "
                             "used more than once): which call is the feature is ambiguous; name a module "
                             "that runs once, e.g. the enclosing block")
        self._checked = True
        return box[0]

    def extra_repr(self) -> str:
        return f"layer={self.layer!r}, capture={self.capture!r}, reduce={self.reduce!r}"


def as_features(features: Any, layer: str | None = None, **kwargs: Any) -> FeatureExtractor | None:
    """Turn a module/callable (optionally with a layer name) into a :class:`FeatureExtractor`.

    ``None`` stays ``None`` (meaning: the images themselves, flattened, are the
    features).  A :class:`FeatureExtractor` is returned as is when no layer and
    no keyword arguments are given (otherwise it is wrapped in a new one).

    Parameters
    ----------
    features : torch.nn.Module, callable or None
        The representation network, ``images (b, C, H, W) -> features``.
    layer : str, optional
        Feature layer (a module name of ``features``).
    **kwargs
        Keyword arguments of :class:`FeatureExtractor` (``capture``,
        ``reduce``, ``preprocess``, ``stop_early``).

    Returns
    -------
    FeatureExtractor or None
        ``None`` exactly when ``features`` is ``None``.

    Raises
    ------
    ValueError
        ``layer`` given without a network, or as :class:`FeatureExtractor`
        raises.
    TypeError
        As :class:`FeatureExtractor` raises.
    """
    if features is None:
        if layer is not None:
            raise ValueError("layer was given but there is no representation network (features=None)")
        return None
    if isinstance(features, FeatureExtractor) and layer is None and not kwargs:
        return features
    return FeatureExtractor(features, layer=layer, **kwargs)


def imagenet_preprocess(size: int = 224, value_range: tuple[float, float] = (-1.0, 1.0)) -> Callable:
    """Preprocessing of generator images for ImageNet networks.

    Maps images from ``value_range`` to ``[0, 1]``, resizes them to
    ``size x size`` (bilinear, antialiased when shrinking) and normalises
    with the ImageNet mean and standard deviation.  Every step is Lipschitz.

    Parameters
    ----------
    size : int
        Side of the output images in pixels (``>= 1``; 224 for the paper's
        networks).
    value_range : (float, float)
        ``(low, high)`` range of the input images (``[-1, 1]`` for generator
        outputs); ``high > low``.

    Returns
    -------
    callable
        ``images (b, 3, H, W) -> (b, 3, size, size)`` (float tensors; a
        ``ValueError`` for images that are not RGB batches).

    Raises
    ------
    ValueError
        ``value_range`` is not increasing or ``size`` is not a positive integer.
    """
    lo, hi = (float(v) for v in value_range)
    if not hi > lo:
        raise ValueError(f"value_range must be increasing, got {value_range!r}")
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise ValueError(f"size must be a positive integer, got {size!r}")

    def preprocess(images):
        if images.ndim != 4 or images.shape[1] != 3:
            raise ValueError(f"ImageNet networks take RGB images (b, 3, H, W), got {tuple(images.shape)}")
        x = (images - lo) / (hi - lo)
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=x.shape[-1] > size)
        mean = torch.tensor(IMAGENET_MEAN, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        std = torch.tensor(IMAGENET_STD, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x - mean) / std

    return preprocess


def torchvision_features(name: str = "resnet50", *, weights: Any = None,
                         weights_path: str | os.PathLike | None = None, layer: str | None = None,
                         capture: str | None = None, size: int = 224) -> FeatureExtractor:
    """A torchvision ImageNet network as a representation network (needs torchvision).

    Parameters
    ----------
    name : str
        A ``torchvision.models`` builder, e.g. ``"resnet50"``, ``"vgg16"``,
        ``"densenet201"`` (the paper's three).
    weights : optional
        Passed to the builder (``None``: random initialisation, offline).
        Note that torchvision downloads named weights it does not find in its
        cache (``TORCH_HOME``); prefer ``weights_path`` offline.
    weights_path : path, optional
        A local state-dict file, loaded strictly.
    layer : str, optional
        Feature layer; by default the input of the final classifier
        (:data:`TORCHVISION_LAYERS`): p = 2048 (ResNet50), 4096 (VGG16),
        1920 (DenseNet201).
    capture : {"output", "input"}, optional
        Default: ``"input"`` for the default layer, ``"output"`` otherwise.
    size : int
        Input resolution after :func:`imagenet_preprocess`.

    Returns
    -------
    FeatureExtractor
        In eval mode, parameters frozen.

    Raises
    ------
    ImportError
        torchvision is not installed.
    ValueError
        ``torchvision.models`` has no builder ``name``, or there is no default
        layer for it and ``layer`` is not given.
    """
    try:
        import torchvision
    except ImportError as exc:
        raise ImportError("torchvision_features needs torchvision (pip install torchvision matching your "
                          "torch); any other torch module works through FeatureExtractor") from exc
    from rmtgan.gan.generators import load_state_dict_strict

    builder = getattr(torchvision.models, name, None)
    if builder is None or not callable(builder):
        raise ValueError(f"torchvision.models has no model {name!r}")
    model = builder(weights=weights)
    if weights_path is not None:
        state = torch.load(os.fspath(weights_path), map_location="cpu", weights_only=True)
        load_state_dict_strict(model, state, repr(os.fspath(weights_path)))
    if layer is None:
        families = sorted(TORCHVISION_LAYERS, key=len, reverse=True)
        family = next((f for f in families if name.startswith(f)), None)
        if family is None:
            raise ValueError(f"no default feature layer for {name!r}: pass layer=")
        layer, default_capture = TORCHVISION_LAYERS[family]
        capture = capture or default_capture
    model.eval().requires_grad_(False)
    return FeatureExtractor(model, layer=layer, capture=capture or "output",
                            preprocess=imagenet_preprocess(size)).eval()
