"""The Transformer (Part II): multi-head attention, positions, layers, models.

- :mod:`~attnlib.transformer.mha`: multi-head attention, with torch parity and recordable maps;
- :mod:`~attnlib.transformer.positional`: sinusoidal, learned and rotary (RoPE) positions;
- :mod:`~attnlib.transformer.layers`: encoder and decoder layers (post- and pre-norm), the KV cache;
- :mod:`~attnlib.transformer.model`: the encoder-decoder Transformer for translation;
- :mod:`~attnlib.transformer.lm`: a decoder-only language model with cached generation.
"""

from __future__ import annotations

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
]
