"""Tests for attnlib.vision.deletion_metric (the deletion metric of Petsiuk et al. 2018)."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor, nn

from attnlib.vision import deletion_area, deletion_curve


class OnePatchModel(nn.Module):
    """Two-class logits ``[10 * mean of patch `index`, 0]``: the class-0 evidence lives in one patch."""

    def __init__(self, patch_size: int, grid_w: int, index: int) -> None:
        super().__init__()
        self.p, self.row, self.col = patch_size, index // grid_w, index % grid_w

    def forward(self, x: Tensor) -> Tensor:
        patch = x[:, :, self.row * self.p : (self.row + 1) * self.p, self.col * self.p : (self.col + 1) * self.p]
        evidence = 10 * patch.mean(dim=(1, 2, 3))  # (B,)
        return torch.stack([evidence, torch.zeros_like(evidence)], dim=1)  # (B, 2)


@pytest.mark.parametrize("grid, patch, channels", [((2, 3), 4, 1), ((4, 4), 7, 1), ((3, 2), 2, 3)])
def test_the_curve_falls_when_the_used_patch_is_deleted(grid: tuple[int, int], patch: int, channels: int) -> None:
    h, w = grid
    used = h * w - 2  # the one patch the model reads
    model = OnePatchModel(patch, w, used)
    images = torch.ones(2, channels, h * patch, w * patch)
    targets = torch.zeros(2, dtype=torch.long)
    first, last = torch.zeros(2, h * w), torch.zeros(2, h * w)
    first[:, used], last[:, used] = 1.0, -1.0
    high = torch.sigmoid(torch.tensor(10.0))  # probability of class 0 while the patch is there
    curve_first = deletion_curve(model, images, targets, first.view(2, h, w), patch)
    curve_last = deletion_curve(model, images, targets, last, patch)
    assert curve_first.shape == (2, h * w + 1)
    torch.testing.assert_close(curve_first[:, 0], high.expand(2))
    torch.testing.assert_close(curve_first[:, 1:], torch.full((2, h * w), 0.5))  # gone after the first deletion
    torch.testing.assert_close(curve_last[:, :-1], high.expand(2, h * w))  # kept until the very last
    torch.testing.assert_close(curve_last[:, -1], torch.full((2,), 0.5))
    assert (deletion_area(curve_first) < deletion_area(curve_last)).all()


def test_fill_value_and_score_layouts_agree() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3)).eval()
    images, targets = torch.randn(4, 1, 4, 4), torch.tensor([0, 1, 2, 0])
    scores = torch.randn(4, 2, 2)
    by_grid = deletion_curve(model, images, targets, scores, patch_size=2, fill=0.5)
    by_row = deletion_curve(model, images, targets, scores.flatten(1), patch_size=2, fill=0.5)
    torch.testing.assert_close(by_grid, by_row)
    # the ends: the intact image, and the image with every pixel replaced by the fill value
    torch.testing.assert_close(by_grid[:, 0], model(images).softmax(-1)[torch.arange(4), targets])
    blank = model(torch.full_like(images, 0.5)).softmax(-1)  # (4, 3)
    torch.testing.assert_close(by_grid[:, -1], blank[torch.arange(4), targets])


def test_deletion_area() -> None:
    torch.testing.assert_close(deletion_area(torch.ones(3, 5)), torch.ones(3))
    torch.testing.assert_close(deletion_area(torch.linspace(1, 0, 17)[None]), torch.tensor([0.5]))


@pytest.mark.parametrize(
    "images, targets, scores, patch, message",
    [
        (torch.zeros(2, 1, 6, 6), torch.zeros(2), torch.zeros(2, 4), 4, "must divide into patches of patch_size=4"),
        (torch.zeros(2, 6, 6), torch.zeros(2), torch.zeros(2, 4), 3, "images must have exactly 4 dimensions"),
        (torch.zeros(2, 1, 6, 6), torch.zeros(3), torch.zeros(2, 4), 3, "targets must have shape (2,)"),
        (torch.zeros(2, 1, 6, 6), torch.zeros(2), torch.zeros(2, 9), 3, "scores must have shape (2, 2, 2) or (2, 4)"),
        (torch.zeros(2, 1, 6, 6), torch.zeros(2), torch.zeros(8), 3, "got (8,)"),
    ],
)
def test_bad_input_is_named(images: Tensor, targets: Tensor, scores: Tensor, patch: int, message: str) -> None:
    model = nn.Sequential(nn.Flatten(), nn.LazyLinear(2))
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        deletion_curve(model, images, targets.long(), scores, patch)


def test_area_needs_a_curve() -> None:
    with pytest.raises(ValueError, match="at least two points"):
        deletion_area(torch.ones(3, 1))
    with pytest.raises(ValueError, match="exactly 2 dimensions"):
        deletion_area(torch.ones(3))
