"""Greedy decoding and beam search for Show, Attend and Tell, with the map behind every word.

Xu et al. (2015, arXiv:1502.03044) caption with beam search and show, for each generated
word, where the model looked (their figures 2 to 5).  Both decoders here call
:meth:`~attnlib.captioning.show_attend_tell.ShowAttendTell.step` and keep, for every word
they output, the attention ``alpha_t`` reshaped to the annotation grid and the gate
``beta_t``.  The attention module also emits each step's map through
:func:`attnlib.record.emit`.  With ``beam_size=1`` beam search makes greedy decoding's
choices (a test checks it).  A hard-attention model decodes with its eval-mode location
(the arg-max cell) unless ``location`` says otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch
from torch import Tensor

from .show_attend_tell import ShowAttendTell

__all__ = ["Caption", "greedy_caption", "beam_caption"]


@dataclass
class Caption:
    """One decoded caption.

    Attributes:
        tokens: ids of the generated words, ending with ``<eos>`` unless ``max_len`` was reached.
        maps: ``(len(tokens), h, w)`` the attention behind each token.
        betas: ``(len(tokens),)`` the gate at each token.
        log_prob: sum of the chosen tokens' log-probabilities.
    """

    tokens: list[int]
    maps: Tensor
    betas: Tensor
    log_prob: float


def _max_len(model: ShowAttendTell, max_len: Optional[int]) -> int:
    limit = model.config.max_caption_length
    if max_len is None:
        return limit
    if not 1 <= max_len <= limit:
        raise ValueError(f"max_len must be between 1 and max_caption_length = {limit}; got {max_len}")
    return max_len


@torch.no_grad()
def greedy_caption(
    model: ShowAttendTell, inputs: Tensor, *, max_len: Optional[int] = None, location: Optional[str] = None
) -> list[Caption]:
    """The most likely word at every step, for a batch of images.

    Args:
        model: put it in ``eval()`` mode first.
        inputs: images ``(B, C, H, W)`` or encoder features ``(B, L, D)`` (see
            :meth:`~attnlib.captioning.show_attend_tell.ShowAttendTell.encode`).
        max_len: most tokens per caption (default and upper bound: ``max_caption_length``).
        location: for a hard model, as in :meth:`~attnlib.captioning.show_attend_tell.ShowAttendTell.step`.

    Returns:
        One :class:`Caption` per image.
    """
    steps = _max_len(model, max_len)
    annotations, projected = model.encode(inputs)  # (B, L, D), (B, L, A)
    state = model.start(annotations)
    b = annotations.shape[0]
    previous = torch.full((b,), model.config.bos_id, dtype=torch.long, device=annotations.device)  # (B,)
    tokens, alphas, betas, scores = [], [], [], []
    for _ in range(steps):
        out = model.step(previous, state, annotations, projected, location=location)
        log_probs = torch.log_softmax(out.logits, dim=-1)  # (B, K)
        best, previous = log_probs.max(dim=-1)  # (B,), (B,)
        tokens.append(previous)
        alphas.append(out.alpha)
        betas.append(out.beta)
        scores.append(best)
        state = out.state
    token_rows = torch.stack(tokens, dim=1).cpu()  # (B, T)
    alpha_rows = torch.stack(alphas, dim=1).cpu()  # (B, T, L)
    beta_rows = torch.stack(betas, dim=1).cpu()  # (B, T)
    score_rows = torch.stack(scores, dim=1).cpu()  # (B, T)
    captions = []
    for i in range(b):
        row = token_rows[i].tolist()
        n = row.index(model.config.eos_id) + 1 if model.config.eos_id in row else steps
        captions.append(
            Caption(
                row[:n], alpha_rows[i, :n].reshape(n, *model.grid), beta_rows[i, :n], float(score_rows[i, :n].sum())
            )
        )
    return captions


@torch.no_grad()
def beam_caption(
    model: ShowAttendTell,
    inputs: Tensor,
    *,
    beam_size: int = 3,
    max_len: Optional[int] = None,
    location: Optional[str] = None,
) -> Caption:
    """Beam search for one image: the finished caption with the highest log-probability (or
    the best unfinished one after ``max_len`` steps).

    Args:
        model: in ``eval()`` mode.
        inputs: one image ``(1, C, H, W)`` or its encoder features ``(1, L, D)``.
        beam_size: hypotheses kept per step.
        max_len, location: as in :func:`greedy_caption`.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1; got {beam_size}")
    if inputs.dim() not in (3, 4) or inputs.shape[0] != 1:
        raise ValueError(
            f"inputs must be one image (1, C, H, W) or its features (1, L, D); got shape {tuple(inputs.shape)}"
        )
    steps = _max_len(model, max_len)
    annotations, projected = model.encode(inputs)  # (1, L, D), (1, L, A)
    h, c = model.start(annotations)
    eos = model.config.eos_id
    # each live hypothesis: (tokens, alphas, betas, log_prob); its LSTM state is row k of (h, c)
    live: list[tuple[list[int], list[Tensor], list[Tensor], float]] = [([], [], [], 0.0)]
    finished: list[Caption] = []
    for _ in range(steps):
        k = len(live)
        previous = torch.tensor(
            [hyp[0][-1] if hyp[0] else model.config.bos_id for hyp in live], device=annotations.device
        )  # (k,)
        out = model.step(
            previous, (h, c), annotations.expand(k, -1, -1), projected.expand(k, -1, -1), location=location
        )
        log_probs = torch.log_softmax(out.logits, dim=-1)  # (k, K)
        totals = torch.tensor([hyp[3] for hyp in live], device=log_probs.device)[:, None] + log_probs  # (k, K)
        best = totals.flatten().topk(min(beam_size, totals.numel()))
        vocab = log_probs.shape[1]
        keep, next_live = [], []
        for score, index in zip(best.values.tolist(), best.indices.tolist()):
            row, token = divmod(index, vocab)
            tokens, alphas, betas, _ = live[row]
            hyp = (tokens + [token], alphas + [out.alpha[row].cpu()], betas + [out.beta[row].cpu()], score)
            if token == eos:
                finished.append(_caption(hyp, model.grid))
            else:
                keep.append(row)
                next_live.append(hyp)
        if len(finished) >= beam_size or not next_live:
            break
        index_tensor = torch.tensor(keep, device=annotations.device)
        h, c = out.state[0][index_tensor], out.state[1][index_tensor]  # (k', n) each
        live = next_live
    candidates = finished or [_caption(hyp, model.grid) for hyp in live]
    return max(candidates, key=lambda cap: cap.log_prob)


def _caption(hyp: tuple[list[int], list[Tensor], list[Tensor], float], grid: tuple[int, int]) -> Caption:
    tokens, alphas, betas, score = hyp
    return Caption(list(tokens), torch.stack(alphas).reshape(len(tokens), *grid), torch.stack(betas), float(score))
