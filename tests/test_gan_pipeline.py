"""The streaming pipeline, representation networks, Lipschitz and concentration diagnostics."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

torch = pytest.importorskip("torch")

import rmtgan.gan as rg  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]




# ------------------------------------------------------------------ helpers
class Replay:
    """A 'generator' that ignores its latents and replays fixed rows of each class, in order."""

    latent_dim = 3

    def __init__(self, data: dict[int, np.ndarray]):
        self.data = data
        self.pos = dict.fromkeys(data, 0)

    def __call__(self, latent, labels):
        c = int(labels[0])
        assert (labels == c).all()
        b = latent.shape[0]
        rows = self.data[c][self.pos[c]:self.pos[c] + b]
        self.pos[c] += b
        return torch.from_numpy(rows.astype(np.float32)).view(b, 1, 2, -1)


class Affine(torch.nn.Module):
    """latent (b, 4) -> image (b, 1, 2, 3): x = A z + offset[class]."""

    latent_dim = 4
    num_classes = 5

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.A = torch.nn.Parameter(torch.randn(6, 4, generator=g))
        self.offset = torch.nn.Parameter(torch.randn(5, 6, generator=g) * 3)

    def forward(self, latent, labels):
        return (latent @ self.A.T + self.offset[labels]).view(-1, 1, 2, 3)


def _numpy_reference(gen: Affine, classes, n, seed, stream=0):
    """The documented latent streams, pushed through the map in numpy."""
    A = gen.A.detach().double().numpy()
    off = gen.offset.detach().double().numpy()
    out = {}
    for c in classes:
        z = np.random.default_rng([seed, c, stream]).standard_normal((n, 4), dtype=np.float32)
        out[c] = z.astype(np.float64) @ A.T + off[c]
    return out


# ------------------------------------------------------------------ moments
def test_moments_equal_numpy_on_known_rows():
    rng = np.random.default_rng(0)
    # float32-exact rows with a large common offset (cancellation check)
    data = {c: (1e3 + rng.standard_normal((37 + 5 * c, 6))).astype(np.float32).astype(np.float64)
            for c in range(3)}
    gen = Replay(data)
    fm = rg.feature_moments(gen, None, classes=[0, 1, 2], n_per_class=[37, 42, 47], batch_size=8)
    for a, c in enumerate([0, 1, 2]):
        np.testing.assert_allclose(fm.means[a], data[c].mean(axis=0), rtol=1e-13)
        np.testing.assert_allclose(fm.covariances[a], np.cov(data[c], rowvar=False), rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(fm.counts, [37, 42, 47])
    np.testing.assert_array_equal(fm.classes, [0, 1, 2])


def test_moments_follow_the_documented_latent_streams():
    gen = Affine()
    fm = rg.feature_moments(gen, classes=[4, 1], n_per_class=300, batch_size=64, seed=11)
    ref = _numpy_reference(gen, [4, 1], 300, seed=11)
    for a, c in enumerate([4, 1]):  # the requested order is kept
        np.testing.assert_allclose(fm.means[a], ref[c].mean(axis=0), rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose(fm.covariances[a], np.cov(ref[c], rowvar=False), rtol=1e-4, atol=1e-5)
    # and the population covariance of x = A z + o is A A^T
    A = gen.A.detach().double().numpy()
    assert np.abs(fm.covariances[0] - A @ A.T).max() < 0.35 * np.abs(A @ A.T).max()


def test_results_do_not_depend_on_batching_or_other_classes():
    gen = Affine()
    a = rg.feature_moments(gen, classes=[0, 2], n_per_class=100, batch_size=7, seed=3)
    b = rg.feature_moments(gen, classes=[2, 0, 3], n_per_class=100, batch_size=100, seed=3)
    # the same latents (docs/gan.md, Seeds); the network's float32 products may round
    # differently for another batch shape (seen on an AVX-512 Xeon: 1.2e-9 on the means),
    # so agreement is to a few float32 roundings of the features, |x| <= scale; a wrong
    # latent stream moves the moments by O(1)
    eps = float(np.finfo(np.float32).eps)
    scale = np.abs(b.means).max() + 4.0 * np.sqrt(np.diagonal(b.covariances, axis1=1, axis2=2).max())
    np.testing.assert_allclose(a.means[1], b.means[0], rtol=0, atol=4 * eps * scale)
    np.testing.assert_allclose(a.covariances[0], b.covariances[1], rtol=0, atol=8 * eps * scale ** 2)
    c = rg.feature_moments(gen, classes=[0, 2], n_per_class=100, batch_size=7, seed=4)
    assert not np.allclose(a.means, c.means)


@pytest.mark.parametrize("overlap", [True, False])
def test_a_network_reusing_its_output_tensor(overlap):
    """Each batch is copied: a network writing every batch into one tensor (CUDA graphs) is fine."""
    gen = Affine()
    lin = torch.nn.Linear(6, 5)
    buf = {}

    def reusing(images):
        out = lin(images.reshape(images.shape[0], -1))
        return buf.setdefault(out.shape, torch.empty_like(out)).copy_(out)

    def fresh(images):
        return lin(images.reshape(images.shape[0], -1))

    kw = dict(classes=[0, 3], n_per_class=400, batch_size=25, seed=5, overlap=overlap)
    a = rg.feature_moments(gen, reusing, **kw)
    b = rg.feature_moments(gen, fresh, **kw)
    assert np.array_equal(a.means, b.means) and np.array_equal(a.covariances, b.covariances)


def test_a_network_changing_its_width_is_reported():
    gen = Affine()
    calls = [0]

    def unstable(images):
        calls[0] += 1
        return images.reshape(images.shape[0], -1)[:, : 6 if calls[0] == 1 else 5]

    for run in (rg.feature_moments, rg.generate_features):
        calls[0] = 0
        with pytest.raises(ValueError, match="returned 5 features, earlier batches 6"):
            run(gen, unstable, [0], 40, batch_size=10)


def test_overlap_gives_identical_results():
    gen = Affine()
    a = rg.feature_moments(gen, classes=[0, 1], n_per_class=200, batch_size=16, overlap=True)
    b = rg.feature_moments(gen, classes=[0, 1], n_per_class=200, batch_size=16, overlap=False)
    assert np.array_equal(a.means, b.means) and np.array_equal(a.covariances, b.covariances)
    assert set(a.timings) == {"forward_s", "accumulate_s", "wait_s"}
    for kw in ({"overlap": "no"}, {"progress": "no"}, {"progress": None}):
        with pytest.raises(TypeError, match=f"{next(iter(kw))} must be True or False"):
            rg.feature_moments(gen, classes=[0, 1], n_per_class=4, **kw)
    with pytest.raises(TypeError, match="progress must be True or False"):
        rg.generate_features(gen, None, [0, 1], 4, progress="yes")


def test_sample_is_independent_and_reproducible():
    gen = Affine()
    fm = rg.feature_moments(gen, classes=[1, 3], n_per_class=50, return_sample=[4, 6], seed=2)
    assert fm.sample.shape == (10, 6) and fm.sample.dtype == np.float64
    np.testing.assert_array_equal(fm.sample_labels, [1] * 4 + [3] * 6)
    data, labels = rg.generate_features(gen, classes=[1, 3], n_per_class=[4, 6], seed=2)
    np.testing.assert_array_equal(fm.sample, data)
    # other batches: the same latents (float32 kernels may round differently)
    data3, _ = rg.generate_features(gen, classes=[1, 3], n_per_class=[4, 6], seed=2, batch_size=3)
    np.testing.assert_allclose(data3, data, rtol=1e-6, atol=1e-6)
    np.testing.assert_array_equal(labels, fm.sample_labels)
    ref = _numpy_reference(gen, [1, 3], 6, seed=2, stream=1)
    np.testing.assert_allclose(data[:4], ref[1][:4], rtol=1e-5, atol=1e-5)
    # no sample row is one of the moment rows
    moment_rows = _numpy_reference(gen, [1], 50, seed=2)[1]
    dist = np.linalg.norm(moment_rows[:, None, :] - data[None, :4, :], axis=2)
    assert dist.min() > 1e-3


def test_to_model():
    gen = Affine()
    fm = rg.feature_moments(gen, classes=[3, 0], n_per_class=[30, 40])
    model = fm.to_model()
    np.testing.assert_array_equal(model.sizes, [30, 40])
    np.testing.assert_array_equal(model.class_labels, [3, 0])
    np.testing.assert_allclose(model.means, fm.means)
    np.testing.assert_allclose(model.covariances, fm.covariances)
    assert fm.to_model(sizes=[500, 700]).sizes.tolist() == [500, 700]
    assert fm.k == 2 and fm.p == 6
    # more batches, labelled by position, go in; a third key would not match `classes`
    X, _ = rg.generate_features(gen, None, [0], 10, seed=9)
    fm.accumulator.update(X, np.full(10, 1))
    assert fm.to_model().sizes.tolist() == [30, 50]
    fm.accumulator.update(X, np.full(10, 2))
    with pytest.raises(ValueError, match="positions"):
        fm.to_model()


def test_generator_inputs_are_checked():
    gen = rg.digits_generator()
    z = torch.randn(4, gen.latent_dim)
    with pytest.raises(ValueError, match="label 10 is outside"):
        gen(z, torch.tensor([0, 1, 2, 10]))
    with pytest.raises(ValueError, match="label -1"):
        gen(z, torch.tensor([0, -1, 2, 3]))
    with pytest.raises(TypeError, match="dtype"):
        gen(z.double(), torch.tensor([0, 1, 2, 3]))
    rng = np.random.default_rng(0)
    for bad, exc in ((0.0, ValueError), (-1.0, ValueError), (np.nan, ValueError), ("0.4", TypeError)):
        with pytest.raises(exc, match="truncation"):
            rg.truncated_normal(rng, (2, 3), truncation=bad)


def test_modes_are_restored_and_modules_work_in_eval():
    class Noisy(torch.nn.Module):
        latent_dim = 2

        def __init__(self):
            super().__init__()
            self.drop = torch.nn.Dropout(0.9)

        def forward(self, z, y):
            return self.drop(torch.ones(z.shape[0], 1, 1, 4))

    gen = Noisy().train()
    fm = rg.feature_moments(gen, classes=[0], n_per_class=20)
    assert gen.training and gen.drop.training
    # dropout was off: all features equal to one, no spread
    np.testing.assert_allclose(fm.means, 1.0)
    np.testing.assert_allclose(fm.covariances, 0.0, atol=1e-15)


def test_digits_pipeline_end_to_end_small():
    fm = rg.feature_moments(rg.digits_generator(), rg.digits_features(), classes=[3, 8], n_per_class=300,
                            batch_size=128, return_sample=20)
    assert fm.means.shape == (2, 512) and fm.covariances.shape == (2, 512, 512)
    assert np.all(np.isfinite(fm.covariances))
    assert fm.sample.shape == (40, 512)
    model = fm.to_model(sizes=[100, 100])
    assert model.p == 512 and model.n == 200


# -------------------------------------------------------------- validation
def test_bad_arguments():
    gen = Affine()
    with pytest.raises(ValueError, match="duplicates"):
        rg.feature_moments(gen, classes=[1, 1])
    with pytest.raises(ValueError, match="n_per_class"):
        rg.feature_moments(gen, classes=[1], n_per_class=1)
    with pytest.raises(ValueError, match="k = 2"):
        rg.feature_moments(gen, classes=[1, 2], n_per_class=[5, 5, 5])
    with pytest.raises(TypeError, match="batch_size"):
        rg.feature_moments(gen, classes=[1], batch_size=2.5)
    with pytest.raises(ValueError, match="outside"):
        rg.feature_moments(gen, classes=[7])
    with pytest.raises(ValueError, match="unknown class name"):
        rg.feature_moments(gen, classes=["pizza"])
    with pytest.raises(TypeError, match="latent_dim"):
        rg.feature_moments(lambda z, y: z, classes=[0])
    with pytest.raises(TypeError, match="callable"):
        rg.feature_moments(42, classes=[0])
    with pytest.raises(ValueError, match="classes is required"):
        rg.feature_moments(rg.as_generator(lambda z, y: z, latent_dim=2))
    with pytest.raises(ValueError, match="no submodule"):
        rg.feature_moments(gen, torch.nn.Sequential(torch.nn.Flatten()), classes=[0], layer="1")
    with pytest.raises(ValueError, match="layer was given"):
        rg.feature_moments(gen, None, classes=[0], layer="fc")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            rg.feature_moments(gen, classes=[0], device="cuda")
    with pytest.raises(ValueError, match="not a valid torch device"):
        rg.feature_moments(gen, classes=[0], device="gpu7")


def test_non_finite_features_are_reported():
    gen = rg.as_generator(lambda z, y: torch.full((z.shape[0], 1, 2, 2), float("nan")), latent_dim=2,
                          num_classes=3)
    with pytest.raises(ValueError, match="non-finite features for class 2"):
        rg.feature_moments(gen, classes=[2], n_per_class=5)


def test_complex_images_or_features_are_refused():
    # .double() would drop the imaginary part with only torch's warning
    gen = rg.as_generator(lambda z, y: torch.ones((z.shape[0], 1, 2, 2), dtype=torch.complex64), latent_dim=2)
    with pytest.raises(TypeError, match="complex images"):
        rg.feature_moments(gen, classes=[0], n_per_class=5)
    real = rg.as_generator(lambda z, y: z.reshape(-1, 1, 1, 2), latent_dim=2)
    with pytest.raises(TypeError, match="complex features"):
        rg.feature_moments(real, lambda im: im.flatten(1).to(torch.complex64), classes=[0], n_per_class=5)


def test_generator_returning_garbage():
    gen = rg.as_generator(lambda z, y: z[:1], latent_dim=2)
    with pytest.raises(ValueError, match="images"):
        rg.feature_moments(gen, classes=[0], n_per_class=5)


def test_as_generator_wrapping():
    fn = rg.as_generator(lambda z, y: z.view(-1, 1, 1, 3) + y.view(-1, 1, 1, 1), latent_dim=3,
                         latent_sampler=lambda n, rng: np.ones((n, 3)))
    assert fn.sample_latent(4, np.random.default_rng(0)).dtype == np.float32
    fm = rg.feature_moments(fn, classes=[0, 5], n_per_class=3)
    np.testing.assert_allclose(fm.means, [[1, 1, 1], [6, 6, 6]])
    bad = rg.as_generator(lambda z, y: z, latent_dim=3, latent_sampler=lambda n, rng: np.ones((n, 2)))
    with pytest.raises(ValueError, match="latent_sampler"):
        bad.sample_latent(4, np.random.default_rng(0))
    assert rg.as_generator(fn) is fn
    with pytest.raises(ValueError, match="latent_dim"):
        rg.as_generator(lambda z, y: z, latent_dim=0)


# ------------------------------------------------------------------ features
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(1)
        self.conv = torch.nn.Conv2d(1, 3, 2)
        self.relu = torch.nn.ReLU()
        self.fc = torch.nn.Linear(3 * 3 * 3, 5)
        self.calls = 0
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        h = self.relu(self.conv(x))
        self.calls += 1
        return self.fc(h.flatten(1))


def test_feature_extractor_layers():
    net = Net()
    x = torch.randn(4, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        h = torch.relu(net.conv(x))
        out = net.fc(h.flatten(1))
        close = np.testing.assert_allclose
        close(rg.FeatureExtractor(net)(x), out, rtol=1e-6)
        close(rg.FeatureExtractor(net, "relu")(x), h.flatten(1), rtol=1e-6)
        close(rg.FeatureExtractor(net, "relu", reduce="mean")(x), h.mean((2, 3)), rtol=1e-6)
        close(rg.FeatureExtractor(net, "fc", capture="input")(x), h.flatten(1), rtol=1e-6)
        # the first call runs the whole network (the layer must run once per pass); from
        # then on the pass stops at the layer: the rest of forward does not run
        ext = rg.FeatureExtractor(net, "relu")
        calls = net.calls
        ext(x)
        assert net.calls == calls + 1
        ext(x)
        assert net.calls == calls + 1
        rg.FeatureExtractor(net, "relu", stop_early=False)(x)
        assert net.calls == calls + 2
    assert not net._forward_hooks and not net.relu._forward_hooks  # hooks removed


class Shared(torch.nn.Module):
    """One ReLU module used twice (as in a torchvision ResNet block)."""

    def __init__(self):
        super().__init__()
        self.a, self.b = torch.nn.Linear(16, 8), torch.nn.Linear(8, 6)
        self.relu = torch.nn.ReLU()

    def forward(self, x):
        return self.relu(self.b(self.relu(self.a(x.flatten(1)))))


def test_feature_extractor_refuses_a_layer_that_runs_twice_and_nests():
    x = torch.randn(3, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    net = Shared()
    for stop in (True, False):
        with pytest.raises(ValueError, match="runs 2 times"):
            rg.FeatureExtractor(net, "relu", stop_early=stop)(x)
    with torch.no_grad():
        np.testing.assert_allclose(rg.FeatureExtractor(net, "b")(x), net.b(torch.relu(net.a(x.flatten(1)))))
    # an extractor around an extractor: the outer layer's stop is not taken for the inner one's
    inner = rg.FeatureExtractor(Net(), "relu")
    outer = rg.FeatureExtractor(inner, "network.conv")
    with torch.no_grad():
        for _ in range(2):
            np.testing.assert_allclose(outer(x), inner.network.conv(x).flatten(1), rtol=1e-6)


def test_feature_extractor_errors():
    net = Net()
    with pytest.raises(ValueError, match="close matches: relu"):
        rg.FeatureExtractor(net, "rel")
    with pytest.raises(ValueError, match="capture"):
        rg.FeatureExtractor(net, "relu", capture="grad")
    with pytest.raises(TypeError, match="torch.nn.Module"):
        rg.FeatureExtractor(lambda x: x, "relu")
    with pytest.raises(TypeError, match="callable"):
        rg.FeatureExtractor("resnet50")
    # a layer that the forward pass never reaches
    net2 = torch.nn.ModuleDict({"used": torch.nn.ReLU(), "unused": torch.nn.Tanh()})
    net2.forward = lambda x: net2["used"](x)
    with pytest.raises(RuntimeError, match="not called"):
        rg.FeatureExtractor(net2, "unused")(torch.zeros(1, 2))


def test_imagenet_preprocess():
    prep = rg.imagenet_preprocess(size=8)
    x = -torch.ones(2, 3, 16, 16)  # black in [-1, 1]
    y = prep(x)
    assert y.shape == (2, 3, 8, 8)
    expected = [-0.485 / 0.229, -0.456 / 0.224, -0.406 / 0.225]
    np.testing.assert_allclose(y[0, :, 0, 0], expected, rtol=1e-5)
    with pytest.raises(ValueError, match="RGB"):
        prep(torch.zeros(1, 1, 8, 8))


def test_torchvision_features():
    pytest.importorskip("torchvision")
    ext = rg.torchvision_features("resnet18", size=64)
    with torch.no_grad():
        f = ext(torch.rand(2, 3, 32, 32) * 2 - 1)
    assert f.shape == (2, 512)


def test_torchvision_missing_is_explained():
    try:
        import torchvision  # noqa: F401
    except ImportError:
        with pytest.raises(ImportError, match="torchvision"):
            rg.torchvision_features("resnet50")
    else:
        pytest.skip("torchvision is installed")


# ------------------------------------------------------------------ Lipschitz
def test_lipschitz_of_a_linear_map():
    A = torch.randn(7, 5, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = torch.randn(3, 5, dtype=torch.float64)
    est = rg.lipschitz_estimate(lambda v: v @ A.T, x, n_iter=200, tol=1e-12)
    sigma = np.linalg.svd(A.numpy(), compute_uv=False)[0]
    np.testing.assert_allclose(est.values, sigma, rtol=1e-8)
    assert est.converged and est.max == pytest.approx(sigma)


def test_lipschitz_matches_the_exact_jacobian():
    gen = rg.digits_generator()
    z = torch.from_numpy(gen.sample_latent(3, np.random.default_rng(5)))
    y = torch.tensor([2, 5, 9])
    est = rg.lipschitz_estimate(lambda v: gen(v, y).flatten(1), z, n_iter=300, tol=1e-9)
    for i in range(3):
        J = torch.autograd.functional.jacobian(lambda v, i=i: gen(v[None], y[i:i + 1]).flatten(), z[i])
        exact = torch.linalg.matrix_norm(J.double(), ord=2).item()
        assert est.values[i] == pytest.approx(exact, rel=1e-4)


def test_features_lipschitz_of_digits_cnn():
    images, _ = rg.digits_data()
    est = rg.features_lipschitz(rg.digits_features(), torch.from_numpy(images[:6]), n_iter=100)
    assert est.values.shape == (6,) and np.all(est.values > 0)


def test_lipschitz_bad_input():
    with pytest.raises(TypeError):
        rg.lipschitz_estimate(lambda v: v, np.zeros((2, 2)))
    with pytest.raises(ValueError, match="n_iter"):
        rg.lipschitz_estimate(lambda v: v, torch.zeros(2, 2), n_iter=0)


def test_lipschitz_estimate_names_a_bad_fn_tol_or_seed():
    x = torch.zeros(2, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match="fn must be a callable.*int"):
        rg.lipschitz_estimate(3, x)
    with pytest.raises(TypeError, match="tol must be a positive real number, got 'a'"):
        rg.lipschitz_estimate(lambda v: v, x, tol="a")
    with pytest.raises(TypeError, match="tol"):
        rg.lipschitz_estimate(lambda v: v, x, tol=True)
    for bad in (0.0, -1e-3, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="tol must be a positive finite number"):
            rg.lipschitz_estimate(lambda v: v, x, tol=bad)
    with pytest.raises(ValueError, match="n_iter"):  # non-integers stay a ValueError
        rg.lipschitz_estimate(lambda v: v, x, n_iter=2.5)
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        rg.lipschitz_estimate(lambda v: v, x, seed=-1)
    with pytest.raises(TypeError, match="seed"):
        rg.lipschitz_estimate(lambda v: v, x, seed=1.5)
    # NumPy numbers are as good as Python's
    est = rg.lipschitz_estimate(lambda v: 2 * v, x + 1, n_iter=np.int64(5), tol=np.float64(1e-6),
                                seed=np.int64(1))
    np.testing.assert_allclose(est.values, 2.0)


def test_generator_lipschitz_names_a_bad_seed():
    with pytest.raises(ValueError, match="seed must be a non-negative integer"):
        rg.generator_lipschitz(Affine(), classes=[0], n_points=2, seed=-1)


# -------------------------------------------------------------- concentration
def test_concentration_check_on_gaussian_data():
    rng = np.random.default_rng(0)
    p, n = 200, 2000
    scales = np.linspace(0.5, 2.0, p)
    X = np.concatenate([rng.standard_normal((n, p)) * scales, 1.0 + rng.standard_normal((n, p))])
    lab = np.repeat([0, 1], n)
    rep = rg.concentration_check(X, lab, n_projections=5)
    np.testing.assert_allclose(rep.norm_ratio, 1.0, atol=0.1)
    np.testing.assert_allclose(rep.centred_std / rep.centred_std_gaussian, 1.0, atol=0.1)
    assert np.abs(rep.projection_kurtosis).max() < 0.4
    # the Gaussian prediction itself against the exact formula (class 1: C = I, mu = 1)
    exact = np.sqrt(2 * p + 4 * p) / (2 * np.sqrt(p * 2 * p))
    assert rep.norm_std_gaussian[1] == pytest.approx(exact, rel=0.1)
    assert "concentration check" in rep.summary()


def test_concentration_check_flags_radial_fluctuations():
    rng = np.random.default_rng(1)
    p, n = 200, 2000
    r = rng.choice([0.5, 1.5], size=(n, 1))  # a scale mixture: not concentrated
    rep = rg.concentration_check(r * rng.standard_normal((n, p)), np.zeros(n, int))
    assert rep.norm_ratio[0] > 5
    assert rep.projection_kurtosis.mean() > 0.5


def test_concentration_check_validation():
    with pytest.raises(ValueError, match="at least 4"):
        rg.concentration_check(np.zeros((3, 5)), [0, 0, 0])
    with pytest.raises(ValueError):
        rg.concentration_check(np.zeros((4, 5)), [0, 0, 0])
    X = np.random.default_rng(0).standard_normal((12, 5))
    X[6:] = 1.0  # class 1 constant
    with pytest.raises(ValueError, match="class .*1.* has constant features"):
        rg.concentration_check(X, [0] * 6 + [1] * 6)


def test_concentration_check_names_a_bad_seed():
    X = np.random.default_rng(0).standard_normal((8, 5))
    lab = [0] * 4 + [1] * 4
    with pytest.raises(ValueError, match="seed must be a non-negative integer, got -1"):
        rg.concentration_check(X, lab, seed=-1)
    for bad in (1.5, "0", True):
        with pytest.raises(TypeError, match="seed"):
            rg.concentration_check(X, lab, seed=bad)
    a = rg.concentration_check(X, lab, seed=np.int64(3))
    b = rg.concentration_check(X, lab, seed=3)
    np.testing.assert_array_equal(a.projection_std, b.projection_std)


@pytest.mark.slow
def test_gan_features_behave_like_the_gaussian_mixture():
    """The paper's claim on the digits: GAN-feature Gram spectrum = that of the Gaussian surrogate."""
    from scipy.stats import ks_2samp

    fm = rg.feature_moments(rg.digits_generator(), rg.digits_features(), classes=[0, 1, 2],
                            n_per_class=6000, return_sample=500, batch_size=512)
    model = fm.to_model(sizes=[500, 500, 500])
    Y, _ = model.sample(rng=1)

    def spectrum(X):
        return np.sort(np.linalg.eigvalsh(X.T @ X / X.shape[1]))[::-1]

    a, b = spectrum(fm.sample), spectrum(Y)
    np.testing.assert_allclose(a[:3], b[:3], rtol=0.1)  # the k spikes
    assert ks_2samp(a[3:], b[3:]).statistic < 0.1  # the bulk
    rep = rg.concentration_check(fm.sample, fm.sample_labels)
    assert np.all(rep.norm_ratio < 2)


