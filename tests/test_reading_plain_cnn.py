"""The plain CNN encoder: shape, depth, untied parameters growing with depth, errors."""

from __future__ import annotations

import pytest
import torch

from attnlib.reading import PlainCNNEncoder


@pytest.mark.parametrize("depth", [1, 3, 5])
def test_shape_and_parameters(depth: int) -> None:
    enc = PlainCNNEncoder(1, 8, depth)
    assert enc(torch.rand(2, 1, 16, 32)).shape == (2, 8, 4, 8)
    per_layer = 8 * 8 * 9 + 2 * 8  # conv without bias, batch norm's scale and shift
    assert enc.num_parameters() == (1 * 8 * 9 + 2 * 8) + (depth - 1) * per_layer


def test_errors() -> None:
    with pytest.raises(ValueError, match="depth must be >= 1"):
        PlainCNNEncoder(1, 8, 0)
    with pytest.raises(ValueError, match=r"images must have exactly 4 dimensions"):
        PlainCNNEncoder(1, 8, 2)(torch.rand(16, 32))
