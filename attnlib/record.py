"""Getting attention maps out of any attnlib model, without changing what it computes.

Every attnlib module that forms attention weights hands them to :func:`emit`.  Nothing is
kept unless a recorder is listening, so a model costs the same with or without this
module.  To look at the maps, wrap the forward pass::

    with attnlib.record_attention(model) as maps:
        output = model(x)                       # exactly the output you would get anyway
    maps.names()                                 # ['encoder.attn', 'decoder.attn', ...]
    maps["decoder.attn"]                         # list of tensors, one per call
    maps.stacked("decoder.attn")                 # torch.stack of that list

Maps are stored under the name the module has in ``model.named_modules()`` (the model
itself is ``""``), detached from the autograd graph and copied, so later in-place changes
cannot alter them.  A module called several times in one forward pass (a decoder step by
step, a shared block) adds one entry per call, in call order.

Modules with a fast path that cannot produce weights (torch's fused attention) ask
:func:`is_recording` and take the slower path that forms the weights only while a
recorder is listening.

Writing a new attention module: compute the weights, call ``emit(self, weights)``, and
document the shape of what you emit.  That is the whole protocol.
"""

from __future__ import annotations

import contextvars
from typing import Iterator, Optional, Union

import torch
from torch import Tensor, nn

__all__ = ["AttentionRecorder", "record_attention", "emit", "is_recording"]

_ACTIVE: contextvars.ContextVar[tuple["AttentionRecorder", ...]] = contextvars.ContextVar(
    "attnlib_active_recorders", default=()
)


def emit(module: nn.Module, weights: Tensor, tag: Optional[str] = None) -> None:
    """Offer attention weights computed by ``module`` to every active recorder.

    Args:
        module: the module that computed the weights (usually ``self``).
        weights: any tensor; by convention ``(B, ..., L, S)`` for sequence attention and
            ``(B, 1, H, W)`` or ``(B, C, 1, 1)`` for spatial and channel maps.
        tag: for a second kind of map from the same module (Luong's local-p emits its
            weights, and its predicted positions with ``tag="positions"``): stored under
            ``"<module name>.<tag>"`` instead of the module's name.
    """
    for recorder in _ACTIVE.get():
        recorder._store(module, weights, tag)


def is_recording(module: Optional[nn.Module] = None) -> bool:
    """True while some active recorder would keep what ``module`` emits.

    Without ``module``: True while any recorder is active.
    """
    active = _ACTIVE.get()
    if module is None:
        return bool(active)
    return any(recorder._wants(module) for recorder in active)


class AttentionRecorder:
    """Context manager that collects the attention maps emitted inside ``model``.

    Args:
        model: the model whose submodules' maps are kept; maps emitted by modules outside
            it are ignored.
        detach: store ``weights.detach()`` (default) rather than keeping the graph.
        device: move stored maps there (default ``"cpu"``); ``None`` keeps their device.
        include: keep only modules whose name starts with one of these prefixes.
    """

    def __init__(
        self,
        model: nn.Module,
        *,
        detach: bool = True,
        device: Optional[Union[str, torch.device]] = "cpu",
        include: Optional[tuple[str, ...]] = None,
    ) -> None:
        if not isinstance(model, nn.Module):
            raise TypeError(f"model must be a torch.nn.Module; got {type(model).__name__}")
        self.model = model
        self.detach = detach
        self.device = device
        self.include = include
        self.maps: dict[str, list[Tensor]] = {}
        self._names: dict[int, str] = {}
        self._token: Optional[contextvars.Token] = None

    # -- context manager
    def __enter__(self) -> "AttentionRecorder":
        self._names = {
            id(module): name
            for name, module in self.model.named_modules()
            if self.include is None or name.startswith(self.include)
        }
        self._token = _ACTIVE.set(_ACTIVE.get() + (self,))
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._token is not None:
            _ACTIVE.reset(self._token)
            self._token = None

    # -- called by emit()
    def _wants(self, module: nn.Module) -> bool:
        return id(module) in self._names

    def _store(self, module: nn.Module, weights: Tensor, tag: Optional[str] = None) -> None:
        name = self._names.get(id(module))
        if name is None:
            return
        if tag is not None:
            name = f"{name}.{tag}" if name else tag
        kept = weights.detach() if self.detach else weights
        kept = kept.to(self.device, copy=True) if self.device is not None else kept.clone()
        self.maps.setdefault(name, []).append(kept)

    # -- reading the maps
    def names(self) -> list[str]:
        """Names of the modules that emitted maps, in the order they first did."""
        return list(self.maps)

    def __getitem__(self, key: Union[str, nn.Module]) -> list[Tensor]:
        name = self._names.get(id(key)) if isinstance(key, nn.Module) else key
        if name not in self.maps:
            known = ", ".join(repr(n) for n in self.maps) or "none"
            raise KeyError(f"no attention maps recorded for {key!r}; recorded: {known}")
        return self.maps[name]

    def __contains__(self, key: object) -> bool:
        name = self._names.get(id(key)) if isinstance(key, nn.Module) else key
        return name in self.maps

    def __iter__(self) -> Iterator[str]:
        return iter(self.maps)

    def __len__(self) -> int:
        return len(self.maps)

    def last(self, key: Union[str, nn.Module]) -> Tensor:
        """The map of the most recent call."""
        return self[key][-1]

    def stacked(self, key: Union[str, nn.Module], dim: int = 0) -> Tensor:
        """All calls' maps stacked along a new dimension ``dim`` (they must share a shape)."""
        return torch.stack(self[key], dim=dim)

    def __repr__(self) -> str:
        inner = ", ".join(f"{n!r}: {len(v)}x{tuple(v[0].shape)}" for n, v in self.maps.items())
        return f"AttentionRecorder({{{inner}}})"


def record_attention(
    model: nn.Module,
    *,
    detach: bool = True,
    device: Optional[Union[str, torch.device]] = "cpu",
    include: Optional[tuple[str, ...]] = None,
) -> AttentionRecorder:
    """Record the attention maps of ``model``'s modules; use it in a ``with`` block.

    See :class:`AttentionRecorder` for the arguments and the module docstring for an example.
    """
    return AttentionRecorder(model, detach=detach, device=device, include=include)
