"""attnlib.arithmetic.attention_dropout: ADL's drop mask and importance map."""

import pytest
import torch

import attnlib
from attnlib.arithmetic import AttentionDropout, adl_masks


def features() -> torch.Tensor:
    f = torch.zeros(2, 3, 4, 4)
    f[:, :, 1, 2] = 3.0  # the most attended place
    f[:, :, 0, 0] = 1.0
    return f


def test_masks_by_hand():
    attention, drop, importance = adl_masks(features(), gamma=0.9)
    assert attention.shape == drop.shape == importance.shape == (2, 1, 4, 4)
    expected_drop = torch.ones(4, 4)
    expected_drop[1, 2] = 0.0  # only the peak is at or above 0.9 * max
    assert torch.equal(drop[0, 0], expected_drop)
    assert torch.allclose(importance[0, 0, 1, 2], torch.sigmoid(torch.tensor(3.0)))
    _, lower, _ = adl_masks(features(), gamma=0.2)
    assert lower[0, 0, 0, 0] == 0 and lower[0, 0, 1, 2] == 0  # a lower threshold hides more


@pytest.mark.parametrize("drop_rate, expected", [(1.0, "drop"), (0.0, "importance")])
def test_training_applies_one_mask(drop_rate, expected):
    layer = AttentionDropout(drop_rate=drop_rate, gamma=0.9).train()
    f = features()
    _, drop, importance = adl_masks(f, 0.9)
    assert torch.allclose(layer(f), f * (drop if expected == "drop" else importance))


@pytest.mark.parametrize("per_image", [False, True])
def test_one_choice_per_batch_as_in_the_paper(per_image):
    torch.manual_seed(0)
    f = torch.rand(64, 3, 4, 4) + 0.1
    f[:, :, 1, 2] += 3.0
    _, drop, importance = adl_masks(f, 0.9)
    layer = AttentionDropout(drop_rate=0.5, gamma=0.9, per_image=per_image).train()
    kinds = []
    for _ in range(20):
        out = layer(f)
        is_drop = torch.isclose(out, f * drop).flatten(1).all(1)  # (64,)
        is_importance = torch.isclose(out, f * importance).flatten(1).all(1)
        assert (is_drop ^ is_importance).all()  # every image got exactly one of the two maps
        kinds.append(is_drop.float().mean().item())
    if per_image:  # the variant mixes the two maps inside a batch
        assert all(0 < k < 1 for k in kinds)
    else:  # the paper: the whole batch shares one draw, and both draws occur over iterations
        assert set(kinds) == {0.0, 1.0}


def test_eval_is_the_identity_and_attention_is_recorded():
    layer = AttentionDropout().eval()
    f = features()
    with attnlib.record_attention(layer) as maps:
        assert torch.equal(layer(f), f)
    assert maps[""][0].shape == (2, 1, 4, 4)


def test_bad_input():
    with pytest.raises(ValueError, match="drop_rate and gamma"):
        AttentionDropout(drop_rate=1.5)
    with pytest.raises(ValueError, match="exactly 4 dimensions"):
        AttentionDropout()(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="floating-point"):
        adl_masks(torch.zeros(1, 1, 2, 2, dtype=torch.uint8))
