"""attnlib.temporal.temporal_attention: attention over frames and inside them."""

import pytest
import torch

import attnlib
from attnlib.temporal import SpatialTemporalAttention, TemporalAttention


def test_temporal_shapes_and_equation():
    torch.manual_seed(0)
    layer = TemporalAttention(6, hidden=4)
    frames = torch.randn(2, 5, 6)
    pooled, weights = layer(frames)
    expected = torch.softmax(layer.score(torch.tanh(layer.proj(frames))).squeeze(-1), dim=1)
    assert pooled.shape == (2, 6) and torch.allclose(weights, expected)
    assert torch.allclose(pooled, (expected[..., None] * frames).sum(1), atol=1e-6)


def test_temporal_attention_can_pick_the_marked_frame():
    layer = TemporalAttention(2, hidden=1)
    with torch.no_grad():
        layer.proj.weight.copy_(torch.tensor([[10.0, 0.0]]))
        layer.proj.bias.zero_()
        layer.score.weight.fill_(10.0)
    frames = torch.zeros(1, 4, 2)
    frames[0, 2, 0] = 1.0  # frame 2 carries the feature that scores high
    _, weights = layer(frames)
    assert int(weights.argmax()) == 2 and weights[0, 2] > 0.99


def test_spatial_temporal_shapes_and_records():
    torch.manual_seed(0)
    layer = SpatialTemporalAttention(4, hidden=8)
    features = torch.randn(2, 3, 4, 5, 5)
    with attnlib.record_attention(layer) as maps:
        pooled, spatial, temporal = layer(features)
    assert pooled.shape == (2, 4) and spatial.shape == (2, 3, 5, 5) and temporal.shape == (2, 3)
    assert torch.allclose(spatial.sum(dim=(2, 3)), torch.ones(2, 3)) and torch.allclose(temporal.sum(1), torch.ones(2))
    assert set(maps.names()) == {".spatial", "temporal"} or set(maps.names()) == {"spatial", "temporal"}


def test_bad_input():
    with pytest.raises(ValueError, match=r"frames must be \(B, T, 6\)"):
        TemporalAttention(6)(torch.randn(2, 5, 4))
    with pytest.raises(ValueError, match="exactly 5 dimensions"):
        SpatialTemporalAttention(4)(torch.randn(2, 4, 5, 5))
    with pytest.raises(ValueError, match="positive"):
        TemporalAttention(0)
