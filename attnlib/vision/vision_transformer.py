"""A small Vision Transformer, and attention rollout to see what its class token reads.

Dosovitskiy et al., "An Image is Worth 16x16 Words: Transformers for Image Recognition at
Scale", ICLR 2021 (arXiv:2010.11929), section 3.1 and eq. 1-4:

* the image ``(B, C, H, W)`` is cut into ``N = (H / P) (W / P)`` patches of ``P x P``
  pixels; each is flattened and projected linearly to ``D`` dimensions (a convolution with
  kernel and stride ``P`` does both at once);
* a learned **class token** is prepended, and learned **position embeddings**
  ``(1, N + 1, D)`` are added: ``z_0 = [x_class; x_1 E; ...; x_N E] + E_pos``;
* ``L`` pre-norm encoder blocks: ``z' = z + MSA(LN(z))``, ``z = z' + MLP(LN(z'))``, where
  MSA is multi-head scaled dot-product attention (Vaswani et al., 2017) and the MLP has
  one GELU hidden layer;
* the class token's final state, layer-normed, goes through a linear classifier.

Each block's attention calls :func:`attnlib.functional.scaled_dot_product_attention` and
emits its weights ``(B, heads, T, T)`` with ``T = N + 1`` (token 0 is the class token,
tokens ``1..N`` the patches in row-major order).  While no recorder listens it asks for no
weights and takes torch's fused kernel.

**Attention rollout** (Abnar & Zuidema, "Quantifying Attention Flow in Transformers", ACL
2020, arXiv:2005.00928, section 3): to account for the residual connections, each layer's
head-averaged attention ``A_l`` becomes ``A'_l = normalise_rows(A_l + I)``; the rollout is
the product ``R = A'_L A'_{L-1} ... A'_1`` (``(B, T, T)``): how much each output token
draws, through all layers, on each input token.  :func:`attention_rollout` computes it and
:func:`class_token_map` turns the class token's row into a ``(B, H/P, W/P)`` picture.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import torch
from torch import Tensor, nn

from attnlib._checks import check_rank, shape_str
from attnlib.functional import scaled_dot_product_attention
from attnlib.record import emit, is_recording

__all__ = [
    "ViTConfig",
    "PatchEmbedding",
    "ViTAttention",
    "ViTBlock",
    "VisionTransformer",
    "ViT",
    "attention_rollout",
    "class_token_map",
]


@dataclass(frozen=True)
class ViTConfig:
    """A ViT small enough to train on MNIST-sized images on a CPU (the paper's ViT-Base
    has ``P = 16``, ``D = 768``, 12 layers, 12 heads, MLP 3072)."""

    image_size: Union[int, tuple[int, int]] = 28  # MNIST / Fashion-MNIST
    patch_size: int = 7  # 4 x 4 = 16 patches of 7 x 7 pixels
    in_channels: int = 1  # grey images
    num_classes: int = 10
    dim: int = 64  # D, the token width
    depth: int = 4  # L encoder blocks
    heads: int = 4  # 16 dimensions per head
    mlp_ratio: float = 2.0  # hidden width / D (4 in the paper; 2 is enough this small)
    dropout: float = 0.0  # the paper uses 0.1 for its largest training sets only

    @property
    def grid(self) -> tuple[int, int]:
        """``(H / P, W / P)``: patches per column and per row."""
        h, w = (self.image_size, self.image_size) if isinstance(self.image_size, int) else self.image_size
        if h % self.patch_size or w % self.patch_size:
            raise ValueError(f"image_size must be divisible by patch_size={self.patch_size}; got {(h, w)}")
        return h // self.patch_size, w // self.patch_size


class PatchEmbedding(nn.Module):
    """Cut ``(B, C, H, W)`` into ``P x P`` patches and project each to ``D``: ``(B, N, D)``."""

    def __init__(self, in_channels: int, dim: int, patch_size: int) -> None:
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, dim, kernel_size=patch_size, stride=patch_size)

    def forward(self, x: Tensor) -> Tensor:
        check_rank(x, "x", 4, "(B, C, H, W)")
        P = self.patch_size
        if x.shape[-2] % P or x.shape[-1] % P:
            raise ValueError(
                f"image height and width must be divisible by the patch size {P}; got shape {shape_str(x.shape)}"
            )
        return self.proj(x).flatten(2).transpose(1, 2)  # (B, D, H/P, W/P) -> (B, N, D)


class ViTAttention(nn.Module):
    """Multi-head self-attention that emits its weights ``(B, heads, T, T)``."""

    def __init__(self, dim: int, heads: int, dropout: float = 0.0) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"dim must be divisible by heads; got dim={dim}, heads={heads}")
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.out = nn.Linear(dim, dim)
        self.dropout = dropout

    def forward(self, x: Tensor) -> Tensor:
        B, T, D = x.shape
        H = self.heads
        q, k, v = self.qkv(x).view(B, T, 3, H, D // H).permute(2, 0, 3, 1, 4)  # each (B, H, T, d)
        p = self.dropout if self.training else 0.0
        out, weights = scaled_dot_product_attention(q, k, v, dropout_p=p, need_weights=is_recording(self))
        if weights is not None:
            emit(self, weights)  # (B, H, T, T)
        return self.out(out.transpose(1, 2).reshape(B, T, D))  # (B, H, T, d) -> (B, T, D)


class ViTBlock(nn.Module):
    """Pre-norm encoder block: ``z + MSA(LN(z))``, then ``+ MLP(LN(.))``."""

    def __init__(self, dim: int, heads: int, mlp_ratio: float = 4.0, dropout: float = 0.0) -> None:
        super().__init__()
        hidden = int(dim * mlp_ratio)
        self.norm1 = nn.LayerNorm(dim)
        self.attn = ViTAttention(dim, heads, dropout)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = nn.Sequential(
            nn.Linear(dim, hidden), nn.GELU(), nn.Dropout(dropout), nn.Linear(hidden, dim), nn.Dropout(dropout)
        )

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(self.norm1(x))  # (B, T, D)
        return x + self.mlp(self.norm2(x))  # (B, T, D)


class VisionTransformer(nn.Module):
    """ViT classifier.  Input ``(B, C, H, W)`` -> logits ``(B, num_classes)``.

    Records: ``blocks.<l>.attn`` emits ``(B, heads, T, T)``, ``T = N + 1``, for ``l = 0..L-1``.
    """

    def __init__(self, config: ViTConfig = ViTConfig()) -> None:
        super().__init__()
        self.config = config
        gh, gw = config.grid
        self.patches = PatchEmbedding(config.in_channels, config.dim, config.patch_size)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, config.dim))
        self.pos_embedding = nn.Parameter(torch.randn(1, gh * gw + 1, config.dim) * 0.02)
        self.blocks = nn.ModuleList(
            ViTBlock(config.dim, config.heads, config.mlp_ratio, config.dropout) for _ in range(config.depth)
        )
        self.norm = nn.LayerNorm(config.dim)
        self.head = nn.Linear(config.dim, config.num_classes)

    def tokens(self, x: Tensor) -> Tensor:
        """The token sequence ``(B, T, D)`` after the last block (before the final norm)."""
        check_rank(x, "x", 4, "(B, C, H, W)")
        gh, gw = self.config.grid
        P = self.config.patch_size
        expected = (self.config.in_channels, gh * P, gw * P)
        if tuple(x.shape[1:]) != expected:
            raise ValueError(
                f"x must have shape (B, C, H, W) = (B, {expected[0]}, {expected[1]}, {expected[2]}); "
                f"got {shape_str(x.shape)}"
            )
        z = self.patches(x)  # (B, N, D)
        z = torch.cat([self.cls_token.expand(len(z), -1, -1), z], dim=1) + self.pos_embedding  # (B, T, D)
        for block in self.blocks:
            z = block(z)  # (B, T, D)
        return z

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.norm(self.tokens(x))[:, 0])  # class token -> (B, num_classes)


def attention_rollout(maps: Sequence[Tensor], head_fusion: str = "mean", add_residual: bool = True) -> Tensor:
    """Attention rollout of Abnar & Zuidema (2020) through a stack of layers.

    Args:
        maps: one ``(B, H, T, T)`` attention map per layer, first layer first (rows sum to 1).
        head_fusion: how heads are combined: ``"mean"`` (the paper), ``"max"`` or ``"min"``.
        add_residual: add the identity for the residual connection before renormalising
            the rows (the paper); ``False`` multiplies the raw maps.

    Returns:
        ``(B, T, T)``: ``R = A'_L ... A'_1``; row ``i`` says how much output token ``i``
        draws on each input token.  Rows sum to 1.

    Raises:
        ValueError: no maps, a map that is not ``(B, H, T, T)``, maps of different shapes,
            or an unknown ``head_fusion``.
    """
    if len(maps) == 0:
        raise ValueError("maps must hold at least one (B, H, T, T) attention map")
    fuse = {"mean": lambda a: a.mean(dim=1), "max": lambda a: a.amax(dim=1), "min": lambda a: a.amin(dim=1)}
    if head_fusion not in fuse:
        raise ValueError(f"head_fusion must be 'mean', 'max' or 'min'; got {head_fusion!r}")
    first = maps[0]
    for i, a in enumerate(maps):
        check_rank(a, f"maps[{i}]", 4, "(B, H, T, T)")
        if a.shape[-1] != a.shape[-2] or a.shape[0] != first.shape[0] or a.shape[-1] != first.shape[-1]:
            raise ValueError(
                f"maps[{i}] must have shape (B, H, T, T) like maps[0] {shape_str(first.shape)}; "
                f"got {shape_str(a.shape)}"
            )
    T = first.shape[-1]
    eye = torch.eye(T, dtype=first.dtype, device=first.device)
    rollout = eye.expand(first.shape[0], T, T)  # (B, T, T)
    for a in maps:
        layer = fuse[head_fusion](a)  # (B, T, T)
        if add_residual:
            layer = layer + eye
        layer = layer / layer.sum(dim=-1, keepdim=True)  # rows sum to 1
        rollout = layer @ rollout  # (B, T, T): this layer after the ones before
    return rollout


def class_token_map(attention: Tensor, grid: tuple[int, int]) -> Tensor:
    """What the class token (token 0) attends to, as a picture over the patch grid.

    Args:
        attention: ``(B, T, T)`` (a rollout or a head-averaged map), ``T = 1 + h * w``.
        grid: ``(h, w)`` patches per column and row.

    Returns:
        ``(B, h, w)``: row 0 without its class-token column, renormalised to sum to 1.
    """
    check_rank(attention, "attention", 3, "(B, T, T)")
    h, w = grid
    if attention.shape[-1] != 1 + h * w:
        raise ValueError(
            f"attention must have T = 1 + h * w = {1 + h * w} tokens; got shape {shape_str(attention.shape)}"
        )
    row = attention[:, 0, 1:]  # (B, h*w)
    row = row / row.sum(dim=-1, keepdim=True).clamp_min(1e-12)
    return row.view(-1, h, w)  # (B, h, w)


ViT = VisionTransformer
"""The paper's short name for :class:`VisionTransformer` (Dosovitskiy et al. 2021)."""
