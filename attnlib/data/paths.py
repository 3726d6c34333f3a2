"""Where attnlib looks for data sets, and how it downloads the ones it cannot find.

Every data set lives in a folder named after it (``mnist/``, ``fashion-mnist/``, ...)
that holds the data set's files exactly as published, e.g. ``mnist/train-images-idx3-ubyte.gz``.
:func:`locate` returns such a folder, looking in these places, in this order:

1. ``$ATTNLIB_DATA/<name>/``, when the environment variable ``ATTNLIB_DATA`` is set and
   not empty.
2. The cache, ``$XDG_CACHE_HOME/attnlib/<name>/``, or ``~/.cache/attnlib/<name>/`` when
   ``XDG_CACHE_HOME`` is not set.

The first folder that holds *all* of a data set's files wins. Each of its files is then
checked against the md5 recorded in the data set's description; a file that does not
match raises :class:`ValueError` (delete it, or replace it with a good copy).

When no folder is complete, the missing files are downloaded into the first folder of
the list above: ``$ATTNLIB_DATA/<name>/`` if that variable is set, the cache otherwise.
Each file is tried on the data set's mirrors in order and is only moved into place once
its md5 matches, so an interrupted download never leaves a damaged file behind. Files
that are already there are kept.

Working offline
    Set ``ATTNLIB_OFFLINE=1`` (any non-empty value other than ``0``) and attnlib never
    tries the network. Put the files in place yourself and point ``ATTNLIB_DATA`` at the
    folder that *contains* the data set folders, for example::

        ATTNLIB_DATA=/path/to/datasets python train.py

    where ``/path/to/datasets/mnist/`` holds the four MNIST ``.gz`` files. If a data set
    cannot be found, :class:`DataNotFoundError` says which files are missing, their md5s,
    every folder that was searched and why downloading did not help.
"""

from __future__ import annotations

import hashlib
import http.client
import os
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from tqdm.auto import tqdm

ENV_VAR = "ATTNLIB_DATA"
OFFLINE_ENV_VAR = "ATTNLIB_OFFLINE"

_CHUNK_BYTES = 1 << 20
_TIMEOUT_S = 30


@dataclass(frozen=True)
class RemoteFile:
    """One file of a data set.

    Attributes:
        name: The file name, identical in the local folder and on every mirror.
        md5: The file's md5 as 32 lowercase hex digits.
    """

    name: str
    md5: str


@dataclass(frozen=True)
class Dataset:
    """Description of a data set that :func:`locate` can find or download.

    Attributes:
        name: The folder name the files live in, e.g. ``"mnist"``.
        files: The files that make up the data set.
        mirrors: Base URLs, each ending in ``"/"``, tried in order; a file's URL is
            ``mirror + file.name``.
        citation: One line naming the authors, title and year.
        licence: The licence the data are distributed under.
        archive: When set, the mirrors serve this zip archive instead of the files
            themselves; it is downloaded, checked, the files are extracted from it (by
            their base names) and checked, and the archive is deleted.
    """

    name: str
    files: tuple[RemoteFile, ...]
    mirrors: tuple[str, ...]
    citation: str
    licence: str
    archive: Optional[RemoteFile] = None


class DataNotFoundError(FileNotFoundError):
    """A data set is not on disk and could not be downloaded.

    The message lists the folders searched, the missing files with their md5s, the
    download errors, and how to put the files in place by hand.
    """


def cache_dir() -> Path:
    """Return attnlib's download cache folder.

    Returns:
        ``$XDG_CACHE_HOME/attnlib`` if ``XDG_CACHE_HOME`` is set and not empty, else
        ``~/.cache/attnlib``. The folder is not created.
    """
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "attnlib"


def search_dirs() -> list[Path]:
    """Return the folders searched for data sets, in order.

    Returns:
        ``[Path($ATTNLIB_DATA), cache_dir()]`` when ``ATTNLIB_DATA`` is set and not
        empty, else ``[cache_dir()]``. Each data set is a subfolder of these.
    """
    dirs = []
    data = os.environ.get(ENV_VAR)
    if data:
        dirs.append(Path(data))
    dirs.append(cache_dir())
    return dirs


