"""Scoring a captioner on digit scenes: exact match, BLEU, and where its attention lands.

Three measurements of a Show, Attend and Tell model (Xu et al., 2015, arXiv:1502.03044) on
:mod:`attnlib.data.digit_captions` scenes:

* **exact match**: the share of greedy captions equal to the reference word for word;
* **BLEU** (Papineni et al., 2002, via sacrebleu): n-gram overlap with the one reference,
  the paper's metric (with ``tokenize="none"``: the words are the vocabulary's);
* the **localisation score** (:func:`~attnlib.data.digit_captions.localisation_score`) of the maps the model
  forms while reading the *reference* caption (teacher forcing), so that every digit word
  is scored even when the greedy caption goes wrong.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor

from attnlib.data import DigitCaptions, decode_caption, localisation_score
from attnlib.seq2seq import corpus_bleu

from .decoding import greedy_caption
from .show_attend_tell import ShowAttendTell

__all__ = ["caption_report"]


@torch.no_grad()
def caption_report(
    model: ShowAttendTell,
    features: Tensor,
    data: DigitCaptions,
    *,
    canvas: int = 48,
    location: Optional[str] = None,
    batch_size: int = 500,
) -> dict[str, float]:
    """Exact match, BLEU and localisation of ``model`` on ``data``.

    Args:
        model: in ``eval()`` mode.
        features: ``(N, L, D)`` encoder features of ``data.images`` (or the images themselves).
        data: the scenes, with their captions, boxes and word-digit links.
        canvas: side of the images in pixels.
        location: for a hard model, the location rule (default: eval mode's arg-max).

    Returns:
        ``{"exact_match", "bleu", "share", "uniform_share", "hit_rate", "uniform_hit_rate", "words"}``.
    """
    model.eval()
    hypotheses: list[list[str]] = []
    alphas = []
    for start in range(0, len(features), batch_size):
        chunk = features[start : start + batch_size]
        hypotheses += [decode_caption(c.tokens) for c in greedy_caption(model, chunk, location=location)]
        captions = data.captions[start : start + batch_size].to(chunk.device)
        alphas.append(model(chunk, captions, location=location).alphas.cpu())
    references = [decode_caption(c) for c in data.captions]
    exact = sum(h == r for h, r in zip(hypotheses, references)) / len(references)
    score = localisation_score(torch.cat(alphas), data.boxes, data.word_digit, canvas=canvas)
    return {"exact_match": exact, "bleu": corpus_bleu(hypotheses, references), **score}
