"""Moments of deep features of *your own* generator, and what they predict.

Any torch module or callable ``gen(latent, labels) -> images`` works.  Here a
small conditional generator is defined inline (untrained, spectrally
normalised, so Lipschitz in the latent), the shipped digits CNN is replaced by
a torch module whose feature layer is picked by name, and the class moments
are turned into a :class:`rmtgan.model.MixtureModel`.  Finally the Gram
spectrum of a generated sample is compared with that of the Gaussian mixture
with the same means and covariances (the claim of Seddik et al., 2020).

Run:  python examples/custom_generator.py
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

import rmtgan.gan as rg


class TinyGenerator(nn.Module):
    """(latent (b, 8), labels (b,)) -> images (b, 1, 6, 6), Lipschitz in the latent."""

    latent_dim = 8
    num_classes = 3

    def __init__(self):
        super().__init__()
        sn = nn.utils.parametrizations.spectral_norm
        self.fc1 = sn(nn.Linear(8, 64))
        self.fc2 = sn(nn.Linear(64, 36))
        self.shift = nn.Embedding(3, 64)  # the class enters as a bias

    def forward(self, latent, labels):
        h = torch.relu(self.fc1(latent) * 2.0 + self.shift(labels))
        return torch.tanh(self.fc2(h) * 2.0).view(-1, 1, 6, 6)


def main() -> None:
    torch.manual_seed(0)
    gen = TinyGenerator()
    rg.converge_spectral_norm(gen)  # exact u, v: each normalised layer has norm 1 in eval mode

    # a representation network; the output of its ReLU (module "4", 128 wide) is the feature
    net = nn.Sequential(nn.Flatten(), nn.Linear(36, 256), nn.Tanh(), nn.Linear(256, 128), nn.ReLU(),
                        nn.Linear(128, 3))
    feats = rg.FeatureExtractor(net, layer="4")  # output of the ReLU: p = 128

    fm = rg.feature_moments(gen, feats, classes=[0, 1, 2], n_per_class=3000, batch_size=500, seed=1,
                            return_sample=300)
    print(fm)
    model = fm.to_model(sizes=[300, 300, 300])  # predict the Gram matrix of 900 samples
    print(model)

    # diagnostics: Lipschitz constants and concentration
    print("generator:", rg.generator_lipschitz(gen, n_points=8))
    print("generator + network:", rg.generator_lipschitz(gen, features=feats, n_points=8))
    print(rg.concentration_check(fm.sample, fm.sample_labels).summary())

    # GAN features against the Gaussian surrogate with the same moments
    X = fm.sample  # (900, 128): rows are samples, the paper's X is X.T
    Y, _ = model.sample(rng=2)
    ev = [np.sort(np.linalg.eigvalsh(A.T @ A / A.shape[1]))[::-1] for A in (X, Y)]
    print("top Gram eigenvalues, generated: ", np.round(ev[0][:4], 3))
    print("top Gram eigenvalues, Gaussian:  ", np.round(ev[1][:4], 3))
    print("bulk quantiles (10/50/90 %), generated:", np.round(np.quantile(ev[0][3:], [0.1, 0.5, 0.9]), 4))
    print("bulk quantiles (10/50/90 %), Gaussian: ", np.round(np.quantile(ev[1][3:], [0.1, 0.5, 0.9]), 4))


if __name__ == "__main__":
    main()
