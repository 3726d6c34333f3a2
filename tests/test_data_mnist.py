"""attnlib.data.mnist: idx parsing and the MNIST and Fashion-MNIST loaders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
import torch

from attnlib.data import (
    ENV_VAR,
    FASHION_MNIST,
    FASHION_MNIST_CLASSES,
    MNIST,
    DataNotFoundError,
    Dataset,
    load_fashion_mnist,
    load_mnist,
    locate,
    read_idx,
)

IDX_CODES = {
    np.uint8: 0x08,
    np.int8: 0x09,
    np.int16: 0x0B,
    np.int32: 0x0C,
    np.float32: 0x0D,
    np.float64: 0x0E,
}


TORCH_DTYPES = {
    np.uint8: torch.uint8,
    np.int8: torch.int8,
    np.int16: torch.int16,
    np.int32: torch.int32,
    np.float32: torch.float32,
    np.float64: torch.float64,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as an idx file (big-endian header and items)."""
    header = bytes([0, 0, IDX_CODES[array.dtype.type], array.ndim])
    header += struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def write_idx(path: Path, data: bytes) -> Path:
    path.write_bytes(gzip.compress(data) if path.name.endswith(".gz") else data)
    return path


@pytest.mark.parametrize("compressed", [True, False], ids=["gz", "raw"])
@pytest.mark.parametrize("np_dtype", list(IDX_CODES))
@pytest.mark.parametrize("shape", [(7,), (3, 5), (4, 28, 28), (2, 3, 4, 5)])
def test_read_idx_round_trip(tmp_path, compressed, np_dtype, shape):
    rng = np.random.default_rng(0)
    if np.issubdtype(np_dtype, np.floating):
        array = rng.standard_normal(shape).astype(np_dtype)
    else:
        info = np.iinfo(np_dtype)
        array = rng.integers(info.min, info.max, size=shape, endpoint=True).astype(np_dtype)
    path = write_idx(tmp_path / ("x.idx" + (".gz" if compressed else "")), idx_bytes(array))

    tensor = read_idx(path)

    assert tensor.dtype == TORCH_DTYPES[np_dtype]
    assert tuple(tensor.shape) == shape
    assert np.array_equal(tensor.numpy(), array)
    tensor.view(-1)[0] = 1  # writable, not a view of a read-only buffer


def test_read_idx_sniffs_gzip_without_gz_suffix(tmp_path):
    array = np.arange(24, dtype=np.int32).reshape(2, 3, 4) * 100_000
    path = tmp_path / "no-suffix.idx"
    path.write_bytes(gzip.compress(idx_bytes(array)))
    assert np.array_equal(read_idx(str(path)).numpy(), array)


def test_read_idx_is_big_endian(tmp_path):
    data = bytes([0, 0, 0x0C, 1]) + struct.pack(">I", 2) + struct.pack(">2i", 1, -2)
    tensor = read_idx(write_idx(tmp_path / "be.idx", data))
    assert tensor.tolist() == [1, -2]


def test_read_idx_rejects_nonzero_leading_bytes(tmp_path):
    data = bytearray(idx_bytes(np.zeros((2, 2), np.uint8)))
    data[1] = 0x05
    with pytest.raises(ValueError, match=r"00 00, got 00 05") as info:
        read_idx(write_idx(tmp_path / "bad.idx", bytes(data)))
    assert "bad.idx" in str(info.value)


def test_read_idx_rejects_unknown_type_code(tmp_path):
    data = bytearray(idx_bytes(np.zeros((2, 2), np.uint8)))
    data[2] = 0x0A
    with pytest.raises(ValueError, match=r"got 0x0A"):
        read_idx(write_idx(tmp_path / "bad.idx.gz", bytes(data)))


def test_read_idx_rejects_zero_dimensions(tmp_path):
    with pytest.raises(ValueError, match=r"expected at least 1 dimension, got 0"):
        read_idx(write_idx(tmp_path / "bad.idx", bytes([0, 0, 0x08, 0])))


@pytest.mark.parametrize("extra", [-1, -10, 1, 7], ids=["short1", "short10", "long1", "long7"])
def test_read_idx_rejects_wrong_data_length(tmp_path, extra):
    good = idx_bytes(np.zeros((3, 4, 5), np.int32))  # 240 bytes of data
    data = good[:extra] if extra < 0 else good + bytes(extra)
    with pytest.raises(ValueError) as info:
        read_idx(write_idx(tmp_path / "bad.idx.gz", data))
    message = str(info.value)
    assert "expected 240 bytes of data for shape (3, 4, 5)" in message
    assert f"got {240 + extra}" in message
    assert "bad.idx.gz" in message


def test_read_idx_rejects_truncated_header(tmp_path):
    data = bytes([0, 0, 0x08, 3]) + struct.pack(">I", 60000)
    with pytest.raises(ValueError, match=r"16-byte header for 3 dimensions, got 8 bytes"):
        read_idx(write_idx(tmp_path / "bad.idx", data))


def test_read_idx_rejects_broken_gzip(tmp_path):
    path = tmp_path / "bad.idx.gz"
    path.write_bytes(gzip.compress(idx_bytes(np.zeros(100, np.uint8)))[:-20])
    with pytest.raises(ValueError, match=r"gzip"):
        read_idx(path)


MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]


MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]


def require(dataset: Dataset) -> None:
    """Skip the test unless the data set is already on disk (never downloads)."""
    try:
        locate(dataset, download=False)
    except DataNotFoundError:
        pytest.skip(f"{dataset.name} is not on disk; set {ENV_VAR} to a folder containing {dataset.name}/")


@pytest.mark.parametrize("split, n, counts", [("train", 60000, MNIST_TRAIN_COUNTS), ("test", 10000, MNIST_TEST_COUNTS)])
def test_load_mnist(split, n, counts):
    require(MNIST)
    images, labels = load_mnist(split, download=False)
    assert images.shape == (n, 28, 28) and images.dtype == torch.uint8
    assert labels.shape == (n,) and labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=10).tolist() == counts
    assert images.min().item() == 0 and images.max().item() == 255


def test_load_mnist_returns_independent_copies():
    require(MNIST)
    images, labels = load_mnist("test", download=False)
    reference = images.clone(), labels.clone()
    images.zero_()
    labels.fill_(-1)
    again_images, again_labels = load_mnist("test", download=False)
    assert torch.equal(again_images, reference[0])
    assert torch.equal(again_labels, reference[1])


@pytest.mark.parametrize("split, per_class", [("train", 6000), ("test", 1000)])
def test_load_fashion_mnist(split, per_class):
    require(FASHION_MNIST)
    images, labels = load_fashion_mnist(split, download=False)
    assert images.shape == (10 * per_class, 28, 28) and images.dtype == torch.uint8
    assert labels.dtype == torch.int64
    assert torch.bincount(labels, minlength=len(FASHION_MNIST_CLASSES)).tolist() == [per_class] * 10


@pytest.mark.parametrize("loader", [load_mnist, load_fashion_mnist])
def test_bad_split_is_rejected(loader):
    with pytest.raises(ValueError, match=r"'train' or 'test', got 'valid'"):
        loader("valid", download=False)
