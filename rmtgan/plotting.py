"""Matplotlib figures of a :class:`rmtgan.comparison.Comparison`.

Every function takes the result of :func:`rmtgan.compare` (never solver internals) and
returns a :class:`matplotlib.figure.Figure`.  Figures are built with the object-oriented
API (``matplotlib.figure.Figure``), not ``pyplot``: nothing is registered with a GUI
backend, nothing is shown, and the functions are safe in headless processes and
threads.  Save with ``fig.savefig(path)``; to display in a notebook, return the figure
from a cell.

Conventions: ``G = X^T X / p`` with ``X = features.T``; eigenvalues are in squared
feature units; densities are per ``n`` eigenvalues (they integrate to ``1 - atom``).
"""

from __future__ import annotations

import numbers

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from rmtgan.comparison import Comparison, EmpiricalComparison

__all__ = ["plot_alignments", "plot_comparison", "plot_eigenvectors", "plot_spectrum"]

_PRED = "black"
_DATA = "tab:blue"
_SURR = "tab:orange"


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.3g}"


def _check_result(result) -> Comparison:
    if not isinstance(result, Comparison):
        raise TypeError(f"result must be a Comparison (from rmtgan.compare()), got {type(result).__name__}")
    return result


def _dataset(result: Comparison, dataset: str) -> EmpiricalComparison:
    if dataset == "features":
        return result.features
    if dataset == "surrogate":
        if result.surrogate is None:
            raise ValueError("this comparison has no surrogate (compare(..., surrogate=False))")
        return result.surrogate
    raise ValueError(f"dataset must be 'features' or 'surrogate', got {dataset!r}")


def _axes(ax, ncols: int = 1, figsize=(6.4, 4.2)):
    if ax is None:
        fig = Figure(figsize=figsize, layout="constrained")
        axs = fig.subplots(1, ncols, squeeze=False)[0]
        return fig, list(axs)
    if ncols == 1:
        if not isinstance(ax, Axes):
            raise TypeError(f"ax must be a matplotlib Axes, got {type(ax).__name__}")
        return ax.figure, [ax]
    axs = list(np.ravel(ax))
    if len(axs) != ncols or not all(isinstance(a, Axes) for a in axs):
        raise TypeError(f"ax must be a sequence of {ncols} matplotlib Axes")
    return axs[0].figure, axs


