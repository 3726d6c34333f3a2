"""attnlib.data.scenes: the visual search scenes."""

from __future__ import annotations

import torch

from attnlib.data import FEATURE_NAMES, SEARCH_KINDS, visual_search_scene


def test_scene_is_deterministic_and_well_formed():
    for kind in SEARCH_KINDS:
        a, b = visual_search_scene(kind, seed=3), visual_search_scene(kind, seed=3)
        assert torch.equal(a.image, b.image) and a.target == b.target
        assert a.image.shape == (3, 96, 96) and 0 <= float(a.image.min()) and float(a.image.max()) <= 1
        features = a.item_features()
        assert features.shape == (36, 4) and torch.equal(features.sum(1), torch.full((36,), 2.0))
    assert not torch.equal(visual_search_scene("color", seed=1).image, visual_search_scene("color", seed=2).image)


def test_targets_differ_from_distractors_as_designed():
    for seed in range(10):
        for kind, unique in [("color", "red"), ("orientation", "horizontal")]:
            s = visual_search_scene(kind, seed=seed)
            column = s.item_features()[:, FEATURE_NAMES.index(unique)]
            assert column.sum() == 1 and column[s.target] == 1
        s = visual_search_scene("conjunction", seed=seed)
        f = s.item_features()
        is_target_combo = (f[:, 0] == 1) & (f[:, 2] == 1)  # red and vertical
        assert is_target_combo.sum() == 1 and is_target_combo[s.target]
        assert f[:, 0].sum() > 1 and f[:, 2].sum() > 1  # each feature alone is shared by distractors
