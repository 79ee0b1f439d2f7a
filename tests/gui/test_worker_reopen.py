"""Reopening a folder whose embeddings are on disk: the worker reads the current image's embedding
by its file's key hint while the pixels decode, and uses it only if the pixels hash to that key.

Synchronised on signals and on the order the patched calls record, never on sleeps.
"""

from __future__ import annotations

import threading
from pathlib import Path

from sam2_annotator.engine.cache import DiskCache
from sam2_annotator.engine.cache_sources import FileSignature, SourceIndex
from sam2_annotator.gui import worker as worker_module
from sam2_annotator.gui.worker import DecodeRequest, DecodeResult, InferenceWorker, next_request_id
from tests.gui.fake_engine import FakeEngine
from tests.gui.test_worker import FAKE_MODEL, FAKE_MS, _answered, _point


class DiskFake(FakeEngine):
    """The fake engine with a model key the disk cache accepts (hex)."""

    model_key = "ab" * 32


def _worker(qtbot, fake: FakeEngine, cache_dir: Path) -> InferenceWorker:
    worker = InferenceWorker(prefetch=0, engine_factory=fake.factory, disk_cache_dir=cache_dir)
    worker.start()
    with qtbot.waitSignal(worker.model_loaded, timeout=FAKE_MS):
        worker.load_model(FAKE_MODEL)
    return worker


def _encode_into(qtbot, cache_dir: Path, path: str) -> None:
    """One session that shows ``path`` once: its embedding and its file's hint go to disk."""
    fake = DiskFake()
    fake.watch(path)  # named in the records
    fake.release_all()
    worker = _worker(qtbot, fake, cache_dir)
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
    worker = _worker(qtbot, fake, cache)
    try:
        result = _first_mask(qtbot, worker, truck)
        assert order[:2] == ["embedding read", "pixels decoded"]
        assert fake.encodes == []  # the embedding came from disk
        assert result.prediction.mask.shape == (1200, 1800)
        assert result.prediction.mask.any()
    finally:
        fake.release_all()
        assert worker.shutdown()


def test_a_wrong_hint_is_never_used(qtbot, image_dir, tmp_path) -> None:
    truck, cars = str(image_dir / "truck.jpg"), str(image_dir / "cars.jpg")
    cache = tmp_path / "cache"
    _encode_into(qtbot, cache, cars)
    index = SourceIndex(cache)
    cars_key = index.key_for(cars)
    assert cars_key is not None
    # truck's hint names cars' entry (as a file rewritten with another image, but the same
    # size and mtime, would): read, then refused once truck's own pixels are hashed.
    index.remember(FileSignature.of(truck), cars_key)
    fake = DiskFake()
    fake.watch(truck)
    fake.release_all()
    worker = _worker(qtbot, fake, cache)
    try:
        result = _first_mask(qtbot, worker, truck)
        assert fake.encodes == [truck]  # encoded for real, not taken from cars' entry
        assert result.prediction.mask.shape == (1200, 1800)  # truck's size; cars is 2250x1500
    finally:
        fake.release_all()
        assert worker.shutdown()
