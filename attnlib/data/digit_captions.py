"""Digit scenes with captions: a captioning task whose attention can be scored.

For Show, Attend and Tell (Xu et al., 2015, arXiv:1502.03044) on data where the truth is
known.  A scene is a ``canvas x canvas`` image holding 2 to 4 MNIST digits (LeCun et al.,
1998), each shrunk to ``digit_size x digit_size`` pixels and placed in its own cell of a
3 x 3 grid (with a small random shift inside the cell).  Its caption names the digits in
**reading order** (top row first, left to right within a row) and states how each digit
stands to the one named before it: ``left of`` when the next digit is in the same row,
``above`` when it is in a lower row.  For example::

    seven left of two above four

says that a 7 and a 2 share a row (the 7 on the left) and that the 4 is in a lower row.
Every digit's box is kept, so for each digit word the caption knows where the named digit
really is, and :func:`localisation_score` measures how much of a model's attention lands
there.

Every example is a pure function of ``(seed, split_code, index)``: its own generator is
seeded from those three numbers (as in :mod:`attnlib.data.clutter`), so example ``i`` is the
same whatever batch it is generated in, and a test can regenerate any one of them.
"""

from __future__ import annotations

from typing import NamedTuple, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from attnlib._checks import check_rank, shape_str
from attnlib.data.mnist import load_mnist

__all__ = [
    "CAPTION_VOCAB",
    "DIGIT_WORDS",
    "DigitCaptions",
    "digit_caption_scenes",
    "load_digit_captions",
    "encode_caption",
    "decode_caption",
    "localisation_score",
    "digit_cells",
]

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
#: Token 0 pads, 1 starts and 2 ends a caption; then the ten digit words and the relations.
CAPTION_VOCAB = ("<pad>", "<bos>", "<eos>", *DIGIT_WORDS, "left", "of", "above")
PAD, BOS, EOS = 0, 1, 2
_WORD_ID = {word: i for i, word in enumerate(CAPTION_VOCAB)}
_GRID = 3  # the scene is a 3 x 3 grid of cells, one digit at most per cell
_SPLIT_CODES = {"train": 0, "test": 1}
MAX_WORDS = 4 + 3 * 2  # four digits and three two-word relations


class DigitCaptions(NamedTuple):
    """Captioned digit scenes (``N`` scenes, at most ``T = 11`` caption tokens, at most 4 digits)."""

    images: Tensor  #: ``(N, 1, canvas, canvas)`` float32 in ``[0, 1]``
    captions: Tensor  #: ``(N, T)`` int64 token ids ending with ``<eos>``, then ``<pad>``
    lengths: Tensor  #: ``(N,)`` int64, tokens including ``<eos>``
    labels: Tensor  #: ``(N, 4)`` int64 digit classes in caption order, ``-1`` past the last digit
    boxes: Tensor  #: ``(N, 4, 4)`` int64 ``(x, y, w, h)`` of each digit in caption order, ``-1`` padded
    word_digit: Tensor  #: ``(N, T)`` int64: for each token, the digit (index into ``boxes``) it names, or ``-1``


def encode_caption(words: Sequence[str]) -> list[int]:
    """Token ids of ``words`` followed by ``<eos>``.

    Raises:
        ValueError: for a word outside :data:`CAPTION_VOCAB`.
    """
    unknown = [w for w in words if w not in _WORD_ID]
    if unknown:
        raise ValueError(f"words {unknown} are not in the caption vocabulary {list(CAPTION_VOCAB)}")
    return [_WORD_ID[w] for w in words] + [EOS]


def decode_caption(tokens: Sequence[int]) -> list[str]:
    """Words of a token sequence, stopping at ``<eos>`` and skipping ``<pad>`` and ``<bos>``."""
    words = []
    for t in tokens:
        t = int(t)
        if t == EOS:
            break
        if not 0 <= t < len(CAPTION_VOCAB):
            raise ValueError(f"token id {t} is outside the vocabulary of {len(CAPTION_VOCAB)} words")
        if t not in (PAD, BOS):
            words.append(CAPTION_VOCAB[t])
    return words


