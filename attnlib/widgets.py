"""Interactive figures whose controls still work in the rendered book, with no kernel.

:func:`interactive_figure` takes a drawing function and some ipywidgets controls and
returns one object that displays as

* the live controls and figure, in a running kernel (Jupyter, Colab, VS Code);
* in the HTML book, **the same controls** written as plain HTML over frames drawn in
  advance for a grid of their values: a slider becomes ``<input type="range">`` stepping
  over its grid values (with the value shown beside it), a ``Dropdown`` a ``<select>``,
  ``ToggleButtons`` and ``RadioButtons`` a group of radio buttons, a ``Checkbox`` a
  checkbox, each with the widget's description as its label.  A few lines of inline
  JavaScript show the frame of the chosen combination.  No kernel, no network, no CDN:
  the page works offline and from ``file://``, with the keyboard (native inputs), and
  several figures on one page do not clash (each has its own id).

Both travel in a single output (MIME types ``application/vnd.jupyter.widget-view+json``
and ``text/html``).  Live front ends pick the widget; the book's configuration
(``nb_mime_priority_overrides`` in ``_config.yml``) ranks ``text/html`` first.

**The grid.**  The book's figure holds one frame per combination of control values (the
cartesian product of each control's grid values).  By default a slider takes
:data:`DEFAULT_SLIDER_VALUES` evenly spaced values from ``min`` to ``max`` (snapped to its
step, its initial value always among them), a selection widget all its options, a
checkbox both states.  A chapter chooses values per control with
``grid={"query": [0.0, 2.5, 5.0]}``; the control's initial value is added when missing, so
the book opens on the figure a kernel shows first.  Frames are PNG images at ``dpi``
(72 by default) with a palette of :data:`PNG_COLOURS` colours, each stored once as a data
URI however many combinations draw the same picture.  A figure over :data:`MAX_FRAMES`
combinations or :data:`MAX_BYTES` of image data (both overridable per call) raises
a ``UserWarning`` naming the figure and its sizes.

**Play.**  ``play="step"`` adds a play button that steps the ``step`` control through
its grid values, one every ``interval_ms``, over the same frames, for figures where a
sweep teaches better (the online softmax block by block, a glimpse path over time).

Example::

    def draw(fig, query, kind):
        ax = fig.add_subplot()
        ...                                     # plot for these values
        ax.set_title(f"{kind}: query = {query:.1f}")

    interactive_figure(draw, {"query": FloatSlider(min=0, max=5, step=0.5, value=2.5),
                              "kind": Dropdown(options=["local-p", "local-m"])},
                       grid={"query": [0, 1, 2, 2.5, 3, 4, 5]},
                       alt="Weights of a local attention window")

In the book each frame's alt text is ``alt`` followed by the values it shows
("Weights of a local attention window, for query = 2.5, kind = local-p.").
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import math
import warnings
from dataclasses import dataclass
from html import escape
from typing import Any, Callable, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np

__all__ = [
    "interactive_figure",
    "InteractiveFigure",
    "ControlGrid",
    "grid_values",
    "DEFAULT_SLIDER_VALUES",
    "MAX_FRAMES",
    "MAX_BYTES",
    "PNG_COLOURS",
]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
DrawFn = Callable[..., None]

#: How many values a slider takes in the book's figure when the chapter does not choose them.
DEFAULT_SLIDER_VALUES = 5
#: The budget of one figure in combinations of control values (one frame each) ...
MAX_FRAMES = 160
#: ... and bytes of frame data in the page (base64 PNG, identical frames counted once); a chapter
#: notebook, which stores them, must stay under 3 MB (tests/test_book.py).
MAX_BYTES = 1_500_000

#: How many colours a frame's palette holds (PNG-8), exact for plots and close for images.
PNG_COLOURS = 256

_ids = itertools.count()


def _selection_options(control: Any) -> Optional[tuple[list[str], list[Any]]]:
    """(labels, values) of a selection widget (``Dropdown``, ``ToggleButtons``, ...), else None."""
    labels = getattr(control, "_options_labels", None)
    values = getattr(control, "_options_values", None)
    if labels is None or values is None:
        return None
    return [str(label) for label in labels], list(values)


def _control_kind(control: Any) -> str:
    """How the book writes a control: ``"range"``, ``"select"``, ``"radio"`` or ``"checkbox"``."""
    import ipywidgets

    if isinstance(control, (ipywidgets.Checkbox, ipywidgets.ToggleButton)):
        return "checkbox"
    if isinstance(control, ipywidgets.SelectionSlider):
        return "range"
    if isinstance(control, (ipywidgets.ToggleButtons, ipywidgets.RadioButtons)):
        return "radio"
    if isinstance(control, (ipywidgets.Dropdown, ipywidgets.Select)):
        return "select"
    value = getattr(control, "value", None)
    is_number = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if is_number and hasattr(control, "min") and hasattr(control, "max"):
        return "range"
    raise TypeError(
        f"interactive_figure cannot write a {type(control).__name__} as HTML; expected a slider, "
        "Dropdown, Select, ToggleButtons, RadioButtons, SelectionSlider, Checkbox or ToggleButton"
    )


def _is_log(control: Any) -> bool:
    return hasattr(control, "base") and type(control).__name__ == "FloatLogSlider"


def _tidy(value: float) -> float:
    """A float without the noise of ``low + k * step`` arithmetic (0.15000000000000002 -> 0.15)."""
    return float(f"{value:.12g}")


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, (float, np.floating)) or isinstance(b, (float, np.floating)):
        try:
            return math.isclose(float(a), float(b), rel_tol=1e-9, abs_tol=1e-12)
        except (TypeError, ValueError):
            return False
    return bool(a == b)


def _slider_defaults(control: Any, n: int) -> list[Any]:
    """About ``n`` values from min to max through the initial value, evenly spaced on each side of it
    (in the exponent for a log slider) and snapped to the slider's step."""
    low, high, step = float(control.min), float(control.max), getattr(control, "step", None)
    log = _is_log(control)
    start = math.log(control.value, control.base) if log else float(control.value)
    n = max(n, 2)
    below = round((start - low) / (high - low) * (n - 1)) if high > low else 0
    below = min(max(below, int(start > low)), n - 1 - int(start < high))  # a value on each side that has room
    positions = np.concatenate([np.linspace(low, start, below + 1), np.linspace(start, high, n - below)[1:]])
    if step:
        positions = low + np.round((positions - low) / step) * step
    positions = np.clip(positions, low, high)
    positions[below] = start  # the initial value exactly, even off the step grid
    if log:
        values: list[Any] = [_tidy(control.base**p) for p in positions]
    elif isinstance(control.value, (int, np.integer)):
        values = [int(round(p)) for p in positions]
    else:
        values = [_tidy(p) for p in positions]
    unique: list[Any] = []
    for v in sorted(values):
        if not any(_same(v, u) for u in unique):
            unique.append(v)
    return [control.value if _same(u, control.value) else u for u in unique]


