"""attnlib.viz: labelled heatmaps, alignment matrices, overlays."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from attnlib import viz


def test_heatmap_draws_the_matrix_with_labels():
    w = torch.softmax(torch.randn(3, 4, requires_grad=True), dim=-1)  # grad and all
    ax = viz.heatmap(w, xlabels=list("abcd"), ylabels=["x", "y", "z"], title="weights", annotate=True)
    image = ax.get_images()[0]
    assert np.allclose(image.get_array(), w.detach().numpy())
    assert [t.get_text() for t in ax.get_xticklabels()] == list("abcd")
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y", "z"]
    assert ax.get_xlabel() == "keys" and ax.get_ylabel() == "queries" and ax.get_title() == "weights"
    assert len(ax.texts) == 12  # annotated cells


def test_heatmap_rejects_bad_input():
    with pytest.raises(ValueError, match=r"2-D matrix .* got shape \(2, 3, 4\)"):
        viz.heatmap(torch.rand(2, 3, 4))
    with pytest.raises(ValueError, match="xlabels has 3 labels but the matrix has 4 columns"):
        viz.heatmap(torch.rand(2, 4), xlabels=list("abc"))


def test_heatmaps_grid_shares_one_colour_scale():
    maps = torch.rand(2, 3, 4, 5)
    fig = viz.heatmaps(maps, titles=[[f"{r}{c}" for c in range(3)] for r in range(2)], suptitle="grid")
    images = [ax.get_images()[0] for ax in fig.axes if ax.get_images()]
    assert len(images) == 6
    assert len({im.get_clim() for im in images}) == 1
    with pytest.raises(ValueError, match=r"\(R, C, L, S\)"):
        viz.heatmaps(torch.rand(3, 4, 5))


def test_alignment_puts_source_on_top_and_target_on_the_left():
    w = torch.eye(3)
    ax = viz.alignment(w, ["le", "chat", "<eos>"], ["the", "cat", "<eos>"])
    assert [t.get_text() for t in ax.get_xticklabels()] == ["le", "chat", "<eos>"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["the", "cat", "<eos>"]
    assert ax.xaxis.get_label_position() == "top"
    with pytest.raises(ValueError, match="target_tokens has 2 labels but the matrix has 3 rows"):
        viz.alignment(w, ["a", "b", "c"], ["x", "y"])


@pytest.mark.parametrize("image_shape", [(28, 28), (3, 32, 32), (32, 32, 3), (1, 28, 28)])
def test_overlay_resizes_the_map_to_the_image(image_shape):
    ax = viz.overlay(torch.rand(image_shape), torch.rand(7, 7), title="map")
    base, over = ax.get_images()
    assert over.get_array().shape[:2] == base.get_array().shape[:2]
    assert float(over.get_array().min()) == 0.0 and abs(float(over.get_array().max()) - 1.0) < 1e-6


def test_overlay_rejects_bad_image():
    with pytest.raises(ValueError, match="image must be"):
        viz.overlay(torch.rand(2, 3, 4, 5), torch.rand(2, 2))


def _report(*bleus):
    buckets = [("1-5", 10), ("6-8", 7), ("9-11", 3)]
    return {"by_length": [{"bucket": b, "sentences": n, "bleu": x} for (b, n), x in zip(buckets, bleus)]}


def test_plot_bleu_by_length_draws_one_line_per_model_over_the_buckets():
    ax = viz.plot_bleu_by_length(
        {"RNNencdec": _report(7.0, 6.0, 4.0), "RNNsearch": _report(12.0, 13.0, 11.0)}, title="quick run"
    )
    assert [line.get_label() for line in ax.get_lines()] == ["RNNencdec", "RNNsearch"]
    assert list(ax.get_lines()[1].get_ydata()) == [12.0, 13.0, 11.0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1-5\n(10)", "6-8\n(7)", "9-11\n(3)"]
    assert ax.get_title() == "quick run"


def test_plot_bleu_by_length_starts_the_bleu_axis_at_zero():
    # a truncated axis makes the gap between two models look larger than it is
    ax = viz.plot_bleu_by_length({"RNNsearch": _report(20.0, 25.0, 30.0)})
    assert ax.get_ylim()[0] == 0.0
    assert ax.get_ylim()[1] >= 30.0


def test_plot_bleu_by_length_rejects_reports_with_different_buckets():
    other = {"by_length": [{"bucket": "1-5", "sentences": 10, "bleu": 1.0}]}
    with pytest.raises(ValueError, match="expected the same buckets"):
        viz.plot_bleu_by_length({"a": _report(1.0, 2.0, 3.0), "b": other})
    with pytest.raises(ValueError, match="reports is empty"):
        viz.plot_bleu_by_length({})
