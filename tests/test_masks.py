"""attnlib.masks: building, checking, combining and applying masks; the safe softmax."""

from __future__ import annotations

import math

import pytest
import torch
from conftest import assert_close

import attnlib
from attnlib import masks as M


def test_lengths_to_mask():
    mask = M.lengths_to_mask(torch.tensor([3, 0, 5]), 5)
    expected = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    assert torch.equal(mask, expected)
    assert M.lengths_to_mask(torch.tensor([2, 4])).shape == (2, 4)
    with pytest.raises(ValueError, match=r"exactly 1 dimensions \(B,\); got shape \(2, 2\)"):
        M.lengths_to_mask(torch.ones(2, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="integer"):
        M.lengths_to_mask(torch.tensor([1.0, 2.0]))
    with pytest.raises(ValueError, match=r"\[0, max_len=3\]"):
        M.lengths_to_mask(torch.tensor([1, 4]), 3)


def test_causal_mask_by_hand():
    assert torch.equal(M.causal_mask(3), torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool))
    assert torch.equal(M.causal_mask(2, 4), torch.tensor([[1, 0, 0, 0], [1, 1, 0, 0]], dtype=torch.bool))
    # two new tokens after three cached ones: positions 3 and 4 over keys 0..4
    assert torch.equal(
        M.causal_mask(2, 5, offset=3), torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    )


@pytest.mark.parametrize("offset,new", [(0, 6), (2, 4), (5, 1), (3, 3)])
def test_causal_mask_with_offset_is_the_rows_of_the_full_mask(offset, new):
    """What a KV cache needs: the rows offset..offset+new-1 of the full causal mask."""
    full = M.causal_mask(offset + new)
    assert torch.equal(M.causal_mask(new, offset + new, offset=offset), full[offset:])


def test_causal_mask_matches_torch_is_causal():
    q, k, v = torch.randn(1, 5, 4), torch.randn(1, 7, 4), torch.randn(1, 7, 3)
    ours = torch.nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=M.causal_mask(5, 7))
    theirs = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    assert_close(ours, theirs, 1e-6, "top-left causal")


def test_causal_mask_rejects_negative_sizes():
    with pytest.raises(ValueError, match=r"offset=-1"):
        M.causal_mask(2, 3, offset=-1)


def test_combine_masks_boolean_is_the_intersection():
    a = torch.tensor([[True, True, False]])
    b = torch.tensor([[True], [False]])
    out = M.combine_masks({"a": a, "b": b, "none": None}, dtype=torch.float32)
    assert out is not None and out.dtype == torch.bool
    assert torch.equal(out, torch.tensor([[True, True, False], [False, False, False]]))
    assert M.combine_masks({"a": None}, dtype=torch.float32) is None


def test_combine_masks_with_an_additive_mask_is_additive():
    bias = torch.tensor([[0.5, -1.0, 2.0]])
    allowed = torch.tensor([[True, False, True]])
    out = M.combine_masks({"bias": bias, "allowed": allowed}, dtype=torch.float32)
    assert out is not None and out.dtype == torch.float32
    assert out[0, 0] == 0.5 and out[0, 2] == 2.0 and math.isinf(out[0, 1]) and out[0, 1] < 0
    # the combined mask gives the same weights as applying both one after the other
    scores = torch.randn(4, 1, 3)
    one = M.safe_softmax(M.apply_mask(scores, out))
    two = M.safe_softmax(M.apply_mask(M.apply_mask(scores, bias), allowed))
    assert_close(one, two, 1e-7, "combined vs sequential")


def test_combine_masks_names_the_bad_mask():
    with pytest.raises(ValueError, match=r"padding must be torch.bool .* torch.float32 .* got dtype torch.int64"):
        M.combine_masks({"padding": torch.ones(2, 3, dtype=torch.long)}, dtype=torch.float32)


def test_apply_mask_bool_and_additive():
    scores = torch.tensor([[1.0, 2.0, 3.0]])
    blocked = M.apply_mask(scores, torch.tensor([[True, False, True]]))
    assert torch.equal(blocked, torch.tensor([[1.0, -math.inf, 3.0]]))
    assert torch.equal(scores, torch.tensor([[1.0, 2.0, 3.0]])), "not in place unless asked"
    added = M.apply_mask(scores, torch.tensor([[0.0, 1.0, -1.0]]))
    assert torch.equal(added, torch.tensor([[1.0, 3.0, 2.0]]))
    M.apply_mask(scores, torch.tensor([[False, True, True]]), inplace=True)
    assert scores[0, 0] == -math.inf


def test_blocked_rows():
    mask = torch.tensor([[True, False], [False, False]])
    assert torch.equal(M.blocked_rows(mask), torch.tensor([[False], [True]]))
    additive = torch.tensor([[0.0, -math.inf], [-math.inf, -math.inf]])
    assert torch.equal(M.blocked_rows(additive), torch.tensor([[False], [True]]))


def test_safe_softmax_zero_rows_and_finite_gradient():
    scores = torch.tensor([[1.0, 2.0, -math.inf], [-math.inf, -math.inf, -math.inf]], requires_grad=True)
    weights = M.safe_softmax(scores)
    assert torch.equal(weights[1], torch.zeros(3))
    assert_close(weights[0], torch.softmax(torch.tensor([1.0, 2.0, -math.inf]), -1), 1e-7, "ordinary row")
    weights.sum().backward()
    assert scores.grad is not None and torch.isfinite(scores.grad).all()
    plain = torch.softmax(scores.detach(), -1)
    assert plain[1].isnan().all(), "control: torch's softmax gives NaN on that row"


def test_check_key_mask():
    M.check_key_mask(None, (2, 3), 5)
    M.check_key_mask(torch.ones(2, 1, 5, dtype=torch.bool), (2, 3), 5)
    with pytest.raises(
        ValueError, match=r"key_mask must be torch.bool broadcastable to \(2, 3, 5\).*got dtype torch.float32"
    ):
        M.check_key_mask(torch.ones(2, 3, 5), (2, 3), 5)
    with pytest.raises(ValueError, match=r"shape \(2, 4\)"):
        M.check_key_mask(torch.ones(2, 4, dtype=torch.bool), (2, 3), 5)


def test_numeric_defaults():
    assert M.work_dtype(torch.float16) == torch.float32 == M.work_dtype(torch.bfloat16)
    assert M.work_dtype(torch.float64) == torch.float64
    assert M.resolve_scale(None, 16) == 0.25 and M.resolve_scale(2.0, 16) == 2.0


def test_the_toolkit_is_what_the_package_exports():
    assert attnlib.causal_mask is M.causal_mask and attnlib.lengths_to_mask is M.lengths_to_mask
    assert attnlib.functional.lengths_to_mask is M.lengths_to_mask
