"""attnlib.vision.factory and attnlib.vision.backbone: every module is the drop-in it claims."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from attnlib import record_attention
from attnlib.vision.backbone import SmallCNN, SmallCNNConfig
from attnlib.vision.factory import ATTENTION_MODULES, make_attention

NAMES = list(ATTENTION_MODULES)


# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


def expected_maps(name: str, B: int, C: int, H: int, W: int) -> dict[str, tuple[int, ...]]:
    """The documented shape of what each module emits, by recorded name ('' = the module)."""
    return {
        "se": {"": (B, C, 1, 1)},
        "eca": {"": (B, C, 1, 1)},
        "sk": {"": (B, 2, C, 1, 1)},
        "cbam": {"channel": (B, C, 1, 1), "spatial": (B, 1, H, W)},
        "bam": {"": (B, C, H, W)},
        "residual": {"": (B, C, H, W)},
        "nonlocal": {"": (B, H * W, H * W)},
        "multiscale": {"": (B, 3, H, W)},
    }[name]


def test_factory_lists_the_eight_mechanisms_as_classes():
    assert NAMES == ["se", "eca", "sk", "cbam", "bam", "residual", "nonlocal", "multiscale"]
    assert all(isinstance(cls, type) and issubclass(cls, nn.Module) for cls in ATTENTION_MODULES.values())
    assert type(make_attention("se", 32, reduction=8)) is ATTENTION_MODULES["se"]
    assert make_attention("se", 32, reduction=8).reduction == 8


def test_factory_unknown_name_lists_the_valid_ones():
    valid = "se, eca, sk, cbam, bam, residual, nonlocal, multiscale"
    with pytest.raises(ValueError, match=f"unknown attention module 'senet'; valid names: {valid}"):
        make_attention("senet", 32)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("shape", [(2, 32, 7, 7), (3, 64, 5, 11), (2, 32, 1, 1)])
def test_every_module_is_a_shape_preserving_drop_in_with_documented_maps(name, shape):
    torch.manual_seed(0)
    B, C, H, W = shape
    module = make_attention(name, C)
    x = torch.randn(*shape, requires_grad=True)
    with record_attention(module) as maps:
        y = module(x)
    assert y.shape == x.shape and y.dtype == x.dtype and torch.isfinite(y).all()
    shapes = {n: tuple(maps[n][0].shape) for n in maps.names()}
    assert shapes == expected_maps(name, B, C, H, W)
    y.square().mean().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in module.parameters())


@pytest.mark.parametrize("name", NAMES)
def test_every_module_accepts_odd_channel_counts_with_suitable_arguments(name):
    torch.manual_seed(1)
    kwargs = {"se": {"reduction": 3}, "sk": {"groups": 3}, "cbam": {"reduction": 3}, "bam": {"reduction": 3}}
    kwargs = kwargs.get(name, {})
    module = make_attention(name, 9, **kwargs).eval()
    x = torch.randn(1, 9, 5, 3)
    assert module(x).shape == (1, 9, 5, 3)


@pytest.mark.parametrize("name", NAMES)
def test_every_module_rejects_wrong_rank_and_wrong_channels(name):
    module = make_attention(name, 32)
    with pytest.raises(ValueError, match=r"must have exactly 4 dimensions \(B, C, H, W\); got shape \(2, 32, 7\)"):
        module(torch.zeros(2, 32, 7))
    with pytest.raises(ValueError, match=r"x must have 32 channels"):
        module(torch.zeros(2, 16, 7, 7))


@pytest.mark.parametrize("name", ["se", "cbam", "bam"])
def test_modules_with_a_reduction_reject_indivisible_channels(name):
    with pytest.raises(ValueError, match="channels must be divisible by reduction"):
        make_attention(name, 40)


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
