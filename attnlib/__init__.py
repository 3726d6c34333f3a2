"""attnlib: attention mechanisms in small, readable PyTorch modules.

The companion library of the attention course.  The public API is re-exported here;
each name lives in the module that documents it:

* :mod:`attnlib.masks`: the mask convention and the toolkit that builds, checks, combines
  and applies masks (``lengths_to_mask``, ``causal_mask``, ``combine_masks``, ``safe_softmax``).
* :mod:`attnlib.functional`: ``masked_softmax``, the scoring functions and
  ``scaled_dot_product_attention`` (returns output *and* weights).
* :mod:`attnlib.scoring`: the scoring functions as modules with parameters.
* :mod:`attnlib.attention_pooling`: ``AttentionPooling`` with any scoring module.
* :mod:`attnlib.nadaraya_watson`: Nadaraya-Watson kernel regression.
* :mod:`attnlib.saliency`: bottom-up saliency (Itti, Koch & Niebur).
* :mod:`attnlib.record`: ``record_attention``, the one way to get maps out of any model.
* :mod:`attnlib.data`: data directory, downloads, MNIST, Fashion-MNIST, generated scenes.
* :mod:`attnlib.train`: seeding, device choice and a small training loop.
* Families of mechanisms, one subpackage each (import them by name, e.g.
  ``from attnlib.transformer import MultiHeadAttention``): ``attnlib.seq2seq`` (RNN
  encoder-decoders, Bahdanau and Luong attention), ``attnlib.transformer`` (multi-head
  attention, positional encodings, the Transformer, a language model with a KV cache),
  ``attnlib.efficient`` (chunked, sliding-window and linear attention), ``attnlib.vision``
  (channel, spatial and mixed attention, STN, DCN, ViT) and ``attnlib.hard`` (glimpses,
  REINFORCE, the Recurrent Attention Model).
* :mod:`attnlib.viz` and :mod:`attnlib.widgets`: plots, and interactive figures with a
  static fallback.  Import them explicitly (``from attnlib import viz``): they load
  matplotlib and ipywidgets, which a model that only *uses* attnlib does not need.
"""

from __future__ import annotations

from . import data, functional, masks
from .attention_pooling import AttentionPooling
from .functional import (
    additive_score,
    bilinear_score,
    concat_score,
    dot_score,
    masked_softmax,
    scaled_dot_product_attention,
    scaled_dot_score,
)
from .masks import causal_mask, combine_masks, lengths_to_mask, safe_softmax
from .nadaraya_watson import NadarayaWatson, leave_one_out_mask, nadaraya_watson
from .record import AttentionRecorder, emit, is_recording, record_attention
from .scoring import AdditiveScore, BilinearScore, ConcatScore, DotScore, ScaledDotScore
from .train import History, accuracy, default_device, fit, minibatches, seed_everything, train_classifier

__version__ = "0.1.0"

__all__ = [
    "data",
    "functional",
    "masks",
    "combine_masks",
    "safe_softmax",
    "AttentionPooling",
    "additive_score",
    "bilinear_score",
    "causal_mask",
    "concat_score",
    "dot_score",
    "lengths_to_mask",
    "masked_softmax",
    "scaled_dot_product_attention",
    "scaled_dot_score",
    "NadarayaWatson",
    "leave_one_out_mask",
    "nadaraya_watson",
    "AttentionRecorder",
    "emit",
    "is_recording",
    "record_attention",
    "AdditiveScore",
    "BilinearScore",
    "ConcatScore",
    "DotScore",
    "ScaledDotScore",
    "History",
    "default_device",
    "fit",
    "train_classifier",
    "accuracy",
    "minibatches",
    "seed_everything",
]
