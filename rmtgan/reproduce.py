r"""``rmtgan reproduce``: the paper's experiment end to end.

Seddik et al. (ICML 2020) claim that the Gram matrix ``G = X^T X / p`` of deep
features of GAN images behaves as for the Gaussian mixture with the same class
means and covariances.  This pipeline puts three things side by side:

1. **GAN features** -- a conditional generator (the shipped digits GAN by default,
   BigGAN with local weights, or a randomly initialised BigGAN) followed by a
   representation network; ``n`` samples (``n / k`` per class) form ``G``;
2. **Gaussian surrogate** -- ``n`` samples of the Gaussian mixture with the class
   means and covariances estimated from many more generated samples;
3. **Deterministic equivalent** -- the predicted limiting spectrum, spikes and
   eigenvector alignments of that mixture (:func:`rmtgan.gram_spectrum`,
   :func:`rmtgan.spikes.gram_spikes`).

It then checks classifier universality (spectral clustering and a least-squares
SVM on GAN vs surrogate features, over repeated draws) and runs a universality test:
the Kolmogorov--Smirnov distance of the GAN spectrum to the prediction against its
parametric-bootstrap distribution under the Gaussian surrogate.

Outputs (``--out DIR``): ``metrics.json``, ``report.md`` and PNG figures.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import scipy.linalg
import scipy.optimize
from scipy.cluster.vq import kmeans2

__all__ = ["ReproduceConfig", "reproduce", "add_arguments", "run_from_args",
           "spectral_clustering_accuracy", "ls_svm_accuracy"]

#: acceptance thresholds stated by the project (checked, never tuned)
KS_ABS = 0.05
SPIKE_REL = 0.05
ALIGN_ABS = 0.05


@dataclass
class ReproduceConfig:
    """Settings of one reproduction (all have defaults that run offline)."""

    generator: str = "digits"          # 'digits', 'biggan', 'random-biggan'
    weights: str | None = None         # BigGAN weights folder (config.json + pytorch_model.bin)
    classes: tuple = (0, 1, 7)          # class ids (digits) or ImageNet indices / names
    features: object = None            # 'module:callable' or a torch module / callable
    layer: str | None = None           # module name whose output is the feature vector
    project: int | None = 128          # seeded random projection of the features to this dimension
    n: int = 1500                      # samples in the Gram matrix (n / k per class)
    n_moments: int = 10000             # generated samples per class for the moments
    draws: int = 10                    # repeated draws for the classifier intervals
    bootstrap: int = 60                # parametric-bootstrap draws for the p-value
    seed: int = 0
    batch_size: int = 256
    device: str = "cpu"
    truncation: float = 0.4
    ridge: float = 1.0                 # LS-SVM regularisation (in units of tr(K)/n)
    progress: bool = True
    notes: list = field(default_factory=list)


# --------------------------------------------------------------------------- networks
def _load_callable(spec):
    """``'module:callable'`` (called if it is a factory) or an object used as it is."""
    if not isinstance(spec, str):
        return spec
    if ":" not in spec:
        raise ValueError(f"--features must be 'module:callable', got {spec!r}")
    mod, name = spec.split(":", 1)
    try:
        obj = importlib.import_module(mod)
    except ImportError as exc:
        raise ValueError(f"--features {spec!r}: cannot import {mod!r} ({exc})") from None
    for part in name.split("."):
        if not hasattr(obj, part):
            raise ValueError(f"--features {spec!r}: {mod!r} has no attribute {name!r}")
        obj = getattr(obj, part)
    if callable(obj) and not hasattr(obj, "forward"):
        obj = obj()  # a factory
    if not callable(obj):
        raise ValueError(f"--features {spec!r} gave a {type(obj).__name__}, not a torch module or a "
                         "callable (a network, or a factory returning one)")
    return obj


def random_projection(features, p_in: int, p_out: int, seed: int = 0):
    """``features`` followed by a fixed Gaussian projection ``R^{p_in} -> R^{p_out}``.

    A linear map is Lipschitz, so projected deep features stay concentrated; the
    projection keeps the general (non-commuting) solver within the run-time budget.
    """
    from rmtgan.gan._torch import import_torch
    from rmtgan.gan.features import as_features

    torch = import_torch()
    base = as_features(features)
    gen = torch.Generator().manual_seed(seed)
    W = torch.randn(p_in, p_out, generator=gen) / np.sqrt(p_in)

    class _Projected(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.base = base
            self.register_buffer("W", W)

        def forward(self, x):
            return self.base(x).flatten(1) @ self.W.to(dtype=torch.float32)

    return _Projected().eval()


def random_conv_features(in_channels: int = 3, seed: int = 0):
    """A seeded random convolutional network (offline stand-in for ImageNet features).

    Two stride-2 ReLU convolutions and an adaptive pooling to ``4 x 4``: ``p = 512``.
    Random networks with ReLU are Lipschitz, so the paper's argument applies.
    """
    from rmtgan.gan._torch import import_torch

    torch = import_torch()
    nn = torch.nn
    gen = torch.Generator().manual_seed(seed)
    net = nn.Sequential(
        nn.Conv2d(in_channels, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(4), nn.Flatten(),
    )
    with torch.no_grad():
        for prm in net.parameters():
            prm.copy_(torch.randn(prm.shape, generator=gen) * (0.5 if prm.ndim > 1 else 0.1))
    return net.eval()


def _networks(cfg: ReproduceConfig):
    from rmtgan import gan

    if cfg.generator == "digits":
        generator = gan.digits_generator(device=cfg.device)
        features = (gan.digits_features(device=cfg.device) if cfg.features is None
                    else _load_callable(cfg.features))
    elif cfg.generator == "biggan":
        generator = gan.load_biggan(cfg.weights, truncation=cfg.truncation, device=cfg.device)
        if cfg.features is None:
            raise ValueError("--generator biggan needs --features module:callable (e.g. a torchvision model)")
        features = _load_callable(cfg.features)
    elif cfg.generator == "random-biggan":
        generator = gan.random_biggan(seed=cfg.seed, truncation=cfg.truncation, device=cfg.device)
        features = random_conv_features(3, cfg.seed) if cfg.features is None else _load_callable(cfg.features)
    else:
        raise ValueError(f"--generator must be 'digits', 'biggan' or 'random-biggan', got {cfg.generator!r}")
    return generator, features


# --------------------------------------------------------------------------- classifiers
def _best_permutation_accuracy(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    conf = np.zeros((k, k))
    np.add.at(conf, (truth, pred), 1)
    rows, cols = scipy.optimize.linear_sum_assignment(-conf)
    return float(conf[rows, cols].sum() / truth.size)


def spectral_clustering_accuracy(data: np.ndarray, labels: np.ndarray, k: int, seed: int = 0) -> float:
    """k-means on the ``k`` leading eigenvectors of ``G``; accuracy under the best matching."""
    from rmtgan.empirical import leading_eigenpairs

    _, vecs = leading_eigenpairs(data, k)
    emb = vecs * np.sqrt(data.shape[0])
    best_dist, best = np.inf, 0.0
    for rep in range(5):  # k-means restarts, the lowest distortion wins
        cent, lab = kmeans2(emb, k, minit="++", seed=seed * 31 + rep)
        dist = float(np.sum((emb - cent[lab]) ** 2))
        if dist < best_dist:
            best_dist, best = dist, _best_permutation_accuracy(lab, labels, k)
    return best


def ls_svm_accuracy(train, y_train, test, y_test, k: int, ridge: float = 1.0) -> float:
    r"""One-vs-rest least-squares SVM with the linear kernel ``K = X^T X / p``.

    ``alpha = (K + ridge * tr(K)/n * I)^{-1} (Y - mean)``, scores ``K_test alpha``.
    """
    p = train.shape[1]
    K = train @ train.T / p
    n = K.shape[0]
    Y = -np.ones((n, k))
    Y[np.arange(n), y_train] = 1.0
    b = Y.mean(axis=0)
    alpha = scipy.linalg.solve(K + ridge * np.trace(K) / n * np.eye(n), Y - b, assume_a="pos")
    scores = test @ train.T / p @ alpha + b
    return float(np.mean(np.argmax(scores, axis=1) == y_test))


def _interval(values) -> dict:
    v = np.asarray(values, float)
    half = 1.96 * v.std(ddof=1) / math.sqrt(v.size) if v.size > 1 else float("nan")
    return {"mean": float(v.mean()), "low": float(v.mean() - half), "high": float(v.mean() + half),
            "values": [float(a) for a in v]}


# --------------------------------------------------------------------------- pipeline
def _bar(total, desc, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not enabled, leave=False)


def reproduce(cfg: ReproduceConfig, out: str | Path = "results") -> dict:
    """Run the experiment, write figures, ``metrics.json`` and ``report.md`` into ``out``."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from rmtgan import gan, gram_spectrum
    from rmtgan.comparison import compare
    from rmtgan.plotting import plot_alignments, plot_eigenvectors, plot_spectrum
    from rmtgan.spikes import gram_spikes

    out = Path(out)
    timings: dict[str, float] = {}
    k = len(cfg.classes)
    if k < 2:
        raise ValueError("need at least 2 classes")
    if cfg.n % k:
        raise ValueError(f"n = {cfg.n} must be a multiple of the number of classes k = {k}")
    per_class = cfg.n // k
    steps = _bar(7, "rmtgan reproduce", cfg.progress)

    t0 = time.perf_counter()
    try:
        # what the options name (networks, weights, classes, layer, device): their errors are
        # the user's to fix, reported as OptionError; anything later is a failure of the run
        generator, features = _networks(cfg)
        layer = cfg.layer  # the configuration itself is left as given (it is recorded)
        probe = gan.generate_features(generator, features, [cfg.classes[0]], 2, seed=cfg.seed,
                                      device=cfg.device, layer=layer)[0]
        if cfg.project is not None:
            if cfg.project >= probe.shape[1]:
                raise ValueError(f"--project {cfg.project} is not below the feature dimension "
                                 f"{probe.shape[1]} (0: no projection)")
            features = random_projection(gan.as_features(features, layer), probe.shape[1],
                                         cfg.project, seed=cfg.seed)
            layer = None  # the projected features include the layer
    except (ValueError, TypeError, FileNotFoundError, ImportError) as exc:
        raise OptionError(str(exc)) from exc
    out.mkdir(parents=True, exist_ok=True)  # once the options are known to work
    moments = gan.feature_moments(generator, features, list(cfg.classes), cfg.n_moments,
                                  batch_size=cfg.batch_size, seed=cfg.seed, device=cfg.device,
                                  layer=layer, progress=cfg.progress)
    gan_data, gan_labels = gan.generate_features(generator, features, list(cfg.classes),
                                                 per_class * cfg.draws, batch_size=cfg.batch_size,
                                                 seed=cfg.seed + 1, device=cfg.device, layer=layer,
                                                 progress=cfg.progress)
    timings["generate_and_moments"] = time.perf_counter() - t0
    steps.update()

    model = moments.to_model(sizes=[per_class] * k)
    classes = list(model.class_labels)
    draws_gan = _split_draws(gan_data, gan_labels, classes, per_class, cfg.draws)

    t0 = time.perf_counter()
    spectrum = gram_spectrum(model, progress=cfg.progress)
    timings["spectrum"] = time.perf_counter() - t0
    steps.update()
    t0 = time.perf_counter()
    spikes = gram_spikes(model, spectrum=spectrum)
    timings["spikes"] = time.perf_counter() - t0
    steps.update()

    t0 = time.perf_counter()
    X0, y0 = draws_gan[0]
    comp = compare(model, X0, np.asarray(classes)[y0], surrogate_seed=cfg.seed + 7,
                   spectrum=spectrum, spikes=spikes, density_points=120)
    timings["compare"] = time.perf_counter() - t0
    steps.update()

    # classifier universality over repeated draws
    t0 = time.perf_counter()
    acc = {"spectral_clustering": {"gan": [], "gaussian": []}, "ls_svm": {"gan": [], "gaussian": []}}
    rng = np.random.default_rng(cfg.seed + 11)
    for r in range(cfg.draws):
        Xg, yg = draws_gan[r]
        Xs, ys = model.sample(rng=rng)
        for name, (X, y) in (("gan", (Xg, yg)), ("gaussian", (Xs, ys))):
            acc["spectral_clustering"][name].append(spectral_clustering_accuracy(X, y, k, seed=cfg.seed + r))
            half = _halves(y, rng)
            acc["ls_svm"][name].append(ls_svm_accuracy(X[half], y[half], X[~half], y[~half], k, cfg.ridge))
    classifiers = {}
    for method, res in acc.items():
        g, s = _interval(res["gan"]), _interval(res["gaussian"])
        classifiers[method] = {"gan": g, "gaussian": s,
                               "agree": bool(g["low"] <= s["high"] and s["low"] <= g["high"])}
    timings["classifiers"] = time.perf_counter() - t0
    steps.update()

    # universality test: KS of the GAN spectrum against its bootstrap law under the surrogate
    t0 = time.perf_counter()
    ks_boot = []
    boot_rng = np.random.default_rng(cfg.seed + 13)
    for _ in range(cfg.bootstrap):
        Xb, yb = model.sample(rng=boot_rng)
        cb = compare(model, Xb, np.asarray(classes)[yb], surrogate=False, spectrum=spectrum, spikes=spikes,
                     n_vectors=1, density_points=0)
        ks_boot.append(cb.features.ks)
    ks_boot = np.asarray(ks_boot)
    ks_gan = float(comp.features.ks)
    pvalue = float((1 + np.count_nonzero(ks_boot >= ks_gan)) / (1 + ks_boot.size))
    timings["bootstrap"] = time.perf_counter() - t0
    steps.update()

    # figures
    figs = {}
    xmax = _plot_range(spectrum, comp)
    zoom = {"xmax": xmax, "bins": 150}
    for name, fig in (("spectrum_gan.png", plot_spectrum(comp, dataset="features", **zoom)),
                      ("spectrum_gaussian.png", plot_spectrum(comp, dataset="surrogate", **zoom)),
                      ("eigenvectors.png", plot_eigenvectors(comp)),
                      ("alignments.png", plot_alignments(comp))):
        fig.savefig(out / name, dpi=110)
        plt.close(fig)
        figs[name] = name
    fig, ax = plt.subplots(figsize=(6, 3.6))
    ax.hist(ks_boot, bins=20, color="0.7", label="KS under the Gaussian surrogate (bootstrap)")
    ax.axvline(ks_gan, color="C3", lw=2, label=f"KS of GAN features = {ks_gan:.4f}")
    ax.set_xlabel("Kolmogorov-Smirnov distance to the prediction")
    ax.legend(fontsize=8)
    ax.set_title(f"universality test: p-value {pvalue:.3f}")
    fig.tight_layout()
    fig.savefig(out / "universality.png", dpi=110)
    plt.close(fig)
    figs["universality.png"] = "universality.png"
    steps.update()
    steps.close()

    fm, sm = comp.features, comp.surrogate
    metrics = {
        "ks_gan": ks_gan,
        "ks_gaussian": float(sm.ks),
        "wasserstein1_gan": float(fm.wasserstein),
        "wasserstein1_gaussian": float(sm.wasserstein),
        "spikes": {"predicted": comp.spike_values.tolist(), "gan": fm.spike_values.tolist(),
                   "gaussian": sm.spike_values.tolist(),
                   "relative_error_gan": fm.spike_relative_errors.tolist(),
                   "relative_error_gaussian": sm.spike_relative_errors.tolist()},
        "alignments": {"predicted": comp.alignments.tolist(), "gan": fm.alignments.tolist(),
                       "gaussian": sm.alignments.tolist(),
                       "abs_error_gan": fm.alignment_errors.tolist(),
                       "abs_error_gaussian": sm.alignment_errors.tolist()},
        "support": [list(map(float, iv)) for iv in spectrum.support],
        "atom": float(spectrum.atom),
        "classifiers": classifiers,
        "universality_pvalue": pvalue,
        "ks_bootstrap": {"mean": float(ks_boot.mean()), "q95": float(np.quantile(ks_boot, 0.95)),
                         "draws": int(ks_boot.size)},
        "prediction": {"spectrum_success": bool(spectrum.success), "spectrum_message": spectrum.message,
                       "method": spectrum.method, "compare_success": bool(comp.success),
                       "dense_note": getattr(spectrum, "_dense_note", ""),
                       "evaluations": int(spectrum.n_evaluations),
                       "compare_message": comp.message},
        "config": {key: _config_value(v) for key, v in asdict(cfg).items() if key != "notes"},
        "seed": cfg.seed,
        "p": int(model.p),
        "k": k,
        "class_labels": [c.item() if isinstance(c, np.generic) else c for c in classes],
        "timings_seconds": timings,
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
    }
    metrics["acceptance"] = _acceptance(metrics)
    metrics = _clean(metrics)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2))
    (out / "report.md").write_text(_report(metrics, figs))
    return metrics


