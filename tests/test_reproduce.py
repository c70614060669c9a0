"""The reproduction pipeline: a small run end to end, outputs and acceptance logic."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from rmtgan import reproduce as rp  # noqa: E402

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class _Projection(torch.nn.Module):
    """Digits CNN features projected on a fixed random 40-dim subspace (keeps p small)."""

    def __init__(self):
        super().__init__()
        from rmtgan import gan

        self.net = gan.digits_features()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("w", torch.randn(512, 40, generator=g) / np.sqrt(512))

    def forward(self, x):
        return self.net(x) @ self.w




@pytest.mark.slow
def test_small_run_writes_everything(tmp_path):
    cfg = rp.ReproduceConfig(classes=(0, 1, 7), features=_Projection(), n=150, n_moments=1500, draws=3,
                             bootstrap=8, seed=3, progress=False, project=None)
    m = rp.reproduce(cfg, tmp_path)
    for name in ("metrics.json", "report.md", "spectrum_gan.png", "spectrum_gaussian.png",
                 "eigenvectors.png", "alignments.png", "universality.png"):
        assert (tmp_path / name).stat().st_size > 0, name
    saved = json.loads((tmp_path / "metrics.json").read_text())
    for key in ("ks_gan", "ks_gaussian", "spikes", "alignments", "classifiers", "universality_pvalue",
                "config", "seed"):
        assert key in saved
    assert set(saved["spikes"]) >= {"predicted", "gan", "gaussian"}
    assert set(saved["alignments"]) >= {"predicted", "gan", "gaussian"}
    assert saved["seed"] == 3 and saved["p"] == 40
    # the p-value of a bootstrap with B draws lies on the grid 1/(B+1), ..., 1
    assert saved["universality_pvalue"] * 9 == pytest.approx(round(saved["universality_pvalue"] * 9))
    assert 0 < saved["universality_pvalue"] <= 1
    for meth in ("spectral_clustering", "ls_svm"):
        for side in ("gan", "gaussian"):
            r = saved["classifiers"][meth][side]
            assert r["low"] <= r["mean"] <= r["high"] and len(r["values"]) == 3
            assert all(0 <= v <= 1 for v in r["values"])
    assert "acceptance" in saved and isinstance(saved["acceptance"]["all"], bool)
    report = (tmp_path / "report.md").read_text()
    assert "universality" in report.lower() and "spectrum_gan.png" in report
    table = rp.summary_table(m)
    assert "KS distance" in table and "acceptance" in table


def test_classifier_helpers_on_separated_data():
    rng = np.random.default_rng(0)
    k, per, p = 3, 60, 50
    means = rng.standard_normal((k, p)) * 3
    y = np.repeat(np.arange(k), per)
    X = means[y] + rng.standard_normal((k * per, p))
    assert rp.spectral_clustering_accuracy(X, y, k) == 1.0
    half = np.arange(y.size) % 2 == 0
    assert rp.ls_svm_accuracy(X[half], y[half], X[~half], y[~half], k) == 1.0
    # labels carry no information: accuracy near chance
    Z = rng.standard_normal((k * per, p))
    acc = rp.ls_svm_accuracy(Z[half], y[half], Z[~half], y[~half], k)
    assert acc < 0.6


def test_acceptance_logic():
    base = {"ks_gan": 0.04, "ks_gaussian": 0.01,
            "spikes": {"relative_error_gan": [0.01, -0.04]},
            "alignments": {"abs_error_gan": [[0.01, 0.02]]},
            "classifiers": {"a": {"agree": True}}}
    assert rp._acceptance(base)["all"]
    worse = dict(base, ks_gan=0.06)
    assert not rp._acceptance(worse)["ks"]  # 0.06 > max(0.02, 0.05)
    spikes_bad = dict(base, spikes={"relative_error_gan": [0.06]})
    assert not rp._acceptance(spikes_bad)["spikes"]


def test_cli_arguments():
    import argparse

    ap = argparse.ArgumentParser()
    rp.add_arguments(ap)
    cfg = rp.config_from_args(ap.parse_args(["--classes", "947,963,933", "--generator", "random-biggan"]))
    assert cfg.classes == (947, 963, 933) and cfg.generator == "random-biggan"
    with pytest.raises(ValueError, match="--draws"):
        rp.config_from_args(ap.parse_args(["--draws", "1"]))
    with pytest.raises(ValueError, match="module:callable"):
        rp._load_callable("no_colon")
    with pytest.raises(ValueError, match="no attribute"):
        rp._load_callable("numpy:no_such_thing")


@pytest.mark.parametrize("argv, words", [
    (["reproduce", "--classes", "0,0,1"], "repeated"),
    (["reproduce", "--classes", "0,1,12"], "classes 0..9"),
    (["reproduce", "--classes", "\u00b2,3,4"], "classes 0..9"),  # "²".isdigit() is True
    (["reproduce", "--classes", "0,1,"], "empty class id"),
    (["reproduce", "--classes", "3"], "at least 2 classes"),
    (["reproduce", "--n", "31"], "multiple of the number of classes"),
    (["reproduce", "--project", "-5"], "--project"),
    (["reproduce", "--seed", "-1"], "--seed"),
    (["reproduce", "--truncation", "nan"], "--truncation"),
    (["reproduce", "--features", "bad"], "module:callable"),
    (["reproduce", "--bootstrap", "0"], "--bootstrap"),
    (["demo", "--p", "1"], "--p"),
])
def test_cli_reports_bad_options_in_one_line(argv, words, capsys):
    from rmtgan.cli import main

    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


@pytest.mark.parametrize("option, words", [
    (["--layer", "nope"], "layer"),
    (["--features", "os:getcwd"], "--features 'os:getcwd' gave a str"),
])
def test_rejected_run_leaves_no_output_folder(tmp_path, option, words, capsys):
    from rmtgan.cli import main

    out = tmp_path / "results"
    with pytest.raises(SystemExit) as info:
        main(["reproduce", "--out", str(out), "--no-progress", *option])
    assert info.value.code == 2
    assert words in capsys.readouterr().err
    assert not out.exists()


def test_cli_runs_on_one_blas_thread_unless_told(monkeypatch):
    # the command limits BLAS to one thread (the library's worker threads supply the
    # parallelism), except where the environment chooses a count
    from threadpoolctl import threadpool_info, threadpool_limits

    from rmtgan import cli

    for name in cli.BLAS_THREAD_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    seen = []
    monkeypatch.setattr(cli, "build_parser", lambda: _FakeParser(seen))
    with threadpool_limits(limits=2, user_api="blas"):  # whatever the test run's setting
        outside = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
        assert outside and max(outside) == 2
        cli.main([])
        assert seen[0] == [1] * len(outside)
        monkeypatch.setenv("OPENBLAS_NUM_THREADS", "2")
        cli.main([])
        assert seen[1] == outside  # untouched


class _FakeParser:
    def __init__(self, seen):
        self.seen = seen

    def parse_args(self, argv):
        import argparse

        from threadpoolctl import threadpool_info

        def func(args):
            self.seen.append([i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"])
            return 0

        return argparse.Namespace(func=func)
