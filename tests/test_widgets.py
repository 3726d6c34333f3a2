"""attnlib.widgets: one object, a live widget in a kernel and the same controls over pre-rendered frames in the book."""

from __future__ import annotations

import json
import math
import re
import warnings

import ipywidgets
import pytest

from attnlib.widgets import WIDGET_MIME, grid_values, interactive_figure


def frame_data(html: str) -> dict:
    """The JSON the figure's script reads (frames, their order, control labels, alt text)."""
    return json.loads(re.search(r'<script type="application/json" class="attnlib-data">(.*?)</script>', html).group(1))


def data_uris(html: str) -> list[str]:
    return re.findall(r"data:image/png;base64,[A-Za-z0-9+/=]+", html)


def draw_line(fig, x, label):
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, x])
    ax.set_title(f"{label}: x = {x}")


# -- the grid of each control


def test_default_slider_grid_spans_the_range_through_the_initial_value():
    values = grid_values(ipywidgets.FloatSlider(value=0.3, min=0.05, max=1.5, step=0.05))
    assert len(values) == 5 and values[0] == 0.05 and values[-1] == 1.5 and 0.3 in values
    assert values == sorted(values)
    assert all(math.isclose((v - 0.05) / 0.05, round((v - 0.05) / 0.05), abs_tol=1e-9) for v in values), values
    assert grid_values(ipywidgets.FloatSlider(value=2.5, min=0, max=5, step=0.25)) == [0.0, 1.25, 2.5, 3.75, 5.0]
    assert grid_values(ipywidgets.IntSlider(value=4, min=1, max=10)) == [1, 4, 6, 8, 10]
    assert grid_values(ipywidgets.IntSlider(value=2, min=0, max=3)) == [0, 1, 2, 3]  # fewer steps than values
    assert grid_values(ipywidgets.IntSlider(value=0, min=0, max=100), n=3) == [0, 50, 100]
    # a log slider is spaced evenly in its exponent
    log = grid_values(ipywidgets.FloatLogSlider(value=1.0, base=2, min=-2, max=3, step=0.5))
    assert log[0] == 0.25 and log[-1] == 8.0 and 1.0 in log and len(log) == 5
    ratios = [b / a for a, b in zip(log, log[1:])]
    assert max(ratios) / min(ratios) < 2.1, log


def test_default_grid_of_selections_and_checkboxes():
    assert grid_values(ipywidgets.Dropdown(options=[("one", 1), ("two", 2)], value=2)) == [1, 2]
    assert grid_values(ipywidgets.ToggleButtons(options=["a", "b", "c"])) == ["a", "b", "c"]
    assert grid_values(ipywidgets.Checkbox(value=True)) == [False, True]
    with pytest.raises(TypeError, match="cannot write a Text"):
        grid_values(ipywidgets.Text())


def test_chosen_grid_values_are_sorted_checked_and_include_the_initial_value():
    slider = ipywidgets.FloatSlider(value=2.5, min=0, max=5, step=0.25)
    assert grid_values(slider, [5, 0, 1, 1.0]) == [0.0, 1.0, 2.5, 5.0]
    assert grid_values(slider, [2.5000000000001, 4]) == [2.5, 4.0]  # the control's own value, exactly
    assert grid_values(ipywidgets.IntSlider(value=3, max=9), [9, 0]) == [0, 3, 9]
    with pytest.raises(ValueError, match=r"outside the range \[0, 5\]"):
        grid_values(slider, [6.0])
    log = ipywidgets.FloatLogSlider(value=0.1, base=10, min=-2, max=1)
    assert grid_values(log, [0.01, 10]) == [0.01, 0.1, 10.0]
    with pytest.raises(ValueError, match="outside the range"):
        grid_values(log, [100.0])
    pick = ipywidgets.Dropdown(options=["x", "y", "z", "w"], value="z")
    assert grid_values(pick, ["w", "x"]) == ["x", "z", "w"]  # the options' order, the initial one added
    with pytest.raises(ValueError, match=r"not options"):
        grid_values(pick, ["q"])


def test_grid_argument_and_budget_warnings():
    controls = {"x": ipywidgets.IntSlider(min=1, max=4, value=2), "label": ipywidgets.Dropdown(options=["p", "q"])}
    fig = interactive_figure(draw_line, controls, grid={"x": [1, 4]})
    assert fig.grid == {"x": [1, 2, 4], "label": ["p", "q"]} and fig.n_frames == 6
    with pytest.raises(ValueError, match=r"unknown controls \['z'\]"):
        interactive_figure(draw_line, controls, grid={"z": [1]})
    with pytest.raises(ValueError, match="play names an unknown control 'z'"):
        interactive_figure(draw_line, controls, play="z")
    with pytest.raises(ValueError, match="at least one widget"):
        interactive_figure(draw_line, {})
    with pytest.warns(UserWarning, match=r"'draw_line': 6 frames \(3 x x 2 label\) exceed the budget of 5"):
        interactive_figure(draw_line, controls, grid={"x": [1, 4]}, max_frames=5).frames()
    with pytest.warns(UserWarning, match=r"'draw_line': 6 distinct frames of 6 take 0\.\d+ MB, over the budget"):
        interactive_figure(draw_line, controls, grid={"x": [1, 4]}, max_bytes=1000).frames()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        interactive_figure(draw_line, controls, grid={"x": [1, 4]}, max_frames=6).frames()  # within budget: silent


# -- the emitted HTML