# --------------------------------------------------------------------- misc
def test_threads_helpers():
    old = torch.get_num_threads()
    with rg.threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == old
    prev = rg.set_threads(1)
    assert torch.get_num_threads() == 1
    rg.set_threads(prev)
    with pytest.raises(ValueError):
        rg.set_threads(0)
    with pytest.raises(TypeError):
        rg.set_threads(1.5)
    assert 1 <= rg.default_threads() <= 2 and rg.available_cores() >= 1


def test_set_threads_accepts_numpy_integers_not_bools():
    old = torch.get_num_threads()
    try:
        rg.set_threads(np.int64(1))
        assert torch.get_num_threads() == 1
        with rg.threads(np.int32(1)):
            assert torch.get_num_threads() == 1
        for bad in (True, np.bool_(True)):
            with pytest.raises(TypeError, match="n must be a positive integer"):
                rg.set_threads(bad)
        with pytest.raises(ValueError, match="n must be a positive integer"):
            rg.set_threads(np.int64(0))
    finally:
        torch.set_num_threads(old)


def test_default_thread_policy(monkeypatch):
    from rmtgan.gan import _torch

    old = torch.get_num_threads()
    try:
        # an explicit OMP_NUM_THREADS or MKL_NUM_THREADS is left to torch
        monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
        for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            monkeypatch.setattr(_torch, "_threads_decided", False)
            monkeypatch.setenv(var, "3")
            torch.set_num_threads(1)
            _torch.ensure_threads()
            assert torch.get_num_threads() == 1
            monkeypatch.delenv(var)
        # otherwise the default is applied once, at first use
        monkeypatch.setattr(_torch, "_threads_decided", False)
        monkeypatch.setattr(_torch, "available_cores", lambda: 8)
        _torch.ensure_threads()
        assert torch.get_num_threads() == 2
        torch.set_num_threads(5)
        _torch.ensure_threads()
        assert torch.get_num_threads() == 5
        monkeypatch.setattr(_torch, "available_cores", lambda: 2)
        assert _torch.default_threads() == 1
        monkeypatch.setattr(_torch, "available_cores", lambda: 1)
        assert _torch.default_threads() == 1
    finally:
        torch.set_num_threads(old)


def test_import_rmtgan_does_not_import_torch():
    code = "import sys, rmtgan, rmtgan.model; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
