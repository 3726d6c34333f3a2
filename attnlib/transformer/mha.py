"""Multi-head attention (Vaswani et al., 2017, "Attention is all you need", NeurIPS, arXiv:1706.03762, §3.2.2).

Each of ``h`` heads projects the queries, keys and values to ``d = E / h`` features with
its own matrices, runs scaled dot-product attention, and the heads' outputs are
concatenated and projected back to ``E`` features::

    head_i = softmax(Q W_i^Q (K W_i^K)^T / sqrt(d) + mask) V W_i^V       (T, d)
    MultiHead(Q, K, V) = concat(head_1, ..., head_h) W^O                 (T, E)

The ``h`` matrices ``W_i^Q`` (``E x d`` each) are stored side by side as one ``E x E``
linear layer, so one matrix product projects every head at once and a reshape splits the
result into ``(B, H, T, d)``.  The same holds for keys, values and the output.

Two paths compute the same thing (tested to agree): the fused kernel
:func:`torch.nn.functional.scaled_dot_product_attention` when no weights are needed, and
:func:`attnlib.functional.scaled_dot_product_attention`, which also returns the weights,
when ``need_weights=True`` or while :func:`attnlib.record.record_attention` is listening.
The module emits the per-head weights ``(B, H, T, S)`` to :mod:`attnlib.record`.

Differences from :class:`torch.nn.MultiheadAttention` (with ``batch_first=True``), which
otherwise computes the same numbers with the same weights (:meth:`MultiHeadAttention.from_torch`):

* ``key_padding_mask`` follows attnlib's convention, ``True`` = a real key that may be
  attended; torch's uses ``True`` = padding.  Convert with ``~torch_mask``.
* ``attn_mask`` is boolean ``True`` = may attend (torch: ``True`` = blocked) and has shape
  ``(T, S)``, ``(B, T, S)`` or ``(B, H, T, S)`` (torch: ``(T, S)`` or ``(B * H, T, S)``).
* ``is_causal=True`` applies the causal mask itself (torch treats it as a hint about
  ``attn_mask``); it combines with the other masks.
* A query whose keys are all blocked gets zero weights and a zero attention output (so
  the module returns ``out_proj.bias``), where torch returns NaN.
"""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

from .._checks import check_floating, check_rank, check_same_dtype, shape_str
from ..functional import scaled_dot_product_attention
from ..masks import causal_mask, combine_masks
from ..record import emit, is_recording

__all__ = ["MultiHeadAttention"]


