"""Benchmark: the empirical Gram spectrum against its irreducible cost.

For n = 20 000 samples and p = 1024 features (float64, fixed seed), computing all
n eigenvalues of G = data @ data.T / p through the p side cannot be cheaper than
forming X X^T = data.T @ data and diagonalising one p x p matrix.  The library must
stay within ``MAX_RATIO`` of that baseline, measured in the same run.

Run with::

    .venv/bin/python -m pytest benchmarks/bench_empirical.py --benchmark-enable -s

The ratio test times both sides itself (``time.perf_counter``, interleaved,
after a warm-up, ratio of medians), so it is meaningful whether or not
pytest-benchmark collects timings; the two ``benchmark`` tests register the same
calls with pytest-benchmark for its tables and history.
"""

from __future__ import annotations

import statistics
import time

import numpy as np
import pytest

from rmtgan.empirical import gram_eigenvalues

N, P = 20_000, 1024
MAX_RATIO = 1.5
REPEATS = 7
SEED = 20200712


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(SEED).standard_normal((N, P))


def baseline(data: np.ndarray) -> np.ndarray:
    """The irreducible work: X X^T in float64 and one p x p eigvalsh."""
    xxt = data.T @ data
    return np.linalg.eigvalsh(xxt / data.shape[1])


def _median_time(fn, data, repeats):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(data)
        times.append(time.perf_counter() - t0)
    return times


def test_gram_eigenvalues_within_budget_of_baseline(data, capsys):
    # what is timed is also right: the top p eigenvalues agree, the rest are zeros
    w = gram_eigenvalues(data)
    ref = baseline(data)
    assert w.shape == (N,)
    np.testing.assert_allclose(w[N - P :], ref, rtol=0, atol=1e-10 * ref[-1])
    assert np.all(w[: N - P] == 0.0)

    # warm-up done above; interleave so that drifts in machine load hit both sides
    ours, base = [], []
    for _ in range(REPEATS):
        ours += _median_time(gram_eigenvalues, data, 1)
        base += _median_time(baseline, data, 1)
    t_ours, t_base = statistics.median(ours), statistics.median(base)
    ratio = t_ours / t_base
    with capsys.disabled():
        print(
            f"\n[bench_empirical] n={N} p={P} float64, {REPEATS} repeats: "
            f"gram_eigenvalues median {t_ours * 1e3:.1f} ms (min {min(ours) * 1e3:.1f}); "
            f"baseline X^T X + eigvalsh median {t_base * 1e3:.1f} ms (min {min(base) * 1e3:.1f}); "
            f"ratio {ratio:.3f} (limit {MAX_RATIO})"
        )
    assert ratio <= MAX_RATIO, f"gram_eigenvalues costs {ratio:.2f}x the baseline (limit {MAX_RATIO}x)"


def test_bench_gram_eigenvalues(benchmark, data):
    benchmark.extra_info.update(n=N, p=P, dtype="float64")
    w = benchmark.pedantic(gram_eigenvalues, args=(data,), rounds=5, warmup_rounds=1, iterations=1)
    assert w.shape == (N,)


def test_bench_baseline_xxt_eigvalsh(benchmark, data):
    benchmark.extra_info.update(n=N, p=P, dtype="float64")
    w = benchmark.pedantic(baseline, args=(data,), rounds=5, warmup_rounds=1, iterations=1)
    assert w.shape == (P,)
