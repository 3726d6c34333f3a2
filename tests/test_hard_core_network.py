"""attnlib.hard.core_network: the recurrent core of the RAM."""

from __future__ import annotations

import pytest
import torch

from attnlib.hard.core_network import CoreNetwork


def test_rnn_core_follows_its_formula_and_lstm_keeps_a_cell():
    core = CoreNetwork(5, 7, "rnn").double()
    g, h = torch.randn(2, 5, dtype=torch.float64), torch.randn(2, 7, dtype=torch.float64)
    new_h, c = core(g, (h, None))
    expected = torch.relu(
        g @ core.input_to_hidden.weight.T
        + core.input_to_hidden.bias
        + h @ core.hidden_to_hidden.weight.T
        + core.hidden_to_hidden.bias
    )
    assert c is None and torch.allclose(new_h, expected)
    lstm = CoreNetwork(5, 7, "lstm")
    h0, c0 = lstm.initial_state(2)
    assert h0.shape == c0.shape == (2, 7)
    h1, c1 = lstm(torch.randn(2, 5), (h0, c0))
    assert h1.shape == c1.shape == (2, 7)
    with pytest.raises(ValueError, match=r"cell must be 'rnn' or 'lstm'; got 'gru'"):
        CoreNetwork(5, 7, "gru")
