"""The encoder-decoder Transformer for translation (Vaswani et al., 2017, "Attention is all
you need", NeurIPS, arXiv:1706.03762, §3).

Source tokens are embedded, multiplied by ``sqrt(D)`` and given sinusoidal positions, then
pass through ``N`` encoder layers; the decoder embeds the target shifted right the same way
and runs ``N`` decoder layers (masked self-attention, cross-attention over the encoder's
output, feed-forward); a linear layer tied to the target embedding gives the logits.

The model plugs into ``attnlib.seq2seq``: :class:`Transformer` is a
:class:`~attnlib.seq2seq.model.Seq2Seq` whose ``encoder`` returns an
:class:`~attnlib.seq2seq.encoder.EncoderOutput` and whose ``decoder`` is a
:class:`~attnlib.seq2seq.model.StepDecoder`.  Training runs the decoder on the whole
target at once (causal mask); :func:`~attnlib.seq2seq.decoding.greedy_decode`,
:func:`~attnlib.seq2seq.decoding.beam_search` and
:func:`~attnlib.seq2seq.evaluation.bleu_report` call its ``step``, which feeds one token and
keeps a :class:`~attnlib.transformer.layers.KVCache` in the decoder state, so BLEU is
computed exactly as for RNNsearch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .._checks import check_rank, shape_str
from ..functional import lengths_to_mask
from ..seq2seq.encoder import EncoderOutput
from ..seq2seq.model import Seq2Seq, StepDecoder
from .layers import KVCache, TransformerDecoderLayer, TransformerEncoderLayer
from .positional import SinusoidalPositionalEncoding

__all__ = ["TransformerConfig", "TransformerEncoder", "TransformerDecoder", "Transformer"]


@dataclass(frozen=True)
class TransformerConfig:
    """Sizes of a :class:`Transformer`; the defaults are the paper's base model (Table 3)."""

    src_vocab_size: int
    tgt_vocab_size: int
    d_model: int = 512  # the paper's base model; small data wants 128-256
    num_heads: int = 8  # d = d_model / heads = 64 features per head
    num_encoder_layers: int = 6  # N = 6 in the paper
    num_decoder_layers: int = 6
    d_ff: int = 2048  # 4 x d_model: the FFN holds most of the parameters
    dropout: float = 0.1  # P_drop of the base model
    label_smoothing: float = 0.1  # epsilon_ls of the paper: hurts perplexity, helps BLEU
    norm_first: bool = False  # the paper is post-norm; pre-norm trains without warm-up more easily
    max_len: int = 256  # longest sentence (positions precomputed up to it)
    tie_embeddings: bool = True  # output layer shares the target embedding matrix (§3.4)
    pad_id: int = 0  # attnlib.data.translation.PAD

    def __post_init__(self) -> None:
        if self.d_model % self.num_heads != 0:
            raise ValueError(
                f"d_model must be divisible by num_heads; got d_model={self.d_model}, num_heads={self.num_heads}"
            )


def _embedding(vocab_size: int, d_model: int, pad_id: int) -> nn.Embedding:
    embed = nn.Embedding(vocab_size, d_model, padding_idx=pad_id)
    nn.init.normal_(embed.weight, std=d_model**-0.5)  # times sqrt(D) below: unit variance
    with torch.no_grad():
        embed.weight[pad_id].zero_()
    return embed


