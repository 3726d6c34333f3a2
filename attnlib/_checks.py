"""Input validation shared by attnlib's functions and modules.

Every check raises ``ValueError`` with a message that names the argument, what was
expected and what was received, e.g. ``q must have at least 2 dimensions (..., L, E);
got shape (5,)``.  Private: the public functions document which errors they raise.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor


def shape_str(shape: Sequence[int]) -> str:
    """``(2, 3)`` style text for a shape (``torch.Size`` prints as ``torch.Size([2, 3])``)."""
    return "(" + ", ".join(str(int(s)) for s in shape) + ("," if len(shape) == 1 else "") + ")"


def check_tensor(x: object, name: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"{name} must be a torch.Tensor; got {type(x).__name__}")
    return x


def check_min_rank(x: Tensor, name: str, rank: int, layout: str) -> None:
    check_tensor(x, name)
    if x.dim() < rank:
        raise ValueError(f"{name} must have at least {rank} dimensions {layout}; got shape {shape_str(x.shape)}")


def check_rank(x: Tensor, name: str, rank: int, layout: str) -> None:
    check_tensor(x, name)
    if x.dim() != rank:
        raise ValueError(f"{name} must have exactly {rank} dimensions {layout}; got shape {shape_str(x.shape)}")


def check_feature_map(x: Tensor, name: str, channels: int | None = None) -> None:
    """``x`` is a 4-D floating-point feature map ``(B, C, H, W)``, with ``channels`` channels when given.

    An integer image (``uint8`` straight from a file or a data set) is refused here, naming its
    dtype, rather than deep inside torch ("mean(): could not infer output dtype").
    """
    check_rank(x, name, 4, "(B, C, H, W)")
    if channels is not None and x.shape[1] != channels:
        raise ValueError(
            f"{name} must have {channels} channels, shape (B, {channels}, H, W); got shape {shape_str(x.shape)}"
        )
    check_floating(x, name, hint=f"; convert it with {name}.float() (and / 255 for a uint8 image) first")


def check_floating(x: Tensor, name: str, hint: str = "") -> None:
    """``x`` has a floating-point dtype; ``hint`` is appended to the message."""
    if not torch.is_floating_point(x):
        raise ValueError(f"{name} must be a floating-point tensor; got dtype {x.dtype}{hint}")


def check_same_dtype(tensors: dict[str, Tensor]) -> None:
    dtypes = {name: t.dtype for name, t in tensors.items()}
    if len(set(dtypes.values())) > 1:
        listed = ", ".join(f"{n}: {d}" for n, d in dtypes.items())
        raise ValueError(f"expected one dtype for {', '.join(dtypes)}; got {listed}")


def check_dim_equal(a: Tensor, a_name: str, a_dim: int, b: Tensor, b_name: str, b_dim: int, what: str) -> None:
    if a.shape[a_dim] != b.shape[b_dim]:
        raise ValueError(
            f"{a_name} and {b_name} must agree on {what}: {a_name} has shape {shape_str(a.shape)}, "
            f"{b_name} has shape {shape_str(b.shape)}"
        )


def check_qkv(q: Tensor, k: Tensor, v: Tensor) -> None:
    """Shapes and dtypes of attention inputs ``q (..., L, E)``, ``k (..., S, E)``, ``v (..., S, Ev)``."""
    check_min_rank(q, "q", 2, "(..., L, E)")
    check_min_rank(k, "k", 2, "(..., S, E)")
    check_min_rank(v, "v", 2, "(..., S, Ev)")
    check_floating(q, "q")
    check_same_dtype({"q": q, "k": k, "v": v})
    if not (q.dim() == k.dim() == v.dim()) or not (q.shape[:-2] == k.shape[:-2] == v.shape[:-2]):
        raise ValueError(
            "q, k and v must have the same batch dimensions (...): got q "
            f"{shape_str(q.shape)}, k {shape_str(k.shape)}, v {shape_str(v.shape)}"
        )
    check_dim_equal(q, "q", -1, k, "k", -1, "the feature size E (last dimension)")
    check_dim_equal(k, "k", -2, v, "v", -2, "the number of keys S (second-to-last dimension)")


def check_weight(w: Tensor, name: str, expected: tuple[int, ...]) -> None:
    check_tensor(w, name)
    if tuple(w.shape) != tuple(expected):
        raise ValueError(f"{name} must have shape {shape_str(expected)}; got {shape_str(w.shape)}")


def check_mask(mask: Tensor, name: str, target_shape: Sequence[int], dtype: torch.dtype) -> None:
    """A mask is boolean (True = may attend) or float of the scores' dtype (added to scores),
    and broadcasts to the scores' shape ``target_shape`` without changing it."""
    check_tensor(mask, name)
    if mask.dtype != torch.bool and mask.dtype != dtype:
        raise ValueError(
            f"{name} must be torch.bool (True = may attend) or a float tensor of the scores' dtype "
            f"{dtype} (added to the scores); got dtype {mask.dtype}. "
            f"A 0/1 integer mask should be converted with .bool() first."
        )
    try:
        broadcast = torch.broadcast_shapes(tuple(mask.shape), tuple(target_shape))
    except RuntimeError:
        broadcast = None
    if broadcast is None or tuple(broadcast) != tuple(target_shape):
        raise ValueError(
            f"{name} of shape {shape_str(mask.shape)} does not broadcast to the attention scores' "
            f"shape {shape_str(target_shape)} = (..., L queries, S keys)"
        )


def check_reduction(channels: int, reduction: int, bottleneck: str) -> None:
    """Channel-reduction modules (SE, CBAM, BAM): both sizes positive and ``C`` divisible by ``r``.

    ``bottleneck`` completes the message, e.g. ``"the bottleneck has C / r units"``; the error
    suggests the largest divisor of ``channels`` that is at most ``reduction``.
    """
    if channels < 1 or reduction < 1:
        raise ValueError(f"channels and reduction must be positive; got channels={channels}, reduction={reduction}")
    if channels % reduction:
        divisor = max(d for d in range(1, min(channels, reduction) + 1) if channels % d == 0)
        raise ValueError(
            f"channels must be divisible by reduction so {bottleneck}; "
            f"got channels={channels}, reduction={reduction} (try reduction={divisor})"
        )
