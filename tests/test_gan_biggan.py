"""BigGAN through pytorch-pretrained-biggan: configs, random init, local loading, strictness."""

from __future__ import annotations

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ppb = pytest.importorskip("pytorch_pretrained_biggan")

import rmtgan.gan as rg  # noqa: E402

pytestmark = [pytest.mark.torch, pytest.mark.usefixtures("one_torch_thread")]




@pytest.fixture(scope="module")
def tiny():
    """A 16x16 BigGAN with 10 classes: builds and runs in well under a second."""
    cfg = rg.biggan_config(output_dim=16, channel_width=4, z_dim=16, num_classes=10)
    return rg.random_biggan(cfg, seed=3)


def _latents(gen, n, seed=0):
    rng = np.random.default_rng(seed)
    return torch.from_numpy(gen.sample_latent(n, rng))


def test_biggan_config_matches_the_package_default():
    # the package's own 128x128 layout is the reference
    ref = ppb.BigGANConfig()
    cfg = rg.biggan_config(output_dim=128, channel_width=128)
    assert [tuple(x) for x in cfg.layers] == [tuple(x) for x in ref.layers]
    assert cfg.attention_layer_position == ref.attention_layer_position
    assert cfg.output_dim == 128 and cfg.channel_width == 128


@pytest.mark.parametrize("kwargs", [{"output_dim": 24}, {"output_dim": 8}, {"channel_width": 2},
                                    {"output_dim": 16, "channel_width": 4, "attention": True, "z_dim": 0}])
def test_biggan_config_rejects_bad_values(kwargs):
    with pytest.raises(ValueError):
        rg.biggan_config(**kwargs)


def test_inconsistent_config_is_rejected():
    cfg = rg.biggan_config(32, 4)
    cfg.output_dim = 64
    with pytest.raises(ValueError, match="up-sampling"):
        rg.random_biggan(cfg)
    with pytest.raises(TypeError, match="BigGANConfig"):
        rg.random_biggan({"output_dim": 32})


def test_random_biggan_outputs_are_finite_images(tiny):
    z = _latents(tiny, 6)
    y = torch.tensor([0, 1, 2, 3, 4, 5])
    with torch.no_grad():
        x = tiny(z, y)
    assert x.shape == (6, 3, 16, 16)
    assert torch.isfinite(x).all()
    assert x.abs().max() <= 1.0
    assert x.std() > 1e-3  # not a constant image


def test_random_biggan_is_class_dependent(tiny):
    n = 24
    z = _latents(tiny, 2 * n, seed=1)
    with torch.no_grad():
        a = tiny(z[:n], torch.full((n,), 2)).flatten(1).double()
        b = tiny(z[n:], torch.full((n,), 7)).flatten(1).double()
    gap = (a.mean(0) - b.mean(0)).norm()
    # without class dependence E gap^2 = se^2 (se: noise of the difference of the two means)
    se = torch.sqrt((a.var(0).sum() + b.var(0).sum()) / n)
    assert gap > 3 * se
    # the same latents give different images for different classes
    with torch.no_grad():
        c = tiny(z[:n], torch.full((n,), 7)).flatten(1).double()
    assert (a - c).norm(dim=1).min() > 0


def test_random_biggan_spectral_norms_are_one(tiny):
    # the weight actually used in eval mode has largest singular value 1
    from torch.nn.utils.spectral_norm import SpectralNorm

    checked = 0
    with torch.no_grad():
        for mod in tiny.modules():
            for hook in mod._forward_pre_hooks.values():
                if isinstance(hook, SpectralNorm):
                    w = hook.compute_weight(mod, do_power_iteration=False)
                    mat = w.reshape(w.shape[0], -1).double()
                    assert torch.linalg.matrix_norm(mat, ord=2).item() == pytest.approx(1.0, rel=1e-4)
                    checked += 1
    assert checked > 10


def test_the_package_initialisation_is_not_usable():
    # why random_biggan exists: eval mode trusts random u, v (sigma is not the norm)
    from torch.nn.utils.spectral_norm import SpectralNorm

    torch.manual_seed(0)
    model = ppb.BigGAN(rg.biggan_config(16, 4, z_dim=16, num_classes=10)).eval()
    ratios = []
    with torch.no_grad():
        for mod in model.modules():
            for hook in mod._forward_pre_hooks.values():
                if isinstance(hook, SpectralNorm):
                    w = hook.compute_weight(mod, do_power_iteration=False)
                    ratios.append(torch.linalg.matrix_norm(w.reshape(w.shape[0], -1), ord=2).item())
    assert max(abs(r - 1.0) for r in ratios) > 0.5


