"""Tests for attnlib.vision.spatial_transformer (Spatial Transformer, Jaderberg et al. 2015)."""

from __future__ import annotations

import pytest
import torch

from attnlib.record import record_attention
from attnlib.vision.spatial_transformer import STCNN, SpatialTransformer, STCNNConfig, affine_transform, output_box

IDENTITY = torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


@pytest.mark.parametrize("channels, size", [(1, (28, 28)), (3, (17, 23)), (5, (9, 9)), (2, (4, 7))])
def test_untrained_transformer_is_the_identity(channels: int, size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    stn = SpatialTransformer(channels, size)
    x = torch.randn(3, channels, *size)
    torch.testing.assert_close(stn(x), x, atol=1e-5, rtol=0)
    torch.testing.assert_close(stn.theta(x), IDENTITY.expand(3, 2, 3), atol=0, rtol=0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("size", [(6, 6), (7, 11)])
def test_identity_theta_returns_the_input(dtype: torch.dtype, size: tuple[int, int]) -> None:
    x = torch.randn(2, 3, *size, dtype=dtype)
    out = affine_transform(x, IDENTITY.to(dtype).expand(2, 2, 3))
    assert out.dtype == dtype
    torch.testing.assert_close(out, x, atol=1e-5, rtol=0)


@pytest.mark.parametrize("shift", [1, 3, -2])
def test_known_translation_shifts_by_whole_pixels(shift: int) -> None:
    x = torch.randn(1, 1, 8, 10)
    theta = torch.tensor([[[1.0, 0.0, 2 * shift / 10], [0.0, 1.0, 0.0]]])  # read `shift` pixels to the right
    out = affine_transform(x, theta)[0, 0]
    if shift > 0:
        torch.testing.assert_close(out[:, : 10 - shift], x[0, 0, :, shift:], atol=1e-5, rtol=0)
        assert float(out[:, 10 - shift :].abs().max()) < 1e-6  # outside the input: zeros
    else:
        torch.testing.assert_close(out[:, -shift:], x[0, 0, :, : 10 + shift], atol=1e-5, rtol=0)


def test_zoom_crops_the_centre() -> None:
    x = torch.arange(64.0).view(1, 1, 8, 8)
    theta = torch.tensor([[[0.5, 0.0, 0.0], [0.0, 0.5, 0.0]]])  # the central half, sampled at 4 x 4
    out = affine_transform(x, theta, output_size=4)
    torch.testing.assert_close(out[0, 0], x[0, 0, 2:6, 2:6], atol=1e-5, rtol=0)


@pytest.mark.parametrize("out_size", [None, 5, (6, 9)])
def test_output_size(out_size) -> None:
    stn = SpatialTransformer(2, (13, 15), output_size=out_size)
    out = stn(torch.randn(4, 2, 13, 15))
    expected = (13, 15) if out_size is None else ((out_size, out_size) if isinstance(out_size, int) else out_size)
    assert out.shape == (4, 2, *expected)


def test_gradients_reach_the_localisation_network() -> None:
    torch.manual_seed(0)
    stn = SpatialTransformer(1, 12)
    x = torch.rand(4, 1, 12, 12)
    # the regressor starts at zero weights: its weight gradient must still be non-zero
    stn(x).pow(2).mul(torch.linspace(0, 1, 12)).sum().backward()
    assert float(stn.regressor.weight.grad.abs().sum()) > 0
    assert float(stn.regressor.bias.grad.abs().sum()) > 0
    first_conv = stn.localisation[0]
    assert first_conv.weight.grad is not None
    # after one step away from identity, gradients flow into the first convolution too
    with torch.no_grad():
        stn.regressor.weight.normal_(0, 0.01)
    stn.zero_grad()
    stn(x).pow(2).mul(torch.linspace(0, 1, 12)).sum().backward()
    assert float(first_conv.weight.grad.abs().sum()) > 0


def test_recorded_theta_has_the_documented_shape() -> None:
    model = STCNN(STCNNConfig(input_size=42, transformer_output=28))
    with record_attention(model) as maps:
        logits = model(torch.rand(3, 1, 42, 42))
    assert logits.shape == (3, 10)
    assert maps.names() == ["transformer"]
    assert maps.last("transformer").shape == (3, 2, 3)
    assert model.rectify(torch.rand(2, 1, 42, 42)).shape == (2, 1, 28, 28)


def test_plain_cnn_has_no_transformer() -> None:
    model = STCNN(STCNNConfig(use_transformer=False))
    with record_attention(model) as maps:
        assert model(torch.rand(2, 1, 28, 28)).shape == (2, 10)
    assert len(maps) == 0


def test_output_box_of_identity_is_the_image_border() -> None:
    box = output_box(IDENTITY.expand(2, 2, 3), (10, 20))
    expected = torch.tensor([[-0.5, -0.5], [19.5, -0.5], [19.5, 9.5], [-0.5, 9.5], [-0.5, -0.5]])
    torch.testing.assert_close(box, expected.expand(2, 5, 2))
    half = output_box(torch.tensor([[[0.5, 0.0, 0.5], [0.0, 0.5, 0.0]]]), (10, 20))[0]
    torch.testing.assert_close(half[0], torch.tensor([9.5, 2.0]))  # normalised left edge 0, top -0.5
    torch.testing.assert_close(half[2], torch.tensor([19.5, 7.0]))


def test_bad_input_raises() -> None:
    stn = SpatialTransformer(3, (8, 8))
    with pytest.raises(ValueError, match=r"x must have exactly 4 dimensions \(B, C, H, W\); got shape \(3, 8, 8\)"):
        stn(torch.randn(3, 8, 8))
    with pytest.raises(ValueError, match=r"x must have shape \(B, C, H, W\) = \(B, 3, 8, 8\); got \(2, 1, 8, 8\)"):
        stn(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match=r"theta must have shape \(B, 2, 3\) = \(2, 2, 3\); got \(2, 3, 3\)"):
        affine_transform(torch.randn(2, 1, 4, 4), torch.randn(2, 3, 3))
    with pytest.raises(ValueError, match="x must be a floating-point tensor"):
        affine_transform(torch.zeros(1, 1, 4, 4, dtype=torch.long), IDENTITY[None])
    with pytest.raises(ValueError, match="input_size must be a positive int or"):
        SpatialTransformer(1, (0, 4))
