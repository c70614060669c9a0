"""Predicted Gram spectrum of a 3-class Gaussian mixture over a Monte Carlo histogram.

    python examples/plot_spectrum.py [--out spectrum.png] [--p 400] [--seed 0]

The model has diagonal (commuting) covariances, so the numba fast path is used;
the histogram shows the eigenvalues of ``G = X^T X / p`` for one Gaussian draw of
the same model.  Data arrays are ``(n_samples, n_features)``.
"""

from __future__ import annotations

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import rmtgan  # noqa: E402


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default="spectrum.png")
    ap.add_argument("--p", type=int, default=400)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)

    rng = np.random.default_rng(args.seed)
    p = args.p
    eigenvalues = np.stack([rng.uniform(0.5, 1.5, p), rng.gamma(4.0, 0.25, p), 3.0 * np.ones(p)])
    sizes = [p // 2, p, 3 * p // 2]
    model = rmtgan.MixtureModel.from_eigen(eigenvalues, sizes)

    spec = rmtgan.gram_spectrum(model)
    print(spec)
    data, _ = model.sample(rng=args.seed)          # (n, p)
    eig = rmtgan.gram_eigenvalues(data)            # through the smaller side
    nonzero = eig[eig > 1e-8 * eig.max()]

    x = np.linspace(0.0, spec.support[-1][1] * 1.05, 2000)
    fig, ax = plt.subplots(figsize=(7, 4))
    # the histogram is normalised to the bulk mass (1 - atom), like the density
    weights = np.full(nonzero.size, 1.0 / eig.size)
    ax.hist(nonzero, bins=80, weights=weights * 80 / np.ptp(nonzero), alpha=0.5,
            label="Monte Carlo (one draw)")
    ax.plot(x, spec.density(x), "k", lw=1.5, label="deterministic equivalent")
    ax.set_xlabel("eigenvalue of $G = X^T X / p$")
    ax.set_ylabel("density (per $n$ eigenvalues)")
    ax.set_title(f"k = {model.k}, p = {p}, n = {model.n}, atom at 0: {spec.atom:.3f}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
