"""Category-based attention (Part V): maps that depend on the class asked about.

- :mod:`~attnlib.category.grad_cam`: Grad-CAM (Selvaraju et al., 2017);
- :mod:`~attnlib.category.gain`: GAIN, guided attention inference (Li et al., 2018);
- :mod:`~attnlib.category.localisation`: the weakly supervised localisation toy (CAM boxes
  and their overlap with the digit) that scores them, and ADL and reverse attention.
"""

from __future__ import annotations

from .gain import FeatureClassifier, gain_loss, soft_mask
from .grad_cam import grad_cam
from .localisation import LocalisationCNN, LocalisationConfig, box_from_map, box_iou, ink_boxes, map_coverage

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
]
