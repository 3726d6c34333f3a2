"""Arithmetic attention (Part V): attention maps combined by thresholds, subtraction and sums.

- :mod:`~attnlib.arithmetic.attention_dropout`: attention-based dropout, ADL (Choe & Shim, 2019);
- :mod:`~attnlib.arithmetic.reverse_attention`: reverse attention, ``1 - sigmoid`` (Chen et al., 2018); its weighting
  drives the ACoL-style erase-and-find head of :class:`~attnlib.category.localisation.LocalisationCNN`.
"""

from __future__ import annotations

from .attention_dropout import AttentionDropout, adl_masks
from .reverse_attention import ReverseAttention, reverse_attention_weights

__all__ = ["AttentionDropout", "adl_masks", "ReverseAttention", "reverse_attention_weights"]
