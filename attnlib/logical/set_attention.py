"""Set attention: the Set Transformer's blocks, attention that is blind to order.

Lee, Lee, Kim, Kosiorek, Choi & Teh (2019), "Set Transformer: A Framework for
Attention-based Permutation-Invariant Neural Networks", ICML, arXiv:1810.00825.  With
multi-head attention ``MHA(Q, K, V)`` (:class:`attnlib.transformer.mha.MultiHeadAttention`) and a
row-wise feed-forward layer ``rFF``, their Eqs. 6-11::

    MAB(X, Y) = LN(H + rFF(H)),  H = LN(X + MHA(X, Y, Y))   # X (B, n, D), Y (B, m, D) -> (B, n, D)
    SAB(X)    = MAB(X, X)                                   # every element attends to every element
    ISAB_m(X) = MAB(X, H),  H = MAB(I, X)                   # m learned inducing points I (m, D), Eqs. 9-10
    PMA_k(Z)  = MAB(S, rFF(Z))                              # k learned seeds S (k, D) attend to the set

A stack of SABs is *permutation-equivariant* (permuting the elements permutes the output
rows) and PMA is *permutation-invariant*, so ``PMA(SAB(SAB(X)))`` gives the same answer for
every order of the set.  That is what it can do: relations between elements (pairs in one
SAB, pairs of pairs in two) without caring how the set was listed.  What it cannot do is
anything that depends on the order: "is the list sorted?" has one answer per set, however
the elements come.  Composing blocks is the "logical" side of attention: each SAB relates
elements, PMA pools them by learned queries.

SAB compares every element with every other: ``O(n^2 D)`` work and an ``(B, heads, n, n)``
weight tensor.  ISAB (the induced set attention block) routes the comparison through ``m``
learned inducing points: the points attend to the set (``H (B, m, D)``, a summary of it), then
the set attends to the summary, two attentions of ``n x m`` weights, ``O(n m D)`` work.  It is
still permutation-equivariant (``I`` does not depend on the order), but every relation between
two elements must pass through ``m`` vectors: a low-rank bottleneck the paper trades for cost
(``benchmarks/set_attention.py`` measures it).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from attnlib._checks import check_floating, check_rank, shape_str
from attnlib.transformer import MultiHeadAttention

__all__ = ["MAB", "SAB", "ISAB", "PMA", "SetTransformerConfig", "SetTransformer"]


class MAB(nn.Module):
    """Multihead attention block ``MAB(X, Y)`` (Lee et al., 2019, Eq. 6).

    Args:
        dim: ``D``; ``num_heads`` must divide it.
        num_heads: heads of the attention.

    Its :class:`~attnlib.transformer.mha.MultiHeadAttention` (``.attention``) emits per-head
    weights ``(B, heads, n, m)`` to :mod:`attnlib.record`.
    """

    def __init__(self, dim: int, num_heads: int = 4) -> None:
        super().__init__()
        self.dim = dim
        self.attention = MultiHeadAttention(dim, num_heads)
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))  # rFF

    def forward(self, x: Tensor, y: Tensor) -> Tensor:
        """``x (B, n, D)`` attends to ``y (B, m, D)`` -> ``(B, n, D)``."""
        check_rank(x, "x", 3, "(B, n, D)")
        check_rank(y, "y", 3, "(B, m, D)")
        check_floating(x, "x")
        if x.shape[2] != self.dim or y.shape[2] != self.dim or x.shape[0] != y.shape[0]:
            raise ValueError(
                f"x and y must be (B, n, {self.dim}) and (B, m, {self.dim}) with the same B; "
                f"got x {shape_str(x.shape)}, y {shape_str(y.shape)}"
            )
        attended, _ = self.attention(x, y, y)  # (B, n, D)
        h = self.norm1(x + attended)
        return self.norm2(h + self.ff(h))


class SAB(nn.Module):
    """Set attention block ``SAB(X) = MAB(X, X)`` (Eq. 8): ``(B, n, D) -> (B, n, D)``, permutation-equivariant."""

    def __init__(self, dim: int, num_heads: int = 4) -> None:
        super().__init__()
        self.mab = MAB(dim, num_heads)

    def forward(self, x: Tensor) -> Tensor:
        return self.mab(x, x)


class ISAB(nn.Module):
    """Induced set attention block ``ISAB_m(X) = MAB(X, H)``, ``H = MAB(I, X)`` (Eqs. 9-10):
    ``(B, n, D) -> (B, n, D)``, permutation-equivariant, ``O(n m)`` attention weights instead of ``O(n^2)``.

    Args:
        dim: ``D``; ``num_heads`` must divide it.
        num_inducing: ``m >= 1``, the number of learned inducing points ``I (m, D)``.
        num_heads: heads of both attentions.

    ``.inducing`` is ``I``; ``.summarise`` is ``MAB(I, X)`` (weights ``(B, heads, m, n)``) and
    ``.broadcast`` is ``MAB(X, H)`` (weights ``(B, heads, n, m)``); both emit to :mod:`attnlib.record`.
    """

    def __init__(self, dim: int, num_inducing: int, num_heads: int = 4) -> None:
        super().__init__()
        if num_inducing < 1:
            raise ValueError(f"num_inducing must be positive; got {num_inducing}")
        self.inducing = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_inducing, dim)))  # I (m, D)
        self.summarise = MAB(dim, num_heads)  # H = MAB(I, X)
        self.broadcast = MAB(dim, num_heads)  # MAB(X, H)

    def forward(self, x: Tensor) -> Tensor:
        """``x (B, n, D)`` -> ``(B, n, D)``."""
        check_rank(x, "x", 3, "(B, n, D)")
        inducing = self.inducing[None].expand(x.shape[0], -1, -1)  # (B, m, D)
        h = self.summarise(inducing, x)  # (B, m, D)
        return self.broadcast(x, h)  # (B, n, D)


class PMA(nn.Module):
    """Pooling by multihead attention ``PMA_k(Z) = MAB(S, rFF(Z))`` (Eq. 11): ``(B, n, D) -> (B, k, D)``,
    permutation-invariant; ``k`` learned seed vectors are the queries."""

    def __init__(self, dim: int, num_seeds: int = 1, num_heads: int = 4) -> None:
        super().__init__()
        if num_seeds < 1:
            raise ValueError(f"num_seeds must be positive; got {num_seeds}")
        self.seeds = nn.Parameter(nn.init.xavier_uniform_(torch.empty(num_seeds, dim)))  # S (k, D)
        self.ff = nn.Sequential(nn.Linear(dim, dim), nn.ReLU(), nn.Linear(dim, dim))
        self.mab = MAB(dim, num_heads)

    def forward(self, z: Tensor) -> Tensor:
        check_rank(z, "z", 3, "(B, n, D)")
        seeds = self.seeds[None].expand(z.shape[0], -1, -1)  # (B, k, D)
        return self.mab(seeds, self.ff(z))


@dataclass(frozen=True)
class SetTransformerConfig:
    """Sizes of :class:`SetTransformer`.

    Attributes:
        in_features: size of each element.
        dim: ``D``.
        num_heads: heads per attention.
        num_sab: set attention blocks in the encoder (0 = pool the embedded elements directly).
        num_outputs: outputs of the final linear layer (classes).
        num_inducing: 0 for SABs in the encoder; ``m >= 1`` for ISAB_m blocks instead (the
            encoder then has ``num_sab`` ISABs).
    """

    in_features: int = 1
    dim: int = 64
    num_heads: int = 4
    num_sab: int = 2
    num_outputs: int = 2
    num_inducing: int = 0


class SetTransformer(nn.Module):
    """``Linear -> SAB x num_sab -> PMA_1 -> Linear`` (ISAB_m instead of SAB when ``num_inducing = m > 0``):
    a set ``(B, n, in_features)`` -> ``(B, num_outputs)``."""

    def __init__(self, config: SetTransformerConfig = SetTransformerConfig()) -> None:
        super().__init__()
        if config.num_inducing < 0 or config.num_sab < 0:
            raise ValueError(
                f"num_inducing and num_sab must be non-negative; got {config.num_inducing}, {config.num_sab}"
            )
        self.config = config
        self.embed = nn.Linear(config.in_features, config.dim)

        def block() -> nn.Module:
            if config.num_inducing:
                return ISAB(config.dim, config.num_inducing, config.num_heads)
            return SAB(config.dim, config.num_heads)

        self.encoder = nn.Sequential(*(block() for _ in range(config.num_sab)))
        self.pool = PMA(config.dim, 1, config.num_heads)
        self.out = nn.Linear(config.dim, config.num_outputs)

    def forward(self, x: Tensor) -> Tensor:
        check_rank(x, "x", 3, "(B, n, in_features)")
        if x.shape[2] != self.config.in_features:
            raise ValueError(f"x must be (B, n, {self.config.in_features}); got {shape_str(x.shape)}")
        z = self.encoder(self.embed(x))  # (B, n, D)
        return self.out(self.pool(z)[:, 0])  # (B, num_outputs)
