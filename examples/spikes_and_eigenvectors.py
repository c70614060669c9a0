"""Spikes, eigenvectors and a data-vs-prediction comparison, end to end.

Run:  python examples/spikes_and_eigenvectors.py [output_dir]

1. A 3-class mixture: predicted spikes of G = X^T X / p, class alignments of their
   eigenvectors and the mean strengths at which they leave the bulk.
2. "GAN-like" data: a Lipschitz, non-Gaussian map of Gaussian vectors (so concentrated
   vectors, as in the paper).  A model is estimated from a large independent sample,
   the Gram spectrum of n fresh samples is compared with the prediction and with a
   Gaussian surrogate draw, and the figures are written to output_dir.

Data arrays are (n_samples, n_features) = (n, p); the paper's X is data.T.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import rmtgan
from rmtgan.comparison import compare
from rmtgan.plotting import plot_alignments, plot_comparison, plot_eigenvectors, plot_spectrum
from rmtgan.spikes import gram_spikes, phase_transitions

P = 80
SIZES = [150, 200, 250]
CLASSES = np.array(["mushroom", "pizza", "hamburger"])


def generator(n_per_class, rng):
    """Concentrated, non-Gaussian features: x = mu_a + B_a tanh(z) with z ~ N(0, I_p)."""
    base = np.random.default_rng(0)  # fixed "network weights"
    B = [np.eye(P) * (0.8 + 0.3 * a) + base.normal(size=(P, P)) * (0.5 / np.sqrt(P)) for a in range(3)]
    mu = np.zeros((3, P))
    mu[0, :3] = [2.6, 0.0, 0.0]
    mu[1, :3] = [0.0, 2.4, 0.6]
    mu[2, :3] = [-1.6, -1.4, 2.0]
    rows, labels = [], []
    for a, m in enumerate(n_per_class):
        z = rng.standard_normal((m, P))
        rows.append(mu[a] + np.tanh(z) @ B[a].T)
        labels.append(np.full(m, CLASSES[a]))
    return np.vstack(rows), np.concatenate(labels)


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)

    # -- a model from a large independent sample ---------------------------------
    big, big_labels = generator([4000, 4000, 4000], rng)
    estimated = rmtgan.MixtureModel.from_features(big, big_labels)
    features, labels = generator(SIZES, rng)
    counts = [int(np.sum(labels == c)) for c in estimated.class_labels]
    model = estimated.with_sizes(counts)
    model.class_labels = estimated.class_labels
    print(model)

    # -- predictions --------------------------------------------------------------
    spectrum = rmtgan.gram_spectrum(model)
    spikes = gram_spikes(model, spectrum=spectrum)
    print(spectrum)
    print(spikes)
    for i, v in enumerate(spikes.values):
        al = ", ".join(f"{c}: {a:.3f}" for c, a in zip(model.class_labels, spikes.alignments[i], strict=True))
        print(f"  spike {i + 1}: rho = {v:.4f}  (j_a^T u)^2/n_a = {al}")
    pt = phase_transitions(model, spectrum=spectrum)
    print(f"  the spikes leave the bulk at mean scales {np.round(pt.scales, 3)} (the model is t = 1)")

    # -- comparison with the data and with a Gaussian surrogate ------------------
    res = compare(model, features, labels, spectrum=spectrum, spikes=spikes, surrogate_seed=7)
    print(res)
    for name, m in res.metrics().items():
        print(f"  {name}: KS = {m['ks']:.4f}, W1 = {m['wasserstein1']:.4f}, "
              f"spike rel. errors = {np.round(m['spike_relative_errors'], 4)}, "
              f"max alignment error = {m['max_alignment_error']:.4f}")
    (out / "comparison.json").write_text(res.to_json(indent=1))
    plot_spectrum(res).savefig(out / "spectrum.png", dpi=120)
    plot_eigenvectors(res).savefig(out / "eigenvectors.png", dpi=120)
    plot_alignments(res).savefig(out / "alignments.png", dpi=120)
    plot_comparison(res).savefig(out / "comparison.png", dpi=100)
    print(f"figures and comparison.json written to {out}/")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("spikes_example_output"))
