"""attnlib.category.gain: the soft mask and the attention-mining loss."""

import pytest
import torch

from attnlib.category import LocalisationCNN, gain_loss, soft_mask


def test_soft_mask_by_hand():
    attention = torch.tensor([[[[0.0, 1.0], [2.0, 4.0]]]])  # normalised: 0, .25, .5, 1
    mask = soft_mask(attention, omega=10.0, sigma=0.5)
    expected = torch.sigmoid(10 * (torch.tensor([0.0, 0.25, 0.5, 1.0]) - 0.5)).reshape(1, 1, 2, 2)
    assert torch.allclose(mask, expected)


def test_loss_parts_and_gradient():
    torch.manual_seed(0)
    model = LocalisationCNN()
    images, labels = torch.rand(4, 1, 16, 16), torch.tensor([0, 1, 2, 3])
    total, classification, mining = gain_loss(model, images, labels, alpha=2.0)
    assert torch.allclose(total, classification + 2.0 * mining)
    assert 0 < mining.item() < 1  # a mean softmax probability
    total.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_mining_loss_is_small_when_the_map_erases_the_evidence():
    class Bright(torch.nn.Module):  # class 1 = 'there is ink'; the map is the ink itself
        def __init__(self):
            super().__init__()
            self.scale = torch.nn.Parameter(torch.ones(()))

        def features(self, images):
            return images * self.scale

        def classify(self, features):
            s = 50 * features.mean(dim=(2, 3))
            return torch.cat([-s, s], dim=1)

    images = torch.zeros(2, 1, 8, 8)
    images[:, :, 2:6, 2:6] = 1.0
    _, _, mining = gain_loss(Bright(), images, torch.tensor([1, 1]), omega=50.0, sigma=0.1)
    assert mining.item() < 0.6  # erasing the attended ink removes most of the evidence


def test_bad_input():
    with pytest.raises(ValueError, match="omega"):
        soft_mask(torch.rand(1, 1, 2, 2), omega=0)
    with pytest.raises(ValueError, match="1 channels"):
        soft_mask(torch.rand(1, 2, 2, 2))
    with pytest.raises(ValueError, match="labels must be int64"):
        gain_loss(LocalisationCNN(), torch.rand(2, 1, 8, 8), torch.tensor([0.0, 1.0]))
