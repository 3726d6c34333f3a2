"""Visual search scenes: coloured bars on a grid, one of them the target.

The classic displays of visual search experiments (Treisman & Gelade, 1980), generated
as images whose correct answer is known, so that an attention model can be *scored*:

* ``"color"``: one red vertical bar among green vertical bars (the target differs in
  one feature, colour: it "pops out");
* ``"orientation"``: one horizontal green bar among vertical green bars (pop-out by
  orientation);
* ``"conjunction"``: one red vertical bar among green vertical and red horizontal bars
  (the target differs from every distractor only by its *combination* of features).

Every grid cell holds one bar, jittered by a few pixels.  A scene is a pure function of
``(kind, seed)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["SEARCH_KINDS", "FEATURE_NAMES", "SearchScene", "visual_search_scene"]

#: The three kinds of display (pop-out by colour, pop-out by orientation, conjunction).
SEARCH_KINDS = ("color", "orientation", "conjunction")
#: The four features, in the order used by feature maps and by :meth:`SearchScene.item_features`.
FEATURE_NAMES = ("red", "green", "vertical", "horizontal")
_RED = (0.9, 0.1, 0.1)
_GREEN = (0.1, 0.9, 0.1)


@dataclass(frozen=True)
class SearchScene:
    """One search display.

    Attributes:
        image: ``(3, H, W)`` float RGB in ``[0, 1]`` on black, ``H = W = grid * cell``.
        is_red: ``(N,)`` bool per item, ``N = grid * grid`` (item ``i`` sits in grid cell
            ``divmod(i, grid)``); False means green.
        is_vertical: ``(N,)`` bool per item; False means horizontal.
        target: index of the target item.
        grid: items per side.
        cell: pixels per cell side.
        kind: one of :data:`SEARCH_KINDS`.
    """

    image: Tensor
    is_red: Tensor
    is_vertical: Tensor
    target: int
    grid: int
    cell: int
    kind: str

    @property
    def target_cell(self) -> tuple[int, int]:
        """``(row, column)`` of the target in the grid."""
        return divmod(self.target, self.grid)

    def item_features(self) -> Tensor:
        """``(N, 4)`` ground-truth one-hot features in the order of :data:`FEATURE_NAMES`."""
        red = self.is_red.float()
        vertical = self.is_vertical.float()
        return torch.stack([red, 1 - red, vertical, 1 - vertical], dim=1)


def visual_search_scene(
    kind: str = "color",
    *,
    seed: int = 0,
    grid: int = 6,
    cell: int = 16,
    bar_length: int = 11,
    bar_width: int = 3,
    jitter: int = 2,
) -> SearchScene:
    """Generate one search display.

    Args:
        kind: ``"color"``, ``"orientation"`` or ``"conjunction"`` (see the module docstring).
        seed: the scene is a pure function of ``(kind, seed)`` and the sizes.
        grid: items per side (``grid * grid`` items).
        cell: pixels per cell; must leave room for the bar and its jitter.
        bar_length, bar_width: bar size in pixels.
        jitter: each bar's centre moves by up to this many pixels in x and y.

    Returns:
        A :class:`SearchScene`.

    Raises:
        ValueError: an unknown kind, or a bar that does not fit in its cell.
    """
    if kind not in SEARCH_KINDS:
        raise ValueError(f"kind must be one of {SEARCH_KINDS}; got {kind!r}")
    if grid < 2:
        raise ValueError(f"grid must be >= 2; got {grid}")
    if bar_length + 2 * jitter > cell or bar_width < 1:
        raise ValueError(
            f"a bar of length {bar_length} with jitter {jitter} needs cells of at least "
            f"{bar_length + 2 * jitter} pixels; got cell={cell}"
        )
    gen = torch.Generator().manual_seed(seed)
    n = grid * grid
    target = int(torch.randint(n, (1,), generator=gen))
    if kind == "color":
        is_red = torch.zeros(n, dtype=torch.bool)
        is_vertical = torch.ones(n, dtype=torch.bool)
        is_red[target] = True
    elif kind == "orientation":
        is_red = torch.zeros(n, dtype=torch.bool)
        is_vertical = torch.ones(n, dtype=torch.bool)
        is_vertical[target] = False
    else:  # conjunction: half green vertical, half red horizontal, target red vertical
        green_vertical = torch.rand(n, generator=gen) < 0.5
        is_red = ~green_vertical
        is_vertical = green_vertical.clone()
        is_red[target] = True
        is_vertical[target] = True
    offsets = torch.randint(-jitter, jitter + 1, (n, 2), generator=gen)  # (N, 2) pixel jitter
    image = torch.zeros(3, grid * cell, grid * cell)
    for i in range(n):
        row, col = divmod(i, grid)
        cy = row * cell + cell // 2 + int(offsets[i, 0])
        cx = col * cell + cell // 2 + int(offsets[i, 1])
        h, w = (bar_length, bar_width) if is_vertical[i] else (bar_width, bar_length)
        colour = torch.tensor(_RED if is_red[i] else _GREEN)[:, None, None]  # (3, 1, 1)
        image[:, cy - h // 2 : cy - h // 2 + h, cx - w // 2 : cx - w // 2 + w] = colour
    return SearchScene(image, is_red, is_vertical, target, grid, cell, kind)
