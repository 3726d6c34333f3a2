"""Logical attention (Part V): attention blocks that compose, blind to the order of a set.

- :mod:`~attnlib.logical.set_attention`: the Set Transformer's MAB, SAB, ISAB and PMA (Lee et al., 2019).
- :mod:`~attnlib.logical.sequential_attention`: multi-hop attention, each hop's query built from
  the previous hop's read (Sukhbaatar et al., 2015).
"""

from __future__ import annotations

from .sequential_attention import SequentialAttention
from .set_attention import ISAB, MAB, PMA, SAB, SetTransformer, SetTransformerConfig

__all__ = ["MAB", "SAB", "ISAB", "PMA", "SetTransformerConfig", "SetTransformer", "SequentialAttention"]