class MultiHeadAttention(nn.Module):
    """Multi-head scaled dot-product attention, batch first, with recordable weights.

    Args:
        embed_dim: ``E``, the size of queries and of the output.
        num_heads: ``H``; ``E`` must be divisible by it (each head has ``d = E / H``).
        dropout: dropout on the attention weights, active in ``train()`` mode only.
        bias: add biases to the four projections.
        kdim: size of the keys (defaults to ``E``).
        vdim: size of the values (defaults to ``E``).

    Raises:
        ValueError: ``embed_dim`` not divisible by ``num_heads``, or a non-positive size.
    """

    def __init__(
        self,
        embed_dim: int,
        num_heads: int,
        dropout: float = 0.0,
        bias: bool = True,
        kdim: int | None = None,
        vdim: int | None = None,
    ) -> None:
        super().__init__()
        if embed_dim <= 0 or num_heads <= 0:
            raise ValueError(
                f"embed_dim and num_heads must be positive; got embed_dim={embed_dim}, num_heads={num_heads}"
            )
        if embed_dim % num_heads != 0:
            raise ValueError(
                f"embed_dim must be divisible by num_heads (each head gets embed_dim / num_heads features); "
                f"got embed_dim={embed_dim}, num_heads={num_heads}"
            )
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must lie in [0, 1); got {dropout}")
        self.embed_dim = embed_dim
        self.num_heads = num_heads
        self.head_dim = embed_dim // num_heads
        self.kdim = embed_dim if kdim is None else kdim
        self.vdim = embed_dim if vdim is None else vdim
        self.dropout = dropout
        self.q_proj = nn.Linear(embed_dim, embed_dim, bias=bias)  # W^Q of all heads, side by side
        self.k_proj = nn.Linear(self.kdim, embed_dim, bias=bias)  # W^K
        self.v_proj = nn.Linear(self.vdim, embed_dim, bias=bias)  # W^V
        self.out_proj = nn.Linear(embed_dim, embed_dim, bias=bias)  # W^O
        self._reset_parameters()

    def _reset_parameters(self) -> None:
        # As torch.nn.MultiheadAttention: Xavier-uniform projections, zero biases.
        for proj in (self.q_proj, self.k_proj, self.v_proj):
            nn.init.xavier_uniform_(proj.weight)
            if proj.bias is not None:
                nn.init.zeros_(proj.bias)
        if self.out_proj.bias is not None:
            nn.init.zeros_(self.out_proj.bias)

    # ------------------------------------------------------------------ building blocks
    def split_heads(self, x: Tensor) -> Tensor:
        """``(B, T, E)`` -> ``(B, H, T, d)``."""
        B, T, _ = x.shape
        return x.view(B, T, self.num_heads, self.head_dim).transpose(1, 2)  # (B, H, T, d)

    def project_query(self, query: Tensor) -> Tensor:
        """Queries ``(B, T, E)`` -> per-head queries ``(B, H, T, d)``."""
        return self.split_heads(self.q_proj(query))  # (B, H, T, d)

    def project_key_value(self, key: Tensor, value: Tensor) -> tuple[Tensor, Tensor]:
        """Keys ``(B, S, kdim)`` and values ``(B, S, vdim)`` -> two ``(B, H, S, d)`` tensors
        (what a KV cache stores)."""
        return self.split_heads(self.k_proj(key)), self.split_heads(self.v_proj(value))  # (B, H, S, d) x 2

    def attend(
        self,
        q: Tensor,
        k: Tensor,
        v: Tensor,
        mask: Optional[Tensor] = None,
        is_causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Attention over already projected heads, then the output projection.

        Args:
            q: ``(B, H, T, d)``; k, v: ``(B, H, S, d)``.
            mask: boolean (True = may attend) or additive float mask broadcastable to
                ``(B, H, T, S)``; rows that block every key give zero weights and a zero
                attention output.
            is_causal: top-left-aligned causal mask (only without ``mask``).
            need_weights: also return the weights (and use attnlib's reference path).

        Returns:
            ``(output (B, T, E), weights (B, H, T, S) or None)``.  The weights are emitted to
            :mod:`attnlib.record` whenever a recorder listens.
        """
        B, H, T, d = q.shape
        dropout_p = self.dropout if self.training else 0.0
        recording = is_recording(self)
        out, weights = scaled_dot_product_attention(
            q,
            k,
            v,
            attn_mask=mask,
            dropout_p=dropout_p,
            is_causal=is_causal,
            need_weights=need_weights or recording,
        )  # (B, H, T, d), (B, H, T, S) or None; rows that see no key are zero on both paths
        if weights is not None and recording:
            emit(self, weights)
        out = out.transpose(1, 2).reshape(B, T, H * d)  # (B, T, E): heads concatenated
        return self.out_proj(out), weights  # (B, T, E)

    # ------------------------------------------------------------------ the module
    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Optional[Tensor] = None,
        attn_mask: Optional[Tensor] = None,
        need_weights: bool = False,
        average_attn_weights: bool = True,
        is_causal: bool = False,
    ) -> tuple[Tensor, Optional[Tensor]]:
        """Attend from every query to the keys.

        Args:
            query: ``(B, T, E)``.
            key: ``(B, S, kdim)``.
            value: ``(B, S, vdim)``.
            key_padding_mask: ``(B, S)``, boolean ``True`` = a real key that may be
                attended (the *opposite* of torch's ``key_padding_mask``; from a torch
                mask use ``~torch_mask``, from lengths :func:`attnlib.masks.lengths_to_mask`),
                or float, added to the scores.
            attn_mask: ``(T, S)``, ``(B, T, S)`` or ``(B, H, T, S)``, boolean ``True`` =
                may attend, or float of ``query``'s dtype, added to the scores.
            need_weights: return the attention weights (reference path); otherwise the
                fused kernel runs and ``None`` is returned.
            average_attn_weights: return weights averaged over heads ``(B, T, S)``
                rather than per head ``(B, H, T, S)``.
            is_causal: query ``i`` may attend to keys ``0..i`` only (combined with the masks).

        Returns:
            ``(output (B, T, E), weights or None)``.  Per-head weights ``(B, H, T, S)`` are
            emitted to :mod:`attnlib.record` whenever a recorder listens.

        Raises:
            ValueError: wrong ranks or sizes, mixed dtypes, or masks of the wrong shape or dtype.
        """
        check_rank(query, "query", 3, "(B, T, E)")
        check_rank(key, "key", 3, "(B, S, kdim)")
        check_rank(value, "value", 3, "(B, S, vdim)")
        check_floating(query, "query")
        check_same_dtype({"query": query, "key": key, "value": value})
        B, T, E = query.shape
        S = key.shape[1]
        expected = {
            "query": (query, (B, T, self.embed_dim)),
            "key": (key, (B, S, self.kdim)),
            "value": (value, (B, S, self.vdim)),
        }
        for name, (x, shape) in expected.items():
            if tuple(x.shape) != shape:
                raise ValueError(
                    f"{name} must have shape {shape_str(shape)} (B={B} from query, S={S} from key, "
                    f"embed_dim={self.embed_dim}, kdim={self.kdim}, vdim={self.vdim}); got {shape_str(x.shape)}"
                )
        mask = self._combine_masks(key_padding_mask, attn_mask, is_causal, B, T, S, query)
        q = self.project_query(query)  # (B, H, T, d)
        k, v = self.project_key_value(key, value)  # (B, H, S, d) x 2
        only_causal = is_causal and mask is None
        out, weights = self.attend(q, k, v, mask=mask, is_causal=only_causal, need_weights=need_weights)
        if weights is None:  # need_weights=False
            return out, None
        return out, weights.mean(dim=1) if average_attn_weights else weights  # (B, T, S) or (B, H, T, S)

    def _combine_masks(
        self,
        key_padding_mask: Optional[Tensor],
        attn_mask: Optional[Tensor],
        is_causal: bool,
        B: int,
        T: int,
        S: int,
        query: Tensor,
    ) -> Optional[Tensor]:
        """One mask broadcastable to ``(B, H, T, S)``, or None when there is nothing to mask
        but causality (then the kernel's own ``is_causal`` is used)."""
        H = self.num_heads
        if key_padding_mask is not None and tuple(key_padding_mask.shape) != (B, S):
            raise ValueError(
                f"key_padding_mask must have shape (B, S) = {shape_str((B, S))} (True = a real key); "
                f"got {shape_str(key_padding_mask.shape)}"
            )
        allowed = {2: (T, S), 3: (B, T, S), 4: (B, H, T, S)}
        if attn_mask is not None and tuple(attn_mask.shape) != allowed.get(attn_mask.dim()):
            raise ValueError(
                f"attn_mask must have shape (T, S) = {shape_str((T, S))}, (B, T, S) = {shape_str((B, T, S))} "
                f"or (B, H, T, S) = {shape_str((B, H, T, S))}; got {shape_str(attn_mask.shape)}"
            )
        if key_padding_mask is None and attn_mask is None:
            return None  # causality alone goes to the kernel as is_causal
        return combine_masks(
            {
                "key_padding_mask": None
                if key_padding_mask is None
                else key_padding_mask[:, None, None, :],  # (B,1,1,S)
                "attn_mask": attn_mask[:, None] if attn_mask is not None and attn_mask.dim() == 3 else attn_mask,
                "causal mask": causal_mask(T, S, device=query.device) if is_causal else None,  # (T, S)
            },
            dtype=query.dtype,
        )  # broadcasts to (B, H, T, S)

    # ------------------------------------------------------------------ torch interop
    @torch.no_grad()
    def load_torch_weights(self, module: nn.MultiheadAttention) -> "MultiHeadAttention":
        """Copy the weights of a :class:`torch.nn.MultiheadAttention` of the same sizes.

        Handles both of torch's layouts: one packed ``in_proj_weight (3E, E)`` when keys and
        values have ``E`` features, separate ``q/k/v_proj_weight`` otherwise.

        Raises:
            ValueError: different sizes, or options attnlib does not implement
                (``add_bias_kv``, ``add_zero_attn``).
        """
        if not isinstance(module, nn.MultiheadAttention):
            raise ValueError(f"module must be a torch.nn.MultiheadAttention; got {type(module).__name__}")
        ours = (self.embed_dim, self.num_heads, self.kdim, self.vdim, self.q_proj.bias is not None)
        theirs = (module.embed_dim, module.num_heads, module.kdim, module.vdim, module.in_proj_bias is not None)
        if ours != theirs:
            raise ValueError(
                f"sizes (embed_dim, num_heads, kdim, vdim, bias) must match: expected {ours}, got {theirs}"
            )
        if module.bias_k is not None or module.add_zero_attn:
            raise ValueError("add_bias_kv and add_zero_attn are not supported")
        E = self.embed_dim
        if module.in_proj_weight is not None:
            w_q, w_k, w_v = module.in_proj_weight.chunk(3, dim=0)  # (E, E) each
        else:
            w_q, w_k, w_v = module.q_proj_weight, module.k_proj_weight, module.v_proj_weight
        for proj, w in ((self.q_proj, w_q), (self.k_proj, w_k), (self.v_proj, w_v)):
            proj.weight.copy_(w)
        if module.in_proj_bias is not None:
            for i, proj in enumerate((self.q_proj, self.k_proj, self.v_proj)):
                proj.bias.copy_(module.in_proj_bias[i * E : (i + 1) * E])
            self.out_proj.bias.copy_(module.out_proj.bias)
        self.out_proj.weight.copy_(module.out_proj.weight)
        self.dropout = module.dropout
        return self

    @classmethod
    def from_torch(cls, module: nn.MultiheadAttention) -> "MultiHeadAttention":
        """A new module with the sizes and weights of ``module`` (on its device and dtype)."""
        if not isinstance(module, nn.MultiheadAttention):
            raise ValueError(f"module must be a torch.nn.MultiheadAttention; got {type(module).__name__}")
        ours = cls(
            module.embed_dim,
            module.num_heads,
            dropout=module.dropout,
            bias=module.in_proj_bias is not None,
            kdim=module.kdim,
            vdim=module.vdim,
        )
        ours.to(device=module.out_proj.weight.device, dtype=module.out_proj.weight.dtype)
        return ours.load_torch_weights(module)
