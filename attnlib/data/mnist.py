"""MNIST and Fashion-MNIST, read from their original idx files.

Both data sets are 28x28 greyscale images with labels 0..9: 60000 for training and 10000
for testing. :func:`load_mnist` and :func:`load_fashion_mnist` find the files with
:func:`attnlib.data.paths.locate` (downloading them if allowed) and return plain tensors.
"""

from __future__ import annotations

import gzip
import math
import struct
import zlib
from pathlib import Path

import numpy as np
import torch

from attnlib.data.paths import Dataset, RemoteFile, locate

# idx type code -> big-endian numpy dtype of one item.
_IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"

MNIST = Dataset(
    name="mnist",
    files=(
        RemoteFile("train-images-idx3-ubyte.gz", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
        RemoteFile("train-labels-idx1-ubyte.gz", "d53e105ee54ea40749a09fcbcd1e9432"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "9fb629c4189551a2d022fa330f9573f3"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "ec29112dd5afa0611ce80d1b7f02629c"),
    ),
    mirrors=(
        "https://ossci-datasets.s3.amazonaws.com/mnist/",
        "http://yann.lecun.com/exdb/mnist/",
    ),
    citation="Y. LeCun, C. Cortes, C. J. C. Burges. The MNIST database of handwritten digits. 1998",
    licence="CC BY-SA 3.0",
)

FASHION_MNIST = Dataset(
    name="fashion-mnist",
    files=(
        RemoteFile("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d"),
        RemoteFile("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe"),
        RemoteFile("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79"),
        RemoteFile("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310"),
    ),
    mirrors=("http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",),
    citation=(
        "H. Xiao, K. Rasul, R. Vollgraf. Fashion-MNIST: a novel image dataset for "
        "benchmarking machine learning algorithms. arXiv:1708.07747, 2017"
    ),
    licence="MIT",
)

FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)

# File name prefix of each split.
_SPLIT_PREFIXES = {"train": "train", "test": "t10k"}

# (dataset name, split, folder) -> (images, labels), parsed once per process.
_CACHE: dict[tuple[str, str, str], tuple[torch.Tensor, torch.Tensor]] = {}


def read_idx(path: str | Path) -> torch.Tensor:
    """Read an idx file, the format MNIST is distributed in.

    The file may be gzip-compressed (its name ends in ``.gz`` or it starts with the gzip
    magic bytes ``1f 8b``) or raw. Its header is two zero bytes, a type code (``0x08``
    uint8, ``0x09`` int8, ``0x0B`` int16, ``0x0C`` int32, ``0x0D`` float32, ``0x0E``
    float64), the number of dimensions, and one big-endian uint32 size per dimension;
    the items follow, big-endian, in row-major order.

    Args:
        path: The file to read.

    Returns:
        A writable tensor with the shape given by the header and the dtype given by the
        type code, in native byte order; e.g. uint8 of shape (60000, 28, 28) for
        ``train-images-idx3-ubyte.gz``.

    Raises:
        ValueError: If the file is not a well-formed idx file: it cannot be decompressed,
            its first two bytes are not zero, its type code is unknown, it has zero
            dimensions, or its data length does not match the sizes in the header.
        OSError: If the file cannot be read.
    """
    path = Path(path)
    raw = path.read_bytes()
    if path.name.endswith(".gz") or raw[:2] == _GZIP_MAGIC:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError, zlib.error) as err:
            raise ValueError(f"{path}: expected gzip-compressed data, but decompressing failed: {err}") from err

    if len(raw) < 4:
        raise ValueError(f"{path}: expected an idx header of at least 4 bytes, got {len(raw)} bytes")
    if raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: expected the first two bytes to be 00 00, got {raw[:2].hex(' ')}")
    type_code, ndim = raw[2], raw[3]
    if type_code not in _IDX_DTYPES:
        known = ", ".join(f"0x{code:02X}" for code in _IDX_DTYPES)
        raise ValueError(f"{path}: expected an idx type code in ({known}), got 0x{type_code:02X}")
    if ndim == 0:
        raise ValueError(f"{path}: expected at least 1 dimension, got 0")
    header_bytes = 4 + 4 * ndim
    if len(raw) < header_bytes:
        raise ValueError(f"{path}: expected a {header_bytes}-byte header for {ndim} dimensions, got {len(raw)} bytes")
    shape = struct.unpack(f">{ndim}I", raw[4:header_bytes])
    dtype = _IDX_DTYPES[type_code]
    expected = math.prod(shape) * dtype.itemsize
    received = len(raw) - header_bytes
    if received != expected:
        raise ValueError(f"{path}: expected {expected} bytes of data for shape {shape}, got {received}")

    items = np.frombuffer(raw, dtype=dtype, offset=header_bytes)
    native = items.astype(dtype.newbyteorder("="))  # a copy: writable and in native order
    return torch.from_numpy(native).reshape(shape)


def load_mnist(split: str = "train", *, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load the MNIST handwritten digits.

    Args:
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        download: Whether missing files may be downloaded (see
            :func:`attnlib.data.paths.locate`).

    Returns:
        ``(images, labels)``: images uint8 of shape (N, 28, 28) with values 0..255, and
        labels int64 of shape (N,) with values 0..9. They are fresh copies the caller
        may modify.

    Raises:
        ValueError: If ``split`` is not ``"train"`` or ``"test"``, or the files are damaged.
        DataNotFoundError: If the files are not on disk and could not be downloaded.
    """
    return _load(MNIST, split, download)


def load_fashion_mnist(split: str = "train", *, download: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Load Fashion-MNIST, Zalando's 28x28 pictures of clothes.

    Args:
        split: ``"train"`` (60000 images) or ``"test"`` (10000 images).
        download: Whether missing files may be downloaded (see
            :func:`attnlib.data.paths.locate`).

    Returns:
        ``(images, labels)``: images uint8 of shape (N, 28, 28) with values 0..255, and
        labels int64 of shape (N,) with values 0..9, named by ``FASHION_MNIST_CLASSES``.
        They are fresh copies the caller may modify.

    Raises:
        ValueError: If ``split`` is not ``"train"`` or ``"test"``, or the files are damaged.
        DataNotFoundError: If the files are not on disk and could not be downloaded.
    """
    return _load(FASHION_MNIST, split, download)


def _load(dataset: Dataset, split: str, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Load one split of an MNIST-format data set, parsing it at most once per process."""
    if split not in _SPLIT_PREFIXES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = locate(dataset, download=download)
    key = (dataset.name, split, str(folder))
    if key not in _CACHE:
        prefix = _SPLIT_PREFIXES[split]
        images_path = folder / f"{prefix}-images-idx3-ubyte.gz"
        labels_path = folder / f"{prefix}-labels-idx1-ubyte.gz"
        images = read_idx(images_path)
        labels = read_idx(labels_path)
        if images.dim() != 3:
            raise ValueError(f"{images_path}: expected 3-D images (N, H, W), got shape {tuple(images.shape)}")
        if labels.dim() != 1:
            raise ValueError(f"{labels_path}: expected 1-D labels (N,), got shape {tuple(labels.shape)}")
        if images.shape[0] != labels.shape[0]:
            raise ValueError(
                f"{dataset.name} {split}: expected as many labels as images, "
                f"got {images.shape[0]} images and {labels.shape[0]} labels"
            )
        _CACHE[key] = (images, labels.long())
    images, labels = _CACHE[key]
    return images.clone(), labels.clone()
