"""Show, Attend and Tell: an LSTM caption decoder that attends over the image's annotation grid.

Xu, Ba, Kiros, Cho, Courville, Salakhutdinov, Zemel and Bengio, *Show, Attend and Tell:
Neural Image Caption Generation with Visual Attention*, ICML 2015 (arXiv:1502.03044),
section 3.1.2.  Given annotations ``a_1 .. a_L`` (``(B, L, D)``, from
:class:`~attnlib.captioning.annotation_encoder.AnnotationEncoder`), at each step ``t``:

* **attention** (eq. 4-5): ``e_ti = f_att(a_i, h_{t-1})``, an MLP
  ``w^T tanh(W_a a_i + W_h h_{t-1})`` (Bahdanau's additive score,
  :class:`~attnlib.scoring.AdditiveScore`), and ``alpha_t = softmax(e_t)`` over the ``L`` cells;
* **context** ``z_t``: *soft* (eq. 13) ``z_t = beta_t sum_i alpha_ti a_i`` with the scalar gate
  ``beta_t = sigmoid(f_beta(h_{t-1}))`` (section 4.2.1); *hard* (section 4.1) ``z_t = a_{s_t}``
  with ``s_t ~ Multinoulli(alpha_t)``;
* **LSTM** (eq. 1-3) with input ``[E y_{t-1}; z_t]``, started from
  ``h_0 = tanh(f_init,h(mean_i a_i))`` and ``c_0 = tanh(f_init,c(mean_i a_i))``;
* **deep output** (eq. 7): ``p(y_t) ∝ exp(L_o(E y_{t-1} + L_h h_t + L_z z_t))``.

What comes from where.  From the paper: the equations above, the scalar gate, the
initial-state MLPs of the mean annotation.  From the authors' code (``kelvinxu/arctic-captions``,
``capgen.py``): the gate is also applied in the hard model (it multiplies the context
whatever the attention type), and the attention MLP's form.  The authors' code puts a
``tanh`` on ``E y + L_h h + L_z z`` before ``L_o``; we follow the paper's linear equation 7.
Sizes are ours (small: the paper's LSTM has 1,000 to 1,800 units and ``D = 512``).

Our addition: a VGG ``conv5`` unit sees most of a 224-pixel image and zero padding tells it
where it is; the units of our small encoder see 22 pixels, too little to know their place,
which the decoder needs to name digits in reading order.  With ``learned_positions=True``
a learned vector per grid cell is added to its annotation (``a_i <- a_i + p_i``).

The encoder can be frozen, as the paper's was: its output ``(B, L, D)`` can then be computed
once and passed to :meth:`ShowAttendTell.forward` instead of the images.

Every step's ``alpha_t`` ``(B, L)`` leaves through :func:`attnlib.record.emit` from the
``attention`` submodule (:class:`AttentionMLP`), once per step.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from attnlib import AdditiveScore
from attnlib._checks import check_rank, shape_str
from attnlib.record import emit

from .annotation_encoder import AnnotationEncoder

__all__ = [
    "ShowAttendTellConfig",
    "AttentionMLP",
    "StepOutput",
    "CaptionOutput",
    "ShowAttendTell",
    "caption_nll",
    "LOCATIONS",
]

#: How the hard model turns ``alpha_t`` into a context: draw a cell, take the most likely
#: cell, or use the expectation ``sum_i alpha_ti a_i`` (what soft attention always does).
LOCATIONS = ("sample", "argmax", "expectation")
State = tuple[Tensor, Tensor]


@dataclass(frozen=True)
class ShowAttendTellConfig:
    """Sizes and switches of :class:`ShowAttendTell` (defaults fit the digit-caption scenes)."""

    vocab_size: int = 16  #: ``K``: ``len(attnlib.data.CAPTION_VOCAB)``
    image_size: int = 48  #: side of the input images (the digit scenes' canvas)
    in_channels: int = 1  #: grey images
    encoder_channels: tuple[int, ...] = (8, 16, 32)  #: three conv-pool blocks (48 px -> 6 x 6 grid, D = 32)
    learned_positions: bool = True  #: our addition, a learned vector per grid cell added to its annotation
    embed_dim: int = 32  #: ``m``, word embedding and deep-output width (authors' COCO script: 512)
    hidden_dim: int = 128  #: ``n``, LSTM units (paper/authors: 1,000 to 1,800; the task is small)
    attention_dim: int = 64  #: width of the attention MLP ``f_att``
    attention: str = "soft"  #: ``"soft"`` (deterministic) or ``"hard"`` (stochastic), section 4
    gate: bool = True  #: the scalar gate ``beta_t`` (the authors' ``selector``); False: ``beta_t = 1``
    max_caption_length: int = 11  #: longest caption, ``<eos>`` included (4 digits, 3 relations)
    pad_id: int = 0  #: padding token (never predicted, not scored)
    bos_id: int = 1  #: the ``y_0`` fed at the first step
    eos_id: int = 2  #: ends a caption

    def __post_init__(self) -> None:
        if self.attention not in ("soft", "hard"):
            raise ValueError(f"attention must be 'soft' or 'hard'; got {self.attention!r}")
        if min(self.vocab_size, self.embed_dim, self.hidden_dim, self.attention_dim, self.max_caption_length) < 1:
            raise ValueError(f"sizes must be positive; got {self}")
        if max(self.pad_id, self.bos_id, self.eos_id) >= self.vocab_size:
            raise ValueError(f"pad_id, bos_id and eos_id must be < vocab_size = {self.vocab_size}")


class AttentionMLP(nn.Module):
    """``f_att``: ``alpha = softmax_i(w^T tanh(W_a a_i + W_h h))`` over the ``L`` annotations.

    Args:
        hidden_dim: size of ``h`` (the LSTM state).
        annotation_dim: ``D``.
        attention_dim: the MLP's width.
    """

    def __init__(self, hidden_dim: int, annotation_dim: int, attention_dim: int) -> None:
        super().__init__()
        self.score = AdditiveScore(hidden_dim, annotation_dim, attention_dim)

    def project(self, annotations: Tensor) -> Tensor:
        """``W_a a``: ``(B, L, D)`` -> ``(B, L, A)``, computed once per image."""
        return self.score.project_keys(annotations)

    def forward(self, h: Tensor, projected: Tensor) -> Tensor:
        """``h (B, n)``, ``projected (B, L, A)`` -> ``alpha (B, L)``, summing to 1 over ``L``; emitted."""
        scores = self.score.score_projected(h[:, None, :], projected)[:, 0]  # (B, 1, L) -> (B, L)
        alpha = torch.softmax(scores, dim=-1)  # (B, L)
        emit(self, alpha)
        return alpha


class StepOutput(NamedTuple):
    """One decoder step for ``B`` captions."""

    logits: Tensor  #: ``(B, K)`` unnormalised ``log p(y_t)``
    state: State  #: ``(h_t, c_t)``, each ``(B, n)``
    alpha: Tensor  #: ``(B, L)``
    beta: Tensor  #: ``(B,)`` the gate (ones without it)
    location: Optional[Tensor]  #: ``(B,)`` the chosen cell ``s_t`` (hard sample/argmax), else ``None``


class CaptionOutput(NamedTuple):
    """A teacher-forced pass over ``B`` captions of ``T`` tokens."""

    logits: Tensor  #: ``(B, T, K)``
    alphas: Tensor  #: ``(B, T, L)``
    betas: Tensor  #: ``(B, T)``
    locations: Optional[Tensor]  #: ``(B, T)`` chosen cells, hard attention with a sample/argmax only
    location_log_probs: Optional[Tensor]  #: ``(B, T)`` ``log alpha_t[s_t]``, with ``locations``


def caption_nll(logits: Tensor, captions: Tensor, pad_id: int = 0) -> Tensor:
    """``-log p(y | a)`` of each caption: ``logits (B, T, K)``, ``captions (B, T)`` -> ``(B,)``, pads skipped."""
    nll = F.cross_entropy(logits.transpose(1, 2), captions, reduction="none")  # (B, K, T) -> (B, T)
    return (nll * (captions != pad_id)).sum(dim=1)  # (B,)


class ShowAttendTell(nn.Module):
    """Encoder, attention MLP, gate, LSTM and deep output of Xu et al. (2015).

    ``model(images, captions)`` is the teacher-forced pass used for training; decoding token
    by token (greedy, beam) goes through :meth:`encode`, :meth:`start` and :meth:`step`, as
    :mod:`attnlib.captioning.decoding` does.

    Args:
        config: a :class:`ShowAttendTellConfig`.
    """

    def __init__(self, config: ShowAttendTellConfig = ShowAttendTellConfig()) -> None:
        super().__init__()
        self.config = config
        self.encoder = AnnotationEncoder(config.in_channels, config.encoder_channels)
        if config.image_size % self.encoder.factor:
            raise ValueError(
                f"image_size must be divisible by 2 ** len(encoder_channels) = {self.encoder.factor}; "
                f"got {config.image_size}"
            )
        self.grid = self.encoder.grid(config.image_size, config.image_size)
        d, n, m = self.encoder.annotation_dim, config.hidden_dim, config.embed_dim
        cells = self.grid[0] * self.grid[1]
        self.positions = nn.Parameter(0.1 * torch.randn(cells, d)) if config.learned_positions else None  # (L, D)
        self.init_h = nn.Linear(d, n)  # f_init,h
        self.init_c = nn.Linear(d, n)  # f_init,c
        self.attention = AttentionMLP(n, d, config.attention_dim)  # f_att
        self.gate = nn.Linear(n, 1) if config.gate else None  # f_beta
        self.embedding = nn.Embedding(config.vocab_size, m)  # E
        self.lstm = nn.LSTMCell(m + d, n)
        self.out_h = nn.Linear(n, m)  # L_h
        self.out_z = nn.Linear(d, m)  # L_z
        self.out = nn.Linear(m, config.vocab_size)  # L_o

    def encode(self, inputs: Tensor) -> tuple[Tensor, Tensor]:
        """``inputs`` -> ``(annotations (B, L, D), projected (B, L, A))``.

        Args:
            inputs: images ``(B, C, H, W)`` with ``H = W = image_size``, or what the encoder
                made of them, ``(B, L, D)`` (a frozen encoder's features, computed once).

        Raises:
            ValueError: for images of another size or features of another grid or width.
        """
        cfg, (gh, gw), d = self.config, self.grid, self.encoder.annotation_dim
        if inputs.dim() == 4:
            expected = (cfg.in_channels, cfg.image_size, cfg.image_size)
            if tuple(inputs.shape[1:]) != expected:
                raise ValueError(f"images must be (B, {', '.join(map(str, expected))}); got {shape_str(inputs.shape)}")
            features = self.encoder(inputs)  # (B, L, D)
        elif inputs.dim() == 3:
            if tuple(inputs.shape[1:]) != (gh * gw, d):
                raise ValueError(
                    f"encoder features must be (B, L, D) = (B, {gh * gw}, {d}) for the {gh} x {gw} grid; "
                    f"got {shape_str(inputs.shape)}"
                )
            features = inputs
        else:
            raise ValueError(
                f"inputs must be images (B, C, H, W) or encoder features (B, L, D); got {shape_str(inputs.shape)}"
            )
        annotations = features + self.positions if self.positions is not None else features  # (B, L, D)
        return annotations, self.attention.project(annotations)

    def start(self, annotations: Tensor) -> State:
        """``h_0, c_0 = tanh(f_init(mean_i a_i))``, each ``(B, n)``."""
        mean = annotations.mean(dim=1)  # (B, D)
        return torch.tanh(self.init_h(mean)), torch.tanh(self.init_c(mean))

    def step(
        self,
        previous: Tensor,
        state: State,
        annotations: Tensor,
        projected: Tensor,
        *,
        location: Optional[str] = None,
        generator: Optional[torch.Generator] = None,
    ) -> StepOutput:
        """One step: attend with ``h_{t-1}``, update the LSTM, score the next word.

        Args:
            previous: ``(B,)`` token ids ``y_{t-1}``.
            state: ``(h_{t-1}, c_{t-1})``.
            annotations: ``(B, L, D)``; ``projected``: ``(B, L, A)`` from :meth:`encode`.
            location: hard attention only, one of :data:`LOCATIONS`; default ``"sample"`` in
                training mode, ``"argmax"`` in eval mode (our choice: a deterministic hard
                decision at test time).  Soft attention ignores it.
            generator: for the hard sample.
        """
        h, c = state
        alpha = self.attention(h, projected)  # (B, L)
        chosen: Optional[Tensor] = None
        mode = "expectation" if self.config.attention == "soft" else (location or self._default_location())
        if mode == "expectation":
            z = (alpha[:, :, None] * annotations).sum(dim=1)  # (B, L, 1) * (B, L, D) -> (B, D)
        elif mode in ("sample", "argmax"):
            if mode == "sample":
                probs = alpha.detach()
                if generator is not None and generator.device != probs.device:
                    probs = probs.to(generator.device)  # a CPU generator may drive a model on a GPU
                chosen = torch.multinomial(probs, 1, generator=generator)[:, 0].to(alpha.device)  # (B,)
            else:
                chosen = alpha.argmax(dim=-1)  # (B,)
            z = annotations[torch.arange(len(chosen), device=chosen.device), chosen]  # (B, D): a_{s_t}
        else:
            raise ValueError(f"location must be one of {LOCATIONS}; got {location!r}")
        beta = torch.sigmoid(self.gate(h))[:, 0] if self.gate is not None else torch.ones_like(alpha[:, 0])  # (B,)
        z = beta[:, None] * z  # (B, D)
        embedded = self.embedding(previous)  # (B, m)
        h, c = self.lstm(torch.cat([embedded, z], dim=-1), (h, c))  # (B, m + D) -> (B, n)
        logits = self.out(embedded + self.out_h(h) + self.out_z(z))  # (B, m) -> (B, K)
        return StepOutput(logits, (h, c), alpha, beta, chosen)

    def _default_location(self) -> str:
        return "sample" if self.training else "argmax"

    def check_captions(self, captions: Tensor, batch: int) -> None:
        """Raise ``ValueError`` unless ``captions`` is ``(batch, T)`` int64 with ``T <= max_caption_length``
        and every id in ``[0, vocab_size)``."""
        check_rank(captions, "captions", 2, "(B, T)")
        cfg = self.config
        if captions.dtype != torch.int64:
            raise ValueError(f"captions must be int64 token ids; got dtype {captions.dtype}")
        if captions.shape[0] != batch:
            raise ValueError(f"captions must have B = {batch} rows like the images; got {shape_str(captions.shape)}")
        if captions.shape[1] > cfg.max_caption_length:
            raise ValueError(
                f"captions are at most max_caption_length = {cfg.max_caption_length} tokens; "
                f"got {shape_str(captions.shape)}"
            )
        if captions.numel() and (captions.min() < 0 or captions.max() >= cfg.vocab_size):
            raise ValueError(
                f"caption token ids must be in [0, vocab_size = {cfg.vocab_size}); got ids from "
                f"{int(captions.min())} to {int(captions.max())}: is the vocabulary the model's?"
            )

    def forward(
        self,
        inputs: Tensor,
        captions: Tensor,
        *,
        location: Optional[str] = None,
        generator: Optional[torch.Generator] = None,
    ) -> CaptionOutput:
        """Teacher forcing: predict ``captions[:, t]`` from ``<bos>, captions[:, :t]``.

        Args:
            inputs: images ``(B, C, H, W)`` or encoder features ``(B, L, D)`` (see :meth:`encode`).
            captions: ``(B, T)`` token ids (ending with ``<eos>``, padded with ``pad_id``).
            location, generator: as in :meth:`step`.

        Returns:
            A :class:`CaptionOutput`.

        Raises:
            ValueError: for images of the wrong shape (so a wrong grid), captions longer than
                ``max_caption_length`` or token ids outside the vocabulary.
        """
        self.check_captions(captions, inputs.shape[0] if inputs.dim() > 0 else -1)
        annotations, projected = self.encode(inputs)  # (B, L, D), (B, L, A)
        state = self.start(annotations)
        b, t = captions.shape
        previous = torch.full((b,), self.config.bos_id, dtype=torch.long, device=captions.device)  # (B,)
        logits, alphas, betas, chosen = [], [], [], []
        for i in range(t):
            out = self.step(previous, state, annotations, projected, location=location, generator=generator)
            logits.append(out.logits)
            alphas.append(out.alpha)
            betas.append(out.beta)
            if out.location is not None:
                chosen.append(out.location)
            state, previous = out.state, captions[:, i]
        alpha = torch.stack(alphas, dim=1)  # (B, T, L)
        locations = torch.stack(chosen, dim=1) if len(chosen) == t and t > 0 else None  # (B, T)
        log_probs = None
        if locations is not None:
            log_probs = torch.gather(alpha, 2, locations[..., None])[..., 0].clamp_min(1e-12).log()  # (B, T)
        return CaptionOutput(torch.stack(logits, dim=1), alpha, torch.stack(betas, dim=1), locations, log_probs)
