"""attnlib.multimodal.stacked_attention: question-to-region attention, one or more hops."""

import pytest
import torch

import attnlib
from attnlib.multimodal import SceneQAConfig, SceneQAModel, StackedAttention


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_shapes_and_recorded_weights(hops):
    torch.manual_seed(0)
    layer = StackedAttention(8, 16, hops)
    regions, query = torch.randn(2, 5, 8), torch.randn(2, 8)
    with attnlib.record_attention(layer) as maps:
        u, weights = layer(regions, query)
    assert u.shape == (2, 8) and weights.shape == (2, hops, 5)
    assert torch.allclose(weights.sum(-1), torch.ones(2, hops))
    assert torch.equal(maps[""][0], weights)


def test_one_hop_matches_the_equations_by_hand():
    torch.manual_seed(1)
    layer = StackedAttention(4, 3, 1)
    regions, query = torch.randn(1, 6, 4), torch.randn(1, 4)
    joint = query @ layer.query_proj[0].weight.T + layer.query_proj[0].bias  # (1, 3)
    h = torch.tanh(regions @ layer.image_proj[0].weight.T + joint)
    p = torch.softmax((h @ layer.score[0].weight.T).squeeze(-1) + layer.score[0].bias, dim=-1)  # (1, 6)
    u, weights = layer(regions, query)
    assert torch.allclose(weights[:, 0], p, atol=1e-6)
    assert torch.allclose(u, query + p @ regions[0], atol=1e-6)


def test_attention_can_be_steered_to_a_known_region():
    layer = StackedAttention(2, 2, 1)
    with torch.no_grad():
        layer.image_proj[0].weight.copy_(torch.eye(2) * 5)
        layer.query_proj[0].weight.zero_()
        layer.query_proj[0].bias.zero_()
        layer.score[0].weight.copy_(torch.tensor([[10.0, 0.0]]))
        layer.score[0].bias.zero_()
    regions = torch.tensor([[[0.0, 1.0], [1.0, 0.0], [0.0, 0.0]]])  # only region 1 has the first feature
    _, weights = layer(regions, torch.zeros(1, 2))
    assert int(weights[0, 0].argmax()) == 1 and weights[0, 0, 1] > 0.9


def test_scene_model_shapes():
    torch.manual_seed(0)
    model = SceneQAModel(SceneQAConfig(hops=2))
    logits, weights = model(torch.rand(3, 1, 42, 42), torch.tensor([[0, 1], [1, 2], [0, 9]]))
    assert logits.shape == (3, 15) and weights.shape == (3, 2, 9)
    assert model.cell_logits(torch.rand(3, 1, 42, 42)).shape == (3, 9, 11)


def test_digit_regions_read_the_digit_head_without_training_it():
    torch.manual_seed(0)
    model = SceneQAModel(SceneQAConfig(hops=2, regions="digits", answer_hidden=16))
    images, questions = torch.rand(3, 1, 42, 42), torch.tensor([[0, 1], [1, 2], [0, 9]])
    logits, weights = model(images, questions)
    assert logits.shape == (3, 15) and weights.shape == (3, 2, 9)
    logits.sum().backward()
    assert model.digit_head.weight.grad is None and model.encoder[0].weight.grad is None  # frozen reader
    assert model.digit_regions is not None and model.digit_regions.weight.grad is not None
    with torch.no_grad():  # a region is a function of the cell's digit reading and its place only
        model.digit_head.bias.add_(torch.arange(11.0) * 100)  # every cell now reads 'empty' (class 10)
        _, w = model(images, questions)
        _, w_other = model(torch.rand(3, 1, 42, 42), questions)
    assert torch.allclose(w, w_other, atol=1e-6)


def test_bad_input():
    with pytest.raises(ValueError, match="regions must be 'pixels' or 'digits'"):
        SceneQAModel(SceneQAConfig(regions="boxes"))
    layer = StackedAttention(8, 16, 2)
    with pytest.raises(ValueError, match=r"regions must be \(B, R, 8\)"):
        layer(torch.randn(2, 5, 7), torch.randn(2, 8))
    with pytest.raises(ValueError, match="exactly 2 dimensions"):
        layer(torch.randn(2, 5, 8), torch.randn(8))
    with pytest.raises(ValueError, match="positive"):
        StackedAttention(8, 16, 0)
    model = SceneQAModel()
    with pytest.raises(ValueError, match=r"\(B, 1, 42, 42\)"):
        model(torch.rand(1, 1, 40, 40), torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="questions must be int64"):
        model(torch.rand(1, 1, 42, 42), torch.tensor([[0.0, 1.0]]))
