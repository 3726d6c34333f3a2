"""attnlib.category.localisation: the CNN with CAM, ADL and reverse heads, and the box scores."""

import pytest
import torch

from attnlib.category import LocalisationCNN, LocalisationConfig, box_from_map, box_iou, ink_boxes, map_coverage


@pytest.mark.parametrize(
    "config", [LocalisationConfig(), LocalisationConfig(adl=True), LocalisationConfig(reverse=True)]
)
def test_shapes(config):
    torch.manual_seed(0)
    model = LocalisationCNN(config)
    images = torch.rand(3, 1, 28, 28)
    assert model(images).shape == (3, 10)
    assert model.features(images).shape == (3, 32, 14, 14)
    assert model.cam(images, torch.tensor([0, 1, 2])).shape == (3, 1, 14, 14)


def test_cam_is_the_head_weighted_features():
    torch.manual_seed(0)
    model = LocalisationCNN().eval()
    images = torch.rand(2, 1, 28, 28)
    cam = model.cam(images, torch.tensor([3, 5]))
    f = model.features(images)
    assert torch.allclose(cam[1, 0], torch.einsum("k,khw->hw", model.head.weight[5], f[1]), atol=1e-5)
    assert torch.allclose(
        cam.mean(dim=(1, 2, 3)) + model.head.bias[[3, 5]],
        model(images).gather(1, torch.tensor([[3], [5]]))[:, 0],
        atol=1e-5,
    )


def test_second_head_erases_what_the_first_found_and_the_control_does_not():
    torch.manual_seed(0)
    images, classes = torch.rand(2, 1, 28, 28), torch.tensor([3, 5])
    model = LocalisationCNN(LocalisationConfig(reverse=True)).eval()
    control = LocalisationCNN(LocalisationConfig(reverse=True, reverse_erase=False)).eval()
    control.load_state_dict(model.state_dict())
    f = model.features(images)
    first = torch.einsum("bk,bkhw->bhw", model.head.weight[classes], f)[:, None]
    second = model.reverse_head.weight[classes]  # (2, K)
    erased = f * (1 - torch.sigmoid(first))
    assert torch.allclose(
        model.cam(images, classes), first + torch.einsum("bk,bkhw->bhw", second, erased)[:, None], atol=1e-5
    )
    assert torch.allclose(
        control.cam(images, classes), first + torch.einsum("bk,bkhw->bhw", second, f)[:, None], atol=1e-5
    )


def test_boxes_iou_and_coverage_by_hand():
    maps = torch.zeros(1, 1, 6, 6)
    maps[0, 0, 1:3, 2:5] = 1.0
    maps[0, 0, 5, 5] = 0.1  # below 0.5 * max
    assert box_from_map(maps, 0.5).tolist() == [[2, 1, 4, 2]]
    assert box_from_map(torch.zeros(1, 1, 4, 4)).tolist() == [[0, 0, 3, 3]]  # nothing: the whole map
    assert ink_boxes(maps).tolist() == [[2, 1, 4, 2]]
    a, b = torch.tensor([[0, 0, 1, 1]]), torch.tensor([[1, 0, 2, 1]])  # 2x2 boxes sharing one column
    assert torch.allclose(box_iou(a, b), torch.tensor([2 / 6]))
    assert torch.allclose(box_iou(a, a), torch.tensor([1.0]))
    images = torch.zeros(1, 1, 6, 6)
    images[0, 0, 1, 2:6] = 1.0  # 4 ink pixels, 3 inside the map's region
    assert torch.allclose(map_coverage(maps, images, 0.5), torch.tensor([0.75]))


def test_bad_input():
    with pytest.raises(ValueError, match="1 channels"):
        LocalisationCNN()(torch.rand(2, 3, 28, 28))
    with pytest.raises(ValueError, match="classes must be int64"):
        LocalisationCNN().cam(torch.rand(2, 1, 28, 28), torch.tensor([1]))
    with pytest.raises(ValueError, match=r"\(B, 4\) boxes"):
        box_iou(torch.zeros(2, 4), torch.zeros(2, 3))