def grid_values(control: Any, values: Optional[Sequence[Any]] = None, n: int = DEFAULT_SLIDER_VALUES) -> list[Any]:
    """The values one control takes in the book's figure.

    Args:
        control: an ipywidgets control (slider, selection widget or checkbox).
        values: the values a chapter chose, or None for the defaults: ``n`` evenly spaced
            values for a slider (from ``min`` to ``max``, snapped to ``step``; a
            ``FloatLogSlider`` is spaced in its exponent), every option of a selection
            widget, both states of a checkbox.
        n: values per slider by default.

    Returns:
        The values in the order the control shows them (ascending for a slider, the
        options' order for a selection), with the control's initial value among them.

    Raises:
        ValueError: a chosen value outside the slider's range or not among its options.
    """
    kind = _control_kind(control)
    initial = control.value
    options = _selection_options(control)
    if kind == "checkbox":
        allowed: Optional[list[Any]] = [False, True]
    elif options is not None:
        allowed = options[1]
    else:
        allowed = None
    if values is None:
        if allowed is not None:
            return list(allowed)
        return _slider_defaults(control, n)
    chosen = list(values)
    if not chosen:
        raise ValueError(f"no values chosen for {type(control).__name__} {control.description!r}")
    if allowed is not None:
        missing = [v for v in chosen if not any(_same(v, a) for a in allowed)]
        if missing:
            raise ValueError(f"values {missing} are not options of {control.description!r}; options: {allowed}")
        keep = chosen + [initial]
        return [a for a in allowed if any(_same(a, v) for v in keep)]
    low, high = float(control.min), float(control.max)
    if _is_log(control):
        low, high = control.base**low, control.base**high
    outside = [v for v in chosen if not (low - 1e-9 * abs(low) <= float(v) <= high + 1e-9 * abs(high))]
    if outside:
        raise ValueError(f"values {outside} lie outside the range [{low:g}, {high:g}] of {control.description!r}")
    cast = int if isinstance(initial, (int, np.integer)) else float
    unique: list[Any] = []
    for v in sorted([cast(v) for v in chosen]):
        if not any(_same(v, u) for u in unique):
            unique.append(v)
    unique = [initial if _same(u, initial) else u for u in unique]  # the control's own value, exactly
    if not any(_same(u, initial) for u in unique):
        unique = sorted(unique + [initial])
    return unique


