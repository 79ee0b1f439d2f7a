"""The file -> key hints beside the embedding cache (:mod:`sam2_annotator.engine.cache_sources`)."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from sam2_annotator.engine.cache import DiskCache
from sam2_annotator.engine.cache_sources import SOURCES_FOLDER, FileSignature, SourceIndex

KEY = "0123456789abcdef" * 4
OTHER = "fedcba9876543210" * 4


def _file(tmp_path: Path, name: str = "a.jpg", data: bytes = b"pixels") -> Path:
    path = tmp_path / "photos" / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return path


def test_a_remembered_key_is_found_by_path(tmp_path) -> None:
    image = _file(tmp_path)
    index = SourceIndex(tmp_path / "cache")
    assert index.key_for(image) is None
    index.remember(FileSignature.of(image), KEY)
    assert index.key_for(image) == KEY
    assert index.key_for(str(image)) == KEY  # str or Path alike
    assert SourceIndex(tmp_path / "cache").key_for(image) == KEY  # persisted


def test_a_changed_file_has_no_hint(tmp_path) -> None:
    image = _file(tmp_path)
    index = SourceIndex(tmp_path / "cache")
    index.remember(FileSignature.of(image), KEY)
    st = image.stat()
    os.utime(image, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    assert index.key_for(image) is None  # same path, newer mtime
    image.write_bytes(b"other pixels")
    assert index.key_for(image) is None  # other size


def test_a_file_changed_while_it_was_read_is_not_recorded(tmp_path) -> None:
    image = _file(tmp_path)
    before = FileSignature.of(image)  # taken before the pixels were read...
    image.write_bytes(b"replaced meanwhile")  # ...and the file changed under the reader
    index = SourceIndex(tmp_path / "cache")
    index.remember(before, KEY)
    assert not (tmp_path / "cache" / SOURCES_FOLDER).exists()
    assert index.key_for(image) is None


def test_garbage_and_missing_files_are_misses(tmp_path) -> None:
    image = _file(tmp_path)
    index = SourceIndex(tmp_path / "cache")
    assert FileSignature.of(tmp_path / "missing.jpg") is None
    assert index.key_for(tmp_path / "missing.jpg") is None
    index.remember(FileSignature.of(image), KEY)
    (entry,) = (tmp_path / "cache" / SOURCES_FOLDER).glob("*/*")
    entry.write_text("../../etc/passwd")
    assert index.key_for(image) is None
    entry.write_bytes(b"\xff\xfe")
    assert index.key_for(image) is None


def test_concurrent_writers_leave_one_complete_hint_and_no_temp_files(tmp_path) -> None:
    images = [_file(tmp_path, f"{i}.jpg", bytes([i]) * 10) for i in range(8)]
    index = SourceIndex(tmp_path / "cache")

    def write() -> None:
        for image in images:
            index.remember(FileSignature.of(image), KEY)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(index.key_for(image) == KEY for image in images)
    files = list((tmp_path / "cache" / SOURCES_FOLDER).rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]
    assert len([f for f in files if f.is_file()]) == len(images)


def test_hints_are_not_entries_of_the_cache(tmp_path) -> None:
    """The disk cache never counts or evicts the hint files (they are not ``<16 hex>/*.npz``)."""
    image = _file(tmp_path)
    SourceIndex(tmp_path / "cache").remember(FileSignature.of(image), OTHER)
    disk = DiskCache(tmp_path / "cache", "ab" * 32, max_bytes=1)
    assert disk.total_bytes() == 0
    disk.enforce_limit()
    assert SourceIndex(tmp_path / "cache").key_for(image) == OTHER


def test_a_cache_folder_that_cannot_be_written_only_loses_the_hint(tmp_path) -> None:
    """``sources`` is a file here, so nothing can be created under it (as on a read-only or
    full file system): ``remember`` must not raise, and there is no hint."""
    image = _file(tmp_path)
    (tmp_path / "cache").mkdir()
    (tmp_path / "cache" / SOURCES_FOLDER).write_text("not a folder")
    index = SourceIndex(tmp_path / "cache")
    index.remember(FileSignature.of(image), KEY)
    assert index.key_for(image) is None


def test_a_different_key_replaces_the_recorded_one(tmp_path) -> None:
    """A wrong hint (a file rewritten with another image, same size and mtime) is corrected
    the next time the pixels are hashed, so it costs one wasted read, not one per visit."""
    image = _file(tmp_path)
    index = SourceIndex(tmp_path / "cache")
    index.remember(FileSignature.of(image), OTHER)
    index.remember(FileSignature.of(image), KEY)
    assert index.key_for(image) == KEY
