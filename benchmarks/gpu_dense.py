"""The dense path on the torch backend: one prepared run for a GPU machine (issue 3).

Builds the limiting spectrum (support + ``--points``-point density) of the benchmark
model of :mod:`bench_dense` (k = 3, Haar-rotated covariances) with
``backend="torch"`` on ``--device`` and prints one JSON line: the time of the build
and of the density, the evaluation counts, the support, and a check of the
interpolated density against exact solves at three points.  With ``--out DIR`` the
line is also written to ``DIR/gpu_dense.json``.  Run from the repository root::

    PYTHONPATH=. python3 benchmarks/gpu_dense.py --p 4096 --device cuda --out "$OUT"

On a CPU (``--device cpu --p 200``) the same script checks itself in a few seconds.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_dense import random_model  # noqa: E402

from rmtgan import gram_spectrum  # noqa: E402


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--p", type=int, default=4096)
    ap.add_argument("--points", type=int, default=256)
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--out", default=None)
    args = ap.parse_args(argv)
    import torch

    info = {"p": args.p, "k": 3, "points": args.points, "device": args.device, "torch": torch.__version__}
    if args.device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    t0 = time.perf_counter()
    model = random_model(args.p)
    info["model_seconds"] = time.perf_counter() - t0
    gram_spectrum(random_model(40, seed=1), backend="torch", device=args.device)  # numba and CUDA warm-up
    t0 = time.perf_counter()
    spec = gram_spectrum(model, backend="torch", device=args.device)
    info["build_seconds"] = time.perf_counter() - t0
    a, b = spec.support[0][0], spec.support[-1][1]
    x = np.linspace(a, b, args.points + 2)[1:-1]
    t0 = time.perf_counter()
    dens = spec.density(x)
    info["density_seconds"] = time.perf_counter() - t0
    be = spec._backend
    info.update(success=bool(spec.success), path=getattr(spec, "_dense_path", ""), note=spec._dense_note,
                support=[list(map(float, s)) for s in spec.support], mass=float(spec.mass),
                evaluations=be.n_evaluations, jacobians=be.n_jacobians, real=be.n_real,
                lapack_seconds=be.lapack_seconds, fallbacks=getattr(be, "n_fallbacks", 0),
                certified=bool(spec._interp_certified), density_positive=bool(np.all(dens > 0)))
    idx = np.array([args.points // 5, args.points // 2, 4 * args.points // 5])
    exact = spec.density(x[idx], exact=True)
    info["interp_vs_exact_max_rel"] = float(np.max(np.abs(dens[idx] - exact) / exact))
    line = json.dumps(info)
    print(line, flush=True)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "gpu_dense.json").write_text(line + "\n")
    return info


if __name__ == "__main__":
    main()