def plot_spectrum(result: Comparison, *, dataset: str = "features", bins: int | None = None,
                  ax: Axes | None = None, title: str | None = None, xmax: float | None = None) -> Figure:
    """Histogram of the eigenvalues of ``G``, predicted bulk density and spike markers.

    Parameters
    ----------
    result : Comparison
    dataset : {'features', 'surrogate'}
    bins : int, optional
        Number of equal-width bins on ``[0, largest eigenvalue]`` (default about
        ``2 sqrt(m)``, ``m`` non-zero eigenvalues).
    ax : matplotlib Axes, optional
        Draw into it (its figure is returned).
    title : str, optional
    xmax : float, optional
        Right end of the plot (e.g. a little beyond the bulk, when far spikes would
        squash it); spikes beyond it are listed in a note instead of drawn.

    Returns
    -------
    matplotlib.figure.Figure

    Notes
    -----
    The ``round(atom * n)`` eigenvalues attributed to the atom at 0 are left out; the
    histogram is normalised per ``n`` eigenvalues, like the predicted density (black
    curve).  Predicted spikes are dashed vertical lines, the matched empirical
    eigenvalues triangles on the axis.
    """
    res = _check_result(result)
    emp = _dataset(res, dataset)
    if bins is not None and (isinstance(bins, bool) or not isinstance(bins, (int, np.integer)) or bins < 1):
        raise ValueError(f"bins must be a positive integer, got {bins!r}")
    fig, (a,) = _axes(ax)
    vals = emp.eigenvalues[emp.n_zero:]
    top = max(float(vals.max()) if vals.size else 0.0, float(np.max(res.spike_values, initial=0.0)),
              float(res.density_x[-1]) if res.density_x.size else 0.0)
    beyond_pred = np.zeros(0)
    if xmax is not None:
        if isinstance(xmax, (bool, np.bool_)) or not isinstance(xmax, numbers.Real):
            raise TypeError(f"xmax must be a number, got {xmax!r}")
        if not np.isfinite(xmax) or xmax <= 0:
            raise ValueError(f"xmax must be positive, got {xmax!r}")
        top = float(xmax) / 1.02
        beyond_pred = res.spike_values[res.spike_values > xmax]
        vals = vals[vals <= xmax]
    nb = bins if bins is not None else int(np.clip(2 * np.sqrt(max(vals.size, 1)), 20, 200))
    edges = np.linspace(0.0, top * 1.02 if top > 0 else 1.0, nb + 1)
    width = edges[1] - edges[0]
    color = _DATA if dataset == "features" else _SURR
    if vals.size:
        a.hist(vals, bins=edges, weights=np.full(vals.size, 1.0 / (emp.n * width)), color=color, alpha=0.55,
               label=f"{dataset} eigenvalues")
    keep = res.density_x <= top * 1.02
    a.plot(res.density_x[keep], res.density_y[keep], color=_PRED, lw=1.5, label="predicted density")
    shown = res.spike_values[res.spike_values <= top * 1.02]
    for i, v in enumerate(shown):
        a.axvline(float(v), color=_PRED, ls="--", lw=1.0, label="predicted spikes" if i == 0 else None)
    emp_shown = emp.spike_values[emp.spike_values <= top * 1.02]
    if emp_shown.size:
        a.plot(emp_shown, np.zeros(emp_shown.size), "^", color=color, ms=8, clip_on=False,
               label=f"{dataset} spikes")
    if beyond_pred.size:
        far = emp.spike_values[emp.spike_values > top * 1.02]
        note = "beyond the plot: predicted spikes " + ", ".join(f"{v:.4g}" for v in beyond_pred)
        if far.size:
            note += f"; {dataset} " + ", ".join(f"{v:.4g}" for v in far)
        a.text(0.02, 0.97, note, transform=a.transAxes, fontsize="x-small", va="top", wrap=True)
    a.set_xlabel("eigenvalue of G = X^T X / p")
    a.set_ylabel("density (per n eigenvalues)")
    a.set_ylim(bottom=0.0)
    default = f"{dataset}: KS = {_fmt(emp.ks)}, W1 = {_fmt(emp.wasserstein)}"
    a.set_title(title if title is not None else default)
    a.legend(fontsize="small")
    return fig


def _scatter(a: Axes, emp: EmpiricalComparison, pair, class_labels, title: str) -> None:
    i, j = pair
    U = emp.leading_vectors
    k = len(class_labels)
    cmap = [f"C{c % 10}" for c in range(k)]
    for c in range(k):
        sel = emp.labels == c
        if U.shape[1] > max(i, j):
            a.scatter(U[sel, i], U[sel, j], s=6, color=cmap[c], alpha=0.7, label=str(class_labels[c]))
        else:
            a.scatter(np.flatnonzero(sel), U[sel, i], s=6, color=cmap[c], alpha=0.7,
                      label=str(class_labels[c]))
    if U.shape[1] > max(i, j):
        a.set_xlabel(f"u_{i + 1}")
        a.set_ylabel(f"u_{j + 1}")
    else:
        a.set_xlabel("sample index")
        a.set_ylabel(f"u_{i + 1}")
    a.set_title(title)
    a.legend(fontsize="small", markerscale=2)


