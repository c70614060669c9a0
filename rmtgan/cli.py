"""The ``rmtgan`` command line (also ``python -m rmtgan``).

Sub-commands
------------
reproduce   the paper's experiment end to end (GAN features vs Gaussian surrogate vs
            deterministic equivalent), with figures, ``metrics.json`` and ``report.md``
demo        a predicted Gram spectrum of a small 3-class mixture: summary and a PNG

BLAS runs one thread per process thread unless ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` or ``MKL_NUM_THREADS`` says otherwise: the library spreads its
inverses over worker threads itself, and OpenBLAS's own threads on top of them made the
reproduction 3.6 times slower on a 2-core machine (98 s against 27 s).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
from pathlib import Path

#: environment variables by which a user chooses BLAS's thread count (then respected).
BLAS_THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


def _demo(args: argparse.Namespace) -> int:
    if args.p < 2:
        args.parser.error(f"--p must be at least 2, got {args.p}")
    if args.seed < 0:
        args.parser.error(f"--seed must be >= 0, got {args.seed}")
    if Path(args.out).exists() and not Path(args.out).is_dir():
        args.parser.error(f"--out {args.out!r} exists and is not a folder")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    from rmtgan import MixtureModel, gram_spectrum

    rng = np.random.default_rng(args.seed)
    p = args.p
    lam = np.stack([rng.uniform(0.5, 1.5, p), rng.gamma(4.0, 0.25, p), np.full(p, 3.0)])
    model = MixtureModel.from_eigen(lam, [p // 2, p, 3 * p // 2])
    spec = gram_spectrum(model)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    x = np.linspace(0.0, spec.support[-1][1] * 1.05, 1500)
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.plot(x, spec.density(x), "k")
    ax.set_xlabel("eigenvalue of $G = X^T X / p$")
    ax.set_ylabel("density per $n$ eigenvalues")
    ax.set_title(f"predicted spectrum: k = {model.k}, p = {p}, n = {model.n}")
    fig.tight_layout()
    fig.savefig(out / "demo_spectrum.png", dpi=120)
    summary = {
        "k": model.k, "p": model.p, "n": model.n, "atom": spec.atom,
        "support": [list(map(float, iv)) for iv in spec.support],
        "mean": spec.mean(), "evaluations": spec.n_evaluations, "success": spec.success,
    }
    (out / "demo_summary.json").write_text(json.dumps(summary, indent=2))
    print(spec)
    print(f"wrote {out / 'demo_spectrum.png'} and {out / 'demo_summary.json'}")
    return 0


def _reproduce(args: argparse.Namespace) -> int:
    from rmtgan.reproduce import run_from_args

    return run_from_args(args, args.parser.error)


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="rmtgan", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="command", required=True)

    demo = sub.add_parser("demo", help="predicted spectrum of a small mixture (PNG + JSON)")
    demo.add_argument("--out", default="results", help="output folder (default: results)")
    demo.add_argument("--p", type=int, default=400, help="feature dimension")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(func=_demo, parser=demo)

    rep = sub.add_parser("reproduce", help="reproduce the paper's experiment")
    try:
        from rmtgan.reproduce import add_arguments
    except ImportError:  # pragma: no cover - reproduce not installed
        add_arguments = None
    if add_arguments is not None:
        add_arguments(rep)
    rep.set_defaults(func=_reproduce, parser=rep)
    return ap


def blas_threads():
    """One BLAS thread for the command, unless the environment chooses (see the module notes)."""
    if any(os.environ.get(name) for name in BLAS_THREAD_VARIABLES):
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits

    return threadpool_limits(limits=1, user_api="blas")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    with blas_threads():
        return int(args.func(args) or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
