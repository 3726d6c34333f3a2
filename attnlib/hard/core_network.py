"""The RAM's memory: a recurrent core that integrates the glimpses into a state ``h_t``.

Mnih, Heess, Graves and Kavukcuoglu, *Recurrent Models of Visual Attention*, NeurIPS 2014
(arXiv:1406.6247), section 4.  ``h_t = ReLU(W_h h_{t-1} + W_x g_t + b)`` (256 rectifier units, the paper's
classification model) or an LSTM (the paper's choice for its game).
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["CoreNetwork", "CoreState"]

CoreState = tuple[Tensor, Optional[Tensor]]


class CoreNetwork(nn.Module):
    """The recurrent state that integrates the glimpses.

    ``cell="rnn"``: ``h_t = ReLU(W_h h_{t-1} + W_x g_t + b)`` (the paper's classification
    model); ``cell="lstm"``: :class:`torch.nn.LSTMCell`.  The state is a pair ``(h, c)``;
    ``c`` is ``None`` for the plain RNN.

    Args:
        input_size: size of ``g`` (256 in the paper).
        hidden_size: size of ``h`` (256 in the paper).
        cell: ``"rnn"`` or ``"lstm"``.
    """

    def __init__(self, input_size: int = 256, hidden_size: int = 256, cell: str = "rnn") -> None:
        super().__init__()
        if cell not in ("rnn", "lstm"):
            raise ValueError(f"cell must be 'rnn' or 'lstm'; got {cell!r}")
        self.cell = cell
        self.hidden_size = hidden_size
        if cell == "rnn":
            self.input_to_hidden = nn.Linear(input_size, hidden_size)
            self.hidden_to_hidden = nn.Linear(hidden_size, hidden_size)
        else:
            self.lstm = nn.LSTMCell(input_size, hidden_size)

    def initial_state(
        self, batch_size: int, device: Optional[torch.device] = None, dtype: Optional[torch.dtype] = None
    ) -> CoreState:
        """Zeros: ``h`` of shape ``(B, hidden_size)`` and, for the LSTM, ``c`` of the same shape."""
        h = torch.zeros(batch_size, self.hidden_size, device=device, dtype=dtype)
        return h, (torch.zeros_like(h) if self.cell == "lstm" else None)

    def forward(self, g: Tensor, state: CoreState) -> CoreState:
        """Args: g ``(B, input_size)``; state ``(h, c)`` with ``h`` ``(B, hidden_size)``.  Returns the new state."""
        h, c = state
        if self.cell == "rnn":
            return F.relu(self.input_to_hidden(g) + self.hidden_to_hidden(h)), None  # (B, hidden_size)
        h, c = self.lstm(g, (h, c))  # (B, hidden_size) each
        return h, c
