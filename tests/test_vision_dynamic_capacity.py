"""Tests for attnlib.vision.dynamic_capacity (Dynamic Capacity Networks, Almahairi et al. 2016)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlib.record import record_attention
from attnlib.vision.dynamic_capacity import (
    DCNConfig,
    DynamicCapacityNetwork,
    entropy_saliency,
    extract_patches,
    select_top_k,
)

SMALL = DCNConfig(cell=4, patch=8, features=8, coarse_channels=4, fine_channels=(4, 8), k=3)


@pytest.mark.parametrize("channels, size", [(1, (16, 16)), (3, (13, 18)), (2, (9, 5))])
@pytest.mark.parametrize("k", [1, 3, None])
def test_shapes(channels: int, size: tuple[int, int], k) -> None:
    torch.manual_seed(0)
    cfg = DCNConfig(in_channels=channels, cell=4, patch=8, features=8, coarse_channels=4, fine_channels=(4, 8), k=k)
    model = DynamicCapacityNetwork(cfg)
    x = torch.randn(2, channels, *size)
    out = model.forward_details(x)
    h, w = -(-size[0] // 4), -(-size[1] // 4)  # ceil
    assert out.logits.shape == (2, 10)
    n_cells = h * w if k is None or k >= h * w else k
    assert out.locations.shape == (2, n_cells, 2)
    assert bool((out.locations[..., 0] < h).all()) and bool((out.locations[..., 1] < w).all())
    if k is None or k >= h * w:
        assert out.saliency is None and out.coarse_logits is None
    else:
        assert out.saliency.shape == (2, 1, h, w) and out.coarse_logits.shape == (2, 10)
    assert model(x).shape == (2, 10)


def test_top_k_picks_the_k_largest_cells() -> None:
    saliency = torch.zeros(2, 1, 3, 4)
    saliency[0, 0, 2, 1], saliency[0, 0, 0, 3], saliency[0, 0, 1, 1] = 5.0, 4.0, 3.0
    saliency[1, 0, 0, 0], saliency[1, 0, 2, 3] = 1.0, 2.0
    loc = select_top_k(saliency, 2)
    assert loc.tolist() == [[[2, 1], [0, 3]], [[2, 3], [0, 0]]]
    # random maps: the chosen cells hold exactly the k largest values
    g = torch.Generator().manual_seed(0)
    s = torch.rand(4, 1, 5, 6, generator=g)
    loc = select_top_k(s, 7)
    chosen = s[torch.arange(4)[:, None], 0, loc[..., 0], loc[..., 1]]  # (B, k)
    torch.testing.assert_close(chosen, s.flatten(1).sort(dim=1, descending=True).values[:, :7])


def test_saliency_matches_finite_differences() -> None:
    torch.manual_seed(0)
    top = nn.Sequential(nn.Conv2d(3, 4, 1), nn.Tanh(), nn.Flatten(), nn.Linear(4 * 2 * 3, 5)).double()
    coarse = torch.randn(2, 3, 2, 3, dtype=torch.float64)

    def entropy(c: torch.Tensor) -> torch.Tensor:  # (B,) per-example entropies
        log_p = torch.log_softmax(top(c), dim=-1)
        return -(log_p.exp() * log_p).sum(-1)

    eps = 1e-6
    grad = torch.zeros_like(coarse)
    for index in torch.cartesian_prod(*(torch.arange(n) for n in coarse.shape[1:])):
        bump = torch.zeros_like(coarse)
        bump[:, index[0], index[1], index[2]] = eps
        grad[:, index[0], index[1], index[2]] = (entropy(coarse + bump) - entropy(coarse - bump)) / (2 * eps)
    expected = grad.norm(dim=1, keepdim=True)  # (B, 1, h, w)
    torch.testing.assert_close(entropy_saliency(top, coarse), expected, atol=1e-7, rtol=1e-6)


def test_saliency_works_without_grad_and_does_not_touch_parameters() -> None:
    model = DynamicCapacityNetwork(SMALL)
    with torch.no_grad():
        out = model.forward_details(torch.randn(2, 1, 12, 12))
    assert out.saliency is not None and float(out.saliency.sum()) > 0
    assert all(p.grad is None for p in model.parameters())


def test_fine_features_replace_coarse_ones_at_the_chosen_cells() -> None:
    torch.manual_seed(0)
    model = DynamicCapacityNetwork(SMALL)
    x = torch.randn(1, 1, 12, 12)
    out = model.forward_details(x)
    # recompute by hand: coarse map, fine vectors at the chosen cells, top layers
    coarse = model.coarse_features(x)
    patches = extract_patches(x, out.locations, SMALL.cell, SMALL.patch)[0]  # (k, C, p, p)
    refined = coarse.clone()
    for (row, col), vec in zip(out.locations[0].tolist(), model.fine(patches)):
        refined[0, :, row, col] = vec
    torch.testing.assert_close(out.logits, model.top(refined))


def test_extract_patches_centres_on_the_cell_with_zero_padding() -> None:
    x = torch.arange(1.0, 1 + 8 * 8).view(1, 1, 8, 8)
    patches = extract_patches(x, torch.tensor([[[0, 0], [1, 1]]]), cell=4, patch=6)  # margin 1
    assert patches.shape == (1, 2, 1, 6, 6)
    torch.testing.assert_close(patches[0, 1, 0, 1:5, 1:5], x[0, 0, 4:8, 4:8])  # the cell itself
    torch.testing.assert_close(patches[0, 1, 0, 0, :5], x[0, 0, 3, 3:8])  # one pixel of context
    assert float(patches[0, 0, 0, 0].abs().sum()) == 0  # above the image: zeros
    assert float(patches[0, 1, 0, :, 5].abs().sum()) == 0  # right of the image: zeros


def test_recorded_saliency_has_the_documented_shape() -> None:
    model = DynamicCapacityNetwork(SMALL)
    with record_attention(model) as maps:
        model(torch.randn(3, 1, 10, 14))
    assert maps.names() == [""]
    assert maps.last("").shape == (3, 1, 3, 4)


def test_loss_trains_every_part() -> None:
    torch.manual_seed(0)
    model = DynamicCapacityNetwork(SMALL)
    loss, parts = model.loss(torch.randn(4, 1, 12, 12), torch.tensor([0, 1, 2, 3]))
    assert set(parts) == {"refined", "coarse", "hint"}
    loss.backward()
    for name in ("coarse", "fine", "top"):
        grads = [p.grad for p in getattr(model, name).parameters()]
        assert all(g is not None for g in grads) and sum(float(g.abs().sum()) for g in grads) > 0, name


def test_deterministic() -> None:
    x = torch.randn(2, 1, 16, 16)
    outs = []
    for _ in range(2):
        torch.manual_seed(3)
        out = DynamicCapacityNetwork(SMALL).forward_details(x)
        outs.append(out)
    torch.testing.assert_close(outs[0].logits, outs[1].logits, rtol=0, atol=0)
    assert torch.equal(outs[0].locations, outs[1].locations)


def test_bad_input_raises() -> None:
    model = DynamicCapacityNetwork(SMALL)
    with pytest.raises(ValueError, match=r"x must have exactly 4 dimensions \(B, C, H, W\); got shape \(1, 12, 12\)"):
        model(torch.randn(1, 12, 12))
    with pytest.raises(ValueError, match=r"x must have 1 channels, shape \(B, 1, H, W\); got shape \(1, 3, 12, 12\)"):
        model(torch.randn(1, 3, 12, 12))
    with pytest.raises(ValueError, match=r"k must lie in \[1, h \* w = 4\]; got 5"):
        select_top_k(torch.rand(1, 1, 2, 2), 5)
    with pytest.raises(ValueError, match="patch must be >= cell with patch - cell even"):
        DynamicCapacityNetwork(DCNConfig(cell=8, patch=9))
