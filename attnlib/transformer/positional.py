"""Position information for attention, which by itself ignores the order of its keys.

Three ways of telling a Transformer where each token is:

* **Sinusoidal** (Vaswani et al., 2017, "Attention is all you need", NeurIPS,
  arXiv:1706.03762, §3.5): a fixed vector added to the embedding of position ``pos``::

      PE[pos, 2i]   = sin(pos / base^(2i / D))
      PE[pos, 2i+1] = cos(pos / base^(2i / D)),      base = 10000

  Sines and cosines are *interleaved* (even features sines, odd features cosines), as in
  the paper.  Many codebases concatenate them instead (all sines, then all cosines); that
  is a fixed permutation of the features, which the first linear layer absorbs, so both
  work equally well, but their vectors differ.
* **Learned** (as in BERT and GPT-2): one trained vector per position, up to ``max_len``.
* **Rotary** (RoPE; Su et al., 2024, "RoFormer: enhanced Transformer with rotary position
  embedding", Neurocomputing 568, arXiv:2104.09864, eq. 34): queries and keys (not the
  values) are rotated, pair of features by pair of features, by an angle proportional to
  the position, ``theta_i = base^(-2i / d)``.  A rotation by ``m theta`` of the query and
  by ``n theta`` of the key leaves a dot product that depends on ``m - n`` only, so the
  scores see relative positions.  Pairing convention: *adjacent* features ``(x[2i],
  x[2i+1])`` form pair ``i``, as in the paper (GPT-NeoX and Llama pair ``x[i]`` with
  ``x[i + d/2]`` instead, a permutation of the features).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from .._checks import check_rank, shape_str

__all__ = [
    "sinusoidal_encoding",
    "SinusoidalPositionalEncoding",
    "LearnedPositionalEncoding",
    "RotaryEmbedding",
    "apply_rotary",
]


def _check_even(dim: int, name: str) -> None:
    if dim <= 0 or dim % 2 != 0:
        raise ValueError(f"{name} must be a positive even number (features come in pairs); got {dim}")


def sinusoidal_encoding(length: int, dim: int, base: float = 10000.0) -> Tensor:
    """The table of sinusoidal encodings, interleaved as in the paper.

    Args:
        length: number of positions ``T`` (positions ``0..T-1``).
        dim: ``D``, even.
        base: the wavelengths grow geometrically from ``2 pi`` to ``2 pi * base``.

    Returns:
        ``(T, D)`` float32: ``[pos, 2i] = sin(pos / base^(2i/D))``, ``[pos, 2i+1] = cos(...)``.

    Raises:
        ValueError: odd or non-positive ``dim``, negative ``length``.
    """
    _check_even(dim, "dim")
    if length < 0:
        raise ValueError(f"length must be >= 0; got {length}")
    position = torch.arange(length, dtype=torch.float64)[:, None]  # (T, 1)
    inv_freq = base ** (-torch.arange(0, dim, 2, dtype=torch.float64) / dim)  # (D/2,)
    angles = position * inv_freq  # (T, D/2)
    table = torch.stack([angles.sin(), angles.cos()], dim=-1)  # (T, D/2, 2)
    return table.reshape(length, dim).float()  # (T, D): sin, cos, sin, cos, ...


def _check_positions(x: Tensor, dim: int, offset: int, max_len: int) -> None:
    check_rank(x, "x", 3, f"(B, T, D={dim})")
    if x.shape[-1] != dim:
        raise ValueError(f"x must have D = {dim} features, shape (B, T, {dim}); got {shape_str(x.shape)}")
    if offset < 0 or offset + x.shape[1] > max_len:
        raise ValueError(
            f"positions offset..offset+T-1 = {offset}..{offset + x.shape[1] - 1} must lie below max_len = {max_len}"
        )


class SinusoidalPositionalEncoding(nn.Module):
    """Adds :func:`sinusoidal_encoding` to a sequence, then dropout (the paper: 0.1).

    The Transformer multiplies its embeddings by ``sqrt(D)`` before this, so that
    embeddings initialised with small entries are not drowned by encodings of size ~1.

    Args:
        dim: ``D``.
        max_len: the longest sequence (the table is precomputed up to it).
        dropout: dropout after the addition.
        base: see :func:`sinusoidal_encoding`.
    """

    table: Tensor  # (max_len, D), a buffer

    def __init__(self, dim: int, max_len: int = 1024, dropout: float = 0.0, base: float = 10000.0) -> None:
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.register_buffer("table", sinusoidal_encoding(max_len, dim, base), persistent=False)  # (max_len, D)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``x (B, T, D)`` plus the encodings of positions ``offset..offset+T-1`` (the
        offset serves cached decoding, which feeds one new token at a time)."""
        _check_positions(x, self.dim, offset, self.max_len)
        return self.dropout(x + self.table[offset : offset + x.shape[1]].to(x.dtype))  # (B, T, D)


