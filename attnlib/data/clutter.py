"""Translated and cluttered MNIST: a digit somewhere on a larger canvas, alone or among clutter.

The larger tasks of Mnih et al., *Recurrent Models of Visual Attention*, NeurIPS 2014
(arXiv:1406.6247), section 4.1:

* **translated MNIST**: a 28x28 MNIST digit pasted at a uniformly random position of an
  empty ``canvas x canvas`` image (60x60 in the paper);
* **cluttered translated MNIST**: the same, plus ``num_clutter`` pieces of
  ``clutter_size x clutter_size`` pixels (8x8 in the paper) cut at random from *other*
  random digits of the same split and pasted at random positions.  We cut the pieces
  from the central 20x20 box of the source digit, where MNIST keeps its ink, so that a
  piece is rarely empty.  The paper does not
  state the number of pieces for 60x60; we use 4 by default (a common choice in
  reimplementations).  Where pieces and the digit overlap, the brighter pixel wins.

Every example is a pure function of ``(seed, split, index)``: its own generator is seeded
from those three numbers, so example ``i`` is the same whatever batch or subset it is
generated in, and a test can regenerate any one of them.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
from torch import Tensor

from attnlib._checks import check_rank, shape_str
from attnlib.data.mnist import load_mnist

__all__ = ["PlacedDigits", "translated_mnist", "cluttered_mnist", "load_translated_mnist", "load_cluttered_mnist"]

_SPLIT_CODES = {"train": 0, "test": 1}


class PlacedDigits(NamedTuple):
    """Digits placed on a canvas."""

    images: Tensor  #: ``(N, 1, canvas, canvas)`` float32 in ``[0, 1]``
    labels: Tensor  #: ``(N,)`` int64, the class of the placed digit
    positions: Tensor  #: ``(N, 2)`` int64 ``(x, y)``: the digit's top-left pixel (column, row)


def _example_rng(seed: int, split_code: int, index: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), int(split_code), int(index)])


def _place(
    digits: Tensor,
    labels: Tensor,
    indices: Sequence[int],
    *,
    seed: int,
    split_code: int,
    canvas: int,
    num_clutter: int,
    clutter_size: int,
) -> PlacedDigits:
    check_rank(digits, "digits", 3, "(N, 28, 28)")
    n_src, dh, dw = digits.shape
    if canvas < max(dh, dw) or clutter_size > min(dh, dw) or clutter_size < 1:
        raise ValueError(
            f"canvas ({canvas}) must be at least the digit size {shape_str((dh, dw))} and clutter_size "
            f"({clutter_size}) between 1 and it"
        )
    if num_clutter > 0 and n_src < 2:
        raise ValueError(f"clutter needs at least 2 source digits; got {n_src}")
    if labels.shape != (n_src,):
        raise ValueError(f"labels must have shape ({n_src},); got {shape_str(labels.shape)}")
    source = (
        digits.numpy() if digits.dtype == torch.uint8 else (digits.clamp(0, 1) * 255).round().to(torch.uint8).numpy()
    )
    out = np.zeros((len(indices), canvas, canvas), dtype=np.uint8)  # (N, canvas, canvas)
    positions = np.zeros((len(indices), 2), dtype=np.int64)
    for row, index in enumerate(indices):
        if not 0 <= index < n_src:
            raise ValueError(f"index {index} is out of range for {n_src} source digits")
        rng = _example_rng(seed, split_code, index)
        for _ in range(num_clutter):
            other = int(rng.integers(n_src - 1))
            other += other >= index  # another digit than the one placed
            my, mx = min(4, (dh - clutter_size) // 2), min(4, (dw - clutter_size) // 2)  # skip the empty border
            cy, cx = rng.integers(my, dh - my - clutter_size + 1), rng.integers(mx, dw - mx - clutter_size + 1)
            py, px = rng.integers(0, canvas - clutter_size + 1), rng.integers(0, canvas - clutter_size + 1)
            piece = source[other, cy : cy + clutter_size, cx : cx + clutter_size]
            region = out[row, py : py + clutter_size, px : px + clutter_size]
            np.maximum(region, piece, out=region)
        y, x = rng.integers(0, canvas - dh + 1), rng.integers(0, canvas - dw + 1)
        region = out[row, y : y + dh, x : x + dw]
        np.maximum(region, source[index], out=region)
        positions[row] = (x, y)
    images = torch.from_numpy(out).float().div_(255).unsqueeze(1)  # (N, 1, canvas, canvas)
    return PlacedDigits(
        images, labels[torch.as_tensor(list(indices), dtype=torch.long)].clone(), torch.from_numpy(positions)
    )


def _indices(n: int, indices: Optional[Sequence[int]]) -> list[int]:
    return list(range(n)) if indices is None else [int(i) for i in indices]


def translated_mnist(
    digits: Tensor,
    labels: Tensor,
    *,
    seed: int = 0,
    indices: Optional[Sequence[int]] = None,
    canvas: int = 60,
    split_code: int = 0,
) -> PlacedDigits:
    """Paste digits at random positions of an empty canvas.

    Args:
        digits: ``(N, 28, 28)`` source digits, uint8 (0..255) or float in ``[0, 1]``.
        labels: ``(N,)`` their classes.
        seed: the data set's seed.
        indices: which source digits to place (default: all, in order).
        canvas: side of the square canvas (60 in the paper).
        split_code: mixed into each example's seed so that train and test differ
            (0 train, 1 test in the loaders).

    Returns:
        A :class:`PlacedDigits`; example ``i`` depends only on ``(seed, split_code, i)``.
    """
    return _place(
        digits,
        labels,
        _indices(len(digits), indices),
        seed=seed,
        split_code=split_code,
        canvas=canvas,
        num_clutter=0,
        clutter_size=1,
    )


def cluttered_mnist(
    digits: Tensor,
    labels: Tensor,
    *,
    seed: int = 0,
    indices: Optional[Sequence[int]] = None,
    canvas: int = 60,
    num_clutter: int = 4,
    clutter_size: int = 8,
    split_code: int = 0,
) -> PlacedDigits:
    """Paste digits at random positions of a canvas holding pieces of other digits.

    Args:
        digits: ``(N, 28, 28)`` source digits (also the source of the clutter).
        labels: ``(N,)``.
        seed, indices, canvas, split_code: as in :func:`translated_mnist`.
        num_clutter: pieces of clutter per image (our default 4).
        clutter_size: side of each piece (8 in the paper).

    Returns:
        A :class:`PlacedDigits`; example ``i`` depends only on ``(seed, split_code, i)``
        (and the source digits).
    """
    return _place(
        digits,
        labels,
        _indices(len(digits), indices),
        seed=seed,
        split_code=split_code,
        canvas=canvas,
        num_clutter=num_clutter,
        clutter_size=clutter_size,
    )


def _load(split: str, limit: Optional[int], download: bool) -> tuple[Tensor, Tensor]:
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    digits, labels = load_mnist(split, download=download)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1 or None; got {limit}")
        digits, labels = digits[:limit], labels[:limit]
    return digits, labels


def load_translated_mnist(
    split: str = "train",
    *,
    seed: int = 0,
    limit: Optional[int] = None,
    canvas: int = 60,
    download: bool = True,
) -> PlacedDigits:
    """Translated MNIST from the MNIST ``split``: the first ``limit`` digits, each placed once.

    Args:
        split: ``"train"`` or ``"test"``.
        seed: the placement seed.
        limit: use only the first ``limit`` digits of the split (all by default).
        canvas: side of the canvas (60 in the paper).
        download: passed to :func:`attnlib.data.mnist.load_mnist`.

    Returns:
        A :class:`PlacedDigits` of ``(N, 1, canvas, canvas)`` images.
    """
    digits, labels = _load(split, limit, download)
    return translated_mnist(digits, labels, seed=seed, canvas=canvas, split_code=_SPLIT_CODES[split])


def load_cluttered_mnist(
    split: str = "train",
    *,
    seed: int = 0,
    limit: Optional[int] = None,
    canvas: int = 60,
    num_clutter: int = 4,
    clutter_size: int = 8,
    download: bool = True,
) -> PlacedDigits:
    """Cluttered translated MNIST from the MNIST ``split`` (clutter cut from the same ``limit`` digits).

    Args:
        split, seed, limit, canvas, download: as in :func:`load_translated_mnist`.
        num_clutter: pieces of clutter per image (our default 4).
        clutter_size: side of each piece (8 in the paper).

    Returns:
        A :class:`PlacedDigits` of ``(N, 1, canvas, canvas)`` images.
    """
    digits, labels = _load(split, limit, download)
    return cluttered_mnist(
        digits,
        labels,
        seed=seed,
        canvas=canvas,
        num_clutter=num_clutter,
        clutter_size=clutter_size,
        split_code=_SPLIT_CODES[split],
    )
