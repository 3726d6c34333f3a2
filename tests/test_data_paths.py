"""attnlib.data.paths: finding, downloading and checking data sets."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from attnlib.data import (
    ENV_VAR,
    OFFLINE_ENV_VAR,
    DataNotFoundError,
    Dataset,
    RemoteFile,
    cache_dir,
    locate,
    md5sum,
    search_dirs,
)

FILE_CONTENTS = {"alpha.bin": b"alpha contents\n", "beta.bin": bytes(range(256)) * 3}


def fake_dataset(mirrors: tuple[str, ...] = ()) -> Dataset:
    files = tuple(RemoteFile(name, hashlib.md5(data).hexdigest()) for name, data in FILE_CONTENTS.items())
    return Dataset(
        name="fake",
        files=files,
        mirrors=mirrors,
        citation="A. Tester. Fake data. 2024",
        licence="CC0",
    )


def put_files(folder: Path, names=tuple(FILE_CONTENTS)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for name in names:
        (folder / name).write_bytes(FILE_CONTENTS[name])


@pytest.fixture
def dirs(data_dirs):
    """(data, cache) folders, see conftest.data_dirs."""
    return data_dirs


def test_cache_dir_follows_xdg(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert cache_dir() == tmp_path / "attnlib"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == tmp_path / "home" / ".cache" / "attnlib"


def test_search_dirs_order(dirs, monkeypatch):
    data, cache = dirs
    assert search_dirs() == [data, cache]
    monkeypatch.setenv(ENV_VAR, "")
    assert search_dirs() == [cache]
    monkeypatch.delenv(ENV_VAR)
    assert search_dirs() == [cache]


def test_md5sum_matches_hashlib(tmp_path):
    path = tmp_path / "big.bin"
    data = bytes(range(256)) * 20_000  # several read chunks
    path.write_bytes(data)
    assert md5sum(path) == hashlib.md5(data).hexdigest()


def test_locate_finds_files_in_attnlib_data(dirs):
    data, cache = dirs
    put_files(data / "fake")
    assert locate(fake_dataset(), download=False) == data / "fake"


def test_locate_prefers_attnlib_data_over_cache(dirs):
    data, cache = dirs
    put_files(data / "fake")
    put_files(cache / "fake")
    assert locate(fake_dataset()) == data / "fake"


def test_locate_skips_incomplete_folder(dirs):
    data, cache = dirs
    put_files(data / "fake", names=["alpha.bin"])
    put_files(cache / "fake")
    assert locate(fake_dataset(), download=False) == cache / "fake"


def test_locate_finds_files_in_cache_without_env_var(dirs, monkeypatch):
    data, cache = dirs
    monkeypatch.delenv(ENV_VAR)
    put_files(cache / "fake")
    assert locate(fake_dataset(), download=False) == cache / "fake"


def test_locate_rejects_wrong_md5(dirs):
    data, cache = dirs
    put_files(data / "fake")
    (data / "fake" / "beta.bin").write_bytes(b"not beta")
    dataset = fake_dataset()
    with pytest.raises(ValueError) as info:
        locate(dataset)
    message = str(info.value)
    assert str(data / "fake" / "beta.bin") in message
    assert dataset.files[1].md5 in message
    assert hashlib.md5(b"not beta").hexdigest() in message
    assert "Delete" in message


def test_locate_offline_reports_what_is_missing(dirs, monkeypatch):
    data, cache = dirs
    monkeypatch.setenv(OFFLINE_ENV_VAR, "1")
    dataset = fake_dataset(mirrors=("http://127.0.0.1:9/unreachable/",))
    with pytest.raises(DataNotFoundError) as info:
        locate(dataset)
    message = str(info.value)
    for remote in dataset.files:
        assert f"{remote.name} (md5 {remote.md5})" in message
    assert str(data / "fake") in message
    assert str(cache / "fake") in message
    assert "ATTNLIB_OFFLINE is set" in message
    assert dataset.citation in message
    assert f"point {ENV_VAR} at a folder that contains fake/" in message
    assert list(data.iterdir()) == []
    assert not cache.exists()


def test_locate_download_false_reports_it(dirs):
    with pytest.raises(DataNotFoundError, match=r"downloads disabled"):
        locate(fake_dataset(mirrors=("http://127.0.0.1:9/unreachable/",)), download=False)


@pytest.fixture
def server(http_folder):
    """Serve good and bad copies of the fake files; returns (root folder, base URL)."""
    root, base = http_folder
    (root / "good").mkdir(parents=True)
    (root / "bad").mkdir()
    for name, data in FILE_CONTENTS.items():
        (root / "good" / name).write_bytes(data)
        (root / "bad" / name).write_bytes(data[::-1] + b"!")
    return root, base


def test_locate_downloads_from_second_mirror_after_404(dirs, server):
    data, cache = dirs
    _, base = server
    dataset = fake_dataset(mirrors=(base + "missing/", base + "good/"))
    folder = locate(dataset)
    assert folder == data / "fake"
    for remote in dataset.files:
        assert md5sum(folder / remote.name) == remote.md5
    assert sorted(p.name for p in folder.iterdir()) == sorted(FILE_CONTENTS)
    assert not cache.exists()


def test_locate_downloads_into_cache_when_env_var_unset(dirs, server, monkeypatch):
    data, cache = dirs
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setenv(OFFLINE_ENV_VAR, "0")  # "0" does not mean offline
    _, base = server
    assert locate(fake_dataset(mirrors=(base + "good/",))) == cache / "fake"
    assert sorted(p.name for p in (cache / "fake").iterdir()) == sorted(FILE_CONTENTS)


def test_locate_download_keeps_files_already_present(dirs, server):
    data, cache = dirs
    _, base = server
    put_files(data / "fake", names=["alpha.bin"])
    alpha = data / "fake" / "alpha.bin"
    before = alpha.stat().st_mtime_ns
    folder = locate(fake_dataset(mirrors=(base + "good/",)))
    assert alpha.stat().st_mtime_ns == before
    assert md5sum(folder / "beta.bin") == hashlib.md5(FILE_CONTENTS["beta.bin"]).hexdigest()


def test_locate_wrong_bytes_leave_nothing_behind(dirs, server):
    data, cache = dirs
    _, base = server
    put_files(data / "fake", names=["alpha.bin"])
    dataset = fake_dataset(mirrors=(base + "missing/", base + "bad/"))
    with pytest.raises(DataNotFoundError) as info:
        locate(dataset)
    message = str(info.value)
    beta = dataset.files[1]
    assert f"beta.bin (md5 {beta.md5})" in message
    assert "alpha.bin (md5" not in message  # present, so not missing
    assert f"{base}missing/beta.bin: HTTP Error 404" in message
    assert f"{base}bad/beta.bin: expected md5 {beta.md5}" in message
    assert sorted(p.name for p in (data / "fake").iterdir()) == ["alpha.bin"]
    assert (data / "fake" / "alpha.bin").read_bytes() == FILE_CONTENTS["alpha.bin"]
