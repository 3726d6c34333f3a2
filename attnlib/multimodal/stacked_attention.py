"""Stacked attention: a question attends over image regions, one or more times.

Yang, He, Gao, Deng & Smola (2016), "Stacked Attention Networks for Image Question
Answering", CVPR, arXiv:1511.02274.  The image is a set of region vectors
``v_i`` (``V: (B, R, D)``), the question a vector ``u`` (``(B, D)``).  One attention layer
(their Eqs. 15-17) scores every region against the question and refines the query::

    h_A = tanh(W_I V + (W_Q u + b_A))        # (B, R, k)
    p_I = softmax(W_P h_A + b_P)             # (B, R): attention over regions
    u'  = u + sum_i p_I,i v_i                # (B, D): the refined query

Stacking ``K`` layers (their Eqs. 18-20) feeds ``u'`` to the next layer as its query, so a
second hop can look where the first hop's result points: a question that names one object
and asks about another ("left of the 7") can first find the 7, then its neighbour.  The
answer is read from the last query, ``softmax(W_u u^K + b_u)``.

:class:`StackedAttention` is the mechanism; :class:`SceneQAModel` is a small visual
question-answering model around it for the generated scenes of
:func:`attnlib.data.digit_scenes_qa` (a CNN whose feature map has one vector per grid cell,
with the cell's coordinates appended, and a question embedded from its two tokens).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlib._checks import check_feature_map, check_floating, check_rank, shape_str
from attnlib.record import emit

__all__ = ["StackedAttention", "SceneQAConfig", "SceneQAModel"]


class StackedAttention(nn.Module):
    """``hops`` stacked question-to-region attention layers (Yang et al., 2016, Eqs. 15-20).

    Args:
        dim: ``D``, size of region vectors and of the query.
        hidden: ``k``, size of the joint space ``h_A``.
        hops: ``K >= 1`` attention layers, each with its own weights.

    Emits the weights ``(B, K, R)`` (hop by hop) to :mod:`attnlib.record`.
    """

    def __init__(self, dim: int, hidden: int = 64, hops: int = 2) -> None:
        super().__init__()
        if dim < 1 or hidden < 1 or hops < 1:
            raise ValueError(f"dim, hidden and hops must be positive; got dim={dim}, hidden={hidden}, hops={hops}")
        self.dim, self.hops = dim, hops
        self.image_proj = nn.ModuleList(nn.Linear(dim, hidden, bias=False) for _ in range(hops))  # W_I
        self.query_proj = nn.ModuleList(nn.Linear(dim, hidden) for _ in range(hops))  # W_Q, b_A
        self.score = nn.ModuleList(nn.Linear(hidden, 1) for _ in range(hops))  # W_P, b_P

    def forward(self, regions: Tensor, query: Tensor) -> tuple[Tensor, Tensor]:
        """Attend ``hops`` times.

        Args:
            regions: ``V``, ``(B, R, D)``.
            query: ``u``, ``(B, D)``.

        Returns:
            ``(u^K (B, D), weights (B, K, R))``.

        Raises:
            ValueError: wrong ranks, sizes or dtypes.
        """
        check_rank(regions, "regions", 3, "(B, R, D)")
        check_rank(query, "query", 2, "(B, D)")
        check_floating(regions, "regions")
        if regions.shape[2] != self.dim or tuple(query.shape) != (regions.shape[0], self.dim):
            raise ValueError(
                f"regions must be (B, R, {self.dim}) and query (B, {self.dim}) with the same B; "
                f"got regions {shape_str(regions.shape)}, query {shape_str(query.shape)}"
            )
        u = query
        weights = []
        for k in range(self.hops):
            h = torch.tanh(self.image_proj[k](regions) + self.query_proj[k](u)[:, None, :])  # (B, R, k)
            p = torch.softmax(self.score[k](h).squeeze(-1), dim=-1)  # (B, R)
            u = u + torch.einsum("br,brd->bd", p, regions)  # (B, D)
            weights.append(p)
        stacked = torch.stack(weights, dim=1)  # (B, K, R)
        emit(self, stacked)
        return u, stacked


@dataclass(frozen=True)
class SceneQAConfig:
    """Sizes of :class:`SceneQAModel`.

    Attributes:
        grid: cells per side of the scene (regions ``R = grid * grid``).
        cell: pixels per cell side (the scene is ``grid * cell`` pixels square).
        dim: ``D``, size of region and question vectors.
        hidden: ``k``, size of the attention's joint space.
        hops: stacked attention layers (1 = a single attention layer).
        num_question_types: kinds of question (first token).
        num_answers: answer classes.
        regions: ``"pixels"``: each region is the cell encoder's features plus a learned vector
            for its place; ``"digits"``: the digit head's probabilities for the cell (11 classes,
            no gradient into the encoder, so the cell reader stays as pretrained) concatenated
            with a one-hot of its place, projected to ``dim``.
        answer_hidden: hidden units of the answer classifier; 0 for a linear one (the paper's).
    """

    grid: int = 3
    cell: int = 14
    dim: int = 64
    hidden: int = 64
    hops: int = 2
    num_question_types: int = 2
    num_answers: int = 15
    regions: str = "pixels"
    answer_hidden: int = 0


class SceneQAModel(nn.Module):
    """Answer a question about a scene of digits with stacked attention over its grid cells.

    The ``(B, 1, grid*cell, grid*cell)`` scene is cut into its ``R = grid * grid`` cells; a
    small network (two linear layers) encodes each cell's pixels into a vector, and a learned
    vector for the cell's place is added, giving the regions ``V (B, R, D)`` (``regions="pixels"``);
    with ``regions="digits"`` a region is instead what the digit head reads in the cell, as
    probabilities, beside a one-hot of the cell's place, so the attention sees clean digit and
    position features.  The question
    ``(type, digit)`` is embedded as the sum of two learned vectors, ``u (B, D)``.
    :meth:`cell_logits` reads the digit in each cell (11 classes, the last one "empty") from
    the same encoder, so it can be taught digits first, as Yang et al.'s image model was
    pretrained on ImageNet.
    """

    def __init__(self, config: SceneQAConfig = SceneQAConfig()) -> None:
        super().__init__()
        if config.regions not in ("pixels", "digits") or config.answer_hidden < 0:
            raise ValueError(
                f"regions must be 'pixels' or 'digits' and answer_hidden >= 0; "
                f"got regions={config.regions!r}, answer_hidden={config.answer_hidden}"
            )
        self.config = config
        d, R = config.dim, config.grid * config.grid
        self.encoder = nn.Sequential(nn.Linear(config.cell * config.cell, 128), nn.ReLU(), nn.Linear(128, d), nn.ReLU())
        self.digit_head = nn.Linear(d, 11)
        self.place = nn.Parameter(torch.randn(R, d) * 0.1)  # (R, D)
        self.question_type = nn.Embedding(config.num_question_types, d)
        self.question_digit = nn.Embedding(10, d)
        self.attention = StackedAttention(d, config.hidden, config.hops)
        self.digit_regions = nn.Linear(11 + R, d) if config.regions == "digits" else None
        self.answer: nn.Module = (
            nn.Linear(d, config.num_answers)
            if config.answer_hidden == 0
            else nn.Sequential(
                nn.Linear(d, config.answer_hidden), nn.ReLU(), nn.Linear(config.answer_hidden, config.num_answers)
            )
        )

    def _cells(self, images: Tensor) -> Tensor:
        g, c = self.config.grid, self.config.cell
        check_feature_map(images, "images", channels=1)
        if tuple(images.shape[-2:]) != (g * c, g * c):
            raise ValueError(f"images must be (B, 1, {g * c}, {g * c}); got {shape_str(images.shape)}")
        B = images.shape[0]
        cells = images.reshape(B, g, c, g, c).permute(0, 1, 3, 2, 4)  # (B, g, g, c, c)
        return self.encoder(cells.reshape(B, g * g, c * c))  # (B, R, D)

    def cell_logits(self, images: Tensor) -> Tensor:
        """``(B, R, 11)``: the digit in each cell, class 10 for an empty cell."""
        return self.digit_head(self._cells(images))

    def forward(self, images: Tensor, questions: Tensor) -> tuple[Tensor, Tensor]:
        """``images (B, 1, S, S)``, ``questions (B, 2)`` int64 -> ``(logits (B, A), weights (B, K, R))``."""
        if self.digit_regions is None:
            regions = self._cells(images) + self.place  # (B, R, D)
        else:
            read = torch.softmax(self.digit_head(self._cells(images)), dim=-1).detach()  # (B, R, 11)
            place = torch.eye(read.shape[1], device=images.device).expand(read.shape[0], -1, -1)  # (B, R, R)
            regions = self.digit_regions(torch.cat([read, place], dim=-1))  # (B, R, D)
        if questions.dtype != torch.long or tuple(questions.shape) != (images.shape[0], 2):
            raise ValueError(
                f"questions must be int64 of shape ({images.shape[0]}, 2); "
                f"got {shape_str(questions.shape)} {questions.dtype}"
            )
        u = self.question_type(questions[:, 0]) + self.question_digit(questions[:, 1])  # (B, D)
        u, weights = self.attention(regions, u)
        return self.answer(u), weights