def _value_label(control: Any, value: Any) -> str:
    """The value as the widget shows it (its readout format, or its option label)."""
    options = _selection_options(control)
    if options is not None:
        for label, option in zip(*options):
            if _same(option, value):
                return label
    if isinstance(value, bool):
        return "on" if value else "off"
    fmt = getattr(control, "readout_format", None)
    if fmt:
        try:
            return format(value, fmt)
        except (TypeError, ValueError):
            pass
    return str(value)


@dataclass(frozen=True)
class ControlGrid:
    """One control as the book writes it: its label, kind and grid of values.

    Attributes:
        name: the keyword the drawing function takes.
        label: the widget's description (or ``name`` when it has none).
        kind: ``"range"``, ``"select"``, ``"radio"`` or ``"checkbox"``.
        values: the grid values, in the order the control shows them.
        labels: each value as the widget shows it.
        initial: the index of the control's initial value in ``values``.
    """

    name: str
    label: str
    kind: str
    values: tuple[Any, ...]
    labels: tuple[str, ...]
    initial: int


def _control_grid(name: str, control: Any, chosen: Optional[Sequence[Any]]) -> ControlGrid:
    values = grid_values(control, chosen)
    initial = next(i for i, v in enumerate(values) if _same(v, control.value))
    label = str(getattr(control, "description", "") or name)
    return ControlGrid(
        name, label, _control_kind(control), tuple(values), tuple(_value_label(control, v) for v in values), initial
    )


