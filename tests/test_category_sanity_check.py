"""attnlib.category.sanity_check: model-randomisation sanity checks of saliency maps."""

import pytest
import torch
from torch import nn

from attnlib.category import (
    LocalisationCNN,
    cascading_randomisation,
    independent_randomisation,
    randomise_layers,
    spearman_rank_correlation,
)

LAYERS = ["head", "trunk.7", "trunk.4", "trunk.0"]  # top (output) layer first


def same(a: nn.Module, b: nn.Module) -> bool:
    return all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))


def test_cascading_randomises_from_the_top_and_leaves_the_model_alone():
    torch.manual_seed(0)
    model = LocalisationCNN()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    stages = cascading_randomisation(model, LAYERS, seed=3)
    assert [name for name, _ in stages] == LAYERS
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())  # the user's model is unchanged
    for k, (_, copy) in enumerate(stages):
        assert copy is not model
        modules, original = dict(copy.named_modules()), dict(model.named_modules())
        for j, name in enumerate(LAYERS):
            assert same(modules[name], original[name]) == (j > k)  # the top k + 1 layers are random
    # stage k's random layers are stage k - 1's plus one: the same seed per layer
    assert same(dict(stages[2][1].named_modules())["head"], dict(stages[0][1].named_modules())["head"])


def test_independent_randomises_one_layer_with_the_cascades_weights():
    torch.manual_seed(0)
    model = LocalisationCNN()
    cascade = cascading_randomisation(model, LAYERS, seed=1)
    for j, (name, copy) in enumerate(independent_randomisation(model, LAYERS, seed=1)):
        modules, original = dict(copy.named_modules()), dict(model.named_modules())
        assert all(same(modules[n], original[n]) == (n != name) for n in LAYERS)
        assert same(modules[name], dict(cascade[j][1].named_modules())[name])
    only_head = randomise_layers(model, ["head"], seed=1)
    assert same(only_head, cascade[0][1])


def test_spearman_by_hand():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 1.0, 2.0]])
    b = torch.tensor([[10.0, 20.0, 25.0, 90.0], [4.0, 3.0, 2.0, 1.0], [5.0, 6.0, 7.0, 8.0]])
    rho = spearman_rank_correlation(a, b)
    # third row: ranks (0.5, 0.5, 2, 3) against (0, 1, 2, 3): centred (-1, -1, 0.5, 1.5) and (-1.5, -0.5, 0.5, 1.5);
    # sum of products 4.5, squared norms 4.5 and 5
    assert torch.allclose(rho, torch.tensor([1.0, -1.0, 4.5 / (4.5 * 5) ** 0.5]), atol=1e-6)
    assert torch.isnan(spearman_rank_correlation(torch.zeros(1, 1, 2, 2), torch.rand(1, 1, 2, 2))).all()
    monotone = torch.rand(2, 1, 5, 5)
    assert torch.allclose(spearman_rank_correlation(monotone, monotone.exp()), torch.ones(2), atol=1e-6)


def test_bad_input():
    model = LocalisationCNN()
    with pytest.raises(ValueError, match="no module named 'fc'"):
        cascading_randomisation(model, ["fc"])
    with pytest.raises(ValueError, match="no parameters"):
        independent_randomisation(model, ["trunk.1"])  # a ReLU
    with pytest.raises(ValueError, match="non-empty"):
        randomise_layers(model, [])
    with pytest.raises(ValueError, match="repeat"):
        cascading_randomisation(model, ["head", "head"])
    with pytest.raises(ValueError, match="same shape"):
        spearman_rank_correlation(torch.rand(2, 4), torch.rand(2, 5))
