"""Reading with attention (Part IV): strings of characters read from images.

- :mod:`~attnlib.reading.plain_cnn`: a plain CNN encoder (the baseline);
- :mod:`~attnlib.reading.recursive_conv`: the recursive convolutional block (tied weights,
  Eigen et al., 2014; R²AM, Lee & Osindero, 2016) and its untied twin;
- :mod:`~attnlib.reading.recurrent_conv`: Liang & Hu's recurrent convolutional layer (2015);
- :mod:`~attnlib.reading.attention_reader`: the attention decoder of :mod:`attnlib.seq2seq`
  over an encoder's feature columns;
- :mod:`~attnlib.reading.dram`: the Deep Recurrent Attention Model (Ba et al., 2015) on the
  glimpse machinery of :mod:`attnlib.hard`.
"""

from __future__ import annotations

from .attention_reader import (
    ENCODER_KINDS,
    READING_VOCAB,
    AttentionReader,
    ColumnEncoder,
    ReaderConfig,
    build_feature_encoder,
    reading_scores,
    stack_alignments,
    strip_targets,
    tokens_to_digits,
    train_reader,
)
from .dram import (
    DRAM,
    GLIMPSE_POLICIES,
    ContextNetwork,
    DeepRecurrentAttentionModel,
    DRAMConfig,
    DRAMOutput,
    WhatWhereGlimpse,
    dram_scores,
    path_scores,
    random_paths,
    scan_path,
    train_dram,
    visits,
)
from .plain_cnn import PlainCNNEncoder
from .recurrent_conv import RecurrentConvEncoder, RecurrentConvLayer
from .recursive_conv import RecursiveConvBlock, RecursiveConvEncoder

R2AM = AttentionReader  # the paper's short name (with the recursive encoder, the default)

__all__ = [
    "ENCODER_KINDS",
    "READING_VOCAB",
    "AttentionReader",
    "R2AM",
    "ColumnEncoder",
    "ReaderConfig",
    "build_feature_encoder",
    "strip_targets",
    "tokens_to_digits",
    "train_reader",
    "reading_scores",
    "stack_alignments",
    "DRAM",
    "DRAMConfig",
    "DRAMOutput",
    "ContextNetwork",
    "DeepRecurrentAttentionModel",
    "WhatWhereGlimpse",
    "GLIMPSE_POLICIES",
    "dram_scores",
    "path_scores",
    "random_paths",
    "scan_path",
    "train_dram",
    "visits",
    "PlainCNNEncoder",
    "RecurrentConvEncoder",
    "RecurrentConvLayer",
    "RecursiveConvBlock",
    "RecursiveConvEncoder",
]
