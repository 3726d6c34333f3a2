"""Pictures of attention: heatmaps, alignment matrices and maps laid over images.

Every function takes tensors or arrays (detached and moved to the CPU for you), draws on a
given matplotlib ``Axes`` or a new one, labels both axes and returns what it drew on.
Models never plot; chapters call these.
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import matplotlib.pyplot as plt
import numpy as np
import torch
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from ._checks import shape_str

__all__ = ["to_numpy", "heatmap", "heatmaps", "alignment", "overlay", "plot_bleu_by_length"]

ArrayLike = Union[torch.Tensor, np.ndarray, Sequence]


def to_numpy(x: ArrayLike) -> np.ndarray:
    """A float numpy array from a tensor (any device, with or without grad) or array."""
    if isinstance(x, torch.Tensor):
        return x.detach().to("cpu", torch.float32).numpy()
    return np.asarray(x, dtype=np.float32)


def _matrix(x: ArrayLike, name: str) -> np.ndarray:
    m = to_numpy(x)
    if m.ndim != 2:
        raise ValueError(f"{name} must be a 2-D matrix (rows, columns); got shape {shape_str(m.shape)}")
    return m


def _check_labels(labels: Optional[Sequence[str]], size: int, name: str, axis: str) -> None:
    if labels is not None and len(labels) != size:
        raise ValueError(f"{name} has {len(labels)} labels but the matrix has {size} {axis}")


def heatmap(
    matrix: ArrayLike,
    *,
    ax: Optional[Axes] = None,
    xlabels: Optional[Sequence[str]] = None,
    ylabels: Optional[Sequence[str]] = None,
    xlabel: str = "keys",
    ylabel: str = "queries",
    title: Optional[str] = None,
    cmap: str = "Reds",
    vmin: Optional[float] = 0.0,
    vmax: Optional[float] = None,
    colorbar: bool = True,
    annotate: bool = False,
    fmt: str = "{:.2f}",
) -> Axes:
    """Draw a ``(rows, columns)`` matrix, by default attention weights of shape ``(L, S)``.

    Args:
        matrix: ``(L, S)``: row ``i`` is what query ``i`` attends to.
        ax: where to draw; a new figure when ``None``.
        xlabels, ylabels: tick labels for columns (keys) and rows (queries).
        xlabel, ylabel: axis titles.
        vmin, vmax: colour range; weights lie in ``[0, 1]``, scores may not (pass
            ``vmin=None`` for scores).
        annotate: print each value in its cell (for small matrices).

    Returns:
        The ``Axes``.
    """
    m = _matrix(matrix, "matrix")
    _check_labels(xlabels, m.shape[1], "xlabels", "columns")
    _check_labels(ylabels, m.shape[0], "ylabels", "rows")
    if ax is None:
        _, ax = plt.subplots()
    image = ax.imshow(m, cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if xlabels is not None:
        ax.set_xticks(range(m.shape[1]), labels=list(xlabels), rotation=90)
    if ylabels is not None:
        ax.set_yticks(range(m.shape[0]), labels=list(ylabels))
    if title:
        ax.set_title(title)
    if annotate:
        threshold = (np.nanmax(m) + np.nanmin(m)) / 2
        for (i, j), value in np.ndenumerate(m):
            ax.text(
                j,
                i,
                fmt.format(value),
                ha="center",
                va="center",
                fontsize=8,
                color="white" if value > threshold else "black",
            )
    if colorbar:
        ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return ax


def heatmaps(
    matrices: ArrayLike,
    *,
    titles: Optional[Sequence[Sequence[str]]] = None,
    xlabel: str = "keys",
    ylabel: str = "queries",
    cmap: str = "Reds",
    vmin: Optional[float] = 0.0,
    vmax: Optional[float] = None,
    panel_size: float = 2.5,
    suptitle: Optional[str] = None,
) -> Figure:
    """A grid of heatmaps sharing one colour scale, e.g. heads by layers.

    Args:
        matrices: ``(R, C, L, S)``: ``R`` rows and ``C`` columns of ``(L, S)`` maps.
        titles: ``R`` lists of ``C`` panel titles.

    Returns:
        The ``Figure``.
    """
    grid = to_numpy(matrices)
    if grid.ndim != 4:
        raise ValueError(f"matrices must have shape (R, C, L, S); got {shape_str(grid.shape)}")
    rows, cols = grid.shape[:2]
    vmax = float(np.nanmax(grid)) if vmax is None else vmax
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(panel_size * cols + 0.8, panel_size * rows),
        sharex=True,
        sharey=True,
        squeeze=False,
        constrained_layout=True,
    )
    images = []
    for r in range(rows):
        for c in range(cols):
            ax = axes[r, c]
            images.append(
                ax.imshow(grid[r, c], cmap=cmap, vmin=vmin, vmax=vmax, aspect="auto", interpolation="nearest")
            )
            if r == rows - 1:
                ax.set_xlabel(xlabel)
            if c == 0:
                ax.set_ylabel(ylabel)
            if titles is not None:
                ax.set_title(titles[r][c])
    fig.colorbar(images[-1], ax=axes, shrink=0.8)  # every panel shares vmin and vmax
    if suptitle:
        fig.suptitle(suptitle)
    return fig


def alignment(
    weights: ArrayLike,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    *,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
    cmap: str = "Greys",
) -> Axes:
    """An alignment matrix as in Bahdanau et al. (2015, fig. 3): what each output token read.

    Args:
        weights: ``(T_out, T_in)``: row ``t`` is the attention of output step ``t`` over the
            source tokens.
        source_tokens: ``T_in`` labels, written along the top.
        target_tokens: ``T_out`` labels, written down the left side.

    Returns:
        The ``Axes``.
    """
    m = _matrix(weights, "weights")
    _check_labels(source_tokens, m.shape[1], "source_tokens", "columns (source positions)")
    _check_labels(target_tokens, m.shape[0], "target_tokens", "rows (output steps)")
    if ax is None:
        _, ax = plt.subplots(figsize=(0.8 + 0.32 * m.shape[1], 0.8 + 0.32 * m.shape[0]))
    ax.imshow(m, cmap=cmap, vmin=0.0, vmax=1.0, aspect="equal", interpolation="nearest")
    ax.xaxis.tick_top()
    ax.xaxis.set_label_position("top")
    ax.set_xticks(range(m.shape[1]), labels=list(source_tokens), rotation=90)
    ax.set_yticks(range(m.shape[0]), labels=list(target_tokens))
    ax.set_xlabel("source")
    ax.set_ylabel("output")
    if title:
        ax.set_title(title, pad=12)
    return ax


def overlay(
    image: ArrayLike,
    attention: ArrayLike,
    *,
    ax: Optional[Axes] = None,
    alpha: float = 0.5,
    cmap: str = "jet",
    title: Optional[str] = None,
) -> Axes:
    """Lay an attention map over an image, upsampling the map to the image's size.

    Args:
        image: ``(H, W)`` grey, or ``(3, H, W)`` / ``(H, W, 3)`` colour, values in ``[0, 1]``.
        attention: ``(h, w)`` map, any non-negative scale; resized bilinearly to ``(H, W)``
            and normalised to ``[0, 1]`` for display.

    Returns:
        The ``Axes``.
    """
    img = to_numpy(image)
    if img.ndim == 3 and img.shape[0] in (1, 3) and img.shape[-1] not in (1, 3):
        img = np.moveaxis(img, 0, -1)
    if img.ndim == 3 and img.shape[-1] == 1:
        img = img[..., 0]
    if img.ndim not in (2, 3):
        raise ValueError(f"image must be (H, W), (3, H, W) or (H, W, 3); got {shape_str(img.shape)}")
    att = torch.as_tensor(_matrix(attention, "attention"))[None, None]  # (1, 1, h, w)
    att = torch.nn.functional.interpolate(att, size=img.shape[:2], mode="bilinear", align_corners=False)[0, 0]
    att = att - att.min()
    shown = (att / att.max().clamp_min(1e-12)).numpy()  # (H, W) in [0, 1]
    if ax is None:
        _, ax = plt.subplots()
    ax.imshow(img, cmap="gray" if img.ndim == 2 else None, vmin=0.0, vmax=1.0)
    ax.imshow(shown, cmap=cmap, alpha=alpha, vmin=0.0, vmax=1.0)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    if title:
        ax.set_title(title)
    return ax


def plot_bleu_by_length(
    reports: dict[str, dict],
    *,
    ax: Optional[Axes] = None,
    title: Optional[str] = None,
) -> Axes:
    """BLEU per source-length bucket, one line per model (the shape of Bahdanau et al.'s Figure 2).

    Args:
        reports: model name -> a report with a ``"by_length"`` list of
            ``{"bucket": "6-8", "sentences": n, "bleu": b}`` rows, as
            :func:`attnlib.seq2seq.evaluation.bleu_report` returns and the experiments store; every
            report must use the same buckets.
        ax: where to draw; a new figure when ``None``.
        title: the plot's title.

    Returns:
        The ``Axes``; the x labels give each bucket and its number of test sentences.
    """
    if not reports:
        raise ValueError("reports is empty: expected at least one model's report")
    rows = {name: report["by_length"] for name, report in reports.items()}
    first_name, first = next(iter(rows.items()))
    buckets = [row["bucket"] for row in first]
    for name, report_rows in rows.items():
        if [row["bucket"] for row in report_rows] != buckets:
            raise ValueError(
                f"report {name!r} has buckets {[row['bucket'] for row in report_rows]}, "
                f"but {first_name!r} has {buckets}: expected the same buckets for every model"
            )
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.6))
    for name, report_rows in rows.items():
        ax.plot(range(len(buckets)), [row["bleu"] for row in report_rows], "o-", label=name)
    ax.set_xticks(range(len(buckets)), [f"{row['bucket']}\n({row['sentences']})" for row in first])
    ax.set(xlabel="source length in tokens (test sentences)", ylabel="BLEU", title=title or "")
    ax.set_ylim(bottom=0)  # BLEU starts at 0: a truncated axis would exaggerate the gaps between models
    ax.legend()
    return ax
