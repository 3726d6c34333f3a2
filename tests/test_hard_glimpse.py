"""attnlib.hard.glimpse: the glimpse sensor and the glimpse network of the RAM."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import attnlib
from attnlib.hard.glimpse import GlimpseNetwork, GlimpseSensor


def pixel_shift_to_location(dx: int, dy: int, height: int, width: int) -> torch.Tensor:
    """The location whose patch is the centre patch moved by (dx, dy) whole pixels."""
    return torch.tensor([[2 * dx / width, 2 * dy / height]], dtype=torch.float64)


def crop(image: torch.Tensor, left: int, top: int, side: int) -> torch.Tensor:
    """A crop of (C, H, W) that may reach beyond the image (zeros there)."""
    C, H, W = image.shape
    padded = F.pad(image, (side, side, side, side))  # (C, H + 2 side, W + 2 side)
    return padded[:, top + side : top + 2 * side, left + side : left + 2 * side]


@pytest.mark.parametrize(
    "patch, scales, channels, height, width", [(8, 1, 1, 28, 28), (12, 3, 1, 60, 60), (4, 2, 3, 16, 20)]
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_sensor_shape_and_dtype(patch, scales, channels, height, width, dtype):
    images = torch.rand(5, channels, height, width, dtype=dtype)
    out = GlimpseSensor(patch, scales)(images, torch.rand(5, 2) * 2 - 1)
    assert out.shape == (5, scales, channels, patch, patch) and out.dtype == dtype


@pytest.mark.parametrize("height, width, patch", [(28, 28, 8), (60, 60, 12), (16, 24, 6)])
def test_centre_glimpse_equals_the_central_crop(height, width, patch):
    image = torch.rand(2, height, width, dtype=torch.float64)
    out = GlimpseSensor(patch, 1)(image[None], torch.zeros(1, 2))[0, 0]  # (C, p, p)
    top, left = (height - patch) // 2, (width - patch) // 2
    assert torch.allclose(out, image[:, top : top + patch, left : left + patch], atol=1e-12)


@pytest.mark.parametrize("dx, dy", [(3, -5), (-10, 0), (7, 9)])
def test_shifted_glimpse_equals_the_shifted_crop_with_zeros_outside(dx, dy):
    H = W = 28
    image = torch.rand(1, H, W, dtype=torch.float64)
    sensor = GlimpseSensor(8, 3, scale_factor=2)
    out = sensor(image[None], pixel_shift_to_location(dx, dy, H, W))[0]  # (S, C, p, p)
    for s, side in enumerate(sensor.sides()):
        left, top = (W - side) // 2 + dx, (H - side) // 2 + dy
        expected = F.avg_pool2d(crop(image, left, top, side)[None], side // 8)[0]  # (C, p, p)
        assert torch.allclose(out[s], expected, atol=1e-12), f"scale {s}: {(out[s] - expected).abs().max()}"


def test_glimpse_beyond_the_edge_sees_zeros():
    out = GlimpseSensor(8, 1)(torch.ones(1, 1, 28, 28), torch.tensor([[3.0, 0.0]]))
    assert torch.equal(out, torch.zeros_like(out))


def test_boxes_are_the_patches_in_pixels():
    sensor = GlimpseSensor(12, 3)
    boxes = sensor.boxes(torch.tensor([[0.0, 0.0], [-1.0, 1.0]]), 60, 60)
    assert boxes.shape == (2, 3, 4)
    assert torch.allclose(boxes[0, 0], torch.tensor([24.0, 24.0, 12.0, 12.0]))
    assert torch.allclose(boxes[1, 2], torch.tensor([-24.0, 36.0, 48.0, 48.0]))


def test_sensor_emits_its_patches():
    model = GlimpseNetwork(GlimpseSensor(6, 2), channels=1)
    with attnlib.record_attention(model) as maps:
        model(torch.rand(4, 1, 20, 20), torch.zeros(4, 2))
    assert maps.names() == ["sensor"] and maps["sensor"][0].shape == (4, 2, 1, 6, 6)


@pytest.mark.parametrize(
    "images, locations, message",
    [
        (
            torch.rand(2, 28, 28),
            torch.zeros(2, 2),
            r"images must have exactly 4 dimensions \(B, C, H, W\); got shape \(2, 28, 28\)",
        ),
        (torch.rand(2, 1, 28, 28), torch.zeros(3, 2), r"locations must have shape \(B, 2\) = \(2, 2\) .* got \(3, 2\)"),
        (torch.rand(2, 1, 28, 28), torch.zeros(2), r"locations must have exactly 2 dimensions"),
        (torch.zeros(2, 1, 28, 28, dtype=torch.long), torch.zeros(2, 2), r"images must be a floating-point tensor"),
    ],
)
def test_sensor_rejects_bad_input(images, locations, message):
    with pytest.raises(ValueError, match=message):
        GlimpseSensor(8, 1)(images, locations)


def test_glimpse_network_shape_and_gradients():
    net = GlimpseNetwork(GlimpseSensor(8, 2), channels=1, what_size=16, where_size=12, output_size=32)
    g = net(torch.rand(3, 1, 28, 28), torch.rand(3, 2) - 0.5)
    assert g.shape == (3, 32) and (g >= 0).all()
    g.sum().backward()
    assert all(p.grad is not None for p in net.parameters())
