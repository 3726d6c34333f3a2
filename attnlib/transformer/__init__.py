"""The Transformer (Part II): multi-head attention, positions, layers, models.

- :mod:`~attnlib.transformer.mha`: multi-head attention, with torch parity and recordable maps;
- :mod:`~attnlib.transformer.positional`: sinusoidal, learned and rotary (RoPE) positions;
- :mod:`~attnlib.transformer.layers`: encoder and decoder layers (post- and pre-norm), the KV cache;
- :mod:`~attnlib.transformer.model`: the encoder-decoder Transformer for translation;
- :mod:`~attnlib.transformer.lm`: a decoder-only language model with cached generation;
- :mod:`~attnlib.transformer.grouped_query_attention`: grouped-query and multi-query attention
  (fewer key/value heads, a smaller KV cache), converted from a trained multi-head module;
- :mod:`~attnlib.transformer.alibi`: ALiBi, per-head linear biases instead of positions;
- :mod:`~attnlib.transformer.sink_cache`: a KV cache of attention sinks plus a sliding window
  (StreamingLLM), with streaming generation.
"""

from __future__ import annotations

from .alibi import alibi_bias, alibi_slopes
from .grouped_query_attention import GQA, GroupedQueryAttention, kv_cache_numel, mha_to_gqa
from .layers import KVCache, LayerCache, TransformerDecoderLayer, TransformerEncoderLayer
from .lm import DecoderOnlyLM, LMConfig
from .mha import MultiHeadAttention
from .model import Transformer, TransformerConfig, TransformerDecoder, TransformerEncoder
from .positional import (
    LearnedPositionalEncoding,
    RotaryEmbedding,
    SinusoidalPositionalEncoding,
    apply_rotary,
    sinusoidal_encoding,
)
from .sink_cache import SinkKVCache, SinkLayerCache, generate_streaming, sink_window_mask, stream_logits

__all__ = [
    "KVCache",
    "LayerCache",
    "TransformerDecoderLayer",
    "TransformerEncoderLayer",
    "DecoderOnlyLM",
    "LMConfig",
    "MultiHeadAttention",
    "Transformer",
    "TransformerConfig",
    "TransformerDecoder",
    "TransformerEncoder",
    "LearnedPositionalEncoding",
    "RotaryEmbedding",
    "SinusoidalPositionalEncoding",
    "apply_rotary",
    "sinusoidal_encoding",
    "GQA",
    "GroupedQueryAttention",
    "kv_cache_numel",
    "mha_to_gqa",
    "alibi_bias",
    "alibi_slopes",
    "SinkKVCache",
    "SinkLayerCache",
    "generate_streaming",
    "sink_window_mask",
    "stream_logits",
]
