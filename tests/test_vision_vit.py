"""Tests for attnlib.vision.vision_transformer (Vision Transformer and attention rollout)."""

from __future__ import annotations

import pytest
import torch

from attnlib.record import record_attention
from attnlib.vision.vision_transformer import VisionTransformer, ViTConfig, attention_rollout, class_token_map

TINY = dict(dim=16, depth=2, heads=2)


@pytest.mark.parametrize("image_size, patch, channels", [(21, 7, 1), (15, 5, 3), ((15, 21), 3, 2), (28, 7, 1)])
def test_shapes_and_recorded_maps(image_size, patch, channels) -> None:
    torch.manual_seed(0)
    cfg = ViTConfig(image_size=image_size, patch_size=patch, in_channels=channels, **TINY)
    model = VisionTransformer(cfg).eval()
    h, w = (image_size, image_size) if isinstance(image_size, int) else image_size
    x = torch.randn(3, channels, h, w)
    with record_attention(model) as maps:
        logits = model(x)
    assert logits.shape == (3, 10)
    T = 1 + (h // patch) * (w // patch)
    assert maps.names() == ["blocks.0.attn", "blocks.1.attn"]
    for name in maps.names():
        weights = maps.last(name)
        assert weights.shape == (3, 2, T, T)
        torch.testing.assert_close(weights.sum(-1), torch.ones(3, 2, T))
    # recording changes nothing: the fused path gives the same logits
    torch.testing.assert_close(model(x), logits, atol=1e-5, rtol=1e-5)


def test_rollout_of_identity_attentions_is_the_identity() -> None:
    eye = torch.eye(5).expand(2, 3, 5, 5)
    for add_residual in (True, False):
        torch.testing.assert_close(
            attention_rollout([eye, eye, eye], add_residual=add_residual), torch.eye(5).expand(2, 5, 5)
        )


@pytest.mark.parametrize("fusion", ["mean", "max", "min"])
def test_rollout_rows_sum_to_one(fusion: str) -> None:
    g = torch.Generator().manual_seed(0)
    maps = [torch.softmax(torch.randn(2, 4, 6, 6, generator=g), -1) for _ in range(3)]
    rollout = attention_rollout(maps, head_fusion=fusion)
    assert rollout.shape == (2, 6, 6)
    torch.testing.assert_close(rollout.sum(-1), torch.ones(2, 6))
    assert float(rollout.min()) >= 0


def test_two_layer_rollout_by_hand() -> None:
    # two heads per layer, three tokens
    a1 = torch.tensor(
        [[[0.5, 0.5, 0.0], [0.0, 1.0, 0.0], [0.2, 0.2, 0.6]], [[0.5, 0.5, 0.0], [0.0, 0.0, 1.0], [0.2, 0.2, 0.6]]]
    )[None]  # (1, 2, 3, 3)
    a2 = torch.tensor(
        [[[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], [[0.0, 1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]]]
    )[None]
    m1 = torch.tensor([[0.5, 0.5, 0.0], [0.0, 0.5, 0.5], [0.2, 0.2, 0.6]])  # mean over heads
    m2 = torch.tensor([[0.0, 0.5, 0.5], [1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    r1 = (m1 + torch.eye(3)) / 2  # rows of m + I sum to 2
    r2 = (m2 + torch.eye(3)) / 2
    torch.testing.assert_close(attention_rollout([a1, a2])[0], r2 @ r1)
    torch.testing.assert_close(attention_rollout([a1, a2], add_residual=False)[0], m2 @ m1)
    # the order matters: layer 2 acts after layer 1
    assert not torch.allclose(r2 @ r1, r1 @ r2)
    expected_first_row = torch.tensor(
        [
            0.5 * 0.75 + 0.25 * 0.0 + 0.25 * 0.1,
            0.5 * 0.25 + 0.25 * 0.75 + 0.25 * 0.1,
            0.5 * 0.0 + 0.25 * 0.25 + 0.25 * 0.8,
        ]
    )
    torch.testing.assert_close(attention_rollout([a1, a2])[0, 0], expected_first_row)


def test_class_token_map() -> None:
    attention = torch.zeros(1, 7, 7)
    attention[0, 0] = torch.tensor([0.4, 0.0, 0.3, 0.0, 0.0, 0.0, 0.3])
    picture = class_token_map(attention, (2, 3))
    torch.testing.assert_close(picture, torch.tensor([[[0.0, 0.5, 0.0], [0.0, 0.0, 0.5]]]))


def test_gradients_flow() -> None:
    model = VisionTransformer(ViTConfig(image_size=14, patch_size=7, **TINY))
    model(torch.randn(2, 1, 14, 14)).sum().backward()
    assert all(p.grad is not None for p in model.parameters())
    assert float(model.pos_embedding.grad.abs().sum()) > 0 and float(model.cls_token.grad.abs().sum()) > 0


def test_bad_input_raises() -> None:
    with pytest.raises(ValueError, match=r"image_size must be divisible by patch_size=7; got \(30, 30\)"):
        VisionTransformer(ViTConfig(image_size=30, patch_size=7, **TINY))
    model = VisionTransformer(ViTConfig(image_size=14, patch_size=7, **TINY))
    with pytest.raises(ValueError, match=r"x must have exactly 4 dimensions \(B, C, H, W\); got shape \(1, 14, 14\)"):
        model(torch.randn(1, 14, 14))
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\) = \(B, 1, 14, 14\); got \(2, 1, 21, 21\)"):
        model(torch.randn(2, 1, 21, 21))
    with pytest.raises(ValueError, match="divisible by the patch size 7; got shape"):
        model.patches(torch.randn(1, 1, 15, 14))
    with pytest.raises(ValueError, match="head_fusion must be 'mean', 'max' or 'min'; got 'sum'"):
        attention_rollout([torch.eye(3).expand(1, 1, 3, 3)], head_fusion="sum")
    with pytest.raises(ValueError, match="maps must hold at least one"):
        attention_rollout([])
    with pytest.raises(ValueError, match=r"maps\[1\] must have shape \(B, H, T, T\) like maps\[0\]"):
        attention_rollout([torch.eye(3).expand(1, 1, 3, 3), torch.eye(4).expand(1, 1, 4, 4)])
    with pytest.raises(ValueError, match=r"attention must have T = 1 \+ h \* w = 5 tokens"):
        class_token_map(torch.rand(1, 4, 4), (2, 2))
