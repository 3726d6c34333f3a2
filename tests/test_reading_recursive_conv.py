"""The recursive convolutional block: tied weights (parameters independent of T), untied twin, shapes, errors."""

from __future__ import annotations

import pytest
import torch

from attnlib.reading import RecursiveConvBlock, RecursiveConvEncoder


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_tied_parameters_do_not_depend_on_steps(steps: int) -> None:
    assert RecursiveConvBlock(3, 8, steps).num_parameters() == RecursiveConvBlock(3, 8, 1).num_parameters()


@pytest.mark.parametrize("steps", [1, 2, 5])
def test_untied_parameters_grow_with_steps(steps: int) -> None:
    per_conv = 8 * 8 * 9 + 8
    base = RecursiveConvBlock(3, 8, 0, tied=False).num_parameters()
    assert RecursiveConvBlock(3, 8, steps, tied=False).num_parameters() == base + steps * per_conv


def test_tied_block_applies_one_convolution_repeatedly() -> None:
    torch.manual_seed(0)
    block = RecursiveConvBlock(2, 4, steps=3)
    u = torch.randn(2, 2, 6, 7)
    x = torch.relu(block.inp(u))
    for _ in range(3):
        x = torch.relu(block.convs[0](x))
    assert torch.allclose(block(u), x)
    assert len(block.convs) == 1


def test_untied_equals_tied_when_its_weights_are_copied() -> None:
    torch.manual_seed(0)
    tied = RecursiveConvBlock(2, 4, steps=3)
    untied = RecursiveConvBlock(2, 4, steps=3, tied=False)
    untied.inp.load_state_dict(tied.inp.state_dict())
    for conv in untied.convs:
        conv.load_state_dict(tied.convs[0].state_dict())
    u = torch.randn(1, 2, 5, 5)
    assert torch.allclose(tied(u), untied(u))
    with torch.no_grad():
        untied.convs[1].weight.add_(0.5)
    assert not torch.allclose(tied(u), untied(u))


@pytest.mark.parametrize("tied", [True, False])
def test_encoder_shape_and_gradients(tied: bool) -> None:
    enc = RecursiveConvEncoder(1, 8, steps=2, tied=tied)
    x = torch.rand(3, 1, 16, 40, requires_grad=True)
    out = enc(x)
    assert out.shape == (3, 8, 4, 10)
    out.sum().backward()
    assert x.grad is not None and float(x.grad.abs().sum()) > 0


def test_errors() -> None:
    with pytest.raises(ValueError, match="steps must be >= 0 and kernel_size odd"):
        RecursiveConvBlock(1, 4, steps=2, kernel_size=4)
    with pytest.raises(ValueError, match=r"must have 1 channels, shape \(B, 1, H, W\); got shape \(2, 3, 8, 8\)"):
        RecursiveConvEncoder(1, 4)(torch.rand(2, 3, 8, 8))
    with pytest.raises(ValueError, match="floating-point"):
        RecursiveConvEncoder(1, 4)(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
