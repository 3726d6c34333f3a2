"""attnlib.vision.factory: every module is the drop-in it claims; every (B, C, H, W) module refuses integer images."""

from __future__ import annotations

import pytest
import torch
from conftest import expected_maps
from torch import nn

from attnlib import record_attention
from attnlib.vision.backbone import SmallCNN
from attnlib.vision.cbam import ChannelGate, SpatialGate
from attnlib.vision.dynamic_capacity import DCNConfig, DynamicCapacityNetwork
from attnlib.vision.factory import ATTENTION_MODULES, make_attention

NAMES = list(ATTENTION_MODULES)


# Tiny tensors: one thread is as fast, and immune to other jobs on the cores.
pytestmark = pytest.mark.usefixtures("one_thread")


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


def _drop_in_modules() -> dict[str, tuple[nn.Module, int]]:
    """Every module that takes a (B, C, H, W) image or feature map, with its C."""
    modules: dict[str, tuple[nn.Module, int]] = {name: (make_attention(name, 32), 32) for name in NAMES}
    modules["channel_gate"] = (ChannelGate(32), 32)
    modules["spatial_gate"] = (SpatialGate(), 32)
    modules["small_cnn"] = (SmallCNN("se"), 1)
    modules["dcn"] = (
        DynamicCapacityNetwork(DCNConfig(cell=4, patch=8, features=8, coarse_channels=4, fine_channels=(4, 8), k=3)),
        1,
    )
    return modules


DROP_IN = list(_drop_in_modules())


@pytest.mark.parametrize("dtype", [torch.uint8, torch.int64], ids=["uint8", "int64"])
@pytest.mark.parametrize("name", DROP_IN)
def test_every_module_rejects_integer_images_naming_the_dtype(name, dtype):
    module, C = _drop_in_modules()[name]
    x = torch.zeros(2, C, 8, 8, dtype=dtype)
    expected = rf"x must be a floating-point tensor; got dtype {dtype}; convert it with x\.float\(\)"
    with pytest.raises(ValueError, match=expected):
        module(x)
    assert module(x.float()).dtype == torch.float32  # the advice works
