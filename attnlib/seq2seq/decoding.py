"""Greedy decoding and beam search that return the alignment matrix of what they produced.

Both call the decoder's ``step`` (see :class:`~attnlib.seq2seq.model.StepDecoder`), so they
work for every decoder of this package.  With ``beam_size=1``, beam search makes the same
choices as greedy decoding (a test checks it).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Optional

import torch
from torch import Tensor

from .._checks import check_rank
from .encoder import EncoderOutput
from .model import Seq2Seq

__all__ = ["Hypothesis", "greedy_decode", "beam_search"]


@dataclass
class Hypothesis:
    """A decoded sentence.

    Attributes:
        tokens: output token ids, ending with ``<eos>`` unless ``max_len`` was reached.
        alignment: ``(len(tokens), S)`` attention weights of each output step over the real
            source positions, or ``None`` for a decoder without attention.
        log_prob: the sum of the chosen tokens' log-probabilities.
    """

    tokens: list[int]
    alignment: Optional[Tensor]
    log_prob: float


def _select(value: Any, index: Tensor) -> Any:
    """Index every tensor of a (nested) decoder state or encoder output along dim 0."""
    if isinstance(value, Tensor):
        return value.index_select(0, index.to(value.device))
    if isinstance(value, tuple):
        return tuple(_select(v, index) for v in value)
    if isinstance(value, EncoderOutput):
        return replace(value, **{f.name: _select(getattr(value, f.name), index) for f in fields(value)})
    return value  # ints (a step counter) are shared by every hypothesis


@torch.no_grad()
def greedy_decode(model: Seq2Seq, src: Tensor, src_lengths: Tensor, max_len: int = 50) -> list[Hypothesis]:
    """Pick the most likely token at every step.

    Args:
        model: a :class:`~attnlib.seq2seq.model.Seq2Seq` (put it in ``eval()`` mode first).
        src: ``(B, S)`` token ids; ``src_lengths``: ``(B,)``.
        max_len: most output tokens per sentence.

    Returns:
        One :class:`Hypothesis` per sentence.
    """
    check_rank(src, "src", 2, "(B, S)")
    enc = model.encoder(src, src_lengths)
    state = model.decoder.init_state(enc)
    B = src.shape[0]
    BOS, EOS = model.bos_id, model.eos_id
    prev = torch.full((B,), BOS, dtype=torch.long, device=src.device)
    tokens, rows, log_probs = [], [], torch.zeros(B, device=src.device)
    done = torch.zeros(B, dtype=torch.bool, device=src.device)
    for _ in range(max_len):
        logits, state, weights = model.decoder.step(prev, state, enc)
        step_log_probs = torch.log_softmax(logits, dim=-1)  # (B, V)
        prev = step_log_probs.argmax(dim=-1)  # (B,)
        log_probs += torch.where(done, 0.0, step_log_probs.gather(1, prev[:, None])[:, 0])
        tokens.append(prev)
        rows.append(weights)
        done |= prev == EOS
        if bool(done.all()):
            break
    out_tokens = torch.stack(tokens, dim=1).tolist()  # (B, T)
    results = []
    for b in range(B):
        seq = out_tokens[b]
        n = seq.index(EOS) + 1 if EOS in seq else len(seq)
        length = int(src_lengths[b])
        alignment = (
            torch.stack([r[b, :length] for r in rows[:n] if r is not None]).cpu() if rows[0] is not None else None
        )  # (n, S)
        results.append(Hypothesis(seq[:n], alignment, float(log_probs[b])))
    return results


@torch.no_grad()
def beam_search(
    model: Seq2Seq, src: Tensor, src_length: int, beam_size: int = 5, max_len: int = 50, length_penalty: float = 0.0
) -> Hypothesis:
    """Keep the ``beam_size`` best partial translations of one sentence at every step.

    A hypothesis ends when it emits ``<eos>``; the search stops when ``beam_size``
    hypotheses have ended or after ``max_len`` steps.  Finished hypotheses are ranked by
    ``log_prob / len(tokens) ** length_penalty`` (0: the raw log-probability, which favours
    short outputs; about 0.6 to 1: normalised by length).

    Args:
        model: a :class:`~attnlib.seq2seq.model.Seq2Seq` in ``eval()`` mode.
        src: ``(S,)`` or ``(1, S)`` token ids of one sentence.
        src_length: its real length.
    """
    if beam_size < 1:
        raise ValueError(f"beam_size must be >= 1; got {beam_size}")
    src = src[None] if src.dim() == 1 else src
    check_rank(src, "src", 2, "(1, S)")
    if src.shape[0] != 1:
        raise ValueError(
            f"beam_search decodes one sentence: src must have shape (S,) or (1, S); got {tuple(src.shape)}"
        )
    BOS, EOS = model.bos_id, model.eos_id
    enc = model.encoder(src, torch.tensor([src_length], device=src.device))
    state = model.decoder.init_state(enc)
    live_tokens = torch.full((1, 1), BOS, dtype=torch.long, device=src.device)  # (n, t)
    live_scores = torch.zeros(1, device=src.device)  # (n,)
    live_rows: Optional[Tensor] = None  # (n, t, S)
    live_enc = enc
    finished: list[Hypothesis] = []

    def rank(h: Hypothesis) -> float:
        return h.log_prob / max(len(h.tokens), 1) ** length_penalty

    for _ in range(max_len):
        logits, state, weights = model.decoder.step(live_tokens[:, -1], state, live_enc)
        scores = live_scores[:, None] + torch.log_softmax(logits, dim=-1)  # (n, V)
        V = scores.shape[1]
        top_scores, top_index = scores.flatten().topk(min(beam_size, scores.numel()))  # best continuations
        parents, next_tokens = top_index // V, top_index % V
        rows = None
        if weights is not None:
            step_rows = weights[parents, :src_length][:, None, :]  # (k, 1, S)
            rows = step_rows if live_rows is None else torch.cat([live_rows[parents], step_rows], dim=1)
        tokens = torch.cat([live_tokens[parents], next_tokens[:, None]], dim=1)  # (k, t + 1)
        keep = []
        for i in range(len(parents)):
            if int(next_tokens[i]) == EOS:
                finished.append(
                    Hypothesis(
                        tokens[i, 1:].tolist(), rows[i].cpu() if rows is not None else None, float(top_scores[i])
                    )
                )
            else:
                keep.append(i)
        if len(finished) >= beam_size or not keep:
            break
        index = torch.tensor(keep, device=src.device)
        live_tokens, live_scores = tokens[index], top_scores[index]
        live_rows = rows[index] if rows is not None else None
        state = _select(state, parents[index])
        live_enc = _select(enc, torch.zeros(len(keep), dtype=torch.long, device=src.device))
    if not finished:  # max_len reached: the best unfinished hypothesis
        best = int(live_scores.argmax())
        finished.append(
            Hypothesis(
                live_tokens[best, 1:].tolist(),
                live_rows[best].cpu() if live_rows is not None else None,
                float(live_scores[best]),
            )
        )
    return max(finished, key=rank)
