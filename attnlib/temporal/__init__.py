"""Temporal attention (Part V): attention over the frames of a video, and inside them.

- :mod:`~attnlib.temporal.temporal_attention`: soft attention over frames and combined
  spatial-temporal attention (after Sharma et al., 2015).
"""

from __future__ import annotations

from .temporal_attention import SpatialTemporalAttention, TemporalAttention

__all__ = ["TemporalAttention", "SpatialTemporalAttention"]
