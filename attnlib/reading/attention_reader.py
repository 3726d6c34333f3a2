"""Reading a strip of characters with attention: an image encoder under RNNsearch's decoder
(Lee & Osindero, 2016, "Recursive recurrent nets with attention modeling for OCR in the
wild", arXiv:1603.03101, §3.2; the decoder of Bahdanau, Cho & Bengio, 2015, arXiv:1409.0473).

Reading is translation whose source is an image: the encoder's feature map ``(B, C, H', W')``
is cut into its ``S = W'`` columns, each column ``(C H')`` becomes one annotation, and the
attention decoder of :mod:`attnlib.seq2seq` (reused as it is) emits one character per step,
fed the previous character, attending over the columns::

    h_j  = tanh(W_c col_j + p_j)                 (B, S, A): a column and its learned position p_j
    e_ij = v_a^T tanh(W_a s_(i-1) + U_a h_j),  a_i = softmax_j(e_ij),  c_i = sum_j a_ij h_j
    s_i  = GRU([E y_(i-1); c_i], s_(i-1)),     s_0 = tanh(W_s mean_j h_j[A/2:])

The decoder's GRU, fed its previous character, is an implicit character language model
(Lee & Osindero §3.2).  The position embedding ``p_j`` is our choice: the columns of a CNN
carry little absolute position, and without it content-based attention cannot tell the
first "3" of a strip from the second.  The decoder's weights ``a_i`` ``(B, S)`` are emitted to
:mod:`attnlib.record` at every step by :class:`~attnlib.seq2seq.bahdanau.BahdanauDecoder`.

:class:`ColumnEncoder` follows the :class:`~attnlib.seq2seq.encoder.Encoder` protocol, so
:class:`AttentionReader` is a :class:`~attnlib.seq2seq.model.Seq2Seq`, and
:func:`~attnlib.seq2seq.decoding.greedy_decode` and :func:`~attnlib.seq2seq.decoding.beam_search` read
strips unchanged (they take sources of shape ``(B, S)``: the strip flattened, which the
encoder reshapes back).  CTC is out of scope.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Union

import torch
from torch import Tensor, nn

from .._checks import check_floating, shape_str
from ..masks import lengths_to_mask
from ..seq2seq import BahdanauDecoder, EncoderOutput, Hypothesis, Seq2Seq, beam_search, greedy_decode, sequence_loss
from ..train import History, fit, minibatches
from .plain_cnn import PlainCNNEncoder
from .recurrent_conv import RecurrentConvEncoder
from .recursive_conv import RecursiveConvEncoder

__all__ = [
    "ENCODER_KINDS",
    "READING_VOCAB",
    "ReaderConfig",
    "ColumnEncoder",
    "AttentionReader",
    "build_feature_encoder",
    "strip_targets",
    "tokens_to_digits",
    "train_reader",
    "reading_scores",
    "stack_alignments",
]

#: Token 0 pads, 1 starts and 2 ends a string; digit ``d`` is token ``d + 3``.
READING_VOCAB = ("<pad>", "<bos>", "<eos>", *"0123456789")
PAD, BOS, EOS, DIGIT0 = 0, 1, 2, 3
ENCODER_KINDS = ("plain", "recursive", "untied", "recurrent")

FeatureEncoder = Union[PlainCNNEncoder, RecursiveConvEncoder, RecurrentConvEncoder]


@dataclass(frozen=True)
class ReaderConfig:
    """Sizes of an :class:`AttentionReader`.

    Attributes:
        encoder: one of ``ENCODER_KINDS``.
        steps: ``T`` of the recursive, untied and recurrent blocks; the plain CNN gets the
            same depth, ``T + 2`` convolutions.
        channels: ``C`` of the feature maps.
        height, width: strip size (both multiples of 4).
        in_channels: image channels.
        annotation_dim: ``A``; ``hidden_size``: decoder state; ``embed_dim``: character
            embedding; ``attention_dim``: the additive score's hidden size; ``readout_dim``:
            the maxout readout.
    """

    encoder: str = "recursive"
    steps: int = 3
    channels: int = 32
    height: int = 16
    width: int = 68
    in_channels: int = 1
    annotation_dim: int = 64
    hidden_size: int = 64
    embed_dim: int = 16
    attention_dim: int = 32
    readout_dim: int = 32


def build_feature_encoder(config: ReaderConfig) -> FeatureEncoder:
    """The CNN named by ``config.encoder``, mapping ``(B, C_in, H, W)`` to ``(B, C, H/4, W/4)``."""
    c, t = config.channels, config.steps
    if config.encoder == "plain":
        return PlainCNNEncoder(config.in_channels, c, depth=t + 2)
    if config.encoder in ("recursive", "untied"):
        return RecursiveConvEncoder(config.in_channels, c, t, tied=config.encoder == "recursive")
    if config.encoder == "recurrent":
        return RecurrentConvEncoder(config.in_channels, c, t)
    raise ValueError(f"encoder must be one of {ENCODER_KINDS}; got {config.encoder!r}")


class ColumnEncoder(nn.Module):
    """A CNN's feature columns as the annotations of an :class:`~attnlib.seq2seq.encoder.EncoderOutput`.

    ``forward(src, src_lengths)``: ``src`` is a batch of strips ``(B, C_in, H, W)``, or the same
    flattened to ``(B, C_in H W)`` (what the decoding functions of :mod:`attnlib.seq2seq` pass
    on); ``src_lengths`` ``(B,)`` the number of real columns (``S = W / 4`` for whole strips).
    Returns annotations ``(B, S, A)``, mask ``(B, S)`` and, as the decoder's summary,
    ``backward_first`` ``(B, A/2)``: the second half of the mean annotation.
    """

    def __init__(self, config: ReaderConfig) -> None:
        super().__init__()
        if config.height % 4 or config.width % 4 or config.annotation_dim % 2:
            raise ValueError(
                f"height and width must be multiples of 4 and annotation_dim even; got height={config.height}, "
                f"width={config.width}, annotation_dim={config.annotation_dim}"
            )
        self.image_shape = (config.in_channels, config.height, config.width)
        self.features = build_feature_encoder(config)
        for module in self.features.modules():
            if isinstance(module, nn.Conv2d):  # He initialisation: the signal keeps its scale through the ReLUs
                nn.init.kaiming_normal_(module.weight, nonlinearity="relu")
        self.columns = config.width // 4
        self.project = nn.Linear(config.channels * (config.height // 4), config.annotation_dim)  # W_c
        self.position = nn.Parameter(torch.zeros(self.columns, config.annotation_dim))  # p_j
        nn.init.normal_(self.position, std=1.0)

    def images(self, src: Tensor) -> Tensor:
        """``src`` ``(B, C_in, H, W)`` or ``(B, C_in H W)`` -> ``(B, C_in, H, W)``, checked."""
        c, h, w = self.image_shape
        check_floating(src, "src")
        if src.dim() == 2 and src.shape[1] == c * h * w:
            return src.view(-1, c, h, w)  # (B, C_in, H, W)
        if src.dim() == 4 and tuple(src.shape[1:]) == self.image_shape:
            return src
        raise ValueError(
            f"src must be strips of shape (B, {c}, {h}, {w}) or flattened (B, {c * h * w}); got {shape_str(src.shape)}"
        )

    def forward(self, src: Tensor, src_lengths: Tensor) -> EncoderOutput:
        images = self.images(src)
        fmap = self.features(images)  # (B, C, H/4, S)
        B, C, Hf, S = fmap.shape
        if src_lengths.shape != (B,) or int(src_lengths.min()) < 1 or int(src_lengths.max()) > S:
            raise ValueError(
                f"src_lengths must hold B = {B} column counts in 1..S = {S}; got shape "
                f"{shape_str(src_lengths.shape)} with values {src_lengths.tolist()[:8]}"
            )
        cols = fmap.permute(0, 3, 1, 2).reshape(B, S, C * Hf)  # (B, S, C H/4): one vector per column
        mask = lengths_to_mask(src_lengths.to(images.device), S)  # (B, S)
        annotations = torch.tanh(self.project(cols) + self.position[:S]) * mask[..., None]  # (B, S, A)
        mean = annotations.sum(1) / src_lengths.to(annotations)[:, None]  # (B, A)
        A = annotations.shape[-1]
        return EncoderOutput(annotations=annotations, mask=mask, lengths=src_lengths, backward_first=mean[:, A // 2 :])


def strip_targets(labels: Tensor, lengths: Tensor) -> tuple[Tensor, Tensor]:
    """Decoder input and output of digit strings.

    Args:
        labels: ``(N, K)`` digit classes, ``-1`` past each string; ``lengths``: ``(N,)``.

    Returns:
        ``tgt_in (N, K + 1)`` = ``<bos>`` then the digits, and ``tgt_out (N, K + 1)`` = the
        digits then ``<eos>``; ``<pad>`` after.
    """
    if labels.dim() != 2 or lengths.shape != labels.shape[:1]:
        raise ValueError(
            f"labels must be (N, K) and lengths (N,); got {shape_str(labels.shape)}, {shape_str(lengths.shape)}"
        )
    N, K = labels.shape
    pos = torch.arange(K + 1)[None]  # (1, K + 1)
    digits = torch.cat([labels, torch.full((N, 1), -1)], 1) + DIGIT0  # (N, K + 1)
    real = pos < lengths[:, None]  # (N, K + 1)
    tgt_out = torch.where(real, digits, torch.where(pos == lengths[:, None], EOS, PAD))
    tgt_in = torch.cat([torch.full((N, 1), BOS), torch.where(real[:, :-1], digits[:, :-1], PAD)], 1)
    return tgt_in, tgt_out


def tokens_to_digits(tokens: list[int]) -> list[int]:
    """The digits of a decoded token list, up to ``<eos>``."""
    out = []
    for t in tokens:
        if t == EOS:
            break
        if t >= DIGIT0:
            out.append(t - DIGIT0)
    return out


class AttentionReader(Seq2Seq):
    """A :class:`ColumnEncoder` and a :class:`~attnlib.seq2seq.bahdanau.BahdanauDecoder` over its columns.

    Args:
        config: a :class:`ReaderConfig`.
    """

    def __init__(self, config: ReaderConfig = ReaderConfig()) -> None:
        encoder = ColumnEncoder(config)
        decoder = BahdanauDecoder(
            len(READING_VOCAB),
            config.annotation_dim,
            embed_dim=config.embed_dim,
            hidden_dim=config.hidden_size,
            attention_dim=config.attention_dim,
            readout_dim=config.readout_dim,
        )
        super().__init__(encoder, decoder, bos_id=BOS, eos_id=EOS)
        self.config = config
        self.columns = encoder.columns

    @property
    def column_encoder(self) -> ColumnEncoder:
        """The encoder, typed as the :class:`ColumnEncoder` it is."""
        encoder = self.encoder
        if not isinstance(encoder, ColumnEncoder):
            raise TypeError(f"AttentionReader.encoder must be a ColumnEncoder; got {type(encoder).__name__}")
        return encoder

    def column_lengths(self, n: int) -> Tensor:
        """``(n,)`` the number of columns ``S`` of whole strips."""
        return torch.full((n,), self.columns, dtype=torch.long)

    def strip_loss(self, images: Tensor, labels: Tensor, lengths: Tensor) -> Tensor:
        """Teacher-forced cross-entropy of strips ``(B, C, H, W)`` with digit ``labels (B, K)``."""
        tgt_in, tgt_out = strip_targets(labels.cpu(), lengths.cpu())
        device = images.device
        logits = self(images, self.column_lengths(len(images)).to(device), tgt_in.to(device))  # (B, K + 1, V)
        return sequence_loss(logits, tgt_out.to(device), PAD)

    def read(self, images: Tensor, max_len: int = 8) -> list[Hypothesis]:
        """Greedy reading of strips ``(B, C, H, W)``; each hypothesis's ``alignment`` is ``(n, S)``."""
        self.eval()
        flat = self.column_encoder.images(images).flatten(1)  # (B, C H W)
        return greedy_decode(self, flat, self.column_lengths(len(images)).to(images.device), max_len)

    def read_beam(self, image: Tensor, beam_size: int = 5, max_len: int = 8) -> Hypothesis:
        """Beam search on one strip ``(C, H, W)`` or ``(1, C, H, W)``."""
        self.eval()
        flat = self.column_encoder.images(image if image.dim() == 4 else image[None]).flatten(1)  # (1, C H W)
        return beam_search(self, flat, self.columns, beam_size=beam_size, max_len=max_len)

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


