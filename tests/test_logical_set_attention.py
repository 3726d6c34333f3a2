"""attnlib.logical.set_attention: MAB, SAB, ISAB, PMA and the Set Transformer."""

import pytest
import torch
from torch import nn

import attnlib
from attnlib.logical import ISAB, MAB, PMA, SAB, SetTransformer, SetTransformerConfig


def test_shapes():
    torch.manual_seed(0)
    x, y = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    assert MAB(8, 2)(x, y).shape == (2, 5, 8)
    assert SAB(8, 2)(x).shape == (2, 5, 8)
    assert PMA(8, num_seeds=3, num_heads=2)(x).shape == (2, 3, 8)
    assert SetTransformer(SetTransformerConfig(in_features=8, dim=16, num_outputs=4))(x).shape == (2, 4)


def test_mab_matches_its_equation():
    """Eq. 6 against an independent implementation (torch.nn layers, copied weights; see plain_mab)."""
    torch.manual_seed(0)
    mab = MAB(8, 2).eval()
    with torch.no_grad():  # make every parameter non-trivial (LayerNorm starts at 1 and 0)
        for parameter in mab.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x, y = torch.randn(2, 5, 8), torch.randn(2, 3, 8)
    assert torch.allclose(mab(x, y), plain_mab(mab, x, y), atol=1e-5)
    assert not torch.allclose(mab(x, y), plain_mab(mab, x, x[:, :3]), atol=1e-3)  # Y matters


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


def plain_mab(mab: MAB, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """MAB(X, Y) = LN(H + rFF(H)), H = LN(X + Multihead(X, Y, Y)) (Lee et al., 2019, Eq. 6), computed with
    torch.nn.MultiheadAttention, LayerNorm and Linear layers holding copies of ``mab``'s parameters."""
    dim, heads = mab.dim, mab.attention.num_heads
    mha = nn.MultiheadAttention(dim, heads, batch_first=True)
    ln1, ln2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
    lin1, lin2 = nn.Linear(dim, dim), nn.Linear(dim, dim)
    att = mab.attention
    with torch.no_grad():
        mha.in_proj_weight.copy_(torch.cat([att.q_proj.weight, att.k_proj.weight, att.v_proj.weight]))
        mha.in_proj_bias.copy_(torch.cat([att.q_proj.bias, att.k_proj.bias, att.v_proj.bias]))
        mha.out_proj.weight.copy_(att.out_proj.weight)
        mha.out_proj.bias.copy_(att.out_proj.bias)
        for ours, theirs in ((ln1, mab.norm1), (ln2, mab.norm2), (lin1, mab.ff[0]), (lin2, mab.ff[2])):
            ours.weight.copy_(theirs.weight)
            ours.bias.copy_(theirs.bias)
        h = ln1(x + mha(x, y, y, need_weights=False)[0])
        return ln2(h + lin2(torch.relu(lin1(h))))


def test_isab_shapes_and_set_transformer_option():
    torch.manual_seed(0)
    x = torch.randn(2, 7, 8)
    isab = ISAB(8, num_inducing=3, num_heads=2)
    assert isab(x).shape == (2, 7, 8) and isab.inducing.shape == (3, 8)
    model = SetTransformer(SetTransformerConfig(in_features=8, dim=16, num_inducing=5, num_outputs=4))
    assert model(x).shape == (2, 4)
    assert all(isinstance(block, ISAB) for block in model.encoder) and len(model.encoder) == 2
    assert all(isinstance(block, SAB) for block in SetTransformer(SetTransformerConfig(in_features=8)).encoder)


def test_isab_matches_eqs_9_and_10_with_copied_weights():
    torch.manual_seed(0)
    isab = ISAB(8, num_inducing=3, num_heads=2).eval()
    with torch.no_grad():  # make every parameter non-trivial (LayerNorm starts at 1 and 0)
        for parameter in isab.parameters():
            parameter.add_(0.1 * torch.randn_like(parameter))
    x = torch.randn(2, 5, 8)
    inducing = isab.inducing.detach()[None].expand(2, -1, -1)  # I (B, m, D)
    h = plain_mab(isab.summarise, inducing, x)  # Eq. 10: H = MAB(I, X), (B, m, D)
    expected = plain_mab(isab.broadcast, x, h)  # Eq. 9: ISAB_m(X) = MAB(X, H), (B, n, D)
    assert torch.allclose(isab(x), expected, atol=1e-5)
    assert not torch.allclose(isab(x), plain_mab(isab.broadcast, x, x), atol=1e-3)  # not a SAB


def test_isab_is_equivariant_and_its_weights_are_n_by_m():
    torch.manual_seed(0)
    x = torch.randn(3, 6, 8)
    perm = torch.randperm(6)
    isab = ISAB(8, num_inducing=2, num_heads=2).eval()
    assert torch.allclose(isab(x)[:, perm], isab(x[:, perm]), atol=1e-5)
    model = SetTransformer(SetTransformerConfig(in_features=8, dim=16, num_inducing=2)).eval()
    assert torch.allclose(model(x), model(x[:, perm]), atol=1e-5)
    with attnlib.record_attention(isab) as maps:
        isab(x)
    assert maps["summarise.attention"][0].shape == (3, 2, 2, 6)  # (B, heads, m, n)
    assert maps["broadcast.attention"][0].shape == (3, 2, 6, 2)  # (B, heads, n, m)


def test_isab_bad_input():
    with pytest.raises(ValueError, match="num_inducing"):
        ISAB(8, num_inducing=0)
    with pytest.raises(ValueError, match=r"\(B, n, D\)"):
        ISAB(8, num_inducing=2, num_heads=2)(torch.randn(5, 8))
    with pytest.raises(ValueError, match=r"\(B, n, 8\)"):
        ISAB(8, num_inducing=2, num_heads=2)(torch.randn(2, 5, 6))
    with pytest.raises(ValueError, match="num_inducing"):
        SetTransformer(SetTransformerConfig(num_inducing=-1))
