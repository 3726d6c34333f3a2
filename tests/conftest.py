"""Shared test setup: a non-interactive matplotlib backend, closing figures after each test,
a local HTTP server for the download code, and data folders pointed at temporary places.

Helpers that test files import (``from conftest import assert_close, stable_seed``):
:func:`assert_close` compares tensors after checking shape and dtype, :func:`stable_seed`
turns test parameters into a seed that is the same in every process, :func:`randn` draws a
seeded tensor (the vision tests), and ``make_model``/``batch`` build the small seq2seq models
and batches that the ``test_seq2seq_*`` files share.
"""

from __future__ import annotations

import functools
import http.server
import threading
import zlib
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402


def assert_close(actual: Any, expected: Any, atol: float, what: str = "") -> None:
    """``actual`` has ``expected``'s shape and dtype and lies within ``atol`` of it everywhere.

    Shapes must be equal, not merely broadcastable: a (B, T, E) result compared with a
    (B, 1, E) reference would otherwise pass unnoticed.
    """
    assert tuple(actual.shape) == tuple(expected.shape), (
        f"{what}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}"
    )
    assert actual.dtype == expected.dtype, f"{what}: dtype {actual.dtype} != expected {expected.dtype}"
    if actual.numel() == 0:
        return
    diff = (actual - expected).abs()
    assert not diff.isnan().any() or bool((actual.isnan() == expected.isnan()).all()), f"{what}: NaN mismatch"
    err = diff.nan_to_num(0.0).max().item()
    assert err <= atol, f"{what} max |error| = {err:.3e} > {atol:.0e}"


def stable_seed(*parts: object) -> int:
    """A seed from test parameters that every process computes alike (``hash()`` of a string
    changes from one Python process to the next)."""
    return zlib.crc32(repr(parts).encode()) % 2**31


def randn(*shape: int, seed: int = 0, dtype: Any = None) -> Any:
    """``torch.randn(*shape)`` from its own generator seeded with ``seed`` (float32 by default)."""
    import torch

    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype or torch.float32)


def expected_maps(name: str, B: int, C: int, H: int, W: int) -> dict[str, tuple[int, ...]]:
    """The documented shape of what each vision attention module emits, by recorded name ('' = the module)."""
    return {
        "se": {"": (B, C, 1, 1)},
        "eca": {"": (B, C, 1, 1)},
        "sk": {"": (B, 2, C, 1, 1)},
        "cbam": {"channel": (B, C, 1, 1), "spatial": (B, 1, H, W)},
        "bam": {"": (B, C, H, W)},
        "residual": {"": (B, C, H, W)},
        "nonlocal": {"": (B, H * W, H * W)},
        "multiscale": {"": (B, 3, H, W)},
    }[name]


# The small seq2seq models and batches shared by the test_seq2seq_* files.
V_SRC, V_TGT, A = 20, 15, 24  # vocabularies and annotation size (2H)
ATTENTIVE = ["bahdanau", "dot:global", "general:local-m", "concat:local-p", "general:global:no-feed"]
ALL = ["plain"] + ATTENTIVE


def make_model(kind: str, seed: int = 0) -> Any:
    """A small ``Seq2Seq`` (BiGRU encoder) with the decoder named ``kind`` (one of ``ALL``), in eval mode."""
    import torch

    from attnlib.scoring import BilinearScore, ConcatScore, DotScore
    from attnlib.seq2seq import BahdanauDecoder, BiGRUEncoder, LuongDecoder, PlainDecoder, Seq2Seq

    torch.manual_seed(seed)
    encoder = BiGRUEncoder(V_SRC, embed_dim=8, hidden_dim=A // 2)
    decoders = {
        "plain": lambda: PlainDecoder(V_TGT, A, embed_dim=8, hidden_dim=16, readout_dim=8),
        "bahdanau": lambda: BahdanauDecoder(V_TGT, A, embed_dim=8, hidden_dim=16, attention_dim=12, readout_dim=8),
        "dot:global": lambda: LuongDecoder(V_TGT, A, DotScore(), "global", embed_dim=8, hidden_dim=A),
        "general:local-m": lambda: LuongDecoder(
            V_TGT, A, BilinearScore(16, A), "local-m", window=2, embed_dim=8, hidden_dim=16
        ),
        "concat:local-p": lambda: LuongDecoder(
            V_TGT, A, ConcatScore(16, A, 12), "local-p", window=2, embed_dim=8, hidden_dim=16
        ),
        "general:global:no-feed": lambda: LuongDecoder(
            V_TGT, A, BilinearScore(16, A), "global", input_feeding=False, embed_dim=8, hidden_dim=16
        ),
    }
    return Seq2Seq(encoder, decoders[kind]()).eval()


def batch(lengths=(7, 3, 5), tgt_len=4, seed=1):
    """A seeded padded source batch ``(src, src_lengths)`` and target inputs ``tgt_in`` for :func:`make_model`."""
    import torch

    from attnlib.data.translation import pad_batch

    gen = torch.Generator().manual_seed(seed)
    src, src_lengths = pad_batch([torch.randint(4, V_SRC, (n,), generator=gen).tolist() for n in lengths])
    tgt_in = torch.randint(4, V_TGT, (len(lengths), tgt_len), generator=gen)
    return src, src_lengths, tgt_in


@pytest.fixture(scope="module")
def one_thread():
    """Run a module's tests on one torch thread (use with ``pytest.mark.usefixtures``)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shape_log():
    """A context manager class whose ``shapes`` lists the shape of every tensor that an aten
    operation produced inside it (to check what a function materialises, e.g. no N x N matrix)."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    class ShapeLog(TorchDispatchMode):
        def __init__(self):
            super().__init__()
            self.shapes: list[tuple[int, ...]] = []

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            out = func(*args, **(kwargs or {}))
            for t in out if isinstance(out, (tuple, list)) else [out]:
                if isinstance(t, torch.Tensor):
                    self.shapes.append(tuple(t.shape))
            return out

    return ShapeLog


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format, *args):  # noqa: A002 - the base class's signature
        pass


@pytest.fixture
def http_folder(tmp_path, monkeypatch):
    """Serve the folder tmp_path/"www" on 127.0.0.1 (the real download code talks to it);
    returns (folder, base URL ending in "/")."""
    for name in ("no_proxy", "NO_PROXY"):
        monkeypatch.setenv(name, "127.0.0.1,localhost")
    root = tmp_path / "www"
    root.mkdir()
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield root, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


@pytest.fixture
def data_dirs(tmp_path, monkeypatch):
    """Point ATTNLIB_DATA and XDG_CACHE_HOME at empty tmp folders and allow downloads;
    returns (data folder, attnlib cache folder)."""
    data, xdg = tmp_path / "data", tmp_path / "xdg"
    data.mkdir()
    xdg.mkdir()
    monkeypatch.setenv("ATTNLIB_DATA", str(data))
    monkeypatch.setenv("XDG_CACHE_HOME", str(xdg))
    monkeypatch.delenv("ATTNLIB_OFFLINE", raising=False)
    return data, xdg / "attnlib"
