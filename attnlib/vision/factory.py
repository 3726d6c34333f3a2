"""Swap the attention module of a backbone by name.

:data:`ATTENTION_MODULES` maps a short name to the class that implements the mechanism,
and :func:`make_attention` builds one for a given number of channels. Every class listed
maps ``(B, C, H, W)`` to ``(B, C, H, W)`` and takes ``channels`` as its first argument,
so a backbone can insert any of them after a stage (see
:class:`attnlib.vision.backbone.SmallCNN`). Nothing else happens here: to build a module
with other arguments, import its class.
"""

from __future__ import annotations

from typing import Any

from torch import nn

from attnlib.vision.bam import BAM
from attnlib.vision.cbam import CBAM
from attnlib.vision.efficient_channel_attention import EfficientChannelAttention
from attnlib.vision.multiscale_attention import MultiScaleAttention
from attnlib.vision.non_local import NonLocalBlock
from attnlib.vision.residual_attention import ResidualAttention
from attnlib.vision.selective_kernel import SelectiveKernel
from attnlib.vision.squeeze_excite import SqueezeExcite

__all__ = ["ATTENTION_MODULES", "make_attention"]

#: Name -> class of every drop-in ``(B, C, H, W) -> (B, C, H, W)`` attention module.
ATTENTION_MODULES: dict[str, type[nn.Module]] = {
    "se": SqueezeExcite,
    "eca": EfficientChannelAttention,
    "sk": SelectiveKernel,
    "cbam": CBAM,
    "bam": BAM,
    "residual": ResidualAttention,
    "nonlocal": NonLocalBlock,
    "multiscale": MultiScaleAttention,
}


def make_attention(name: str, channels: int, **kwargs: Any) -> nn.Module:
    """Build the attention module called ``name`` for ``channels`` input channels.

    Args:
        name: a key of :data:`ATTENTION_MODULES`.
        channels: ``C`` of the feature maps it will receive.
        **kwargs: passed to the class (e.g. ``reduction=8`` for ``"se"``).

    Returns:
        The module, mapping ``(B, C, H, W)`` to ``(B, C, H, W)``.

    Raises:
        ValueError: if ``name`` is unknown (the message lists the valid names), or the
            class rejects its arguments.
    """
    if name not in ATTENTION_MODULES:
        raise ValueError(f"unknown attention module {name!r}; valid names: {', '.join(ATTENTION_MODULES)}")
    return ATTENTION_MODULES[name](channels, **kwargs)
