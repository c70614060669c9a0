"""Overhead of the float64 moment accumulation over the forward passes (digits GAN + CNN, p = 512).

The contract: accumulating the class moments adds at most 20 % to the time of the
forward passes (latent draws, generator, representation network).  Both are
timed in this run, interleaved round by round so that a change of machine load
hits both alike, and the ratio of the best times is asserted.  The
pytest-benchmark fixture then records the full pipeline.

Run with ``make bench`` (or ``pytest benchmarks/bench_gan_moments.py --benchmark-enable``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rmtgan.gan as rg  # noqa: E402
from rmtgan.gan.moments import MOMENT_STREAM, _Setup  # noqa: E402

CLASSES = [0, 1, 2]
N_PER_CLASS = 4000
MAX_RATIO = 1.20
ROUNDS = 5


@pytest.fixture(scope="module")
def nets():
    return rg.digits_generator(), rg.digits_features()


def _forward_only(gen, feats, batch_size: int) -> None:
    setup = _Setup(gen, feats, CLASSES, None, batch_size, 0, "cpu")
    counts = np.full(len(CLASSES), N_PER_CLASS)
    with setup, torch.inference_mode():
        for _ in setup.batches(counts, MOMENT_STREAM):
            pass


def _pipeline(gen, feats, batch_size: int):
    return rg.feature_moments(gen, feats, CLASSES, N_PER_CLASS, batch_size=batch_size, seed=0)


@pytest.mark.parametrize("batch_size", [256, 1024])
def test_moment_accumulation_overhead(benchmark, nets, batch_size):
    gen, feats = nets
    _forward_only(gen, feats, batch_size)  # warm-up
    _pipeline(gen, feats, batch_size)
    base, full = [], []
    for _ in range(ROUNDS):
        t = time.perf_counter()
        _forward_only(gen, feats, batch_size)
        base.append(time.perf_counter() - t)
        t = time.perf_counter()
        _pipeline(gen, feats, batch_size)
        full.append(time.perf_counter() - t)
    ratio = min(full) / min(base)
    benchmark.extra_info.update({
        "samples": N_PER_CLASS * len(CLASSES), "p": 512, "batch_size": batch_size,
        "torch_threads": torch.get_num_threads(), "forward_only_s": min(base), "pipeline_s": min(full),
        "ratio": ratio,
    })
    fm = benchmark.pedantic(_pipeline, args=(gen, feats, batch_size), rounds=3, iterations=1)
    assert fm.covariances.shape == (3, 512, 512)
    print(f"\nbatch {batch_size}: forward only {min(base):.3f} s, with moments {min(full):.3f} s, "
          f"ratio {ratio:.3f}")
    assert ratio <= MAX_RATIO, f"moment accumulation adds {100 * (ratio - 1):.0f} % (limit 20 %)"