# The controller every figure carries, inline: the frame of combination (i_0, ..., i_{C-1})
# is frames[order[i_0 * sizes[1] * ... + i_{C-1}]] (row-major over the controls).
_SCRIPT = """<script>(function () {
var root = document.getElementById("%s");
var d = JSON.parse(root.querySelector("script.attnlib-data").textContent);
var img = root.querySelector("img.attnlib-frame"), pos = d.initial.slice(), timer = null;
d.frames[d.frames.indexOf("")] = img.getAttribute("src");
function els(c) { return root.querySelectorAll('[data-control="' + c + '"]'); }
function show() {
  var k = 0, parts = [];
  for (var c = 0; c < pos.length; c++) {
    k = k * d.labels[c].length + pos[c];
    parts.push(d.names[c] + " = " + d.labels[c][pos[c]]);
    els(c).forEach(function (e) {
      if (e.tagName === "OUTPUT") e.textContent = d.labels[c][pos[c]];
      else if (e.type === "range") { e.value = pos[c]; e.setAttribute("aria-valuetext", d.labels[c][pos[c]]); }
      else if (e.type === "radio") e.checked = +e.value === pos[c];
      else if (e.type === "checkbox") e.checked = d.labels[c][pos[c]] === "on";
      else e.value = pos[c];
    });
  }
  img.src = d.frames[d.order[k]];
  img.alt = d.alt + ", for " + parts.join(", ") + ".";
}
root.addEventListener("input", read);
root.addEventListener("change", read);
function read(ev) {
  var e = ev.target, c = e.getAttribute("data-control");
  if (c === null || e.tagName === "OUTPUT") return;
  if (e.type === "checkbox") pos[c] = d.labels[c].indexOf(e.checked ? "on" : "off");
  else if (e.type !== "radio" || e.checked) pos[c] = +e.value;
  show();
}
var play = root.querySelector("button.attnlib-play");
if (play) play.addEventListener("click", function () {
  var c = d.play, last = d.labels[c].length - 1;
  function stop() { clearInterval(timer); timer = null; play.textContent = "\\u25B6 play"; }
  if (timer) { stop(); return; }
  if (pos[c] >= last) { pos[c] = 0; show(); }
  play.textContent = "\\u275A\\u275A pause";
  timer = setInterval(function () { if (pos[c] >= last) { stop(); return; } pos[c]++; show(); }, d.interval);
});
})();</script>"""

_STYLE = (
    "<style>.attnlib-controls{display:flex;flex-wrap:wrap;gap:.3em 1.2em;align-items:center;font-size:90%;"
    "margin:.2em 0 .4em 0}.attnlib-controls label{display:inline-flex;align-items:center;gap:.35em}"
    ".attnlib-controls label{white-space:nowrap}.attnlib-radio{display:inline-flex;gap:.6em;align-items:center}"
    ".attnlib-controls output{min-width:3.5em;font-variant-numeric:tabular-nums}"
    ".attnlib-frame{max-width:100%;height:auto}</style>"
)


def _control_html(uid: str, c: int, grid: ControlGrid) -> str:
    """One control as native HTML inputs (keyboard usable); ``data-control`` links it to the script."""
    label = escape(grid.label)
    disabled = " disabled" if len(grid.values) < 2 else ""
    if grid.kind == "range":
        text = escape(grid.labels[grid.initial])
        return (
            f'<label><span>{label}</span><input type="range" data-control="{c}" min="0" max="{len(grid.values) - 1}" '
            f'step="1" value="{grid.initial}" aria-valuetext="{text}"{disabled}>'
            f'<output data-control="{c}">{text}</output></label>'
        )
    if grid.kind == "select":
        options = "".join(
            f'<option value="{i}"{" selected" if i == grid.initial else ""}>{escape(text)}</option>'
            for i, text in enumerate(grid.labels)
        )
        return f'<label><span>{label}</span><select data-control="{c}"{disabled}>{options}</select></label>'
    if grid.kind == "radio":
        buttons = "".join(
            f'<label><input type="radio" name="{uid}-{c}" data-control="{c}" value="{i}"'
            f"{' checked' if i == grid.initial else ''}{disabled}>{escape(text)}</label>"
            for i, text in enumerate(grid.labels)
        )
        return (
            f'<span class="attnlib-radio" role="radiogroup" aria-labelledby="{uid}-{c}-label">'
            f'<span id="{uid}-{c}-label">{label}</span>{buttons}</span>'
        )
    checked = " checked" if grid.values[grid.initial] else ""
    return f'<label><input type="checkbox" data-control="{c}"{checked}{disabled}><span>{label}</span></label>'


