"""Category-based attention (Part V): maps that depend on the class asked about.

- :mod:`~attnlib.category.grad_cam`: Grad-CAM (Selvaraju et al., 2017);
- :mod:`~attnlib.category.gain`: GAIN, guided attention inference (Li et al., 2018);
- :mod:`~attnlib.category.localisation`: the weakly supervised localisation toy (CAM boxes
  and their overlap with the digit) that scores them, and ADL and reverse attention.
- :mod:`~attnlib.category.sanity_check`: the model-randomisation sanity check of saliency maps
  (Adebayo et al., 2018).
"""

from __future__ import annotations

from .gain import FeatureClassifier, gain_loss, soft_mask
from .grad_cam import grad_cam
from .localisation import LocalisationCNN, LocalisationConfig, box_from_map, box_iou, ink_boxes, map_coverage
from .sanity_check import (
    cascading_randomisation,
    independent_randomisation,
    randomise_layers,
    spearman_rank_correlation,
)

__all__ = [
    "grad_cam",
    "FeatureClassifier",
    "soft_mask",
    "gain_loss",
    "LocalisationConfig",
    "LocalisationCNN",
    "ink_boxes",
    "box_from_map",
    "box_iou",
    "map_coverage",
    "randomise_layers",
    "cascading_randomisation",
    "independent_randomisation",
    "spearman_rank_correlation",
]
