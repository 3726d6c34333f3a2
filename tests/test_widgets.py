"""attnlib.widgets: one object, a live widget in a kernel and a static animation in the book."""

from __future__ import annotations

import re

import ipywidgets
import pytest

from attnlib.widgets import WIDGET_MIME, interactive_figure, sweep_values


def test_sweep_values_for_each_kind_of_control():
    assert sweep_values(ipywidgets.FloatSlider(min=0.0, max=1.0, step=0.25), n=5) == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert sweep_values(ipywidgets.IntSlider(min=0, max=10), n=6) == [0, 2, 4, 6, 8, 10]
    assert sweep_values(ipywidgets.Dropdown(options=[("one", 1), ("two", 2)])) == [1, 2]
    assert sweep_values(ipywidgets.ToggleButtons(options=["a", "b", "c"])) == ["a", "b", "c"]
    assert sweep_values(ipywidgets.Checkbox(value=True)) == [True]


def test_bundle_holds_widget_and_static_animation_of_every_frame():
    calls = []

    def draw(fig, x, label):
        calls.append((x, label))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, x])
        ax.set_title(f"{label}: x = {x}")

    controls = {"x": ipywidgets.IntSlider(min=1, max=4, value=2), "label": ipywidgets.Dropdown(options=["p", "q"])}
    fig = interactive_figure(draw, controls)
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", WIDGET_MIME}
    assert bundle[WIDGET_MIME]["model_id"] == fig.widget.model_id
    # the live widget drew once with the initial values; the fallback swept x with label fixed
    assert calls == [(2, "p"), (1, "p"), (2, "p"), (3, "p"), (4, "p")]
    html = bundle["text/html"]
    assert "4 frames over x, label" in html
    assert len(re.findall(r"frames\[\d+\] = \"data:image/png;base64,", html)) == 4
    assert "<script" in html  # the player's own code is inline
    assert not re.search(r"(src|href)=[\"']?(https?:)?//", html), "the static figure must not load remote assets"
    assert "fa fa-" not in html  # icon-font classes replaced by characters
    assert re.search(r'<img id="_anim_img\w+" alt="Animated figure: 4 frames over x, label"', html)


def test_explicit_frames_and_live_redraw():
    seen = []

    def draw(fig, a, b):
        seen.append((a, b))
        fig.add_subplot().set_title(f"{a} {b}")

    a, b = ipywidgets.FloatSlider(value=0.5), ipywidgets.FloatSlider(value=1.0)
    fig = interactive_figure(draw, {"a": a, "b": b}, frames=[{"b": 2.0}, {"a": 0.0, "b": 3.0}], alt='a "quoted" <alt>')
    assert 'alt="a &quot;quoted&quot; &lt;alt&gt;"' in fig.fallback_html()
    assert fig.frames == [{"a": 0.5, "b": 2.0}, {"a": 0.0, "b": 3.0}]
    assert fig.widget is not None  # builds the live version: one draw
    a.value = 0.75  # a change of control redraws
    assert seen[-1] == (0.75, 1.0)


def test_bad_frames_are_rejected():
    draw = lambda fig, a: None  # noqa: E731
    with pytest.raises(ValueError, match=r"unknown controls \['z'\]"):
        interactive_figure(draw, {"a": ipywidgets.FloatSlider()}, frames=[{"z": 1}])
    with pytest.raises(ValueError, match="at least one widget"):
        interactive_figure(draw, {})