def plot_eigenvectors(result: Comparison, *, pair: tuple[int, int] = (0, 1), ax=None) -> Figure:
    """Leading eigenvectors of ``G`` coloured by class: features beside the Gaussian surrogate.

    Parameters
    ----------
    result : Comparison
    pair : (int, int)
        0-based indices of the eigenvectors on the axes (``u_{i+1}`` vs ``u_{j+1}``);
        with a single stored eigenvector it is plotted against the sample index.
    ax : sequence of matplotlib Axes, optional
        One axes per data set (two with a surrogate).

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _check_result(result)
    if (not isinstance(pair, (tuple, list)) or len(pair) != 2
            or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in pair)):
        raise TypeError(f"pair must be two integers, got {pair!r}")
    q = res.features.leading_vectors.shape[1]
    if min(pair) < 0 or pair[0] >= q or (q > 1 and pair[1] >= q):
        raise ValueError(f"pair {tuple(pair)} is out of range: {q} eigenvector(s) stored "
                         "(use compare(..., n_vectors=...))")
    sets = [("features", res.features)]
    if res.surrogate is not None:
        sets.append(("surrogate", res.surrogate))
    fig, axs = _axes(ax, ncols=len(sets), figsize=(5.0 * len(sets), 4.2))
    for a, (name, emp) in zip(axs, sets, strict=True):
        _scatter(a, emp, tuple(pair), res.class_labels, f"{name} (n = {emp.n}, p = {emp.p})")
    return fig


def plot_alignments(result: Comparison, *, ax: Axes | None = None) -> Figure:
    """Class alignments ``(j_a^T u_i)^2 / n_a`` of the spike eigenvectors: predicted vs empirical.

    One group of bars per (spike, class); black outlines are the prediction, blue the
    features, orange the surrogate.

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _check_result(result)
    fig, (a,) = _axes(ax, figsize=(max(6.4, 1.2 * max(1, res.alignments.size)), 4.2))
    s, k = res.alignments.shape
    if s == 0:
        a.text(0.5, 0.5, "no spikes predicted", ha="center", va="center", transform=a.transAxes)
        a.set_axis_off()
        return fig
    sets = [("predicted", res.alignments, "white", _PRED)]
    sets.append(("features", res.features.alignments, _DATA, _DATA))
    if res.surrogate is not None:
        sets.append(("surrogate", res.surrogate.alignments, _SURR, _SURR))
    width = 0.8 / len(sets)
    pos = np.arange(s * k, dtype=float)
    for m, (name, vals, face, edge) in enumerate(sets):
        a.bar(pos + (m - (len(sets) - 1) / 2) * width, vals.reshape(-1), width, color=face, edgecolor=edge,
              label=name)
    a.set_xticks(pos, [f"spike {i + 1}\n{res.class_labels[c]}" for i in range(s) for c in range(k)],
                 fontsize="small")
    a.set_ylabel("(j_a^T u_i)^2 / n_a")
    a.set_ylim(bottom=0.0)
    a.legend(fontsize="small")
    a.set_title("class alignments of the spike eigenvectors")
    return fig


def plot_comparison(result: Comparison) -> Figure:
    """One figure: spectra (features, surrogate), eigenvectors, alignments.

    Returns
    -------
    matplotlib.figure.Figure
    """
    res = _check_result(result)
    fig = Figure(figsize=(13.0, 8.5), layout="constrained")
    axs = fig.subplots(2, 3)
    plot_spectrum(res, dataset="features", ax=axs[0, 0])
    if res.surrogate is not None:
        plot_spectrum(res, dataset="surrogate", ax=axs[0, 1])
        plot_eigenvectors(res, pair=(0, 1) if res.features.leading_vectors.shape[1] > 1 else (0, 0),
                          ax=[axs[1, 0], axs[1, 1]])
    else:
        axs[0, 1].set_axis_off()
        plot_eigenvectors(res, pair=(0, 1) if res.features.leading_vectors.shape[1] > 1 else (0, 0),
                          ax=axs[1, 0])
        axs[1, 1].set_axis_off()
    plot_alignments(res, ax=axs[0, 2])
    txt = axs[1, 2]
    txt.set_axis_off()
    lines = [f"predicted: atom {res.atom:.3g}, {len(res.spike_values)} spike(s)"]
    for name, emp in (("features", res.features), ("surrogate", res.surrogate)):
        if emp is None:
            continue
        lines.append(f"{name}: KS {_fmt(emp.ks)}, W1 {_fmt(emp.wasserstein)}")
        if emp.spike_relative_errors.size:
            lines.append(f"  max |spike rel. error| {np.max(np.abs(emp.spike_relative_errors)):.3g}")
            lines.append(f"  max alignment error {np.max(emp.alignment_errors):.3g}")
    txt.text(0.0, 1.0, "\n".join(lines), va="top", ha="left", family="monospace", fontsize="small",
             transform=txt.transAxes)
    return fig
