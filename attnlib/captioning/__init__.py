"""Show, Attend and Tell (Xu et al., 2015, arXiv:1502.03044): captions with soft and hard attention.

One mechanism per module file; the public names are re-exported here.

- :mod:`~attnlib.captioning.annotation_encoder`: the small CNN that turns an image into a grid
  of ``L`` annotation vectors ``(B, L, D)``;
- :mod:`~attnlib.captioning.show_attend_tell`: the decoder (attention MLP ``f_att``, scalar gate
  ``beta``, LSTM with initial-state MLPs, deep output layer), soft and hard attention, and its
  frozen :class:`~attnlib.captioning.show_attend_tell.ShowAttendTellConfig`;
- :mod:`~attnlib.captioning.doubly_stochastic`: the soft model's objective with the doubly
  stochastic regulariser ``lambda sum_i (1 - sum_t alpha_ti)^2``;
- :mod:`~attnlib.captioning.hard_attention_loss`: the hard model's variational lower bound,
  trained with REINFORCE, a moving-average baseline, an entropy bonus and the 0.5
  expectation trick;
- :mod:`~attnlib.captioning.decoding`: greedy decoding and beam search returning the attention
  map behind every word;
- :mod:`~attnlib.captioning.training`: the training loop on a frozen encoder's features, soft or hard;
- :mod:`~attnlib.captioning.evaluation`: exact match, BLEU and the localisation score.

The data this family is shown on, scenes of MNIST digits with captions and boxes, and the
score of where attention lands are in :mod:`attnlib.data.digit_captions`.
"""

from __future__ import annotations

from .annotation_encoder import AnnotationEncoder, DigitClassifier
from .decoding import Caption, beam_caption, greedy_caption
from .doubly_stochastic import SoftAttentionLoss, doubly_stochastic_penalty, soft_attention_loss
from .evaluation import caption_report
from .hard_attention_loss import HardAttentionLoss, MovingAverageBaseline, attention_entropy, hard_attention_loss
from .show_attend_tell import (
    LOCATIONS,
    AttentionMLP,
    CaptionOutput,
    ShowAttendTell,
    ShowAttendTellConfig,
    StepOutput,
    caption_nll,
)
from .training import train_captioner

__all__ = [
    "AnnotationEncoder",
    "DigitClassifier",
    "LOCATIONS",
    "AttentionMLP",
    "CaptionOutput",
    "ShowAttendTell",
    "ShowAttendTellConfig",
    "StepOutput",
    "caption_nll",
    "SoftAttentionLoss",
    "doubly_stochastic_penalty",
    "soft_attention_loss",
    "HardAttentionLoss",
    "MovingAverageBaseline",
    "attention_entropy",
    "hard_attention_loss",
    "Caption",
    "beam_caption",
    "greedy_caption",
    "train_captioner",
    "caption_report",
]
