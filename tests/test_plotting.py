"""rmtgan.plotting: figures from Comparison results (headless, no pyplot state)."""

from __future__ import annotations

import subprocess
import sys

import _mixtures
import numpy as np
import pytest
from matplotlib.figure import Figure

from rmtgan.comparison import compare
from rmtgan.model import MixtureModel
from rmtgan.plotting import plot_alignments, plot_comparison, plot_eigenvectors, plot_spectrum


def small_model():
    return _mixtures.diag_model(40, [60, 80, 50])


@pytest.fixture(scope="module")
def result():
    m = small_model()
    X, lab = m.sample(rng=0)
    return compare(m, X, lab, surrogate_seed=1)


def test_no_pyplot_and_light_compare():
    """plotting never imports pyplot (no GUI backend, no global figure state) and
    compare/spikes do not import matplotlib at all."""
    code = (
        "import sys, rmtgan.comparison, rmtgan.spikes; assert 'matplotlib' not in sys.modules; "
        "import rmtgan.plotting; assert 'matplotlib.pyplot' not in sys.modules"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_spectrum_plot_content(result, tmp_path):
    fig = plot_spectrum(result)
    ax = fig.axes[0]
    # histogram: bar heights integrate (per n eigenvalues) to the non-atom fraction
    bars = [p for p in ax.patches]
    area = sum(b.get_height() * b.get_width() for b in bars)
    f = result.features
    assert area == pytest.approx((f.n - f.n_zero) / f.n, rel=1e-9)
    # density curve is the predicted one; spike markers at the predicted spikes
    xs = [line.get_xdata() for line in ax.get_lines()]
    assert any(np.array_equal(np.asarray(x), result.density_x) for x in xs)
    vlines = [float(np.asarray(line.get_xdata())[0]) for line in ax.get_lines()
              if len(line.get_xdata()) == 2 and line.get_xdata()[0] == line.get_xdata()[1]]
    np.testing.assert_allclose(sorted(vlines), sorted(result.spike_values))
    fig.savefig(tmp_path / "spectrum.png")
    assert (tmp_path / "spectrum.png").stat().st_size > 0
    fig2 = plot_spectrum(result, dataset="surrogate", bins=15)
    assert len(fig2.axes[0].patches) == 15


def test_eigenvector_plot_side_by_side(result, tmp_path):
    fig = plot_eigenvectors(result)
    assert len(fig.axes) == 2
    for ax, emp in zip(fig.axes, (result.features, result.surrogate), strict=True):
        offsets = np.concatenate([c.get_offsets() for c in ax.collections])
        assert offsets.shape == (emp.n, 2)
        # coloured by class: one collection per class
        assert len(ax.collections) == result.k
    fig.savefig(tmp_path / "vectors.png")


def test_alignment_plot(result, tmp_path):
    fig = plot_alignments(result)
    heights = [b.get_height() for b in fig.axes[0].patches]
    s, k = result.alignments.shape
    assert len(heights) == 3 * s * k
    np.testing.assert_allclose(heights[: s * k], result.alignments.ravel())
    np.testing.assert_allclose(heights[s * k: 2 * s * k], result.features.alignments.ravel())
    fig.savefig(tmp_path / "align.png")


def test_comparison_figure_and_into_given_axes(result, tmp_path):
    fig = plot_comparison(result)
    fig.savefig(tmp_path / "all.png")
    host = Figure()
    ax = host.subplots()
    assert plot_spectrum(result, ax=ax) is host


def test_without_surrogate_and_without_spikes(tmp_path):
    m = MixtureModel.from_eigen(np.ones((2, 20)), [30, 30])
    X, lab = m.sample(rng=0)
    res = compare(m, X, lab, surrogate=False, n_vectors=1)
    plot_comparison(res).savefig(tmp_path / "a.png")
    assert len(plot_eigenvectors(res, pair=(0, 0)).axes) == 1
    fig = plot_alignments(res)
    assert "no spikes" in fig.axes[0].texts[0].get_text()
    with pytest.raises(ValueError, match="surrogate"):
        plot_spectrum(res, dataset="surrogate")


def test_bad_input(result):
    with pytest.raises(TypeError, match="Comparison"):
        plot_spectrum({"ks": 0.1})
    with pytest.raises(ValueError, match="dataset"):
        plot_spectrum(result, dataset="gan")
    with pytest.raises(ValueError, match="bins"):
        plot_spectrum(result, bins=0)
    for bad in ("a", True):
        with pytest.raises(TypeError, match="xmax"):
            plot_spectrum(result, xmax=bad)
    for pair in ((5, 6), (0, 5)):  # the second index is checked too
        with pytest.raises(ValueError, match="out of range"):
            plot_eigenvectors(result, pair=pair)
    with pytest.raises(TypeError, match="pair"):
        plot_eigenvectors(result, pair=0)
    with pytest.raises(TypeError, match="Axes"):
        plot_spectrum(result, ax="axes")


def test_spectrum_plot_zoom_lists_far_spikes(result):
    right = result.support[-1][1]
    fig = plot_spectrum(result, xmax=1.1 * right)
    ax = fig.axes[0]
    assert ax.get_xlim()[1] <= 1.1 * right * 1.06
    far = result.spike_values[result.spike_values > 1.1 * right]
    texts = " ".join(t.get_text() for t in ax.texts)
    if far.size:
        assert "beyond the plot" in texts
    with pytest.raises(ValueError, match="xmax"):
        plot_spectrum(result, xmax=-1.0)