class TransformerEncoder(nn.Module):
    """Embedding, positions and ``N`` encoder layers; returns an :class:`~attnlib.seq2seq.encoder.EncoderOutput`."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        self.d_model = c.d_model
        self.embed = _embedding(c.src_vocab_size, c.d_model, c.pad_id)
        self.positions = SinusoidalPositionalEncoding(c.d_model, c.max_len, dropout=c.dropout)
        self.layers = nn.ModuleList(
            TransformerEncoderLayer(c.d_model, c.num_heads, c.d_ff, c.dropout, c.norm_first)
            for _ in range(c.num_encoder_layers)
        )
        self.norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()  # pre-norm ends with a norm

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        """Encode ``src (B, S)`` with real lengths ``(B,)``.

        Returns:
            :class:`~attnlib.seq2seq.encoder.EncoderOutput` whose ``annotations`` are the memory ``(B, S, D)`` (zero at
            padding) and ``mask`` ``(B, S)`` True at real tokens; ``summary`` and
            ``backward_first`` are ``None`` (they belong to recurrent encoders).
        """
        check_rank(src, "src", 2, "(B, S)")
        check_rank(src_lengths, "src_lengths", 1, "(B,)")
        B, S = src.shape
        if src_lengths.shape[0] != B:
            raise ValueError(f"src_lengths must have shape ({B},); got {shape_str(src_lengths.shape)}")
        mask = lengths_to_mask(src_lengths.to(src.device), S)  # (B, S)
        x = self.positions(self.embed(src) * math.sqrt(self.d_model))  # (B, S, D)
        for layer in self.layers:
            x = layer(x, key_padding_mask=mask)  # (B, S, D)
        memory = self.norm(x) * mask[:, :, None]  # (B, S, D), zero at padding
        return EncoderOutput(annotations=memory, mask=mask, lengths=src_lengths)  # no RNN summary


class TransformerDecoder(StepDecoder):
    """Embedding, positions, ``N`` decoder layers and the output layer."""

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__()
        c = config
        self.vocab_size, self.d_model = c.tgt_vocab_size, c.d_model
        self.embed = _embedding(c.tgt_vocab_size, c.d_model, c.pad_id)
        self.positions = SinusoidalPositionalEncoding(c.d_model, c.max_len, dropout=c.dropout)
        self.layers = nn.ModuleList(
            TransformerDecoderLayer(c.d_model, c.num_heads, c.d_ff, c.dropout, c.norm_first)
            for _ in range(c.num_decoder_layers)
        )
        self.norm = nn.LayerNorm(c.d_model) if c.norm_first else nn.Identity()
        self.out = nn.Linear(c.d_model, c.tgt_vocab_size)
        if c.tie_embeddings:
            self.out.weight = self.embed.weight  # (V, D) shared

    def _embed(self, tokens: Tensor, offset: int = 0) -> Tensor:
        return self.positions(self.embed(tokens) * math.sqrt(self.d_model), offset=offset)  # (B, T, D)

    def forward(self, tgt_in: Tensor, enc: EncoderOutput) -> tuple[Tensor, Optional[Tensor]]:
        """Teacher forcing, all positions at once.

        Args:
            tgt_in: ``(B, T)`` target tokens shifted right (``<bos>`` first).

        Returns:
            ``(logits (B, T, V), None)``; the attention maps go to :mod:`attnlib.record`.
        """
        check_rank(tgt_in, "tgt_in", 2, "(B, T)")
        x = self._embed(tgt_in)  # (B, T, D)
        for layer in self.layers:
            x = layer(x, enc.annotations, causal=True, memory_key_padding_mask=enc.mask)  # (B, T, D)
        return self.out(self.norm(x)), None  # (B, T, V)

    def init_state(self, enc: EncoderOutput) -> tuple:
        """An empty :class:`~attnlib.transformer.layers.KVCache` holding each layer's projected memory keys and
        values."""
        cache = KVCache(len(self.layers))
        for layer, layer_cache in zip(self.layers, cache.layers):
            assert isinstance(layer, TransformerDecoderLayer) and layer.multihead_attn is not None  # built with it
            k, v = layer.multihead_attn.project_key_value(enc.annotations, enc.annotations)  # (B, H, S, d) x 2
            layer_cache.memory_keys, layer_cache.memory_values = k, v
        return cache.to_state()

    def step(self, prev_tokens: Tensor, state: Any, enc: EncoderOutput) -> tuple[Tensor, tuple, Tensor]:
        """One token: ``prev_tokens (B,)`` -> ``(logits (B, V), state, weights (B, S))``, the weights
        being the last layer's cross-attention averaged over heads."""
        cache = KVCache.from_state(state)
        x = self._embed(prev_tokens[:, None], offset=cache.length)  # (B, 1, D)
        weights: Optional[Tensor] = None
        for i, layer in enumerate(self.layers):
            x, w = layer(x, enc.annotations, memory_key_padding_mask=enc.mask, cache=cache[i], need_weights=True)
            weights = w if w is not None else weights
        assert weights is not None  # every layer has cross-attention
        logits = self.out(self.norm(x))[:, 0]  # (B, V)
        return logits, cache.to_state(), weights[:, 0]  # (B, S)


class Transformer(Seq2Seq):
    """Encoder-decoder Transformer with the :class:`~attnlib.seq2seq.model.Seq2Seq` interface.

    ``model(src, src_lengths, tgt_in)`` gives teacher-forced logits ``(B, T, V)``;
    ``model.loss(batch)`` the label-smoothed cross-entropy; decoding and BLEU go through
    ``attnlib.seq2seq`` unchanged.

    Args:
        config: the sizes.
    """

    def __init__(self, config: TransformerConfig) -> None:
        super().__init__(TransformerEncoder(config), TransformerDecoder(config))
        self.config = config

    def loss(self, batch: Any, pad_id: Optional[int] = None) -> Tensor:
        """Cross-entropy over the non-padding target tokens with the config's label smoothing."""
        pad_id = self.config.pad_id if pad_id is None else pad_id
        logits = self(batch.src, batch.src_lengths, batch.tgt_in)  # (B, T, V)
        return F.cross_entropy(
            logits.flatten(0, 1),
            batch.tgt_out.flatten(),
            ignore_index=pad_id,
            label_smoothing=self.config.label_smoothing,
        )
