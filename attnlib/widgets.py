"""Interactive figures that still work in the static, rendered book.

:func:`interactive_figure` takes a drawing function and some ipywidgets controls and
returns one object that displays as

* the live controls and figure, in a running kernel (Jupyter, Colab, VS Code);
* a static fallback, in the HTML book: a matplotlib animation (``to_jshtml``) whose frames
  sweep the controls' values, with play / step / scrub buttons that need no kernel.

Both travel in a single output (MIME types ``application/vnd.jupyter.widget-view+json``
and ``text/html``).  Live front ends pick the widget; the book's configuration
(``nb_mime_priority_overrides`` in ``_config.yml``) ranks ``text/html`` first, so no
interactive piece is a dead snapshot online.

Example::

    def draw(fig, query, bandwidth):
        ax = fig.add_subplot()
        ...                                     # plot for these values
        ax.set_title(f"query = {query:.1f}, h = {bandwidth:.2f}")

    interactive_figure(draw, {"query": FloatSlider(min=0, max=5, value=2.5),
                              "bandwidth": FloatSlider(min=0.1, max=2, value=0.5)})

By default the fallback sweeps the first control over its range while the others keep
their initial values; pass ``frames`` (a list of ``{name: value}`` dicts) to choose.
"""

from __future__ import annotations

import re
from html import escape as html_escape
from typing import Any, Callable, Mapping, Optional, Sequence

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.animation import FuncAnimation

__all__ = ["interactive_figure", "InteractiveFigure", "sweep_values"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
DrawFn = Callable[..., None]

# matplotlib's player draws its buttons with Font Awesome loaded from a CDN: offline, the
# buttons would be blank.  Plain characters need no font download.
_BUTTON_GLYPHS = {
    "fa fa-minus": "&minus;",
    "fa fa-fast-backward": "&laquo;",
    "fa fa-step-backward": "&lsaquo;",
    "fa fa-play fa-flip-horizontal": "&#9664;",
    "fa fa-pause": "&#10074;&#10074;",
    "fa fa-play": "&#9654;",
    "fa fa-step-forward": "&rsaquo;",
    "fa fa-fast-forward": "&raquo;",
    "fa fa-plus": "+",
}


def _offline_player(player_html: str, alt: str) -> str:
    """Make matplotlib's player self-contained and accessible: drop its stylesheet link to
    a CDN, draw its icons as characters, and give the frame image an alt text."""
    html = re.sub(r"<link[^>]*font-awesome[^>]*>", "", player_html)
    for css_class, glyph in _BUTTON_GLYPHS.items():
        html = html.replace(f'<i class="{css_class}"></i>', glyph)
    alt_attr = html_escape(alt, quote=True)
    return re.sub(r'<img id="(_anim_img\w+)"', lambda m: f'<img id="{m.group(1)}" alt="{alt_attr}"', html, count=1)


def sweep_values(control: Any, n: int = 12) -> list[Any]:
    """Values a fallback animation shows for one control.

    Sliders give ``n`` evenly spaced values from ``min`` to ``max`` (rounded to the
    slider's step); selection widgets (``Dropdown``, ``ToggleButtons``, ...) give each
    option's value; anything else gives its current value only.
    """
    options = getattr(control, "options", None)
    if options is not None:
        labels_values = [o[1] if isinstance(o, tuple) and len(o) == 2 else o for o in options]
        return list(labels_values)
    low, high = getattr(control, "min", None), getattr(control, "max", None)
    if low is None or high is None:
        return [control.value]
    values = np.linspace(low, high, n)
    step = getattr(control, "step", None)
    if step:
        values = low + np.round((values - low) / step) * step
    if isinstance(control.value, (int, np.integer)) and not isinstance(control.value, bool):
        return sorted({int(round(v)) for v in values})
    return [float(v) for v in values]


class InteractiveFigure:
    """A figure redrawn from widget values, displayed live or as a static animation.

    Args:
        draw: ``draw(fig, **values)`` draws on an empty ``Figure`` for the given values;
            it should state the values in a title, since the fallback has no controls.
        controls: name -> ipywidgets control; ``values[name] = control.value``.
        frames: the fallback's frames as ``{name: value}`` dicts (missing names take the
            control's initial value); default: sweep the first control.
        figsize: figure size in inches.
        interval_ms: time per frame in the fallback animation.
        dpi: resolution of the fallback frames (they are embedded in the page).
        alt: text alternative for the animation's frames (for screen readers); by default
            it names the controls the frames sweep.
    """

    def __init__(
        self,
        draw: DrawFn,
        controls: Mapping[str, Any],
        *,
        frames: Optional[Sequence[Mapping[str, Any]]] = None,
        figsize: tuple[float, float] = (6.4, 4.0),
        interval_ms: int = 700,
        dpi: int = 72,
        alt: Optional[str] = None,
    ) -> None:
        if not controls:
            raise ValueError("controls must name at least one widget")
        self.draw = draw
        self.controls = dict(controls)
        self.figsize = figsize
        self.interval_ms = interval_ms
        self.dpi = dpi
        initial = self.values()
        if frames is None:
            first = next(iter(self.controls))
            frames = [{first: value} for value in sweep_values(self.controls[first])]
        unknown = {name for frame in frames for name in frame} - set(self.controls)
        if unknown:
            raise ValueError(f"frames name unknown controls {sorted(unknown)}; controls: {sorted(self.controls)}")
        if not frames:
            raise ValueError("frames must hold at least one frame")
        self.frames = [{**initial, **frame} for frame in frames]
        self.alt = alt or f"Animated figure: {len(self.frames)} frames over {', '.join(self.controls)}"
        self._widget = None
        self._fallback: Optional[str] = None

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

    # -- the static version
    def fallback_html(self) -> str:
        """The HTML of the fallback animation (rendered once, then cached)."""
        if self._fallback is None:
            fig = plt.figure(figsize=self.figsize, dpi=self.dpi)

            def show(i: int) -> None:
                fig.clear()
                self.draw(fig, **self.frames[i])

            try:
                animation = FuncAnimation(  # a no-op init_func, or frame 0 is drawn twice
                    fig, show, frames=len(self.frames), init_func=lambda: None, interval=self.interval_ms
                )
                player = _offline_player(animation.to_jshtml(default_mode="once"), self.alt)
            finally:
                plt.close(fig)
            names = ", ".join(self.controls)
            self._fallback = (
                '<div class="attnlib-interactive">'
                f'<p style="font-size:90%;margin:0 0 .3em 0"><em>Static version of an interactive figure '
                f"({len(self.frames)} frames over {names}). Run the notebook to use the controls.</em></p>"
                f"{player}</div>"
            )
        return self._fallback

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        widget = self.widget
        return {
            "text/plain": f"InteractiveFigure(controls={list(self.controls)}, frames={len(self.frames)})",
            "text/html": self.fallback_html(),
            WIDGET_MIME: {"version_major": 2, "version_minor": 0, "model_id": widget.model_id},
        }


#: Builds an :class:`InteractiveFigure` (the name chapters use); make the call the last
#: expression of a cell to show the figure.
interactive_figure = InteractiveFigure