def _plot_range(spectrum, comp) -> float | None:
    """Zoom on the bulk when the spikes lie far beyond it (they are then listed in a note)."""
    if not spectrum.support:
        return None
    right = spectrum.support[-1][1]
    top = max([right] + [float(v) for v in comp.spike_values])
    return 1.3 * right if top > 3 * right else None


def _split_draws(data, labels, classes, per_class, draws):
    """Split a labelled sample into ``draws`` data sets of ``per_class`` rows per class."""
    cls = np.asarray(classes)
    idx = [np.flatnonzero(labels == c) for c in cls]
    out = []
    for r in range(draws):
        rows = np.concatenate([ix[r * per_class:(r + 1) * per_class] for ix in idx])
        y = np.repeat(np.arange(len(cls)), per_class)
        out.append((np.ascontiguousarray(data[rows], dtype=np.float64), y))
    return out


def _halves(y, rng):
    mask = np.zeros(y.size, bool)
    for c in np.unique(y):
        ix = np.flatnonzero(y == c)
        mask[rng.permutation(ix)[: ix.size // 2]] = True
    return mask


def _acceptance(m: dict) -> dict:
    ks_ok = m["ks_gan"] <= max(2 * m["ks_gaussian"], KS_ABS)
    rel = np.abs(np.asarray(m["spikes"]["relative_error_gan"], float))
    spike_ok = bool(rel.size == 0 or np.all(rel <= SPIKE_REL))
    ali = np.asarray(m["alignments"]["abs_error_gan"], float)
    align_ok = bool(ali.size == 0 or np.all(ali <= ALIGN_ABS))
    cls_ok = all(v["agree"] for v in m["classifiers"].values())
    return {"ks": bool(ks_ok), "spikes": spike_ok, "alignments": align_ok, "classifiers": bool(cls_ok),
            "all": bool(ks_ok and spike_ok and align_ok and cls_ok),
            "thresholds": {"ks": f"ks_gan <= max(2 ks_gaussian, {KS_ABS})",
                           "spikes": f"abs(relative error) <= {SPIKE_REL}",
                           "alignments": f"absolute error <= {ALIGN_ABS}",
                           "classifiers": "95% intervals of GAN and surrogate accuracies overlap"}}


def _config_value(v):
    if isinstance(v, tuple):
        return list(v)
    return v if v is None or isinstance(v, str | int | float | bool) else repr(v)


def _clean(obj):
    """JSON-safe copy: NaN/inf become None, numpy scalars become Python numbers."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fmt(v, nd=4):
    return "—" if v is None else f"{v:.{nd}f}"


def summary_table(m: dict) -> str:
    """A plain-text table of the main numbers (printed by the command line)."""
    lines = [f"{'quantity':<34}{'prediction':>12}{'GAN':>12}{'Gaussian':>12}"]
    lines.append(f"{'KS distance (bulk)':<34}{'':>12}{m['ks_gan']:>12.4f}{m['ks_gaussian']:>12.4f}")
    lines.append(f"{'Wasserstein-1 (bulk)':<34}{'':>12}{m['wasserstein1_gan']:>12.4f}"
                 f"{m['wasserstein1_gaussian']:>12.4f}")
    sp = m["spikes"]
    for i, pr in enumerate(sp["predicted"]):
        lines.append(f"{f'spike {i + 1}':<34}{pr:>12.4f}{sp['gan'][i]:>12.4f}{sp['gaussian'][i]:>12.4f}")
    al = m["alignments"]
    for i, row in enumerate(al["predicted"]):
        for a, v in enumerate(row):
            name = f"alignment spike {i + 1}, class {m['class_labels'][a]}"
            lines.append(f"{name:<34}{v:>12.4f}"
                         f"{al['gan'][i][a]:>12.4f}{al['gaussian'][i][a]:>12.4f}")
    for meth, res in m["classifiers"].items():
        lines.append(f"{'accuracy ' + meth:<34}{'':>12}{res['gan']['mean']:>12.4f}"
                     f"{res['gaussian']['mean']:>12.4f}")
    lines.append(f"{'universality p-value':<34}{m['universality_pvalue']:>12.3f}")
    acc = m["acceptance"]
    lines.append("acceptance: " + ", ".join(f"{k}={'ok' if acc[k] else 'MISSED'}"
                                            for k in ("ks", "spikes", "alignments", "classifiers")))
    return "\n".join(lines)


def _report(m: dict, figs: dict) -> str:
    cfg = m["config"]
    acc = m["acceptance"]
    sp, al = m["spikes"], m["alignments"]
    rows = "\n".join(
        f"| spike {i + 1} | {_fmt(p)} | {_fmt(g)} ({_fmt(100 * eg, 2)} %) | "
        f"{_fmt(s)} ({_fmt(100 * es, 2)} %) |"
        for i, (p, g, s, eg, es) in enumerate(zip(sp["predicted"], sp["gan"], sp["gaussian"],
                                                  sp["relative_error_gan"], sp["relative_error_gaussian"],
                                                  strict=True)))
    arows = "\n".join(
        f"| spike {i + 1}, class {m['class_labels'][a]} | {_fmt(al['predicted'][i][a])} | "
        f"{_fmt(al['gan'][i][a])} "
        f"| {_fmt(al['gaussian'][i][a])} |"
        for i in range(len(al["predicted"])) for a in range(len(al["predicted"][i])))
    crow = "\n".join(
        f"| {meth} | {_fmt(r['gan']['mean'])} [{_fmt(r['gan']['low'])}, {_fmt(r['gan']['high'])}] | "
        f"{_fmt(r['gaussian']['mean'])} [{_fmt(r['gaussian']['low'])}, {_fmt(r['gaussian']['high'])}] | "
        f"{'yes' if r['agree'] else 'no'} |" for meth, r in m["classifiers"].items())
    ks_cell = f"{'ok' if acc['ks'] else 'missed'} ({_fmt(m['ks_gan'])} vs {_fmt(m['ks_gaussian'])})"
    verdict = ("All acceptance checks hold on this run." if acc["all"] else
               "Not every acceptance check holds on this run (see the table); the experiment was not tuned "
               "to pass.")
    return f"""# rmtgan reproduction: GAN features vs Gaussian mixture vs deterministic equivalent

Generator **{cfg['generator']}**, classes {m['class_labels']}, features p = {m['p']},
n = {cfg['n']} samples in the Gram matrix ({cfg['n'] // m['k']} per class), moments from
{cfg['n_moments']} generated samples per class, seed {m['seed']}.
Prediction path: {m['prediction']['method']} (spectrum converged: {m['prediction']['spectrum_success']}).

{verdict}

| check | threshold | result |
|---|---|---|
| bulk KS | {acc['thresholds']['ks']} | {ks_cell} |
| spikes | {acc['thresholds']['spikes']} | {'ok' if acc['spikes'] else 'missed'} |
| alignments | {acc['thresholds']['alignments']} | {'ok' if acc['alignments'] else 'missed'} |
| classifiers | {acc['thresholds']['classifiers']} | {'ok' if acc['classifiers'] else 'missed'} |

## Spectrum

The bulk of the Gram spectrum (atom at 0 and spikes removed) against its predicted law
(the limiting density on each support interval, holding the interval's exact eigenvalue
count at this n, less the eigenvalues the spikes take): Kolmogorov-Smirnov distance
{_fmt(m['ks_gan'])} for the GAN features and {_fmt(m['ks_gaussian'])} for a Gaussian-surrogate draw;
Wasserstein-1 {_fmt(m['wasserstein1_gan'])} and {_fmt(m['wasserstein1_gaussian'])}. Predicted support:
{', '.join(f'[{a:.4g}, {b:.4g}]' for a, b in m['support'])}; atom at 0: {m['atom']:.4f}.

![GAN spectrum](spectrum_gan.png)
![Gaussian spectrum](spectrum_gaussian.png)

## Spikes (isolated eigenvalues)

| | prediction | GAN (rel. error) | Gaussian (rel. error) |
|---|---|---|---|
{rows}

## Leading eigenvectors: class alignments (j_a^T u)^2 / n_a

Per spike below; within a cluster of (near-)degenerate spikes the eigenvectors mix at
finite n, so the acceptance check compares the cluster means.

| | prediction | GAN | Gaussian |
|---|---|---|---|
{arows}

![eigenvectors](eigenvectors.png)
![alignments](alignments.png)

## Classifiers (mean and 95 % interval over {cfg['draws']} draws)

| method | GAN features | Gaussian surrogate | intervals overlap |
|---|---|---|---|
{crow}

## Universality test

KS of the GAN spectrum: {_fmt(m['ks_gan'])}; under the Gaussian surrogate (parametric
bootstrap, {m['ks_bootstrap']['draws']} draws) the KS has mean {_fmt(m['ks_bootstrap']['mean'])}
and 95 % quantile {_fmt(m['ks_bootstrap']['q95'])}. p-value: **{m['universality_pvalue']:.3f}**.

![universality](universality.png)

## Timings (seconds)

{', '.join(f'{k}: {v:.1f}' for k, v in m['timings_seconds'].items())}
"""


# --------------------------------------------------------------------------- command line
def add_arguments(ap: argparse.ArgumentParser) -> None:
    d = ReproduceConfig()
    ap.add_argument("--out", default="results", help="output folder (default: results)")
    ap.add_argument("--generator", default=d.generator, choices=["digits", "biggan", "random-biggan"])
    ap.add_argument("--weights", default=None, help="BigGAN weights folder (or RMTGAN_BIGGAN_DIR)")
    ap.add_argument("--classes", default=None,
                    help="comma-separated class ids (digits: 0-9; BigGAN: ImageNet indices, "
                         "e.g. 947,963,933); default 0,1,7 (digits) or 947,963,933")
    ap.add_argument("--features", default=None, help="representation network as module:callable")
    ap.add_argument("--layer", default=None, help="module name whose output is the feature vector")
    ap.add_argument("--n", type=int, default=d.n, help="samples in the Gram matrix (default 1500)")
    ap.add_argument("--project", type=int, default=d.project,
                    help="random projection of the features to this dimension (0: none; default 128)")
    ap.add_argument("--n-moments", type=int, default=d.n_moments,
                    help="generated samples per class for the moments")
    ap.add_argument("--draws", type=int, default=d.draws, help="repeated draws for classifier intervals")
    ap.add_argument("--bootstrap", type=int, default=d.bootstrap, help="bootstrap draws for the p-value")
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--batch-size", type=int, default=d.batch_size)
    ap.add_argument("--device", default=d.device, help="torch device: cpu or cuda")
    ap.add_argument("--truncation", type=float, default=d.truncation)
    ap.add_argument("--no-progress", action="store_true", help="hide progress bars")


def config_from_args(args: argparse.Namespace, fail=None) -> ReproduceConfig:
    """The configuration of ``rmtgan reproduce``; ``fail(message)`` reports a bad option.

    Everything that can be checked before the networks load is checked here
    (``fail`` defaults to raising ``ValueError``; the command line passes its
    parser's ``error``, which prints one line and exits with status 2).
    """
    def _fail(msg: str):
        raise ValueError(msg)

    fail = fail or _fail
    if args.classes is None:
        classes = (0, 1, 7) if args.generator == "digits" else (947, 963, 933)
    else:
        parts = [c.strip() for c in args.classes.split(",")]
        if any(not c for c in parts):
            fail(f"--classes {args.classes!r}: an empty class id")
        if any(c.startswith("-") for c in parts):
            fail(f"--classes {args.classes!r}: class ids are non-negative")
        # an id is decimal digits (ASCII: str.isdigit also takes "²"); anything else is a name
        classes = tuple(int(c) if c.isascii() and c.isdigit() else c for c in parts)
        if args.generator == "digits" and not all(isinstance(c, int) and c <= 9 for c in classes):
            fail(f"--classes {args.classes!r}: the digits generator has classes 0..9")
        if len(set(classes)) != len(classes):
            fail(f"--classes {args.classes!r}: a class is repeated")
    if len(classes) < 2:
        fail("--classes: at least 2 classes are needed")
    for name in ("n", "n_moments", "draws", "bootstrap", "batch_size"):
        if getattr(args, name) <= 0:
            fail(f"--{name.replace('_', '-')} must be positive")
    if args.draws < 2:
        fail("--draws must be at least 2 (intervals need repeated draws)")
    if args.n_moments < 2:
        fail("--n-moments must be at least 2 (a covariance needs 2 samples)")
    if args.n % len(classes):
        fail(f"--n {args.n} must be a multiple of the number of classes ({len(classes)})")
    if args.project < 0:
        fail(f"--project must be >= 0 (0: no projection), got {args.project}")
    if args.seed < 0:
        fail(f"--seed must be >= 0, got {args.seed}")
    if not 0.0 < args.truncation <= 1.0:
        fail(f"--truncation must lie in (0, 1], got {args.truncation}")
    if args.features is not None:
        mod, _, attr = args.features.partition(":")
        if not mod or not attr:
            fail(f"--features {args.features!r}: expected module:callable")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        fail(f"--out {args.out!r} exists and is not a folder")
    return ReproduceConfig(generator=args.generator, weights=args.weights, classes=classes,
                           features=args.features, layer=args.layer, n=args.n, n_moments=args.n_moments,
                           project=args.project or None,
                           draws=args.draws, bootstrap=args.bootstrap, seed=args.seed,
                           batch_size=args.batch_size, device=args.device, truncation=args.truncation,
                           progress=not args.no_progress)


class OptionError(ValueError):
    """An option of the run names something unusable (a network, weights, a layer, a device)."""


def run_from_args(args: argparse.Namespace, fail=None) -> int:
    """``rmtgan reproduce``: errors in the options and in what they name are reported by ``fail``."""
    cfg = config_from_args(args, fail)
    t0 = time.perf_counter()
    try:
        metrics = reproduce(cfg, args.out)
    except OptionError as exc:
        # a bad network name, device, layer or weights folder: one line, not a traceback
        if fail is None:
            raise
        fail(str(exc))
    print(summary_table(metrics))
    print(f"\nwrote {args.out}/metrics.json, {args.out}/report.md and figures "
          f"in {time.perf_counter() - t0:.1f} s")
    return 0