def train_reader(
    model: AttentionReader,
    images: Tensor,
    labels: Tensor,
    lengths: Tensor,
    *,
    steps: int,
    batch_size: int = 32,
    lr: float = 3e-3,
    seed: int = 0,
    device: Union[str, torch.device] = "cpu",
) -> History:
    """Adam on :meth:`AttentionReader.strip_loss` for ``steps`` minibatches (with
    :func:`attnlib.train.fit`; reshuffled each pass, drawn from a generator seeded with ``seed``)."""
    generator = torch.Generator().manual_seed(seed)
    batches: list[Any] = []
    while len(batches) < steps:
        batches += list(minibatches(images, labels, lengths, batch_size=batch_size, generator=generator))
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    return fit(
        model,
        optimizer,
        lambda _, b: model.strip_loss(*b),
        batches[:steps],
        device=device,
        clip_grad_norm=1.0,
        show_progress=False,
    )


def reading_scores(hypotheses: list[Hypothesis], labels: Tensor, lengths: Tensor) -> dict[str, float]:
    """Character accuracy (position by position, over the true characters) and sequence
    accuracy (the whole string right, length included) of greedy or beam readings."""
    if len(hypotheses) != labels.shape[0]:
        raise ValueError(f"need one hypothesis per strip: {labels.shape[0]}; got {len(hypotheses)}")
    right_chars = right_seqs = total = 0
    for hyp, row, n in zip(hypotheses, labels.tolist(), lengths.tolist()):
        read, truth = tokens_to_digits(hyp.tokens), row[:n]
        right_chars += sum(a == b for a, b in zip(read, truth))
        right_seqs += read == truth
        total += n
    return {"char_accuracy": right_chars / total, "seq_accuracy": right_seqs / len(hypotheses)}


def stack_alignments(hypotheses: list[Hypothesis], k: int) -> Tensor:
    """The first ``k`` rows of each hypothesis's alignment, ``(N, k, S)``; zero rows where a
    reading is shorter than ``k`` characters."""
    if not hypotheses or any(h.alignment is None for h in hypotheses):
        raise ValueError("stack_alignments needs a non-empty list of hypotheses with alignments")
    S = max(h.alignment.shape[1] for h in hypotheses if h.alignment is not None)
    out = torch.zeros(len(hypotheses), k, S)
    for i, h in enumerate(hypotheses):
        a = h.alignment
        if a is not None:
            rows = min(k, a.shape[0])
            out[i, :rows, : a.shape[1]] = a[:rows]  # (rows, S)
    return out