def test_random_biggan_is_seeded_and_leaves_global_rng_alone():
    cfg = rg.biggan_config(16, 4, z_dim=16, num_classes=10)
    state = torch.random.get_rng_state()
    g1 = rg.random_biggan(cfg, seed=5)
    assert torch.equal(torch.random.get_rng_state(), state)
    g2 = rg.random_biggan(cfg, seed=5)
    g3 = rg.random_biggan(cfg, seed=6)
    z, y = _latents(g1, 4), torch.arange(4)
    with torch.no_grad():
        a, b, c = g1(z, y), g2(z, y), g3(z, y)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)


def test_round_trip_through_a_directory(tiny, tmp_path, monkeypatch):
    # loading must never touch the network: make any download attempt fail
    def no_network(*args, **kwargs):
        raise AssertionError("load_biggan tried to download")

    monkeypatch.setattr(ppb.model, "cached_path", no_network)
    monkeypatch.setattr(ppb.file_utils, "cached_path", no_network)
    rg.save_biggan(tiny, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json", "pytorch_model.bin"]
    loaded = rg.load_biggan(tmp_path, truncation=tiny.truncation)
    z, y = _latents(tiny, 5, seed=9), torch.tensor([0, 3, 3, 9, 1])
    with torch.no_grad():
        assert torch.equal(tiny(z, y), loaded(z, y))
    assert not any(p.requires_grad for p in loaded.parameters())
    # the same through the environment variable
    monkeypatch.setenv(rg.BIGGAN_DIR_ENV, str(tmp_path))
    again = rg.load_biggan(truncation=tiny.truncation)
    with torch.no_grad():
        assert torch.equal(tiny(z, y), again(z, y))


def test_missing_directory_or_files(tmp_path, monkeypatch):
    monkeypatch.delenv(rg.BIGGAN_DIR_ENV, raising=False)
    with pytest.raises(FileNotFoundError, match=rg.BIGGAN_DIR_ENV):
        rg.load_biggan()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        rg.load_biggan(tmp_path / "nowhere")
    (tmp_path / "config.json").write_text(rg.biggan_config(16, 4).to_json_string())
    with pytest.raises(FileNotFoundError, match="pytorch_model.bin"):
        rg.load_biggan(tmp_path)


def test_a_file_given_as_the_directory_is_named_as_such(tmp_path, monkeypatch):
    file = tmp_path / "config.json"
    file.write_text(rg.biggan_config(16, 4).to_json_string())
    with pytest.raises(FileNotFoundError, match="exists but is not a directory") as info:
        rg.load_biggan(file)
    assert "does not exist" not in str(info.value)
    monkeypatch.setenv(rg.BIGGAN_DIR_ENV, str(file))
    with pytest.raises(FileNotFoundError, match=f"{rg.BIGGAN_DIR_ENV}.*exists but is not a directory"):
        rg.load_biggan()


def test_strict_mismatch_is_reported(tiny, tmp_path):
    rg.save_biggan(tiny, tmp_path)
    # 1. a config that does not fit the weights: shapes differ
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["channel_width"] = 8
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(rg.StateDictMismatchError, match="shape mismatches") as info:
        rg.load_biggan(tmp_path)
    assert isinstance(info.value, ValueError) and info.value.mismatched
    # 2. a missing and an unexpected key
    rg.save_biggan(tiny, tmp_path)
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    del state["generator.layers.0.conv_0.bias"]
    state["generator.extra.weight"] = torch.zeros(3)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(rg.StateDictMismatchError) as info:
        rg.load_biggan(tmp_path)
    assert info.value.missing == ["generator.layers.0.conv_0.bias"]
    assert info.value.unexpected == ["generator.extra.weight"]
    assert "missing keys" in str(info.value) and "unexpected keys" in str(info.value)
    # 3. integer weights for a float parameter: load_state_dict would cast them silently
    rg.save_biggan(tiny, tmp_path)
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    key = "generator.layers.0.conv_0.bias"
    state[key] = state[key].round().to(torch.int64)
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(TypeError, match=f"wrong kind of dtype: {key} torch.int64"):
        rg.load_biggan(tmp_path)
    state[key] = state[key].to(torch.float16)  # a half-precision checkpoint is fine
    torch.save(state, tmp_path / "pytorch_model.bin")
    rg.load_biggan(tmp_path)
    # so is an integer counter stored as a float (converted checkpoints do that)
    from rmtgan.gan.generators import load_state_dict_strict

    bn = torch.nn.BatchNorm1d(3)
    state = {k: v.clone() for k, v in bn.state_dict().items()}
    state["num_batches_tracked"] = state["num_batches_tracked"].double()
    load_state_dict_strict(bn, state, "bn")
    state["weight"] = state["weight"].to(torch.int64)
    with pytest.raises(TypeError, match="weight torch.int64 in file vs torch.float32"):
        load_state_dict_strict(bn, state, "bn")


def test_corrupt_files(tiny, tmp_path):
    rg.save_biggan(tiny, tmp_path)
    (tmp_path / "config.json").write_text("{not json")
    with pytest.raises(ValueError, match="JSON"):
        rg.load_biggan(tmp_path)
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(ValueError, match="JSON object"):
        rg.load_biggan(tmp_path)
    rg.save_biggan(tiny, tmp_path)
    (tmp_path / "pytorch_model.bin").write_bytes(b"garbage")
    with pytest.raises(ValueError, match="cannot read"):
        rg.load_biggan(tmp_path)
    # finite weights, NaN images: a zeroed spectral-norm vector divides by zero
    rg.save_biggan(tiny, tmp_path)
    state = torch.load(tmp_path / "pytorch_model.bin", weights_only=True)
    state["generator.gen_z.weight_u"].zero_()
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(ValueError, match="non-finite images"):
        rg.load_biggan(tmp_path)


def test_imagenet_class_names():
    gen = rg.random_biggan(rg.biggan_config(16, 4, z_dim=8, num_classes=1000), seed=0)
    # ImageNet indices of the paper's classes
    assert gen.class_index("mushroom") == 947
    assert gen.class_index("pizza") == 963
    assert gen.class_index("cheeseburger") == 933
    assert gen.class_index("Hamburger") == 933
    assert gen.class_index(12) == 12
    with pytest.raises(ValueError, match="unknown class name"):
        gen.class_index("unicorn")
    with pytest.raises(ValueError, match="outside"):
        gen.class_index(1000)


def test_truncation_is_validated_and_used(tiny):
    with pytest.raises(ValueError, match="truncation"):
        rg.BigGANGenerator(tiny.model, truncation=0.0)
    with pytest.raises(ValueError, match="truncation"):
        rg.BigGANGenerator(tiny.model, truncation=1.5)
    z = tiny.sample_latent(2000, np.random.default_rng(0))
    assert z.dtype == np.float32 and z.shape == (2000, tiny.latent_dim)
    assert np.abs(z).max() <= 2 * tiny.truncation + 1e-6


def test_truncated_normal_distribution():
    from scipy import stats

    z = rg.truncated_normal(np.random.default_rng(1), (20000,), truncation=0.5)
    # reference: scipy's truncated normal on [-2, 2], scaled by 0.5
    ks = stats.kstest(z, stats.truncnorm(-2, 2, scale=0.5).cdf)
    assert ks.pvalue > 1e-3
    # consecutive draws concatenate
    r1, r2 = np.random.default_rng(4), np.random.default_rng(4)
    a = np.concatenate([rg.truncated_normal(r1, (3, 5)), rg.truncated_normal(r1, (4, 5))])
    assert np.array_equal(a, rg.truncated_normal(r2, (7, 5)))


def test_biggan_checks_its_inputs(tiny):
    z = _latents(tiny, 2)
    with pytest.raises(TypeError, match="int64"):
        tiny(z, torch.tensor([0, 1], dtype=torch.int32))
    with pytest.raises(ValueError, match="shape"):
        tiny(z[:, :5], torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="shape"):
        tiny(z, torch.tensor([0, 1, 2]))


def test_biggan_lipschitz_estimate_is_finite(tiny):
    est = rg.generator_lipschitz(tiny, classes=[1, 2], n_points=4, n_iter=30, tol=1e-3)
    assert est.values.shape == (4,)
    assert np.all(np.isfinite(est.values)) and est.max > 0
