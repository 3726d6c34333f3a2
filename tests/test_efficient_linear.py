"""attnlib.efficient.linear: linear attention equals the quadratic form of the same kernel."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from conftest import assert_close

from attnlib.efficient.linear import elu_feature_map, linear_attention, linear_attention_weights


def _quadratic(q, k, v, causal, key_mask=None):
    """The kernelised attention written out by hand (the paper's eq. 3 with phi = elu + 1)."""
    phi_q, phi_k = F.elu(q) + 1, F.elu(k) + 1
    sim = phi_q @ phi_k.transpose(-2, -1)  # (..., L, S)
    keep = torch.ones(sim.shape[-2:], dtype=torch.bool)
    if causal:
        keep = keep.tril()
    if key_mask is not None:
        keep = keep & key_mask[..., None, :]
    sim = sim * keep
    return (sim / (sim.sum(-1, keepdim=True) + 1e-6)) @ v


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_matches_the_quadratic_form(seed, causal):
    g = torch.Generator().manual_seed(seed)
    r = lambda lo, hi: int(torch.randint(lo, hi + 1, (1,), generator=g))  # noqa: E731
    batch, L, E, Ev, chunk = (r(1, 2), r(1, 3)), r(1, 70), r(1, 16), r(1, 16), r(1, 20)
    S = L if causal else r(1, 70)
    q, k, v = (
        torch.randn(*batch, L, E, generator=g),
        torch.randn(*batch, S, E, generator=g),
        torch.randn(*batch, S, Ev, generator=g),
    )
    out = linear_attention(q, k, v, causal, chunk_size=chunk)
    assert out.shape == (*batch, L, Ev)
    expected = _quadratic(q, k, v, causal)
    assert_close(out, expected, 1e-5, f"L={L} S={S} chunk={chunk} causal={causal}")
    assert_close(linear_attention_weights(q, k, causal) @ v, expected, 1e-5, "weights")


def test_weights_are_a_distribution_and_causal():
    g = torch.Generator().manual_seed(1)
    q, k = torch.randn(2, 9, 4, generator=g), torch.randn(2, 9, 4, generator=g)
    w = linear_attention_weights(q, k, causal=True)
    assert (w >= 0).all() and (w.triu(1) == 0).all()
    assert_close(w.sum(-1), torch.ones(2, 9), 1e-5)
    assert_close(elu_feature_map(torch.tensor([-100.0, 0.0, 2.0])), torch.tensor([0.0, 1.0, 3.0]), 1e-6)


def test_causal_output_ignores_the_future():
    g = torch.Generator().manual_seed(2)
    q, k, v = (torch.randn(1, 2, 40, 8, generator=g) for _ in range(3))
    out = linear_attention(q, k, v, causal=True, chunk_size=7)
    k2, v2 = k.clone(), v.clone()
    k2[..., 20:, :] += 5
    v2[..., 20:, :] -= 3
    out2 = linear_attention(q, k2, v2, causal=True, chunk_size=7)
    assert_close(out[..., :20, :], out2[..., :20, :], 1e-6, "past")
    assert (out[..., 20:, :] - out2[..., 20:, :]).abs().max() > 0.1


@pytest.mark.parametrize("causal", [False, True])
def test_key_mask_and_empty_rows(causal):
    g = torch.Generator().manual_seed(3)
    q, k, v = (torch.randn(3, 2, 12, 5, generator=g) for _ in range(3))
    key_mask = torch.arange(12)[None, :] < torch.tensor([[12], [5], [0]])  # (B, S)
    key_mask = key_mask[:, None, :]  # (B, 1, S)
    out = linear_attention(q, k, v, causal, key_mask=key_mask, chunk_size=5)
    assert_close(out, _quadratic(q, k, v, causal, key_mask), 1e-5)
    assert (out[2] == 0).all() and not out.isnan().any()


@pytest.mark.parametrize("causal", [False, True])
def test_gradcheck_float64(causal):
    g = torch.Generator().manual_seed(4)
    q, k, v = (torch.randn(1, 2, 7, 3, generator=g, dtype=torch.float64, requires_grad=True) for _ in range(3))
    assert torch.autograd.gradcheck(lambda q, k, v: linear_attention(q, k, v, causal, chunk_size=3), (q, k, v))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_low_precision_large_inputs_stay_finite(dtype):
    g = torch.Generator().manual_seed(5)
    q, k, v = (torch.randn(2, 2, 300, 16, generator=g).mul(30).to(dtype) for _ in range(3))
    for causal in (False, True):
        out = linear_attention(q, k, v, causal)
        assert out.dtype == dtype and torch.isfinite(out).all()


def test_bad_input_names_the_shapes():
    q = torch.randn(2, 3, 5, 8)
    with pytest.raises(ValueError, match=r"causal linear attention needs as many queries as keys.*\(2, 3, 6, 8\)"):
        linear_attention(q, torch.randn(2, 3, 6, 8), torch.randn(2, 3, 6, 8), causal=True)
    with pytest.raises(ValueError, match=r"number of keys S.*\(2, 3, 4, 8\)"):
        linear_attention(q, q, torch.randn(2, 3, 4, 8))
    with pytest.raises(ValueError, match=r"key_mask must be torch.bool broadcastable to \(2, 3, 5\)"):
        linear_attention(q, q, q, key_mask=torch.ones(2, 3, 5))
    with pytest.raises(ValueError, match="chunk_size must be >= 1"):
        linear_attention(q, q, q, causal=True, chunk_size=0)
