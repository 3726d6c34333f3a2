"""A small CNN whose attention module is chosen by name: the testbed of Part III.

Three stages of ``conv 3x3 -> batch norm -> ReLU -> max pool``, each followed by an optional
attention module, then global average pooling and a linear classifier. ``SmallCNN(attention="se")`` inserts a
Squeeze-and-Excitation block after every stage, ``SmallCNN(attention="cbam")`` a CBAM, and
so on for every name in :data:`attnlib.vision.factory.ATTENTION_MODULES`;
``SmallCNN()`` is the same network without attention. Everything else stays fixed, which
is what a controlled comparison needs.

Where the modules go: between stages, on each stage's output, so that every module sees
the features the next convolution will read (the place of BAM, at the bottlenecks where the
resolution drops; SE and CBAM sit at the end of each residual block, which is the same
place in a network without shortcuts). ``stages=(2,)`` inserts one only after the last
stage.

Sizes for 28x28 inputs: the attention modules see 14x14 (after stage 0), 7x7 (stage 1)
and 7x7 (stage 2, which does not pool); any input size works, since the head pools
globally.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from torch import Tensor, nn

from attnlib._checks import check_feature_map
from attnlib.vision.factory import make_attention

__all__ = ["SmallCNNConfig", "SmallCNN"]


@dataclass(frozen=True)
class SmallCNNConfig:
    """Architecture of :class:`SmallCNN` (the attention module is chosen separately)."""

    in_channels: int = 1  # MNIST and Fashion-MNIST are greyscale
    num_classes: int = 10  # both have ten classes
    # small enough to train on a CPU in seconds; divisible by 16 (r of SE, CBAM, BAM) and 32 (SK's groups)
    widths: tuple[int, ...] = (32, 32, 64)


class _Stage(nn.Module):
    """conv 3x3 -> BN -> ReLU -> 2x2 max pool (or identity) -> attention (or identity)."""

    def __init__(self, c_in: int, c_out: int, attention: nn.Module, pool: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 3, padding=1, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.relu = nn.ReLU()
        self.attention = attention
        self.pool = nn.MaxPool2d(2) if pool else nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        return self.attention(self.pool(self.relu(self.bn(self.conv(x)))))  # (B, C_out, H', W')


class SmallCNN(nn.Module):
    """A three-stage CNN with an optional attention module after each stage.

    Shapes:
        ``x`` ``(B, in_channels, H, W)`` images -> ``(B, num_classes)`` logits.

    The attention modules are named ``stages.<i>.attention`` (so
    ``attnlib.record_attention`` files their maps under those names; CBAM's two gates under
    ``stages.<i>.attention.channel`` and ``.spatial``).

    Args:
        attention: a name in :data:`attnlib.vision.factory.ATTENTION_MODULES`, or ``None``
            for no attention.
        config: the architecture; default :class:`SmallCNNConfig`.
        stages: indices of the stages followed by attention; default all.
        **attention_kwargs: passed to every attention module (e.g. ``reduction=8``).

    Raises:
        ValueError: for an unknown attention name, a stage index out of range, or
            arguments the attention class rejects; on a call, if ``x`` is not 4-D, has the
            wrong number of channels, or is not floating point (an integer or uint8 image:
            convert it with ``.float()``).
    """

    def __init__(
        self,
        attention: Optional[str] = None,
        *,
        config: Optional[SmallCNNConfig] = None,
        stages: Optional[Sequence[int]] = None,
        **attention_kwargs: Any,
    ) -> None:
        super().__init__()
        self.config = config or SmallCNNConfig()
        n = len(self.config.widths)
        chosen = tuple(range(n)) if stages is None else tuple(stages)
        if any(not 0 <= i < n for i in chosen):
            raise ValueError(f"stages must be indices in [0, {n}); got {chosen}")
        if attention is None and attention_kwargs:
            raise ValueError(f"attention keyword arguments {sorted(attention_kwargs)} given without an attention name")
        self.attention_name = attention
        self.attention_stages = chosen if attention is not None else ()
        c_in = self.config.in_channels
        stage_list = []
        for i, width in enumerate(self.config.widths):
            module = (
                make_attention(attention, width, **attention_kwargs)
                if attention is not None and i in chosen
                else nn.Identity()
            )
            stage_list.append(_Stage(c_in, width, module, pool=i < n - 1))
            c_in = width
        self.stages = nn.ModuleList(stage_list)
        self.head = nn.Linear(c_in, self.config.num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """(B, in_channels, H, W) -> (B, num_classes): class logits."""
        check_feature_map(x, "x", self.config.in_channels)
        for stage in self.stages:
            x = stage(x)  # (B, C_i, H_i, W_i)
        return self.head(x.mean(dim=(2, 3)))  # (B, num_classes)
