"""Peer benchmark: one class with r population atoms, rmtgan against freealg.

``freealg.distributions.DeformedMarchenkoPastur(t, w, c)`` describes the sample
covariance ``S = X X^T / n`` (``p x p``, ``c = p / n``) of one class whose covariance
has eigenvalues ``t_i`` with weights ``w_i``.  rmtgan describes ``G = X^T X / p``; the
non-zero eigenvalues satisfy ``eig(S) = (p / n) eig(G)``.  For each ``r`` we time
support + a 512-point density for both, and compare accuracy: total mass, support
edges and the Kolmogorov-Smirnov distance to one Monte Carlo draw.

Run: ``pytest benchmarks/bench_peer_freealg.py --benchmark-enable -s``.  Results are
printed as a markdown table (copied into docs/benchmarks.md).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

import rmtgan

freealg = pytest.importorskip("freealg")
from freealg.distributions import DeformedMarchenkoPastur  # noqa: E402

C_RATIO = 0.5  # p / n
P_MC = 2000
ROWS: list[str] = []


def _atoms(r: int):
    t = np.geomspace(1.0, 10.0, r)
    w = np.full(r, 1.0 / r)
    return t, w


def _ours(t, w, p):
    """rmtgan on the S scale: support, density at 512 points, CDF."""
    n = int(round(p / C_RATIO))
    lam = np.repeat(t, np.round(w * p).astype(int))[None]
    spec = rmtgan.gram_spectrum(rmtgan.MixtureModel.from_eigen(lam, [n]))
    s = p / n  # eig(S) = s * eig(G)
    sup = [(a * s, b * s) for a, b in spec.support]
    x = np.linspace(sup[0][0], sup[-1][1], 512)
    # density of S per p eigenvalues: rho_S(y) = rho_G(y / s) * (n / p) / s
    dens = spec.density(x / s) * (n / p) / s
    mass = (spec.mass) * n / p  # bulk mass per p eigenvalues (1 when p < n)

    def cdf(y):
        return (spec.cdf(y / s) - spec.atom) * n / p

    return sup, x, dens, mass, cdf


def _theirs(t, w):
    d = DeformedMarchenkoPastur(t, w, c=C_RATIO)
    sup = d.support()
    x = np.linspace(sup[0][0], sup[-1][1], 512)
    dens = d.density(x)
    return d, sup, x, dens


def _mass_and_cdf(d, sup):
    """freealg's density integrated on a fine grid (its own support)."""
    xs = np.concatenate([np.linspace(a, b, 8192) for a, b in sup])
    rho = np.clip(d.density(xs), 0, None)
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (rho[1:] + rho[:-1]) * np.diff(xs))])
    return float(cum[-1]), (lambda y: np.interp(y, xs, cum))


def _ks(eig, cdf):
    eig = np.sort(eig)
    m = eig.size
    F = cdf(eig)
    return float(max(np.max(np.arange(1, m + 1) / m - F), np.max(F - np.arange(m) / m)))


@pytest.mark.parametrize("r", [3, 10, 30, 100])
def test_peer_deformed_mp(r, benchmark):
    t, w = _atoms(r)
    p = P_MC if (P_MC * w).round().sum() == P_MC else r * 20
    _ours(t, w, p)  # warm-up (numba cache)
    t0 = time.perf_counter()
    sup_o, _, dens_o, mass_o, cdf_o = _ours(t, w, p)
    t_ours = time.perf_counter() - t0
    t0 = time.perf_counter()
    d, sup_f, _, dens_f = _theirs(t, w)
    t_free = time.perf_counter() - t0
    mass_f, cdf_f = _mass_and_cdf(d, sup_f)
    # one Monte Carlo draw of S = X X^T / n
    rng = np.random.default_rng(r)
    n = int(round(p / C_RATIO))
    lam = np.repeat(t, np.round(w * p).astype(int))
    X = rng.standard_normal((n, p)) * np.sqrt(lam)
    eig = np.linalg.eigvalsh(X.T @ X / n)
    ks_o, ks_f = _ks(eig, cdf_o), _ks(eig, cdf_f)
    row = (f"| {r} | {t_ours * 1e3:.0f} | {t_free * 1e3:.0f} | {abs(mass_o - 1):.1e} | "
           f"{abs(mass_f - 1):.1e} | "
           f"{len(sup_o)} / {len(sup_f)} | {sup_o[0][0]:.4f} / {sup_f[0][0]:.4f} / {eig[0]:.4f} | "
           f"{ks_o:.4f} | {ks_f:.4f} |")
    ROWS.append(row)
    print("\n| r | rmtgan ms | freealg ms | rmtgan mass err | freealg mass err | intervals (ours/freealg) | "
          "left edge ours / freealg / MC min | KS ours | KS freealg |\n|---|---|---|---|---|---|---|---|---|")
    print("\n".join(ROWS))
    benchmark.extra_info.update(t_ours=t_ours, t_freealg=t_free, ks_ours=ks_o, ks_freealg=ks_f)
    benchmark.pedantic(_ours, args=(t, w, p), rounds=1, iterations=1)
    assert np.all(np.isfinite(dens_o)) and np.all(np.isfinite(dens_f))
