"""attnlib.vision.backbone: SmallCNN swaps its attention module by name."""

from __future__ import annotations

import pytest
import torch
from conftest import expected_maps
from torch import nn

from attnlib import record_attention
from attnlib.vision.backbone import SmallCNN, SmallCNNConfig
from attnlib.vision.factory import ATTENTION_MODULES

NAMES = list(ATTENTION_MODULES)

# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", [None, *NAMES])
def test_backbone_swaps_the_module_with_one_argument(name):
    torch.manual_seed(2)
    model = SmallCNN(name)
    x = torch.randn(2, 1, 28, 28)
    with record_attention(model) as maps:
        logits = model(x)
    assert logits.shape == (2, 10)
    if name is None:
        assert len(maps) == 0 and all(isinstance(s.attention, nn.Identity) for s in model.stages)
    else:
        assert all(type(s.attention) is ATTENTION_MODULES[name] for s in model.stages)
        sides = {0: 14, 1: 7, 2: 7}  # what the modules see for 28x28 inputs
        expected = {
            f"stages.{i}.attention" + (f".{k}" if k else ""): v
            for i, width in enumerate(model.config.widths)
            for k, v in expected_maps(name, 2, width, sides[i], sides[i]).items()
        }
        assert {n: tuple(maps[n][0].shape) for n in maps.names()} == expected


def test_backbone_any_input_size_chosen_stages_and_bad_input():
    torch.manual_seed(3)
    model = SmallCNN("cbam", stages=(2,), config=SmallCNNConfig(in_channels=3, num_classes=4))
    assert isinstance(model.stages[0].attention, nn.Identity) and model.attention_stages == (2,)
    assert model(torch.randn(2, 3, 33, 20)).shape == (2, 4)
    with pytest.raises(ValueError, match=r"x must have 3 channels, shape \(B, 3, H, W\); got shape \(2, 1, 28, 28\)"):
        model(torch.randn(2, 1, 28, 28))
    with pytest.raises(ValueError, match=r"stages must be indices in \[0, 3\); got \(3,\)"):
        SmallCNN("se", stages=(3,))
    with pytest.raises(ValueError, match="unknown attention module 'sse'"):
        SmallCNN("sse")
    with pytest.raises(ValueError, match="without an attention name"):
        SmallCNN(None, reduction=4)


def test_backbone_is_deterministic_under_a_seed_and_trains():
    def build_and_step() -> torch.Tensor:
        torch.manual_seed(4)
        model = SmallCNN("se")
        opt = torch.optim.Adam(model.parameters(), lr=1e-2)
        x, y = torch.randn(16, 1, 12, 12), torch.arange(16) % 10
        losses = []
        for _ in range(15):
            loss = nn.functional.cross_entropy(model(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.detach())
        return torch.stack(losses)

    first, second = build_and_step(), build_and_step()
    assert torch.equal(first, second)
    assert first[-1] < 0.5 * first[0]  # it fits a small batch
