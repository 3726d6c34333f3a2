"""Multimodal attention (Part V): a question attends over the regions of an image.

- :mod:`~attnlib.multimodal.stacked_attention`: stacked attention (Yang et al., 2016), one or
  more hops, and a small visual question-answering model for generated digit scenes.
"""

from __future__ import annotations

from .stacked_attention import SceneQAConfig, SceneQAModel, StackedAttention

__all__ = ["StackedAttention", "SceneQAConfig", "SceneQAModel"]
