"""Scenes of MNIST digits on a grid, with questions whose answers and regions are known.

For visual question answering with attention (Yang et al., 2016, "Stacked Attention Networks
for Image Question Answering", arXiv:1511.02274) on data where the truth is known.  A scene
is a ``grid x grid`` board of ``cell x cell`` pixel cells; 3 to 5 of its cells hold an MNIST
digit (LeCun et al., 1998), each of a different class, cropped to its 20 x 20 ink box and
shrunk to ``cell - 2`` pixels.  Every scene comes with one question of one of two kinds:

* ``"left_of"``: *what digit is left of the d?*  The asked-about digit ``d`` has an
  occupied cell directly to its left (same row, the next column); the answer is that
  neighbour's class (answers ``0..9``) and the region asked about is the neighbour's cell.
* ``"count_above"``: *how many digits are above the d?*  The answer is the number of digits
  in the rows above ``d``'s row, any column (answers ``10 + count``); the region asked about
  is the cells of the digits counted, or ``d``'s own cell when there are none.

Regions are given per grid cell, cells numbered row by row, so :func:`region_attention_share`
scores attention over the ``grid * grid`` cells against them.  Every example is a pure
function of ``(seed, index)``.

Two trivial baselines say what a model could score without relating the named digit to
another: :func:`question_type_prior` (the commonest training answer of each question type)
and :func:`position_rule_accuracy` (a reader that knows every cell's digit but not which
cell holds the named one, guessing among the answers the board's layout allows).
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from attnlib._checks import check_rank, shape_str

__all__ = [
    "QUESTION_TYPES",
    "NUM_ANSWERS",
    "DigitScenesQA",
    "digit_scenes_qa",
    "answer_text",
    "question_text",
    "region_attention_share",
    "question_type_prior",
    "position_rule_accuracy",
]

#: The two kinds of question, in the order of ``questions[:, 0]``.
QUESTION_TYPES = ("left_of", "count_above")
_MAX_DIGITS = 5
#: Answers ``0..9`` are digit classes, ``10 + c`` is the count ``c`` (``c = 0..4``).
NUM_ANSWERS = 10 + _MAX_DIGITS
_CROP = slice(4, 24)


class DigitScenesQA(NamedTuple):
    """``N`` scenes, one question each."""

    images: Tensor  #: ``(N, 1, grid * cell, grid * cell)`` float32 in ``[0, 1]``
    cells: Tensor  #: ``(N, grid * grid)`` int64 class of the digit in each cell, ``-1`` for an empty cell
    questions: Tensor  #: ``(N, 2)`` int64 ``(question type, asked-about digit)``
    answers: Tensor  #: ``(N,)`` int64 in ``0..NUM_ANSWERS - 1``
    regions: Tensor  #: ``(N, grid * grid)`` bool, the cells the question asks about


def question_text(question: Tensor) -> str:
    """The English question for one row ``(type, digit)`` of ``questions``."""
    kind, digit = int(question[0]), int(question[1])
    if kind == 0:
        return f"what digit is left of the {digit}?"
    return f"how many digits are above the {digit}?"


def answer_text(answer: int | Tensor) -> str:
    """``"7"`` for a digit answer, ``"2 digits"`` style for a count."""
    a = int(answer)
    return str(a) if a < 10 else f"{a - 10} digit{'' if a == 11 else 's'}"


def digit_scenes_qa(
    digits: Tensor,
    digit_labels: Tensor,
    n: int,
    *,
    seed: int = 0,
    grid: int = 3,
    cell: int = 14,
    num_digits: tuple[int, int] = (3, 5),
) -> DigitScenesQA:
    """Generate ``n`` scenes with one question each from a pool of MNIST digits.

    Args:
        digits: ``(M, 28, 28)`` uint8 MNIST images; ``digit_labels``: ``(M,)`` their classes
            (every class must occur).
        n: number of scenes.
        seed: example ``i`` is a pure function of ``(seed, i)``.
        grid: cells per side (at least 2).
        cell: pixels per cell side (at least 6).
        num_digits: ``(least, most)`` digits per scene, ``3 <= least <= most <= 5`` and at most ``grid * grid``.

    Raises:
        ValueError: bad pool shapes or dtype, or sizes out of range.
    """
    check_rank(digits, "digits", 3, "(M, 28, 28)")
    if tuple(digits.shape[1:]) != (28, 28) or digits.dtype != torch.uint8:
        raise ValueError(f"digits must be uint8 MNIST images (M, 28, 28); got {shape_str(digits.shape)} {digits.dtype}")
    if digit_labels.shape != digits.shape[:1]:
        raise ValueError(f"digit_labels must have shape ({digits.shape[0]},); got {shape_str(digit_labels.shape)}")
    least, most = num_digits
    if grid < 2 or cell < 6:
        raise ValueError(f"grid must be >= 2 and cell >= 6; got grid={grid}, cell={cell}")
    if not 3 <= least <= most <= min(_MAX_DIGITS, grid * grid):
        limit = min(_MAX_DIGITS, grid * grid)
        raise ValueError(f"num_digits must satisfy 3 <= least <= most <= {limit}; got {num_digits}")
    by_class = [torch.nonzero(digit_labels == c).flatten() for c in range(10)]
    if any(len(ix) == 0 for ix in by_class):
        raise ValueError("the digit pool must hold every class 0..9")
    side = cell - 2
    size = grid * cell
    images = torch.zeros(n, 1, size, size)
    cells = torch.full((n, grid * grid), -1, dtype=torch.long)
    questions = torch.zeros(n, 2, dtype=torch.long)
    answers = torch.zeros(n, dtype=torch.long)
    regions = torch.zeros(n, grid * grid, dtype=torch.bool)
    for i in range(n):
        g = torch.Generator().manual_seed((seed * 1_000_003 + i) % (2**63 - 1))
        kind = int(torch.randint(2, (1,), generator=g))
        while True:  # draw layouts until the question can be asked
            k = int(torch.randint(least, most + 1, (1,), generator=g))
            places = torch.randperm(grid * grid, generator=g)[:k]
            classes = torch.randperm(10, generator=g)[:k]
            board = torch.full((grid * grid,), -1, dtype=torch.long)
            board[places] = classes
            if kind == 0:
                anchors = [int(p) for p in places if int(p) % grid > 0 and board[int(p) - 1] >= 0]
                if not anchors:
                    continue
                anchor = anchors[int(torch.randint(len(anchors), (1,), generator=g))]
                answer = int(board[anchor - 1])
                region = [anchor - 1]
            else:
                anchor = int(places[int(torch.randint(k, (1,), generator=g))])
                above = [int(p) for p in places if int(p) // grid < anchor // grid]
                answer = 10 + len(above)
                region = above or [anchor]
            break
        for p, c in zip(places.tolist(), classes.tolist()):
            pool = by_class[c]
            src = digits[pool[int(torch.randint(len(pool), (1,), generator=g))], _CROP, _CROP].float().div(255)
            glyph = F.interpolate(src[None, None], size=(side, side), mode="bilinear", align_corners=False)[0, 0]
            r, col = divmod(p, grid)
            dy, dx = (int(v) for v in torch.randint(3, (2,), generator=g))
            y, x = r * cell + dy, col * cell + dx
            images[i, 0, y : y + side, x : x + side] = glyph.clamp(0, 1)  # (side, side)
        cells[i] = board
        questions[i] = torch.tensor([kind, int(board[anchor])])
        answers[i] = answer
        regions[i, region] = True
    return DigitScenesQA(images, cells, questions, answers, regions)


def region_attention_share(weights: Tensor, regions: Tensor) -> Tensor:
    """Share of each example's attention that lands on the cells asked about.

    Args:
        weights: ``(N, R)`` attention over the ``R = grid * grid`` cells (rows sum to one).
        regions: ``(N, R)`` bool, as in :class:`DigitScenesQA`.

    Returns:
        ``(N,)`` float in ``[0, 1]``; uniform attention scores ``regions.sum(1) / R``.

    Raises:
        ValueError: shapes that differ or are not 2-D, or ``regions`` not boolean.
    """
    check_rank(weights, "weights", 2, "(N, R)")
    if regions.dtype != torch.bool or tuple(regions.shape) != tuple(weights.shape):
        raise ValueError(
            f"regions must be a bool tensor of the weights' shape {shape_str(weights.shape)}; "
            f"got {shape_str(regions.shape)} {regions.dtype}"
        )
    return (weights * regions).sum(dim=1)  # (N,)


def question_type_prior(train_questions: Tensor, train_answers: Tensor, questions: Tensor) -> Tensor:
    """The commonest training answer of each question's type: ``(N,)`` int64 predictions.

    Args:
        train_questions: ``(M, 2)`` int64, ``train_answers``: ``(M,)`` int64, the training set.
        questions: ``(N, 2)`` int64, the questions to answer.

    Raises:
        ValueError: shapes that do not match, or a question type absent from the training set.
    """
    check_rank(train_questions, "train_questions", 2, "(M, 2)")
    check_rank(questions, "questions", 2, "(N, 2)")
    if train_answers.shape != train_questions.shape[:1]:
        raise ValueError(
            f"train_answers must have shape ({train_questions.shape[0]},); got {shape_str(train_answers.shape)}"
        )
    prediction = torch.zeros(questions.shape[0], dtype=torch.long)
    for kind in questions[:, 0].unique().tolist():
        seen = train_answers[train_questions[:, 0] == kind]
        if len(seen) == 0:
            raise ValueError(f"question type {kind} does not occur in the training set")
        prediction[questions[:, 0] == kind] = seen.bincount().argmax()
    return prediction


def position_rule_accuracy(
    cells: Tensor, questions: Tensor, answers: Tensor, *, grid: int = 3, right_neighbour: bool = True
) -> Tensor:
    """Expected accuracy ``(N,)`` of guessing uniformly among the answers the board's layout allows.

    The rule knows every cell's digit (a perfect reader) and the question, but not which cell
    holds the named digit ``d``, so it cannot follow the relation:

    * *left of the d*: a digit in an occupied cell outside the last column, other than ``d``;
      with ``right_neighbour`` only such cells whose right-hand cell is occupied (a left
      neighbour always has one);
    * *how many digits above the d*: ``d`` may be any occupied cell; the rule guesses among the
      counts that the most occupied cells would give.

    Args:
        cells: ``(N, grid * grid)`` int64, ``-1`` for an empty cell; ``questions``: ``(N, 2)``;
            ``answers``: ``(N,)``, as in :class:`DigitScenesQA`.

    Raises:
        ValueError: shapes that do not match.
    """
    check_rank(cells, "cells", 2, "(N, grid * grid)")
    n = cells.shape[0]
    if cells.shape[1] != grid * grid or tuple(questions.shape) != (n, 2) or tuple(answers.shape) != (n,):
        raise ValueError(
            f"cells must be (N, {grid * grid}), questions (N, 2) and answers (N,); got "
            f"{shape_str(cells.shape)}, {shape_str(questions.shape)}, {shape_str(answers.shape)}"
        )
    column, row = torch.arange(grid * grid) % grid, torch.arange(grid * grid) // grid
    expected = torch.zeros(n)
    for i in range(n):
        board = cells[i]
        occupied = board >= 0  # (R,)
        if int(questions[i, 0]) == 0:
            allowed = occupied & (column < grid - 1) & (board != questions[i, 1])
            if right_neighbour:
                right = torch.zeros_like(occupied)
                right[:-1] = occupied[1:]
                allowed = allowed & right & (column < grid - 1)
            digits = board[allowed]
            if len(digits) > 0:
                expected[i] = (digits == answers[i]).float().sum() / len(digits)
        else:
            counts = [10 + int((occupied & (row < row[p])).sum()) for p in torch.nonzero(occupied).flatten().tolist()]
            tally = torch.tensor(counts).bincount()
            modes = torch.nonzero(tally == tally.max()).flatten()
            expected[i] = (modes == answers[i]).float().sum() / len(modes)
    return expected
