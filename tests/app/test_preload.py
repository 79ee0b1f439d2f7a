"""The one-image preload slot: a newer offer wins, a changed file is never served."""

from __future__ import annotations

import os
from pathlib import Path

from sam2_annotator.app.preload import PreloadSlot
from sam2_annotator.engine.cache_sources import FileSignature


def test_take_returns_the_offer_for_its_path_once(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"pixels")
    slot = PreloadSlot()
    slot.offer(str(image), FileSignature.of(str(image)), "payload")
    assert slot.take(str(tmp_path / "other.jpg")) is None  # another path empties the slot too
    slot.offer(str(image), FileSignature.of(str(image)), "payload")
    assert slot.take(str(image)) == "payload"
    assert slot.take(str(image)) is None


def test_a_newer_offer_replaces_the_older(tmp_path: Path) -> None:
    first, second = tmp_path / "1.jpg", tmp_path / "2.jpg"
    for path in (first, second):
        path.write_bytes(b"x")
    slot = PreloadSlot()
    slot.offer(str(first), FileSignature.of(str(first)), 1)
    slot.offer(str(second), FileSignature.of(str(second)), 2)
    assert slot.take(str(first)) is None
    slot.offer(str(second), FileSignature.of(str(second)), 2)
    assert slot.take(str(second)) == 2


def test_a_file_changed_since_the_offer_is_not_served(tmp_path: Path) -> None:
    image = tmp_path / "a.jpg"
    image.write_bytes(b"old")
    slot = PreloadSlot()
    slot.offer(str(image), FileSignature.of(str(image)), "old pixels")
    image.write_bytes(b"new content")  # another size
    assert slot.take(str(image)) is None
    slot.offer(str(image), FileSignature.of(str(image)), "pixels")
    stat = image.stat()
    os.utime(image, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))  # same size, touched
    assert slot.take(str(image)) is None


def test_a_missing_file_is_not_offered(tmp_path: Path) -> None:
    slot = PreloadSlot()
    missing = str(tmp_path / "gone.jpg")
    slot.offer(missing, FileSignature.of(missing), "pixels")
    assert FileSignature.of(missing) is None
    assert slot.take(missing) is None
