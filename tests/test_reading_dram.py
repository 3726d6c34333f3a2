"""DRAM: shapes, the what-times-where glimpse, the context network, who the REINFORCE term reaches, errors."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import pytest
import torch

import attnlib
from attnlib.hard import GlimpseSensor
from attnlib.reading import (
    DRAM,
    DRAMConfig,
    WhatWhereGlimpse,
    dram_scores,
    path_scores,
    random_paths,
    scan_path,
    train_dram,
    visits,
)

SMALL = DRAMConfig(image_size=28, hidden_size=16, patch_size=6, num_scales=2, context_size=8)


def model(config: DRAMConfig = SMALL, seed: int = 0) -> DRAM:
    torch.manual_seed(seed)
    return DRAM(config)


def test_output_shapes() -> None:
    m = model().train()
    out = m(torch.rand(3, 1, 28, 28))
    n = (SMALL.num_objects + 1) * SMALL.glimpses_per_object
    assert out.log_probs.shape == (3, 3, 11)
    assert out.locations.shape == (3, n, 2) and out.location_log_probs.shape == (3, n) and out.baselines.shape == (3, n)
    assert torch.allclose(out.log_probs.exp().sum(-1), torch.ones(3, 3), atol=1e-5)
    assert m.read(torch.rand(3, 1, 28, 28)).shape == (3, 2)


def test_glimpse_is_a_product_of_what_and_where() -> None:
    torch.manual_seed(0)
    g = WhatWhereGlimpse(GlimpseSensor(4, 1), 1, 8)
    with torch.no_grad():
        g.where.weight.zero_()
        g.where.bias.zero_()
    assert g(torch.rand(2, 1, 12, 12), torch.zeros(2, 2)).abs().sum().item() == 0.0  # where = 0 kills what


def test_context_makes_the_first_location_depend_on_the_image() -> None:
    images = torch.rand(4, 1, 28, 28)
    for use_context, differs in ((True, True), (False, False)):
        m = model(replace(SMALL, use_context=use_context)).eval()
        first = m(images).locations[:, 0]  # (B, 2)
        assert bool((first - first[:1]).abs().amax() > 1e-6) == differs


def test_locations_are_recorded() -> None:
    m = model().eval()
    with attnlib.record_attention(m) as maps:
        out = m(torch.rand(2, 1, 28, 28))
    path = maps.stacked("location", dim=1)  # (B, N, 2)
    assert torch.equal(path, out.locations)


def test_reinforce_reaches_only_the_location_policy() -> None:
    m = model().train()
    images, labels = torch.rand(6, 1, 28, 28), torch.randint(0, 10, (6, 2))
    policy = ("context.", "core2.", "location.")
    for term, reached in (
        ("reinforce", policy),
        ("classification", ("glimpse.", "core1.", "action.")),
        ("baseline", ("baseline.",)),
    ):
        m.zero_grad()
        torch.manual_seed(1)
        loss = m.loss(m(images), labels)
        getattr(loss, term).backward()
        touched = {n for n, p in m.named_parameters() if p.grad is not None and float(p.grad.abs().sum()) > 0}
        assert touched, term
        assert all(n.startswith(reached) for n in touched), (term, touched)
        if term == "reinforce":
            assert any(n.startswith("location.") for n in touched)


def test_loss_terms_and_targets() -> None:
    m = model().train()
    labels = torch.tensor([[3, 4], [5, 6]])
    assert m.targets(labels).tolist() == [[3, 4, 10], [5, 6, 10]]
    loss = m.loss(m(torch.rand(2, 1, 28, 28)), labels)
    assert torch.allclose(loss.total, loss.classification + loss.reinforce + loss.baseline)
    assert loss.reward.shape == (2,)


def test_given_locations_are_used() -> None:
    m = model().eval()
    given = torch.zeros(2, 6, 2)
    given[..., 0] = 0.5
    assert torch.equal(m(torch.rand(2, 1, 28, 28), locations=given).locations, given)


def test_errors() -> None:
    m = model()
    with pytest.raises(ValueError, match=r"images must be \(B, 1, 28, 28\); got \(2, 1, 30, 30\)"):
        m(torch.rand(2, 1, 30, 30))
    with pytest.raises(ValueError, match="floating-point"):
        m(torch.zeros(2, 1, 28, 28, dtype=torch.uint8))
    with pytest.raises(ValueError, match=r"locations must have shape \(B, 6, 2\)"):
        m(torch.rand(2, 1, 28, 28), locations=torch.zeros(2, 5, 2))
    with pytest.raises(ValueError, match="labels must have S = 2 columns"):
        m.targets(torch.zeros(2, 3, dtype=torch.long))
    with pytest.raises(ValueError, match="context_size must be even"):
        DRAM(DRAMConfig(context_size=7))


def test_visits_counts_glimpse_centres_inside_grown_boxes() -> None:
    boxes = torch.tensor([[[4, 18, 20, 20], [30, 18, 20, 20]]])  # (x, y, w, h) in a 56-pixel scene
    both = torch.tensor([[[-0.5, 0.0], [0.5, 0.0]]])  # centres at pixels (14, 28) and (42, 28)
    assert visits(both, boxes, 56).tolist() == [[True, True]]
    near = torch.tensor([[[-0.5, 0.0], [0.0, 0.0]]])  # the second centre at x = 28, 2 pixels left of box 2
    assert visits(near, boxes, 56).tolist() == [[True, False]]
    assert visits(near, boxes, 56, margin=3).tolist() == [[True, True]]


def test_dram_scores_keys_and_ranges() -> None:
    m = model()
    images = torch.rand(4, 1, 28, 28)
    pairs = SimpleNamespace(images=images, labels=torch.randint(0, 10, (4, 2)), boxes=torch.zeros(4, 2, 4))
    for glimpses in ("learned", "random", "scan"):
        scores = dram_scores(m, pairs, glimpses=glimpses)
        assert set(scores) == {"digit_accuracy", "seq_accuracy", "visits_all", "on_object", "in_order"}
        assert all(0.0 <= v <= 1.0 for v in scores.values())
        assert scores["visits_all"] == 0.0 and scores["in_order"] == 0.0  # empty boxes are never visited
    with pytest.raises(ValueError, match="glimpses must be one of"):
        dram_scores(m, pairs, glimpses="fixed")


def test_scan_path_looks_at_each_half_in_turn() -> None:
    path = scan_path(DRAMConfig(num_objects=2, glimpses_per_object=2))
    assert path.tolist() == [[-0.5, 0.0], [-0.5, 0.0], [0.5, 0.0], [0.5, 0.0], [0.0, 0.0], [0.0, 0.0]]
    assert scan_path(DRAMConfig(num_objects=4, glimpses_per_object=1))[:4, 0].tolist() == [-0.75, -0.25, 0.25, 0.75]
    paths = random_paths(5, 6, torch.Generator().manual_seed(0))
    assert paths.shape == (5, 6, 2) and bool((paths.abs() <= 1).all())


def test_path_scores_are_strict_and_ordered() -> None:
    boxes = torch.tensor([[[4, 18, 20, 20], [30, 18, 20, 20]]]).repeat(3, 1, 1)  # left box x 4-24, right x 30-50
    paths = torch.tensor(
        [
            [[-0.5, 0.0], [-0.5, 0.0], [0.5, 0.0], [0.5, 0.0], [0.0, 0.0], [0.0, 0.0]],  # left, then right: in order
            [[0.5, 0.0], [0.5, 0.0], [-0.5, 0.0], [-0.5, 0.0], [0.0, 0.0], [0.0, 0.0]],  # right first: both seen
            [[-0.5, 0.0], [0.0, 0.0], [0.0, 0.0], [0.5, 0.0], [0.9, 0.9], [0.9, 0.9]],  # x = 28: between the boxes
        ]
    )
    scores = path_scores(paths, boxes, 56, glimpses_per_object=2)
    assert scores["in_order"] == pytest.approx(2 / 3)  # the second path reads the digits in the wrong order
    assert scores["on_object"] == pytest.approx(10 / 12)  # two centres at x = 28 lie on neither box
    assert visits(paths[1:2], boxes[1:2], 56).all()  # the lenient measure counts the reversed path
    with pytest.raises(ValueError, match="locations must be"):
        path_scores(paths[:, :3], boxes, 56, glimpses_per_object=2)


def test_controls_train_only_what_the_cross_entropy_trains() -> None:
    images, labels = torch.rand(8, 1, 28, 28), torch.randint(0, 10, (8, 2))
    for glimpses in ("random", "scan"):
        m = model()
        before = {n: p.detach().clone() for n, p in m.named_parameters()}
        train_dram(m, images, labels, steps=2, batch_size=4, glimpses=glimpses)
        moved = {n for n, p in m.named_parameters() if not torch.equal(p, before[n])}
        assert moved and all(n.startswith(("glimpse.", "core1.", "action.")) for n in moved), (glimpses, moved)
    with pytest.raises(ValueError, match="glimpses must be one of"):
        train_dram(model(), images, labels, steps=1, glimpses="fixed")