def md5sum(path: Path) -> str:
    """Compute the md5 of a file, reading it in chunks.

    Args:
        path: The file to hash.

    Returns:
        The md5 as 32 lowercase hex digits.

    Raises:
        OSError: If the file cannot be read.
    """
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as file:
        while chunk := file.read(_CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def locate(dataset: Dataset, download: bool = True) -> Path:
    """Find the folder holding all of a data set's files, downloading them if needed.

    See the module documentation for the search order and the environment variables.

    Args:
        dataset: The data set to find.
        download: Whether missing files may be downloaded. Downloads are also disabled
            when ``ATTNLIB_OFFLINE`` is set to a non-empty value other than ``"0"``.

    Returns:
        The folder ``<search dir>/<dataset.name>`` that holds every file of the data set,
        each with the expected md5.

    Raises:
        ValueError: If a file is present but its md5 is not the expected one.
        DataNotFoundError: If no folder holds all the files and downloading them was
            disabled or failed.
    """
    dirs = search_dirs()
    for base in dirs:
        folder = base / dataset.name
        if all((folder / remote.name).is_file() for remote in dataset.files):
            _verify(folder, dataset)
            return folder

    target = dirs[0] / dataset.name
    if not download:
        problems = ["downloads disabled (download=False)"]
    elif _offline():
        problems = [f"{OFFLINE_ENV_VAR} is set, so nothing was downloaded"]
    else:
        problems = _download_missing(dataset, target)
        if not _missing(dataset, target):
            _verify(target, dataset)
            return target
    raise DataNotFoundError(_not_found_message(dataset, dirs, target, problems))


def _offline() -> bool:
    """Return whether ``ATTNLIB_OFFLINE`` forbids downloads."""
    return os.environ.get(OFFLINE_ENV_VAR, "") not in ("", "0")


def _missing(dataset: Dataset, folder: Path) -> list[RemoteFile]:
    """Return the files of ``dataset`` that are not present in ``folder``."""
    return [remote for remote in dataset.files if not (folder / remote.name).is_file()]


def _verify(folder: Path, dataset: Dataset) -> None:
    """Check the md5 of every file of ``dataset`` in ``folder``.

    Raises:
        ValueError: Naming the first file whose md5 is wrong.
    """
    for remote in dataset.files:
        path = folder / remote.name
        received = md5sum(path)
        if received != remote.md5:
            raise ValueError(
                f"{path} is damaged or not the expected file: expected md5 {remote.md5}, "
                f"got {received}. Delete it so that it is downloaded again, or replace "
                f"it with a good copy."
            )


def _download_missing(dataset: Dataset, folder: Path) -> list[str]:
    """Download every file of ``dataset`` that ``folder`` lacks.

    Returns:
        One line per failed attempt (``"<file> from <url>: <error>"``); empty if every
        missing file was downloaded.
    """
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        return [f"could not create {folder}: {err}"]
    if dataset.archive is not None:
        return _download_archive(dataset, folder)
    problems = []
    for remote in _missing(dataset, folder):
        problems.extend(_download_file(remote, dataset.mirrors, folder))
    return problems


def _download_archive(dataset: Dataset, folder: Path) -> list[str]:
    """Download ``dataset.archive`` into ``folder``, extract the missing files, delete it.

    Returns:
        One line per problem; empty if every missing file was extracted.
    """
    archive = dataset.archive
    assert archive is not None
    problems = _download_file(archive, dataset.mirrors, folder)
    path = folder / archive.name
    if problems and not path.is_file():
        return problems
    try:
        with zipfile.ZipFile(path) as zipped:
            members = {Path(info.filename).name: info for info in zipped.infolist() if not info.is_dir()}
            for remote in _missing(dataset, folder):
                if remote.name not in members:
                    problems.append(f"{remote.name} is not in {archive.name} (it holds {sorted(members)})")
                    continue
                part = folder / (remote.name + ".part")
                with zipped.open(members[remote.name]) as source, open(part, "wb") as out:
                    while chunk := source.read(_CHUNK_BYTES):
                        out.write(chunk)
                received = md5sum(part)
                if received != remote.md5:
                    part.unlink()
                    problems.append(f"{remote.name} in {archive.name}: expected md5 {remote.md5}, got {received}")
                else:
                    os.replace(part, folder / remote.name)
    except zipfile.BadZipFile as err:
        problems.append(f"{archive.name} is not a readable zip archive: {err}")
    finally:
        path.unlink(missing_ok=True)
    return problems


def _download_file(remote: RemoteFile, mirrors: tuple[str, ...], folder: Path) -> list[str]:
    """Download one file into ``folder``, trying each mirror until the md5 matches.

    The bytes go to ``<name>.part`` first, which is renamed to ``<name>`` only once its
    md5 is right and deleted otherwise.

    Returns:
        One line per failed mirror; empty if the file was downloaded.
    """
    if not mirrors:
        return [f"{remote.name}: the data set lists no mirror to download from"]
    final = folder / remote.name
    part = folder / (remote.name + ".part")
    problems = []
    for mirror in mirrors:
        url = mirror + remote.name
        try:
            _fetch(url, part)
            received = md5sum(part)
            if received != remote.md5:
                raise ValueError(f"expected md5 {remote.md5}, got {received}")
            os.replace(part, final)
            return []
        except (OSError, ValueError, http.client.HTTPException) as err:
            problems.append(f"{remote.name} from {url}: {err}")
        finally:
            part.unlink(missing_ok=True)
    return problems


def _fetch(url: str, destination: Path) -> None:
    """Stream ``url`` into ``destination`` with a progress bar.

    Raises:
        OSError: On network errors (``urllib.error.URLError`` and ``HTTPError`` included).
    """
    with urllib.request.urlopen(url, timeout=_TIMEOUT_S) as response:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        with (
            open(destination, "wb") as out,
            tqdm(
                total=total,
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                desc=destination.name.removesuffix(".part"),
                leave=False,
            ) as bar,
        ):
            while chunk := response.read(_CHUNK_BYTES):
                out.write(chunk)
                bar.update(len(chunk))


def _not_found_message(dataset: Dataset, dirs: list[Path], target: Path, problems: list[str]) -> str:
    """Build the explanation carried by :class:`DataNotFoundError`."""
    lines = [
        f"Data set {dataset.name!r} was not found ({dataset.citation}; licence: {dataset.licence}).",
        "Folders searched:",
        *(f"  {base / dataset.name}" for base in dirs),
        f"Files missing from {target}:",
        *(f"  {remote.name} (md5 {remote.md5})" for remote in _missing(dataset, target)),
        "Download:",
        *(f"  {problem}" for problem in problems),
        f"To fix this, put these files in {target} or point {ENV_VAR} at a folder that contains {dataset.name}/.",
    ]
    return "\n".join(lines)