class LearnedPositionalEncoding(nn.Module):
    """Adds a trained vector per position (initialised ``N(0, 0.02^2)``, as GPT-2), then dropout.

    Args:
        dim: ``D``.
        max_len: number of positions that have a vector; longer sequences are an error.
        dropout: dropout after the addition.
    """

    def __init__(self, dim: int, max_len: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.dim, self.max_len = dim, max_len
        self.embedding = nn.Embedding(max_len, dim)  # (max_len, D)
        nn.init.normal_(self.embedding.weight, std=0.02)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """``x (B, T, D)`` plus the vectors of positions ``offset..offset+T-1``."""
        _check_positions(x, self.dim, offset, self.max_len)
        positions = torch.arange(offset, offset + x.shape[1], device=x.device)  # (T,)
        return self.dropout(x + self.embedding(positions).to(x.dtype))  # (B, T, D)


def apply_rotary(x: Tensor, cos: Tensor, sin: Tensor) -> Tensor:
    """Rotate each adjacent pair of features ``(x[2i], x[2i+1])`` by the angle whose cosine
    and sine are given.

    Args:
        x: ``(..., T, d)``, ``d`` even.
        cos, sin: ``(T, d/2)``, broadcast over the leading dimensions.

    Returns:
        ``(..., T, d)``: ``[x0 cos - x1 sin, x0 sin + x1 cos]`` for every pair.
    """
    pairs = x.unflatten(-1, (-1, 2))  # (..., T, d/2, 2)
    x0, x1 = pairs[..., 0], pairs[..., 1]  # (..., T, d/2) each
    rotated = torch.stack([x0 * cos - x1 * sin, x0 * sin + x1 * cos], dim=-1)  # (..., T, d/2, 2)
    return rotated.flatten(-2)  # (..., T, d)


class RotaryEmbedding(nn.Module):
    """Rotary position embedding (RoPE) for per-head queries or keys.

    Applied to queries and keys after their projection, before the scores; not to values.

    Args:
        head_dim: ``d``, the features per head (even).
        base: ``theta_i = base^(-2i/d)``; the paper: 10000.
    """

    inv_freq: Tensor  # (d/2,), a buffer

    def __init__(self, head_dim: int, base: float = 10000.0) -> None:
        super().__init__()
        _check_even(head_dim, "head_dim")
        self.head_dim = head_dim
        inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)  # (d/2,)
        self.register_buffer("inv_freq", inv_freq.float(), persistent=False)

    def cos_sin(
        self, length: int, offset: int = 0, device: torch.device | None = None, dtype: torch.dtype = torch.float32
    ) -> tuple[Tensor, Tensor]:
        """``cos`` and ``sin`` tables ``(T, d/2)`` for positions ``offset..offset+T-1``."""
        position = torch.arange(offset, offset + length, device=self.inv_freq.device, dtype=torch.float32)  # (T,)
        angles = position[:, None] * self.inv_freq[None, :]  # (T, d/2)
        return angles.cos().to(device=device, dtype=dtype), angles.sin().to(device=device, dtype=dtype)

    def forward(self, x: Tensor, offset: int = 0) -> Tensor:
        """Rotate ``x (B, H, T, d)`` as if its tokens sat at positions ``offset..offset+T-1``.

        Raises:
            ValueError: ``x`` not 4-D or its last dimension not ``head_dim``.
        """
        check_rank(x, "x", 4, f"(B, H, T, d={self.head_dim})")
        if x.shape[-1] != self.head_dim:
            raise ValueError(f"x must have d = {self.head_dim} features per head; got shape {shape_str(x.shape)}")
        cos, sin = self.cos_sin(x.shape[2], offset, device=x.device, dtype=x.dtype)  # (T, d/2) x 2
        return apply_rotary(x, cos, sin)  # (B, H, T, d)