def _png(fig: Any, dpi: int) -> bytes:
    """The figure as a PNG with a palette of :data:`PNG_COLOURS` colours: a plot has few colours, and a
    palette image is about a third the size of matplotlib's RGBA one."""
    from PIL import Image

    rgba = io.BytesIO()
    fig.savefig(rgba, format="png", dpi=dpi)
    rgba.seek(0)
    image = Image.open(rgba).convert("RGB").quantize(PNG_COLOURS, dither=Image.Dither.NONE)
    out = io.BytesIO()
    image.save(out, format="png", optimize=True)
    return out.getvalue()


class InteractiveFigure:
    """A figure redrawn from widget values: live in a kernel, pre-rendered controls in the book.

    Args:
        draw: ``draw(fig, **values)`` draws on an empty ``Figure`` for the given values.
        controls: name -> ipywidgets control; ``values[name] = control.value``.
        grid: name -> the values the book's figure offers for that control (see
            :func:`grid_values`); controls not named take their default grid.
        play: the name of a control to animate with a play button in the book, or None.
        figsize: figure size in inches.
        interval_ms: time per frame when playing.
        dpi: resolution of the book's frames (they are embedded in the page).
        alt: text alternative of the figure (for screen readers); each frame's alt text
            adds the values it shows.  Default: the controls' names.
        max_frames: budget of combinations (:data:`MAX_FRAMES` by default).
        max_bytes: budget of frame data (:data:`MAX_BYTES` by default).
    """

    def __init__(
        self,
        draw: DrawFn,
        controls: Mapping[str, Any],
        *,
        grid: Optional[Mapping[str, Sequence[Any]]] = None,
        play: Optional[str] = None,
        figsize: tuple[float, float] = (6.4, 4.0),
        interval_ms: int = 700,
        dpi: int = 72,
        alt: Optional[str] = None,
        max_frames: Optional[int] = None,
        max_bytes: Optional[int] = None,
    ) -> None:
        if not controls:
            raise ValueError("controls must name at least one widget")
        chosen = dict(grid or {})
        unknown = set(chosen) - set(controls)
        if unknown:
            raise ValueError(f"grid names unknown controls {sorted(unknown)}; controls: {sorted(controls)}")
        if play is not None and play not in controls:
            raise ValueError(f"play names an unknown control {play!r}; controls: {sorted(controls)}")
        self.draw = draw
        self.controls = dict(controls)
        self.name = getattr(draw, "__name__", "figure")
        self.grids = [_control_grid(name, control, chosen.get(name)) for name, control in self.controls.items()]
        self.play = play
        self.figsize = figsize
        self.interval_ms = interval_ms
        self.dpi = dpi
        self.alt = (alt or f"Figure over {', '.join(g.label for g in self.grids)}").rstrip(". ")
        self.max_frames = MAX_FRAMES if max_frames is None else max_frames
        self.max_bytes = MAX_BYTES if max_bytes is None else max_bytes
        self._widget = None
        self._frames: Optional[tuple[list[str], list[int]]] = None

    @property
    def grid(self) -> dict[str, list[Any]]:
        """name -> the values the book's figure offers for that control."""
        return {g.name: list(g.values) for g in self.grids}

    @property
    def n_frames(self) -> int:
        """Combinations of control values, one frame each (before identical frames are merged)."""
        return math.prod(len(g.values) for g in self.grids)

    def values(self) -> dict[str, Any]:
        """The controls' current values."""
        return {name: control.value for name, control in self.controls.items()}

    # -- the live version
    @property
    def widget(self) -> Any:
        """The ipywidgets ``VBox`` with the controls above the figure (built on first use)."""
        if self._widget is None:
            import ipywidgets
            from IPython.display import display

            output = ipywidgets.Output()

            def redraw(_change: object = None) -> None:
                with output:
                    output.clear_output(wait=True)
                    fig = plt.figure(figsize=self.figsize)
                    try:
                        self.draw(fig, **self.values())
                        display(fig)
                    finally:
                        plt.close(fig)

            for control in self.controls.values():
                control.observe(redraw, names="value")
            redraw()
            self._widget = ipywidgets.VBox([ipywidgets.HBox(list(self.controls.values())), output])
        return self._widget

    # -- the book's version
    def frames(self) -> tuple[list[str], list[int]]:
        """(distinct frames as PNG data URIs, frame index of each combination), rendered once.

        Combinations are in row-major order over the controls (the last control varies
        fastest).  Warns when the figure exceeds its budget.
        """
        if self._frames is None:
            if self.n_frames > self.max_frames:
                warnings.warn(
                    f"interactive figure {self.name!r}: {self.n_frames} frames "
                    f"({' x '.join(f'{len(g.values)} {g.name}' for g in self.grids)}) exceed the budget of "
                    f"{self.max_frames}; choose fewer values with grid=",
                    stacklevel=3,
                )
            index: dict[bytes, int] = {}
            order: list[int] = []
            fig = plt.figure(figsize=self.figsize, dpi=self.dpi)
            try:
                for combo in itertools.product(*(g.values for g in self.grids)):
                    fig.clear()
                    self.draw(fig, **{g.name: v for g, v in zip(self.grids, combo)})
                    order.append(index.setdefault(_png(fig, self.dpi), len(index)))
            finally:
                plt.close(fig)
            uris = ["data:image/png;base64," + base64.b64encode(png).decode("ascii") for png in index]
            size = sum(len(u) for u in uris)
            if size > self.max_bytes:
                warnings.warn(
                    f"interactive figure {self.name!r}: {len(uris)} distinct frames of {len(order)} take "
                    f"{size / 1e6:.2f} MB, over the budget of {self.max_bytes / 1e6:.2f} MB; choose fewer values "
                    "with grid=, a smaller figsize or a lower dpi",
                    stacklevel=3,
                )
            self._frames = (uris, order)
        return self._frames

    def html(self) -> str:
        """The book's figure: the controls, the initial frame and the script, with a fresh id."""
        uris, order = self.frames()
        initial = [g.initial for g in self.grids]
        first = order[int(np.ravel_multi_index(tuple(initial), tuple(len(g.values) for g in self.grids)))]
        digest = hashlib.sha1("".join(uris).encode("ascii")).hexdigest()[:10]
        uid = f"attnlib-fig-{digest}-{next(_ids)}"
        data = {
            "frames": ["" if i == first else uri for i, uri in enumerate(uris)],  # the first one is the <img>'s
            "order": order,
            "initial": initial,
            "names": [g.label for g in self.grids],
            "labels": [list(g.labels) for g in self.grids],
            "alt": self.alt,
            "play": None if self.play is None else list(self.controls).index(self.play),
            "interval": self.interval_ms,
        }
        payload = json.dumps(data, separators=(",", ":")).replace("<", "\\u003c")
        controls = "".join(_control_html(uid, c, g) for c, g in enumerate(self.grids))
        if self.play is not None:
            controls += '<button type="button" class="attnlib-play">\u25b6 play</button>'
        alt = f"{self.alt}, for {', '.join(f'{g.label} = {g.labels[g.initial]}' for g in self.grids)}."
        width, height = (round(s * self.dpi) for s in self.figsize)
        return (
            f'<div class="attnlib-interactive" id="{uid}">{_STYLE}'
            f'<div class="attnlib-controls">{controls}</div>'
            f'<img class="attnlib-frame" src="{uris[first]}" alt="{escape(alt)}" width="{width}" height="{height}">'
            f'<script type="application/json" class="attnlib-data">{payload}</script>'
            f"{_SCRIPT % uid}</div>"
        )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        widget = self.widget
        html = self.html()
        uris, _ = self.frames()
        sizes = " x ".join(f"{len(g.values)} {g.name}" for g in self.grids)
        return {
            "text/plain": f"InteractiveFigure({self.name}: {sizes} = {self.n_frames} frames, {len(uris)} distinct)",
            "text/html": html,
            WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id},
        }


#: Builds an :class:`InteractiveFigure` (the name chapters use); make the call the last
#: expression of a cell to show the figure.
interactive_figure = InteractiveFigure
