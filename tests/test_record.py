"""attnlib.record: attention maps out of any model, without changing its outputs."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import attnlib
from attnlib import AttentionPooling, DotScore, NadarayaWatson, record_attention
from attnlib.record import emit, is_recording


class TwoLayer(nn.Module):
    """Self-attention twice, then a decoder-style loop calling one module per step."""

    def __init__(self) -> None:
        super().__init__()
        self.first = AttentionPooling(DotScore())
        self.second = AttentionPooling(DotScore())
        self.step = AttentionPooling(DotScore())
        self.proj = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.first(x, x, x)
        x = self.second(self.proj(x), x, x)
        outs = [self.step(x[:, t : t + 1], x, x) for t in range(x.shape[1])]
        return torch.cat(outs, dim=1)


def test_recording_does_not_change_outputs_and_names_every_module():
    torch.manual_seed(0)
    model, x = TwoLayer(), torch.randn(2, 5, 8)
    plain = model(x)
    with record_attention(model) as maps:
        recorded = model(x)
    assert torch.equal(plain, recorded)
    assert maps.names() == ["first", "second", "step"]
    assert len(maps["first"]) == 1 and maps["first"][0].shape == (2, 5, 5)
    assert len(maps["step"]) == 5 and maps.stacked("step", dim=1).shape == (2, 5, 1, 5)
    assert torch.equal(maps[model.second][0], maps.last("second"))
    # the maps are the real weights: rows sum to one, and recomputing gives the same
    assert torch.allclose(maps["first"][0].sum(-1), torch.ones(2, 5))
    _, w = model.first(x, x, x, return_weights=True)
    assert torch.equal(maps["first"][0], w)


def test_nothing_is_kept_outside_the_context_and_maps_are_detached_copies():
    torch.manual_seed(1)
    model = TwoLayer()
    x = torch.randn(1, 3, 8, requires_grad=True)
    with record_attention(model) as maps:
        model(x)
    assert not is_recording() and not is_recording(model.first)
    model(x)  # outside: nothing added
    assert len(maps["first"]) == 1
    stored = maps["first"][0]
    assert not stored.requires_grad and stored.device.type == "cpu"
    snapshot = stored.clone()
    with record_attention(model, detach=False, device=None) as live:
        model(x)
    live["first"][0].sum().backward()  # graph kept when asked
    assert x.grad is not None
    assert torch.equal(maps["first"][0], snapshot)


def test_recorders_nest_filter_and_ignore_foreign_modules():
    torch.manual_seed(2)
    model, other = TwoLayer(), AttentionPooling(DotScore())
    x = torch.randn(1, 4, 8)
    with record_attention(model, include=("second",)) as only_second, record_attention(model) as everything:
        assert is_recording(model.second) and is_recording(model.first)
        model(x)
        other(x, x, x)  # not part of `model`: ignored
    assert only_second.names() == ["second"]
    assert everything.names() == ["first", "second", "step"]
    with pytest.raises(KeyError, match="recorded: 'second'"):
        only_second["first"]
    assert "first" not in only_second and model.second in only_second


def test_root_module_is_recorded_under_empty_name():
    nw = NadarayaWatson(bandwidth=0.5)
    x = torch.linspace(0, 1, 6)
    with record_attention(nw) as maps:
        nw(x, x, x)
    assert maps.names() == [""] and maps[""][0].shape == (6, 6)


def test_custom_module_protocol_is_one_call():
    class Gate(nn.Module):
        def forward(self, x):
            g = torch.sigmoid(x.mean(dim=(2, 3), keepdim=True))  # (B, C, 1, 1)
            emit(self, g)
            return x * g

    gate = Gate()
    with record_attention(gate) as maps:
        y = gate(torch.randn(2, 3, 4, 4))
    assert y.shape == (2, 3, 4, 4) and maps[""][0].shape == (2, 3, 1, 1)


def test_record_attention_rejects_non_modules():
    with pytest.raises(TypeError, match="torch.nn.Module"):
        attnlib.record_attention(lambda x: x)
