"""attnlib.logical.sequential_attention: multi-hop attention whose query follows what it read."""

import pytest
import torch

import attnlib
from attnlib.logical import SequentialAttention


def inputs(b=2, n=5, d=8, dv=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g), torch.randn(b, n, d, generator=g), torch.randn(b, n, dv, generator=g)


def test_shapes():
    torch.manual_seed(0)
    q, k, v = inputs(dv=6)
    read, weights = SequentialAttention(8, num_hops=3, value_dim=6)(q, k, v)
    assert read.shape == (2, 6)
    assert weights.shape == (2, 3, 5)


def test_weights_on_the_simplex_every_hop():
    torch.manual_seed(0)
    _, weights = SequentialAttention(8, num_hops=4)(*inputs())
    assert (weights >= 0).all()
    assert torch.allclose(weights.sum(-1), torch.ones(2, 4), atol=1e-6)


def test_one_hop_is_single_query_attention():
    q, k, v = inputs()
    read, weights = SequentialAttention(8, num_hops=1)(q, k, v)
    expected = torch.softmax((k @ q[:, :, None])[:, :, 0] / 8**0.5, dim=-1)  # (B, n)
    assert torch.allclose(weights[:, 0], expected, atol=1e-6)
    assert torch.allclose(read, (expected[:, :, None] * v).sum(1), atol=1e-6)


def test_second_hop_uses_the_updated_query():
    torch.manual_seed(0)
    module = SequentialAttention(8, num_hops=2)
    q, k, v = inputs()
    _, weights = module(q, k, v)
    r1 = weights[:, 0, :, None].mul(v).sum(1)
    q2 = module.norms[0](q + module.updates[0](torch.cat([q, r1], -1)))
    expected = torch.softmax((k @ q2[:, :, None])[:, :, 0] / 8**0.5, dim=-1)
    assert torch.allclose(weights[:, 1], expected, atol=1e-6)
    assert not torch.allclose(weights[:, 1], weights[:, 0], atol=1e-3)


def test_records_one_map_per_hop():
    torch.manual_seed(0)
    model = torch.nn.Sequential()
    model.add_module("hops", SequentialAttention(8, num_hops=3))
    q, k, v = inputs()
    with attnlib.record_attention(model) as maps:
        _, weights = model.hops(q, k, v)
    assert maps.names() == ["hops"]
    assert len(maps["hops"]) == 3
    for t, recorded in enumerate(maps["hops"]):
        assert recorded.shape == (2, 1, 5)
        assert torch.equal(recorded[:, 0], weights[:, t])


def test_padding_mask_and_fully_masked_row():
    torch.manual_seed(0)
    q, k, v = inputs()
    mask = torch.tensor([[True, True, False, True, False], [False] * 5])
    read, weights = SequentialAttention(8, num_hops=2)(q, k, v, mask)
    assert not torch.isnan(weights).any() and not torch.isnan(read).any()
    assert (weights[0][:, ~mask[0]] == 0).all()
    assert torch.allclose(weights[0].sum(-1), torch.ones(2), atol=1e-6)
    assert (weights[1] == 0).all() and (read[1] == 0).all()


def test_masked_items_do_not_change_the_read():
    torch.manual_seed(0)
    module = SequentialAttention(8, num_hops=2)
    q, k, v = inputs()
    mask = torch.tensor([True, True, True, False, False]).expand(2, 5)
    k2, v2 = k.clone(), v.clone()
    k2[:, 3:], v2[:, 3:] = 100.0, -100.0
    assert torch.allclose(module(q, k, v, mask)[0], module(q, k2, v2, mask)[0], atol=1e-6)


def test_bad_inputs():
    with pytest.raises(ValueError, match="num_hops"):
        SequentialAttention(8, num_hops=0)
    module = SequentialAttention(8)
    q, k, v = inputs()
    with pytest.raises(ValueError, match=r"\(B, 8\)"):
        module(q[:, :4], k, v)
    with pytest.raises(ValueError, match="values"):
        module(q, k, v[:, :3])
    with pytest.raises(ValueError, match="rank|dimensions|\\(B, D\\)"):
        module(q[0], k, v)
    with pytest.raises(ValueError, match="key_mask"):
        module(q, k, v, torch.ones(2, 5))
    with pytest.raises(ValueError, match="key_mask"):
        module(q, k, v, torch.ones(2, 4, dtype=torch.bool))
