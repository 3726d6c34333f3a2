"""Attention for long sequences: exact attention in linear memory, and two cheaper variants.

* :mod:`attnlib.efficient.chunked`: :func:`chunked_attention`, exact attention over blocks
  with an online softmax (Milakov & Gimelshein 2018; Rabe & Staats 2021; FlashAttention,
  Dao et al. 2022), in memory linear in the sequence length.
* :mod:`attnlib.efficient.local`: :func:`sliding_window_attention`, each token sees a band
  of neighbours (Longformer, Beltagy et al. 2020), in ``O(N * window)``.
* :mod:`attnlib.efficient.linear`: :func:`linear_attention`, a kernel feature map instead of
  the softmax (Katharopoulos et al. 2020), in ``O(N)``, causal by prefix sums.
* :mod:`attnlib.efficient.flex_masks`: the course's masks and biases (causal, padding,
  sliding window, attention sinks, ALiBi, Luong's local-p) as ``mask_mod`` / ``score_mod``
  functions for PyTorch's FlexAttention (Dong et al. 2024), and :func:`flex_attend`.
"""

from __future__ import annotations

from .chunked import chunked_attention
from .flex_masks import (
    alibi_score_mod,
    causal_mask_mod,
    flex_attend,
    local_p_mask_mod,
    local_p_score_mod,
    padding_mask_mod,
    score_mod_bias,
    sink_window_mask_mod,
    sliding_window_mask_mod,
)
from .linear import elu_feature_map, linear_attention, linear_attention_weights
from .local import sliding_window_attention, sliding_window_mask

__all__ = [
    "chunked_attention",
    "alibi_score_mod",
    "causal_mask_mod",
    "flex_attend",
    "local_p_mask_mod",
    "local_p_score_mod",
    "padding_mask_mod",
    "score_mod_bias",
    "sink_window_mask_mod",
    "sliding_window_mask_mod",
    "elu_feature_map",
    "linear_attention",
    "linear_attention_weights",
    "sliding_window_attention",
    "sliding_window_mask",
]