def test_bundle_holds_the_widget_and_every_combination_of_the_grid():
    calls = []

    def draw(fig, x, label):
        calls.append((x, label))
        draw_line(fig, x, label)

    controls = {
        "x": ipywidgets.IntSlider(min=1, max=4, value=2, description="slope"),
        "label": ipywidgets.Dropdown(options=["p", "q"], description="name"),
    }
    fig = interactive_figure(draw, controls, grid={"x": [1, 2, 3]}, alt="A line.")
    bundle = fig._repr_mimebundle_()
    assert set(bundle) == {"text/plain", "text/html", WIDGET_MIME}
    assert bundle[WIDGET_MIME]["model_id"] == fig.widget.model_id
    assert "3 x x 2 label = 6 frames, 6 distinct" in bundle["text/plain"]
    # the live widget drew once with the initial values; the book's frames drew each combination once
    assert calls == [(2, "p"), (1, "p"), (1, "q"), (2, "p"), (2, "q"), (3, "p"), (3, "q")]
    html = bundle["text/html"]
    data = frame_data(html)
    assert len(data["order"]) == 6 and len(data_uris(html)) == 6 == len(set(data_uris(html)))
    assert data["initial"] == [1, 0] and data["names"] == ["slope", "name"]
    assert data["labels"] == [["1", "2", "3"], ["p", "q"]]
    # the initial frame is the <img>'s source, stored once (its slot in the list is empty)
    src = re.search(r'<img class="attnlib-frame" src="([^"]+)"', html).group(1)
    assert data["frames"][data["order"][1 * 2 + 0]] == "" and data["frames"].count("") == 1
    assert src not in data["frames"]
    # one control per widget, with the widget's description and the grid as its range
    assert len(re.findall(r'<input type="range"', html)) == 1 and len(re.findall(r"<select", html)) == 1
    assert re.search(r'<label><span>slope</span><input type="range" data-control="0" min="0" max="2" step="1" '
                     r'value="1" aria-valuetext="2"', html)  # fmt: skip
    assert re.search(r'<span>name</span><select data-control="1"><option value="0" selected>p</option>'
                     r'<option value="1">q</option></select>', html)  # fmt: skip
    # alt text: the figure's, then the values shown; the script writes the same for each frame
    assert re.search(r'<img [^>]*alt="A line, for slope = 2, name = p\."', html)
    assert data["alt"] == "A line" and 'd.alt + ", for " + parts.join(", ")' in html
    # self-contained: nothing loaded from elsewhere
    assert not re.search(r"(src|href)\s*=\s*[\"']?(https?:)?//", html), "the figure must not load remote assets"
    assert not re.search(r"https?://", html)


def test_identical_frames_are_stored_once():
    def draw(fig, x, label):  # ignores label: two combinations per picture
        fig.add_subplot().set_title(f"x = {x}")

    controls = {"x": ipywidgets.IntSlider(min=0, max=3, value=0), "label": ipywidgets.ToggleButtons(options="abc")}
    fig = interactive_figure(draw, controls)
    uris, order = fig.frames()
    assert len(order) == 12 and len(uris) == 4 and order == [i for i in range(4) for _ in range(3)]
    html = fig.html()
    assert len(data_uris(html)) == 4
    # ToggleButtons become one radio group, keyboard-usable native inputs
    assert len(re.findall(r'type="radio" name="attnlib-fig-\w+-\d+-1"', html)) == 3
    assert re.search(r'role="radiogroup" aria-labelledby="(attnlib-fig-[\w-]+)"><span id="\1">label</span>', html)


def test_two_figures_and_two_displays_have_unique_ids():
    controls = {"x": ipywidgets.IntSlider(min=1, max=2, value=1), "label": ipywidgets.Checkbox(description="on")}
    first = interactive_figure(draw_line, controls)
    second = interactive_figure(draw_line, dict(controls))
    pages = [first.html(), second.html(), first.html()]
    ids = [re.search(r'<div class="attnlib-interactive" id="([\w-]+)"', page).group(1) for page in pages]
    assert len(set(ids)) == 3
    for page, uid in zip(pages, ids):
        assert f'document.getElementById("{uid}")' in page  # each script finds its own figure
        assert len(re.findall(r'type="checkbox" data-control="1"', page)) == 1
        assert re.search(r"<span>on</span>", page)


def test_play_button_steps_one_control():
    controls = {"x": ipywidgets.IntSlider(min=1, max=5, value=1), "label": ipywidgets.Dropdown(options=["p", "q"])}
    fig = interactive_figure(draw_line, controls, grid={"x": [1, 2, 3, 4, 5]}, play="x", interval_ms=250)
    html = fig.html()
    assert html.count('class="attnlib-play"') == 1
    data = frame_data(html)
    assert data["play"] == 0 and data["interval"] == 250
    assert 'class="attnlib-play"' not in interactive_figure(draw_line, controls).html()


def test_single_value_control_is_shown_disabled_and_live_redraw():
    seen = []

    def draw(fig, a, b):
        seen.append((a, b))
        fig.add_subplot().set_title(f"{a} {b}")

    a, b = ipywidgets.FloatSlider(value=0.5), ipywidgets.FloatSlider(value=1.0)
    fig = interactive_figure(draw, {"a": a, "b": b}, grid={"a": [0.5], "b": [1.0, 2.0]}, alt='a "quoted" <alt>')
    html = fig.html()
    assert 'alt="a &quot;quoted&quot; &lt;alt&gt;, for a = 0.50, b = 1.00."' in html
    assert re.search(r'data-control="0" min="0" max="0"[^>]* disabled>', html)
    assert fig.widget is not None  # builds the live version: one draw
    a.value = 0.75  # a change of control redraws
    assert seen[-1] == (0.75, 1.0)
