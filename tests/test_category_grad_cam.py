"""attnlib.category.grad_cam."""

import pytest
import torch

from attnlib.category import grad_cam


def test_linear_head_gives_the_weighted_map_by_hand():
    features = torch.zeros(1, 2, 3, 3)
    features[0, 0, 0, 0] = 9.0  # channel 0 fires top-left
    features[0, 1, 2, 2] = 9.0  # channel 1 fires bottom-right
    features.requires_grad_(True)
    weights = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])  # class 0 likes channel 0, class 1 channel 1
    logits = features.mean(dim=(2, 3)) @ weights.T  # (1, 2)
    cam0 = grad_cam(features, logits[:, 0])
    features.grad = None
    cam1 = grad_cam(features, (features.mean(dim=(2, 3)) @ weights.T)[:, 1])
    assert cam0.shape == (1, 1, 3, 3)
    assert int(cam0.flatten().argmax()) == 0 and int(cam1.flatten().argmax()) == 8  # category-dependent
    assert torch.allclose(cam0[0, 0, 0, 0], torch.tensor(9.0 / 9))  # alpha = 1/9, map = 9 * 1/9
    assert cam0[0, 0, 2, 2] == 0  # the negative part is rectified away


def test_create_graph_keeps_the_map_differentiable():
    w = torch.randn(2, 4, requires_grad=True)
    features = torch.randn(3, 4, 2, 2, requires_grad=True)
    scores = (features.mean(dim=(2, 3)) @ w.T)[:, 0]
    cam = grad_cam(features, scores, create_graph=True)
    cam.sum().backward()
    assert w.grad is not None and w.grad.abs().sum() > 0


def test_bad_input():
    features = torch.randn(2, 3, 4, 4, requires_grad=True)
    with pytest.raises(ValueError, match="one entry per image"):
        grad_cam(features, features.sum(dim=(1, 2, 3))[:1])
    with pytest.raises(ValueError, match="do not require grad"):
        grad_cam(features.detach(), torch.zeros(2))


def test_grad_cam_is_cam_over_hw_on_a_global_average_pooling_head():
    # d y^c / d A_k,ij = w_k^c / HW at every position, so Grad-CAM = ReLU(CAM) / HW (Zhou et al.'s CAM, bias-free)
    from attnlib.category import LocalisationCNN

    torch.manual_seed(0)
    model = LocalisationCNN().eval()
    images, classes = torch.rand(3, 1, 28, 28), torch.tensor([0, 4, 9])
    features = model.features(images).detach().requires_grad_(True)  # (3, 32, 14, 14)
    maps = grad_cam(features, model.classify(features).gather(1, classes[:, None])[:, 0])
    assert torch.allclose(maps, torch.relu(model.cam(images, classes)) / (14 * 14), atol=1e-6)
