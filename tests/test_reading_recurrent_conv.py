"""Liang & Hu's recurrent convolutional layer: the input re-injected at every step."""

from __future__ import annotations

import pytest
import torch

from attnlib.reading import RecurrentConvEncoder, RecurrentConvLayer, RecursiveConvBlock


def test_matches_the_recurrence() -> None:
    torch.manual_seed(0)
    layer = RecurrentConvLayer(4, steps=3)
    u = torch.randn(2, 4, 6, 6)
    x = torch.relu(layer.feedforward(u))
    for _ in range(3):
        x = torch.relu(layer.feedforward(u) + layer.recurrent(x))
    assert torch.allclose(layer(u), x, atol=1e-6)


@pytest.mark.parametrize("steps", [1, 3, 6])
def test_parameters_do_not_depend_on_steps(steps: int) -> None:
    assert RecurrentConvLayer(4, steps).num_parameters() == 2 * 4 * 4 * 9 + 4


def test_input_is_reinjected_unlike_the_recursive_block() -> None:
    """With w_r = w of a recursive block, the two agree at step 0 but differ after:
    the RCL adds w_f * u at every step, the recursive block only once."""
    torch.manual_seed(0)
    rcl = RecurrentConvLayer(4, steps=0)
    rec = RecursiveConvBlock(4, 4, steps=0)
    rec.inp.load_state_dict(rcl.feedforward.state_dict())
    u = torch.randn(1, 4, 5, 5)
    assert torch.allclose(rcl(u), rec(u))
    rcl2 = RecurrentConvLayer(4, steps=2)
    rec2 = RecursiveConvBlock(4, 4, steps=2)
    rcl2.feedforward.load_state_dict(rcl.feedforward.state_dict())
    rec2.inp.load_state_dict(rcl.feedforward.state_dict())
    with torch.no_grad():
        rec2.convs[0].weight.copy_(rcl2.recurrent.weight)
        rec2.convs[0].bias.zero_()
    assert not torch.allclose(rcl2(u), rec2(u))
    # changing the input changes every step's drive: the output moves with u
    v = u.clone()
    v[..., 2, 2] += 3.0
    assert not torch.allclose(rcl2(u), rcl2(v))


def test_encoder_shape() -> None:
    enc = RecurrentConvEncoder(1, 8, steps=2)
    assert enc(torch.rand(2, 1, 12, 24)).shape == (2, 8, 3, 6)
    assert enc.depth == 4


def test_errors() -> None:
    with pytest.raises(ValueError, match="steps must be >= 0"):
        RecurrentConvLayer(4, steps=-1)
    with pytest.raises(ValueError, match=r"u must have 4 channels"):
        RecurrentConvLayer(4)(torch.rand(1, 3, 5, 5))
