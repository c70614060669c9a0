"""Train the shipped digits networks: ``python -m rmtgan.gan.train_digits``.

Trains, on scikit-learn's digits scaled to ``[-1, 1]`` (see
:mod:`rmtgan.gan.digits`):

1. the feature CNN (:class:`~rmtgan.gan.digits.DigitsCNN`) on a stratified 80 %
   split, with one-pixel random shifts, reporting the held-out accuracy;
2. the conditional GAN (:class:`~rmtgan.gan.digits.DigitsGenerator`) on all
   1797 images: hinge loss, a spectrally normalised MLP discriminator with a
   class projection (Miyato & Koyama 2018), Adam, an exponential moving
   average of the generator's weights (the shipped weights), and finally the
   spectral-norm vectors set to convergence.

Everything is seeded (torch, numpy, data order) and runs with
``torch.use_deterministic_algorithms(True)``; with the same torch version and
thread count the weights are reproduced bit for bit.  The weights are written
as ``digits_gan.pt``/``digits_cnn.pt`` with a JSON of metadata (seed, epochs or
steps, accuracies, time, sha256 of the weights) beside them.

Quality gate recorded in the metadata: an RBF support-vector classifier fitted
on the 1797 real digits (pixel scale 0..16) labels generated samples; the
fraction labelled as their conditioning class is ``gan_accuracy_svc``.

Usage::

    python -m rmtgan.gan.train_digits [--out DIR] [--seed 0] [--what all|gan|cnn] [--threads N]

The files go to ``./digits_weights`` by default, never over the shipped ones unless
``--out`` names the package's ``rmtgan/gan/weights`` directory; compare the sha256 in
the two JSON files to check a rebuild.
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from rmtgan.gan._torch import import_torch, set_threads
from rmtgan.gan.digits import (
    CNN_FILE,
    GAN_FILE,
    WEIGHTS_DIR,
    DigitsCNN,
    DigitsGenerator,
    digits_data,
    to_pixels,
)
from rmtgan.gan.generators import converge_spectral_norm

torch = import_torch()
nn = torch.nn
F = torch.nn.functional

__all__ = ["train_cnn", "train_gan", "gan_quality", "main"]


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)


def _shift(x, gen, max_shift: int = 1):
    """Random translations by up to ``max_shift`` pixels (background -1 fills the border)."""
    b = x.shape[0]
    pad = F.pad(x, (max_shift,) * 4, value=-1.0)
    dx = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    dy = torch.randint(0, 2 * max_shift + 1, (b,), generator=gen)
    out = torch.empty_like(x)
    for s in range(2 * max_shift + 1):
        for t in range(2 * max_shift + 1):
            m = (dy == s) & (dx == t)
            if m.any():
                out[m] = pad[m, :, s:s + 8, t:t + 8]
    return out


# ------------------------------------------------------------------------------ CNN
def train_cnn(seed: int = 0, epochs: int = 40, width: int = 512, batch_size: int = 64, lr: float = 1e-3,
              verbose: bool = True) -> tuple[DigitsCNN, dict[str, Any]]:
    """Train the feature CNN; returns the model (eval mode) and its metadata."""
    from sklearn.model_selection import train_test_split

    _seed_all(seed)
    images, labels = digits_data()
    idx_tr, idx_te = train_test_split(np.arange(len(labels)), test_size=0.2, stratify=labels,
                                      random_state=seed)
    Xtr, ytr = torch.from_numpy(images[idx_tr]), torch.from_numpy(labels[idx_tr])
    Xte, yte = torch.from_numpy(images[idx_te]), torch.from_numpy(labels[idx_te])
    model = DigitsCNN(width=width)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    for ep in range(epochs):
        model.train()
        perm = torch.randperm(len(ytr), generator=gen)
        total = 0.0
        for i in range(0, len(perm), batch_size):
            j = perm[i:i + batch_size]
            x = _shift(Xtr[j], gen)
            loss = F.cross_entropy(model(x), ytr[j])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            total += float(loss.detach()) * len(j)
        sched.step()
        if verbose and (ep % 10 == 9 or ep == epochs - 1):
            acc = _accuracy(model, Xte, yte)
            print(f"cnn epoch {ep + 1:3d}  loss {total / len(ytr):.4f}  test accuracy {acc:.4f}", flush=True)
    seconds = time.perf_counter() - t0
    model.eval()
    with torch.no_grad():
        feats = model.features(torch.from_numpy(images))
    dead = int((feats.max(dim=0).values <= 0).sum())
    meta = {
        "model": "DigitsCNN",
        "architecture": {"width": width, "num_classes": 10},
        "feature_layer": "act",
        "feature_dim": width,
        "seed": seed,
        "epochs": epochs,
        "batch_size": batch_size,
        "lr": lr,
        "augmentation": "random shifts of up to 1 pixel",
        "train_size": len(ytr),
        "test_size": len(yte),
        "test_accuracy": _accuracy(model, Xte, yte),
        "train_accuracy": _accuracy(model, Xtr, ytr),
        "dead_features_on_real_digits": dead,
        "train_seconds": round(seconds, 2),
    }
    return model, meta


def _accuracy(model, X, y) -> float:
    model.eval()
    with torch.no_grad():
        pred = model(X).argmax(dim=1)
    return float((pred == y).double().mean())


# ------------------------------------------------------------------------------ GAN
class _Discriminator(nn.Module):
    """Spectrally normalised MLP critic with a class projection."""

    def __init__(self, hidden: int = 256, num_classes: int = 10):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.fc1 = sn(nn.Linear(64, hidden))
        self.fc2 = sn(nn.Linear(hidden, hidden))
        self.out = sn(nn.Linear(hidden, 1))
        self.embed = sn(nn.Embedding(num_classes, hidden))

    def forward(self, x, y):
        h = F.leaky_relu(self.fc1(x.flatten(1)), 0.2)
        h = F.leaky_relu(self.fc2(h), 0.2)
        return self.out(h).squeeze(1) + (self.embed(y) * h).sum(dim=1)


def train_gan(seed: int = 0, steps: int = 6000, batch_size: int = 128, latent_dim: int = 16,
              hidden: int = 256, lr_g: float = 2e-4, lr_d: float = 2e-4, ema: float = 0.999,
              verbose: bool = True) -> tuple[DigitsGenerator, dict[str, Any]]:
    """Train the conditional GAN; returns the EMA generator (eval mode) and its metadata."""
    _seed_all(seed)
    images, labels = digits_data()
    X, Y = torch.from_numpy(images), torch.from_numpy(labels)
    G = DigitsGenerator(latent_dim=latent_dim, hidden=hidden)
    D = _Discriminator(hidden=hidden)
    G_ema = copy.deepcopy(G).requires_grad_(False)
    opt_g = torch.optim.Adam(G.parameters(), lr=lr_g, betas=(0.0, 0.9))
    opt_d = torch.optim.Adam(D.parameters(), lr=lr_d, betas=(0.0, 0.9))
    gen = torch.Generator().manual_seed(seed + 1)
    n = len(Y)
    t0 = time.perf_counter()
    for step in range(steps):
        j = torch.randint(0, n, (batch_size,), generator=gen)
        real, y = X[j], Y[j]
        z = torch.randn(batch_size, latent_dim, generator=gen)
        with torch.no_grad():
            fake = G(z, y)
        loss_d = F.relu(1.0 - D(real, y)).mean() + F.relu(1.0 + D(fake, y)).mean()
        opt_d.zero_grad(set_to_none=True)
        loss_d.backward()
        opt_d.step()

        z = torch.randn(batch_size, latent_dim, generator=gen)
        yg = torch.randint(0, 10, (batch_size,), generator=gen)
        loss_g = -D(G(z, yg), yg).mean()
        opt_g.zero_grad(set_to_none=True)
        loss_g.backward()
        opt_g.step()
        with torch.no_grad():
            for pe, p in zip(G_ema.parameters(), G.parameters(), strict=True):
                pe.lerp_(p, 1.0 - ema)
            for be, b in zip(G_ema.buffers(), G.buffers(), strict=True):
                be.copy_(b)
        if verbose and (step % 1000 == 999 or step == steps - 1):
            G_ema.eval()
            q = gan_quality(G_ema, n_per_class=100, seed=seed)
            G_ema.train()
            print(f"gan step {step + 1:5d}  loss_d {float(loss_d.detach()):.3f}  "
                  f"loss_g {float(loss_g.detach()):.3f}  "
                  f"svc accuracy of samples {q['accuracy_svc']:.3f}", flush=True)
    seconds = time.perf_counter() - t0
    G_ema.eval()
    converge_spectral_norm(G_ema)
    q = gan_quality(G_ema, n_per_class=500, seed=seed + 12345)
    meta = {
        "model": "DigitsGenerator",
        "architecture": {"latent_dim": latent_dim, "hidden": hidden, "num_classes": 10},
        "image_range": [-1.0, 1.0],
        "pixel_scaling": "pixels / 8 - 1 (pixels 0..16)",
        "latent_distribution": "standard normal",
        "seed": seed,
        "steps": steps,
        "epochs": round(steps * batch_size / n, 1),
        "batch_size": batch_size,
        "loss": "hinge; projection discriminator with spectral norm",
        "lr_g": lr_g,
        "lr_d": lr_d,
        "ema_decay": ema,
        "lipschitz_bound_latent": G_ema.lipschitz_bound,
        "gan_accuracy_svc": q["accuracy_svc"],
        "gan_accuracy_svc_per_class": q["per_class"],
        "diversity_ratio": q["diversity_ratio"],
        "quality_samples_per_class": 500,
        "train_seconds": round(seconds, 2),
    }
    return G_ema, meta


def gan_quality(gen, n_per_class: int = 200, seed: int = 0) -> dict[str, Any]:
    """Quality of a digits generator judged by a classifier fitted on the real digits.

    An RBF SVC (``gamma=0.001``, ``C=10``) is fitted on the 1797 real digits in
    pixel scale 0..16; ``n_per_class`` samples of each class are generated and
    classified.  ``diversity_ratio`` is the mean over classes of the average
    per-pixel standard deviation of generated samples divided by that of the
    real ones (1 = as varied as the data; near 0 = mode collapse).
    """
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    d = load_digits()
    clf = SVC(gamma=0.001, C=10.0).fit(d.data, d.target)
    rng = np.random.default_rng(seed)
    y = np.repeat(np.arange(10), n_per_class)
    z = torch.from_numpy(rng.standard_normal((len(y), gen.latent_dim), dtype=np.float32))
    with torch.no_grad():
        x = to_pixels(gen(z, torch.from_numpy(y)))
    pred = clf.predict(x)
    per_class = [float(np.mean(pred[y == c] == c)) for c in range(10)]
    div = [float(x[y == c].std(axis=0).mean() / d.data[d.target == c].std(axis=0).mean()) for c in range(10)]
    return {"accuracy_svc": float(np.mean(pred == y)), "per_class": per_class,
            "diversity_ratio": float(np.mean(div))}


# ---------------------------------------------------------------------------- main
def _save(model, meta: dict[str, Any], out: Path, name: str) -> None:
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    torch.save(state, str(out / name))
    data = (out / name).read_bytes()
    meta = dict(meta, sha256=hashlib.sha256(data).hexdigest(), size_bytes=len(data),
                torch_version=torch.__version__, python=platform.python_version(),
                threads=torch.get_num_threads(),
                # convolutions take vectorised kernels by instruction set, which round differently
                cpu_capability=torch.backends.cpu.get_cpu_capability())
    (out / name).with_suffix(".json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point; see the module docstring."""
    ap = argparse.ArgumentParser(prog="python -m rmtgan.gan.train_digits",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", type=Path, default=Path("digits_weights"),
                    help=f"output directory (default: ./digits_weights; the shipped files: {WEIGHTS_DIR})")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--what", choices=["all", "gan", "cnn"], default="all")
    ap.add_argument("--threads", type=int, default=1, help="torch threads (default 1: fastest for these "
                    "small models and part of the reproducibility contract)")
    ap.add_argument("--quiet", action="store_true")
    args = ap.parse_args(argv)
    set_threads(args.threads)
    if args.what in ("all", "cnn"):
        model, meta = train_cnn(seed=args.seed, verbose=not args.quiet)
        _save(model, meta, args.out, CNN_FILE)
        print(f"cnn: test accuracy {meta['test_accuracy']:.4f}, {meta['train_seconds']} s -> "
              f"{args.out / CNN_FILE}")
    if args.what in ("all", "gan"):
        model, meta = train_gan(seed=args.seed, verbose=not args.quiet)
        _save(model, meta, args.out, GAN_FILE)
        print(f"gan: svc accuracy of samples {meta['gan_accuracy_svc']:.4f}, {meta['train_seconds']} s -> "
              f"{args.out / GAN_FILE}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
