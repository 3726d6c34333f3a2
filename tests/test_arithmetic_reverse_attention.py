"""attnlib.arithmetic.reverse_attention: 1 - sigmoid of a prediction, and the residual block."""

import pytest
import torch

import attnlib
from attnlib.arithmetic import ReverseAttention, reverse_attention_weights


def test_weights_are_high_where_the_prediction_saw_nothing():
    prediction = torch.full((1, 1, 2, 2), -10.0)
    prediction[0, 0, 0, 0] = 10.0
    w = reverse_attention_weights(prediction, (2, 2))
    assert w.shape == (1, 1, 2, 2)
    assert w[0, 0, 0, 0] < 1e-4 and (w[0, 0].flatten()[1:] > 0.9999).all()
    assert reverse_attention_weights(prediction, (8, 8)).shape == (1, 1, 8, 8)


def test_block_adds_a_residual_to_the_upsampled_prediction():
    torch.manual_seed(0)
    block = ReverseAttention(4, hidden=8)
    f, s = torch.randn(2, 4, 8, 8), torch.randn(2, 1, 4, 4)
    with attnlib.record_attention(block) as maps:
        out = block(f, s)
    assert out.shape == (2, 1, 8, 8) and maps[""][0].shape == (2, 1, 8, 8)
    up = torch.nn.functional.interpolate(s, size=(8, 8), mode="bilinear", align_corners=False)
    w = 1 - torch.sigmoid(up)
    assert torch.allclose(out, up + block.residual(f * w), atol=1e-6)
    confident = torch.full((2, 1, 4, 4), 30.0)  # found everything: nothing left for the residual to see
    assert torch.allclose(block(f, confident) - 30.0, block.residual(torch.zeros_like(f)), atol=1e-5)


def test_bad_input():
    with pytest.raises(ValueError, match="one channel"):
        reverse_attention_weights(torch.zeros(1, 2, 4, 4), (4, 4))
    with pytest.raises(ValueError, match="4 channels"):
        ReverseAttention(4)(torch.zeros(1, 3, 4, 4), torch.zeros(1, 1, 2, 2))
    with pytest.raises(ValueError, match="same batch size"):
        ReverseAttention(4)(torch.zeros(2, 4, 4, 4), torch.zeros(1, 1, 2, 2))
