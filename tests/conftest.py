"""Shared test setup: a non-interactive matplotlib backend, closing figures after each test,
a local HTTP server for the download code, and data folders pointed at temporary places.

Two helpers that test files import (``from conftest import assert_close, stable_seed``):
:func:`assert_close` compares tensors after checking shape and dtype, :func:`stable_seed`
turns test parameters into a seed that is the same in every process.
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
        f"{what}: shape {tuple(actual.shape)} != expected {tuple(expected.shape)}")
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
