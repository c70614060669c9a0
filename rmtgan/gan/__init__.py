"""GAN adapter: deep features of generated images -> class moments for the solver.

This subpackage imports torch; ``import rmtgan`` does not import it (import
``rmtgan.gan`` explicitly).  The chain of the paper (Seddik et al., ICML 2020)::

    latent z ~ N(0, I) --G--> images --phi--> features x in R^p
    per class: mean mu_a, covariance C_a  -->  MixtureModel  -->  solver

* generators: :func:`as_generator` (any module/callable ``(latent, labels) ->
  images``), :func:`load_biggan` (local weights, strict), :func:`random_biggan`
  (offline, any config), :func:`digits_generator` (shipped conditional GAN for
  scikit-learn's digits);
* representation networks: :class:`FeatureExtractor` (any module, layer by
  name), :func:`digits_features` (shipped CNN, p = 512),
  :func:`torchvision_features` (when torchvision is installed);
* :func:`feature_moments`: the streaming float64 pipeline, returning
  :class:`FeatureMoments` (``.to_model()``), and :func:`generate_features` for
  the empirical sample;
* diagnostics: :func:`generator_lipschitz`, :func:`features_lipschitz`,
  :func:`lipschitz_estimate`, :func:`concentration_check`;
* threads: :func:`set_threads`, :func:`threads` (see :mod:`rmtgan.gan._torch`).
"""

from rmtgan.gan._torch import available_cores, default_threads, resolve_device, set_threads, threads
from rmtgan.gan.digits import (
    DigitsCNN,
    DigitsGenerator,
    digits_cnn,
    digits_data,
    digits_features,
    digits_generator,
    to_pixels,
    weights_metadata,
)
from rmtgan.gan.features import FeatureExtractor, as_features, imagenet_preprocess, torchvision_features
from rmtgan.gan.generators import (
    BIGGAN_DIR_ENV,
    IMAGENET_CLASSES,
    BigGANGenerator,
    CallableGenerator,
    ConditionalGenerator,
    StateDictMismatchError,
    as_generator,
    biggan_config,
    converge_spectral_norm,
    load_biggan,
    random_biggan,
    save_biggan,
    truncated_normal,
)
from rmtgan.gan.lipschitz import (
    ConcentrationReport,
    LipschitzEstimate,
    concentration_check,
    features_lipschitz,
    generator_lipschitz,
    lipschitz_estimate,
)
from rmtgan.gan.moments import FeatureMoments, feature_moments, generate_features

__all__ = [
    # generators
    "ConditionalGenerator",
    "CallableGenerator",
    "BigGANGenerator",
    "as_generator",
    "load_biggan",
    "save_biggan",
    "random_biggan",
    "biggan_config",
    "converge_spectral_norm",
    "truncated_normal",
    "StateDictMismatchError",
    "IMAGENET_CLASSES",
    "BIGGAN_DIR_ENV",
    # digits
    "DigitsGenerator",
    "DigitsCNN",
    "digits_generator",
    "digits_cnn",
    "digits_features",
    "digits_data",
    "to_pixels",
    "weights_metadata",
    # features
    "FeatureExtractor",
    "as_features",
    "imagenet_preprocess",
    "torchvision_features",
    # pipeline
    "FeatureMoments",
    "feature_moments",
    "generate_features",
    # diagnostics
    "LipschitzEstimate",
    "lipschitz_estimate",
    "generator_lipschitz",
    "features_lipschitz",
    "ConcentrationReport",
    "concentration_check",
    # threads and devices
    "set_threads",
    "threads",
    "available_cores",
    "default_threads",
    "resolve_device",
]