def _shrink(digits: Tensor, size: int) -> Tensor:
    """``(N, 28, 28)`` uint8 -> ``(N, size, size)`` float32 in ``[0, 1]`` (area-averaged)."""
    x = digits.float().div(255).unsqueeze(1)  # (N, 1, 28, 28)
    return F.interpolate(x, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[:, 0].clamp(0, 1)


def digit_caption_scenes(
    digits: Tensor,
    labels: Tensor,
    num_scenes: int,
    *,
    seed: int = 0,
    split_code: int = 0,
    start: int = 0,
    canvas: int = 48,
    digit_size: int = 14,
    min_digits: int = 2,
    max_digits: int = 4,
) -> DigitCaptions:
    """Scenes ``start, ..., start + num_scenes - 1`` made from the source ``digits``.

    Scene ``i`` draws (from its own generator, seeded with ``(seed, split_code, i)``) the number
    of digits ``k`` uniformly in ``[min_digits, max_digits]``, ``k`` distinct cells of the 3 x 3
    grid, a shift of up to ``canvas // 3 - digit_size`` pixels inside each cell, and ``k`` source
    digits uniformly from ``digits``.

    Args:
        digits: ``(M, 28, 28)`` uint8 MNIST digits; ``labels``: ``(M,)``.
        num_scenes: ``N``.
        seed, split_code: with the index, what each scene is a function of.
        start: index of the first scene.
        canvas: side of the square image (divisible by 3).
        digit_size: side of each shrunk digit (at most ``canvas // 3``).
        min_digits, max_digits: between 1 and 4.

    Returns:
        A :class:`DigitCaptions`.

    Raises:
        ValueError: for inconsistent sizes.
    """
    check_rank(digits, "digits", 3, "(M, 28, 28)")
    if labels.shape != (digits.shape[0],):
        raise ValueError(f"labels must have shape ({digits.shape[0]},); got {shape_str(labels.shape)}")
    cell = canvas // _GRID
    if canvas % _GRID or not 1 <= digit_size <= cell:
        raise ValueError(
            f"canvas ({canvas}) must be divisible by 3 and digit_size ({digit_size}) between 1 and canvas // 3 = {cell}"
        )
    if not 1 <= min_digits <= max_digits <= 4:
        raise ValueError(f"need 1 <= min_digits <= max_digits <= 4; got {min_digits} and {max_digits}")
    if num_scenes < 0:
        raise ValueError(f"num_scenes must be >= 0; got {num_scenes}")
    small = _shrink(digits, digit_size).numpy()  # (M, s, s)
    source_labels = labels.numpy()
    images = np.zeros((num_scenes, 1, canvas, canvas), dtype=np.float32)
    captions = np.full((num_scenes, MAX_WORDS + 1), PAD, dtype=np.int64)
    word_digit = np.full((num_scenes, MAX_WORDS + 1), -1, dtype=np.int64)
    lengths = np.zeros(num_scenes, dtype=np.int64)
    scene_labels = np.full((num_scenes, 4), -1, dtype=np.int64)
    boxes = np.full((num_scenes, 4, 4), -1, dtype=np.int64)
    slack = cell - digit_size
    for n in range(num_scenes):
        rng = np.random.default_rng([int(seed), int(split_code), int(start + n)])
        k = int(rng.integers(min_digits, max_digits + 1))
        cells = np.sort(rng.choice(_GRID * _GRID, size=k, replace=False))  # reading order: row-major
        shifts = rng.integers(0, slack + 1, size=(k, 2))
        sources = rng.integers(0, len(small), size=k)
        words: list[str] = []
        owners: list[int] = []
        for j, (c, (dx, dy), src) in enumerate(zip(cells, shifts, sources)):
            row, col = divmod(int(c), _GRID)
            x, y = col * cell + int(dx), row * cell + int(dy)
            patch = images[n, 0, y : y + digit_size, x : x + digit_size]
            np.maximum(patch, small[src], out=patch)
            boxes[n, j] = (x, y, digit_size, digit_size)
            scene_labels[n, j] = source_labels[src]
            if j > 0:
                relation = ["left", "of"] if int(cells[j - 1]) // _GRID == row else ["above"]
                words += relation
                owners += [-1] * len(relation)
            words.append(DIGIT_WORDS[int(source_labels[src])])
            owners.append(j)
        tokens = encode_caption(words)
        captions[n, : len(tokens)] = tokens
        word_digit[n, : len(owners)] = owners
        lengths[n] = len(tokens)
    return DigitCaptions(
        torch.from_numpy(images),
        torch.from_numpy(captions),
        torch.from_numpy(lengths),
        torch.from_numpy(scene_labels),
        torch.from_numpy(boxes),
        torch.from_numpy(word_digit),
    )


def load_digit_captions(
    split: str = "train",
    num_scenes: int = 10_000,
    *,
    seed: int = 0,
    canvas: int = 48,
    digit_size: int = 14,
    download: bool = True,
) -> DigitCaptions:
    """Scenes made from the digits of one MNIST split (train scenes never show test digits).

    Args:
        split: ``"train"`` or ``"test"``.
        num_scenes: how many (scenes ``0 .. num_scenes - 1``).
        seed, canvas, digit_size: as in :func:`digit_caption_scenes`.
        download: passed to :func:`~attnlib.data.mnist.load_mnist`.

    Returns:
        A :class:`DigitCaptions`.
    """
    if split not in _SPLIT_CODES:
        raise ValueError(f"split must be 'train' or 'test'; got {split!r}")
    digits, labels = load_mnist(split, download=download)
    return digit_caption_scenes(
        digits, labels, num_scenes, seed=seed, split_code=_SPLIT_CODES[split], canvas=canvas, digit_size=digit_size
    )


def digit_cells(data: DigitCaptions, digit: int = 0) -> Tensor:
    """The grid cell holding each scene's ``digit``-th digit: ``(N, 1, canvas / 3, canvas / 3)``.

    Cut from scenes of one digit, these are single digits as they appear in the scenes,
    cheap inputs for training an encoder to recognise them (the label is ``data.labels[:, digit]``).

    Raises:
        ValueError: if some scene has no ``digit``-th digit.
    """
    if not 0 <= digit < 4 or bool((data.labels[:, digit] < 0).any()):
        raise ValueError(
            f"every scene needs a digit number {digit}; some have only {int((data.labels >= 0).sum(1).min())} digits"
        )
    cell = data.images.shape[-1] // _GRID
    corners = data.boxes[:, digit, :2] // cell * cell  # (N, 2): (x, y) of the cell's top-left pixel
    return torch.stack([image[:, y : y + cell, x : x + cell] for image, (x, y) in zip(data.images, corners.tolist())])


def _cell_overlap(grid: tuple[int, int], canvas: int, boxes: Tensor) -> Tensor:
    """Share of each grid cell's area inside each box: ``boxes (..., 4)`` -> ``(..., h * w)``."""
    gh, gw = grid
    ch, cw = canvas / gh, canvas / gw
    top = torch.arange(gh, dtype=torch.float64) * ch  # (gh,)
    left = torch.arange(gw, dtype=torch.float64) * cw  # (gw,)
    x, y, w, h = boxes.double().unbind(-1)  # each (...)
    over_y = ((y[..., None] + h[..., None]).clamp(max=top + ch) - y[..., None].clamp(min=top)).clamp(min=0)  # (..., gh)
    over_x = ((x[..., None] + w[..., None]).clamp(max=left + cw) - x[..., None].clamp(min=left)).clamp(
        min=0
    )  # (..., gw)
    return (over_y[..., :, None] * over_x[..., None, :] / (ch * cw)).flatten(-2)  # (..., gh * gw)


def _centre_inside(grid: tuple[int, int], canvas: int, boxes: Tensor) -> Tensor:
    """Whether each grid cell's centre lies inside each box: ``(..., 4)`` -> ``(..., h * w)`` bool."""
    gh, gw = grid
    cy = (torch.arange(gh, dtype=torch.float64) + 0.5) * canvas / gh  # (gh,)
    cx = (torch.arange(gw, dtype=torch.float64) + 0.5) * canvas / gw  # (gw,)
    x, y, w, h = boxes.double().unbind(-1)
    in_y = (cy >= y[..., None]) & (cy < (y + h)[..., None])  # (..., gh)
    in_x = (cx >= x[..., None]) & (cx < (x + w)[..., None])  # (..., gw)
    return (in_y[..., :, None] & in_x[..., None, :]).flatten(-2)  # (..., gh * gw)


def localisation_score(
    maps: Tensor,
    boxes: Tensor,
    word_digit: Tensor,
    *,
    canvas: int,
    grid: Optional[tuple[int, int]] = None,
) -> dict[str, float]:
    """How much attention each digit word puts on the digit it names.

    For every caption token that names a digit, with attention ``alpha`` over the grid of
    cells, the **share** is ``sum_i alpha_i * |cell_i ∩ box| / |cell_i|`` (the attention mass
    inside the named digit's box, cells cut by the box counted in proportion) and the
    **hit** is whether the arg-max cell's centre lies inside the box.  The uniform map's
    share is ``|box| / canvas²`` and its hit rate the share of cell centres inside the box:
    the chance levels.

    Args:
        maps: ``(N, T, L)`` or ``(N, T, h, w)`` attention of each caption token over the ``L = h w``
            cells (rows past a caption's digit words are ignored).
        boxes: ``(N, 4, 4)``, ``word_digit``: ``(N, T')`` as in :class:`DigitCaptions`; the first
            ``min(T, T')`` tokens are scored.
        canvas: side of the image in pixels.
        grid: ``(h, w)`` of the cells; from ``maps`` when 4-D, else square ``sqrt(L)``.

    Returns:
        ``{"share", "uniform_share", "hit_rate", "uniform_hit_rate", "words"}`` (means over the
        scored digit words; ``words`` is how many).

    Raises:
        ValueError: for inconsistent shapes or no digit word to score.
    """
    if maps.dim() == 4:
        grid = grid or (maps.shape[2], maps.shape[3])
        maps = maps.flatten(2)  # (N, T, L)
    check_rank(maps, "maps", 3, "(N, T, L)")
    n, t, cells = maps.shape
    if grid is None:
        side = int(round(cells**0.5))
        grid = (side, side)
    if grid[0] * grid[1] != cells:
        raise ValueError(
            f"grid {grid} has {grid[0] * grid[1]} cells but maps have L = {cells}: got maps {shape_str(maps.shape)}"
        )
    check_rank(boxes, "boxes", 3, "(N, 4, 4)")
    check_rank(word_digit, "word_digit", 2, "(N, T)")
    if boxes.shape[0] != n or word_digit.shape[0] != n:
        raise ValueError(
            f"maps {shape_str(maps.shape)}, boxes {shape_str(boxes.shape)} and word_digit "
            f"{shape_str(word_digit.shape)} must share N"
        )
    steps = min(t, word_digit.shape[1])
    owner = word_digit[:, :steps]  # (N, T)
    scored = owner >= 0  # (N, T)
    if not scored.any():
        raise ValueError("no token names a digit: nothing to score")
    word_boxes = torch.gather(boxes, 1, owner.clamp(min=0)[..., None].expand(-1, -1, 4))  # (N, T, 4)
    overlap = _cell_overlap(grid, canvas, word_boxes)  # (N, T, L)
    inside = _centre_inside(grid, canvas, word_boxes)  # (N, T, L)
    attention = maps[:, :steps].double()  # (N, T, L)
    share = (attention * overlap).sum(-1)[scored]  # (words,)
    hit = torch.gather(inside, 2, attention.argmax(-1, keepdim=True))[..., 0][scored]  # (words,)
    area = (word_boxes[..., 2] * word_boxes[..., 3]).double()[scored] / canvas**2  # (words,)
    return {
        "share": float(share.mean()),
        "uniform_share": float(area.mean()),
        "hit_rate": float(hit.double().mean()),
        "uniform_hit_rate": float(inside.double().mean(-1)[scored].mean()),
        "words": int(scored.sum()),
    }
