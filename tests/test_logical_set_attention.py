"""attnlib.logical.set_attention: MAB, SAB, PMA and the Set Transformer."""

import pytest
import torch

import attnlib
from attnlib.logical import MAB, PMA, SAB, SetTransformer, SetTransformerConfig


def test_shapes():
    torch.manual_seed(0)
    x, y = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    assert MAB(8, 2)(x, y).shape == (2, 5, 8)
    assert SAB(8, 2)(x).shape == (2, 5, 8)
    assert PMA(8, num_seeds=3, num_heads=2)(x).shape == (2, 3, 8)
    assert SetTransformer(SetTransformerConfig(in_features=8, dim=16, num_outputs=4))(x).shape == (2, 4)


def test_mab_matches_its_equation():
    torch.manual_seed(0)
    mab = MAB(8, 2).eval()
    x, y = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    attended, _ = mab.attention(x, y, y)
    h = mab.norm1(x + attended)
    assert torch.allclose(mab(x, y), mab.norm2(h + mab.ff(h)), atol=1e-6)


def test_sab_is_equivariant_and_the_set_transformer_invariant():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 8)
    perm = torch.randperm(6)
    sab = SAB(8, 2).eval()
    assert torch.allclose(sab(x)[:, perm], sab(x[:, perm]), atol=1e-5)
    model = SetTransformer(SetTransformerConfig(in_features=8, dim=16)).eval()
    assert torch.allclose(model(x), model(x[:, perm]), atol=1e-5)


def test_pma_weights_are_recorded():
    torch.manual_seed(0)
    pma = PMA(8, num_seeds=2, num_heads=2)
    with attnlib.record_attention(pma) as maps:
        pma(torch.randn(1, 4, 8))
    weights = maps["mab.attention"][0]  # (B, heads, seeds, elements)
    assert weights.shape == (1, 2, 2, 4) and torch.allclose(weights.sum(-1), torch.ones(1, 2, 2))


def test_bad_input():
    with pytest.raises(ValueError, match=r"x must be \(B, n, 3\)"):
        SetTransformer(SetTransformerConfig(in_features=3))(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="same B"):
        MAB(8, 2)(torch.randn(2, 4, 8), torch.randn(3, 4, 8))
    with pytest.raises(ValueError, match="num_seeds"):
        PMA(8, num_seeds=0)
