"""attnlib.saliency: pop-out is found bottom-up, conjunctions are not."""

from __future__ import annotations

import pytest
import torch

from attnlib.data import FEATURE_NAMES, SEARCH_KINDS, visual_search_scene
from attnlib.saliency import cell_average, feature_maps, location_keys, normalize_map, saliency_map

SEEDS = range(40)


def found_bottom_up(scene) -> bool:
    saliency, _ = saliency_map(scene.image)
    return int(cell_average(saliency, scene.cell).argmax()) == scene.target


def test_feature_maps_respond_to_the_right_bars():
    s = visual_search_scene("conjunction", seed=0)
    per_cell = cell_average(feature_maps(s.image), s.cell)  # (N, 4)
    truth = s.item_features()
    for j, name in enumerate(FEATURE_NAMES):
        on, off = per_cell[truth[:, j] == 1, j], per_cell[truth[:, j] == 0, j]
        assert on.min() > off.max(), f"{name} map does not separate items with and without {name}"


@pytest.mark.parametrize("kind", ["color", "orientation"])
def test_pop_out_targets_are_the_most_salient(kind):
    hits = sum(found_bottom_up(visual_search_scene(kind, seed=s)) for s in SEEDS)
    assert hits >= 0.95 * len(SEEDS), f"{kind}: found {hits}/{len(SEEDS)}"


def test_conjunction_targets_are_not_found_bottom_up():
    hits = sum(found_bottom_up(visual_search_scene("conjunction", seed=s)) for s in SEEDS)
    assert hits <= 0.2 * len(SEEDS), f"conjunction target found {hits}/{len(SEEDS)} times: not a conjunction search"


QUERIES = {"color": [1.0, 0, 0, 0], "orientation": [0, 0, 0, 1.0], "conjunction": [1.0, 0, 1.0, 0]}


@pytest.mark.parametrize("kind", SEARCH_KINDS)
def test_a_top_down_query_finds_every_target(kind):
    query = torch.tensor(QUERIES[kind])
    for seed in SEEDS:
        s = visual_search_scene(kind, seed=seed)
        keys = location_keys(s.image, s.cell)  # (N, 4) measured from the pixels
        assert torch.isfinite(keys).all() and keys.min() >= 0 and keys.max() <= 1
        assert int((keys @ query).argmax()) == s.target


def test_location_keys_of_an_absent_feature_are_zero():
    s = visual_search_scene("orientation", seed=0)  # no red anywhere
    keys = location_keys(s.image, s.cell)
    assert torch.equal(keys[:, FEATURE_NAMES.index("red")], torch.zeros(36))


def test_normalization_promotes_a_single_peak():
    one = torch.zeros(20, 20)
    one[10, 10] = 1.0
    many = torch.zeros(20, 20)
    many[::5, ::5] = 1.0
    assert normalize_map(one).max() == 1.0
    assert normalize_map(many).max() < 0.01


def test_bad_input():
    with pytest.raises(ValueError, match=r"3 colour channels .* got \(1, 8, 8\)"):
        feature_maps(torch.rand(1, 8, 8))
    with pytest.raises(ValueError, match="kind must be one of"):
        visual_search_scene("shape")
    with pytest.raises(ValueError, match="needs cells of at least 15 pixels; got cell=12"):
        visual_search_scene(cell=12)
