"""attnlib.attention_pooling: AttentionPooling."""

from __future__ import annotations

import pytest
import torch

import attnlib
from attnlib import AdditiveScore, AttentionPooling, DotScore


def test_attention_pooling_is_weighted_average_and_respects_padding():
    torch.manual_seed(1)
    pool = AttentionPooling(AdditiveScore(4, 6, 8))
    q, k, v = torch.randn(3, 2, 4), torch.randn(3, 5, 6), torch.randn(3, 5, 7)
    lengths = torch.tensor([5, 2, 1])
    mask = attnlib.lengths_to_mask(lengths, 5)[:, None, :]  # (B, 1, S): padding on the key axis
    out, weights = pool(q, k, v, mask, return_weights=True)
    assert out.shape == (3, 2, 7) and weights.shape == (3, 2, 5)
    assert torch.allclose(out, weights @ v)
    for b, n in enumerate(lengths.tolist()):
        assert torch.equal(weights[b, :, n:], torch.zeros(2, 5 - n)), "padding received attention"
        assert torch.allclose(weights[b, :, :n].sum(-1), torch.ones(2))
    assert torch.equal(pool(q, k, v, mask), out)


def test_attention_pooling_dropout_only_in_training():
    torch.manual_seed(2)
    pool = AttentionPooling(DotScore(), dropout=0.5)
    q, k, v = torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(2, 6, 3)
    pool.eval()
    assert torch.equal(pool(q, k, v), pool(q, k, v))
    pool.train()
    assert not torch.equal(pool(q, k, v), pool(q, k, v))
    with pytest.raises(ValueError, match=r"dropout must lie in \[0, 1\); got 1.5"):
        AttentionPooling(DotScore(), dropout=1.5)


def test_attention_pooling_rejects_values_of_wrong_length():
    with pytest.raises(ValueError, match=r"number of keys S.*\(2, 6, 8\).*\(2, 5, 3\)"):
        AttentionPooling(DotScore())(torch.randn(2, 4, 8), torch.randn(2, 6, 8), torch.randn(2, 5, 3))
