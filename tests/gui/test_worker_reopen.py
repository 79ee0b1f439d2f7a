"""Reopening a folder whose embeddings are on disk: the worker reads the current image's embedding
by its file's key hint while the pixels decode, and uses it only if the pixels hash to that key.

Synchronised on signals and on the order the patched calls record, never on sleeps.
"""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

from sam2_annotator.engine.cache import DiskCache
from sam2_annotator.engine.cache_sources import SOURCES_FOLDER, FileSignature, SourceIndex
from sam2_annotator.gui import worker as worker_module
from sam2_annotator.gui.worker import (
    DecodeRequest,
    DecodeResult,
    EncodeEvent,
    InferenceWorker,
    next_request_id,
)
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_worker import FAKE_MS, _answered, _point, start_fake_worker


class DiskFake(FakeEngine):
    """The fake engine with a model key the disk cache accepts (hex)."""

    model_key = "ab" * 32


def _encode_into(qtbot, cache_dir: Path, path: str) -> None:
    """One session that shows ``path`` once: its embedding and its file's hint go to disk."""
    fake = DiskFake()
    fake.watch(path)  # named in the records
    fake.release_all()
    worker = start_fake_worker(qtbot, fake, disk_cache_dir=cache_dir)
    try:
        worker.set_focus(path, [])
        qtbot.waitUntil(lambda: worker.is_encoded(path), timeout=FAKE_MS)
    finally:
        assert worker.shutdown()  # joins both lanes: the disk writes are done
    assert fake.encodes == [path]


def _first_mask(qtbot, worker: InferenceWorker, path: str) -> DecodeResult:
    results: list[DecodeResult] = []
    worker.decoded.connect(results.append)
    with qtbot.waitSignal(worker.image_loaded, timeout=FAKE_MS):
        worker.set_focus(path, [])
    _answered(qtbot, worker, results, DecodeRequest(next_request_id(), path, _point(100, 100)))
    return results[-1]


def test_a_reopened_image_is_read_from_disk_while_its_pixels_decode(
    qtbot, image_dir, tmp_path, monkeypatch
) -> None:
    truck = str(image_dir / "truck.jpg")
    cache = tmp_path / "cache"
    _encode_into(qtbot, cache, truck)
    order: list[str] = []
    read = threading.Event()
    real_get, real_load = DiskCache.get, worker_module.load_image

    def get(self, key):
        embedding = real_get(self, key)
        order.append("embedding read")
        read.set()
        return embedding

    def load(path, *args, **kwargs):
        # Holds the pixels until the hinted read is done; without a hint it would never be, and
        # the order assertion below fails after this timeout instead of the run hanging.
        read.wait(FAKE_MS / 1000)
        order.append("pixels decoded")
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(DiskCache, "get", get)
    monkeypatch.setattr(worker_module, "load_image", load)
    fake = DiskFake()
    fake.watch(truck)
    worker = start_fake_worker(qtbot, fake, disk_cache_dir=cache)
    try:
        result = _first_mask(qtbot, worker, truck)
        assert order[:2] == ["embedding read", "pixels decoded"]
        assert fake.encodes == []  # the embedding came from disk
        assert result.prediction.mask.shape == (1200, 1800)
        assert result.prediction.mask.any()
    finally:
        fake.release_all()
        assert worker.shutdown()


def test_a_wrong_hint_is_never_used(qtbot, image_dir, tmp_path, monkeypatch) -> None:
    truck, cars = str(image_dir / "truck.jpg"), str(image_dir / "cars.jpg")
    cache = tmp_path / "cache"
    _encode_into(qtbot, cache, cars)
    index = SourceIndex(cache)
    cars_key = index.key_for(cars)
    assert cars_key is not None
    # truck's hint names cars' entry (as a file rewritten with another image, but the same
    # size and mtime, would): read, then refused once truck's own pixels are hashed.
    index.remember(FileSignature.of(truck), cars_key)
    requested: list[str] = []
    real_get = DiskCache.get

    def get(self, key):
        requested.append(key)
        return real_get(self, key)

    monkeypatch.setattr(DiskCache, "get", get)
    fake = DiskFake()
    fake.watch(truck)
    fake.release_all()
    worker = start_fake_worker(qtbot, fake, disk_cache_dir=cache)
    try:
        result = _first_mask(qtbot, worker, truck)
        assert requested[0] == cars_key  # the hint was followed...
        assert fake.encodes == [truck]  # ...and refused: encoded for real, not cars' entry
        assert result.prediction.mask.shape == (1200, 1800)  # truck's size; cars is 2250x1500
    finally:
        fake.release_all()
        assert worker.shutdown()
    assert index.key_for(truck) != cars_key  # and corrected for the next visit


@pytest.mark.parametrize("hinted", [True, False], ids=["by-hint", "by-pixels"])
def test_an_image_read_from_disk_gets_its_first_click_before_the_next_prefetch(
    qtbot, image_dir, tmp_path, monkeypatch, hinted: bool
) -> None:
    """The disk read ends after the pixels are shown (held here until then): by the hint or,
    without one, by the pixels' key, the embedding is taken for the image on screen, reported
    as ready from the cache, and the prefetch of the next image waits for the first click."""
    truck, groceries = str(image_dir / "truck.jpg"), str(image_dir / "groceries.jpg")
    cache = tmp_path / "cache"
    _encode_into(qtbot, cache, truck)
    if not hinted:
        shutil.rmtree(cache / SOURCES_FOLDER)
    shown = threading.Event()
    real_get = DiskCache.get

    def get(self, key):
        shown.wait(FAKE_MS / 1000)  # a time limit only: the test sets it on image_loaded
        return real_get(self, key)

    monkeypatch.setattr(DiskCache, "get", get)
    fake = DiskFake()
    fake.watch(truck, groceries)
    fake.release_all()
    worker = start_fake_worker(
        qtbot, fake, prefetch=1, disk_cache_dir=cache, first_click_grace_s=60.0
    )
    events: list[EncodeEvent] = []
    results: list[DecodeResult] = []
    worker.encode_event.connect(events.append)
    worker.decoded.connect(results.append)
    try:
        with qtbot.waitSignal(worker.image_loaded, timeout=FAKE_MS):
            worker.set_focus(truck, [groceries])
        shown.set()
        qtbot.waitUntil(lambda: any(e.path == truck for e in events), timeout=FAKE_MS)
        (first,) = [e for e in events if e.path == truck]
        assert (first.state, first.current, first.from_cache) == ("ready", True, True)
        _answered(qtbot, worker, results, DecodeRequest(next_request_id(), truck, _point(9, 9)))
        qtbot.waitUntil(lambda: fake.encode_count(groceries) == 1, timeout=FAKE_MS)
        # (an embedding read from disk is no FakeEmbedding: its decode is logged without a name)
        kinds = [kind for kind, name in fake.log if kind == "decode" or name == groceries]
        assert kinds.index("decode") < kinds.index("encode")
        assert fake.encode_count(truck) == 0
    finally:
        fake.release_all()
        assert worker.shutdown()
