"""The inference worker on its own: results, latest-wins, cancellation, errors.

Scheduling (what runs when, what is dropped or cancelled) is tested with :class:`FakeEngine`,
whose encodes and decodes wait on events the test opens: every assertion follows a positive
synchronisation point (a signal, or a call the fake recorded), never a sleep. The real engine
answers the parity and error tests.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.engine.types import Prompt
from sam2_annotator.gui.worker import (
    DecodeRequest,
    DecodeResult,
    EncodeEvent,
    InferenceWorker,
    next_request_id,
)
from tests.gui.fake_engine import FakeEngine, fake_mask

TIMEOUT_MS = 60_000
#: For the fake engine: no real work, so only a broken schedule takes this long.
FAKE_MS = 10_000
FAKE_MODEL = Path("fake-model")


@pytest.fixture
def worker(qtbot, model_dir: Path):
    worker = InferenceWorker(prefetch=0)
    worker.start()
    with qtbot.waitSignal(worker.model_loaded, timeout=TIMEOUT_MS):
        worker.load_model(model_dir)
    yield worker
    assert worker.shutdown()


@pytest.fixture
def fake() -> FakeEngine:
    return FakeEngine()


def start_fake_worker(qtbot, fake: FakeEngine, prefetch: int = 0, **options) -> InferenceWorker:
    """A started worker on ``fake`` with its model loaded; ``options`` go to the worker."""
    worker = InferenceWorker(prefetch=prefetch, engine_factory=fake.factory, **options)
    worker.start()
    with qtbot.waitSignal(worker.model_loaded, timeout=FAKE_MS):
        worker.load_model(FAKE_MODEL)
    return worker


@pytest.fixture
def fake_worker(qtbot, fake: FakeEngine):
    worker = start_fake_worker(qtbot, fake)
    yield worker
    fake.release_all()
    assert worker.shutdown()


def _point(x: float, y: float, label: int = 1) -> Prompt:
    return Prompt(np.array([[x, y]], np.float32), np.array([label], np.int64))


def _events(worker: InferenceWorker) -> list[EncodeEvent]:
    events: list[EncodeEvent] = []
    worker.encode_event.connect(events.append)
    return events


def _paths(folder: Path, *names: str) -> list[str]:
    return [str(folder / f"{name}.jpg") for name in names]


def _answered(qtbot, worker: InferenceWorker, results: list, request: DecodeRequest) -> None:
    """Submit ``request`` and wait for its result (the control lane answers in order, so any
    result queued before it has arrived by then)."""
    worker.submit_decode(request)
    qtbot.waitUntil(
        lambda: bool(results) and results[-1].request_id == request.request_id, timeout=FAKE_MS
    )


@pytest.mark.slow
def test_decode_matches_the_engine(qtbot, worker, image_dir, reference) -> None:
    path = str(image_dir / "truck.jpg")
    prompt = _point(600.0, 500.0)
    worker.set_focus(path)
    with qtbot.waitSignal(worker.decoded, timeout=TIMEOUT_MS) as blocker:
        worker.submit_decode(DecodeRequest(next_request_id(), path, prompt))
    result = blocker.args[0]
    expected = reference.mask(image_dir / "truck.jpg", prompt)
    assert result.image == path
    assert result.overlay.full_mask().shape == expected.shape
    assert np.array_equal(result.overlay.full_mask(), expected)
    assert np.array_equal(result.prediction.mask, expected)
    assert worker.model_info is not None and "random-init" in worker.model_info.display_name


def test_pending_decode_is_replaced_not_refused(qtbot, fake, fake_worker, image_dir) -> None:
    """Requests made while the image encodes collapse into the newest one, which is decoded
    once the encode is released."""
    worker = fake_worker
    (path,) = _paths(image_dir, "cars")
    fake.watch(path)
    results: list[DecodeResult] = []
    worker.decoded.connect(results.append)
    worker.set_focus(path)
    qtbot.waitUntil(lambda: fake.encode_count(path) == 1, timeout=FAKE_MS)  # held in the encoder
    requests = [DecodeRequest(next_request_id(), path, _point(10.0 + i, 20.0)) for i in range(50)]
    for request in requests:
        worker.submit_decode(request)
    assert fake.decodes == []  # nothing decodes before the embedding exists
    fake.release(path)
    qtbot.waitUntil(lambda: len(results) >= 1, timeout=FAKE_MS)
    assert fake.log == [("encode", path), ("encoded", path), ("decode", path)]
    assert results[0].request_id == requests[-1].request_id
    assert np.array_equal(
        results[0].prediction.mask,
        fake_mask(requests[-1].prompt, results[0].prediction.mask.shape, candidate=1),
    )
    # Once encoded, every request is answered, in order; a stray result for one of the 49
    # replaced requests would have arrived before these (one lane, queued in order).
    more = [DecodeRequest(next_request_id(), path, _point(30.0, 40.0 + i)) for i in range(3)]
    for request in more:
        _answered(qtbot, worker, results, request)
    assert [r.request_id for r in results] == [requests[-1].request_id] + [
        r.request_id for r in more
    ]
    assert [call.prompt for call in fake.decodes] == [requests[-1].prompt] + [
        r.prompt for r in more
    ]


def test_pending_decode_for_the_previous_image_is_dropped(
    qtbot, fake, fake_worker, image_dir
) -> None:
    worker = fake_worker
    first, second = _paths(image_dir, "truck", "groceries")
    fake.watch(first, second)
    results: list[DecodeResult] = []
    worker.decoded.connect(results.append)
    worker.set_focus(first)
    qtbot.waitUntil(lambda: fake.encode_count(first) == 1, timeout=FAKE_MS)
    worker.submit_decode(DecodeRequest(next_request_id(), first, _point(100.0, 100.0)))
    worker.set_focus(second)
    fake.release(first, second)  # even if the first encode still finished, its click is gone
    qtbot.waitUntil(lambda: worker.is_encoded(second), timeout=FAKE_MS)
    probe = DecodeRequest(next_request_id(), second, _point(50.0, 60.0))
    _answered(qtbot, worker, results, probe)
    assert [r.request_id for r in results] == [probe.request_id]
    assert fake.decoded_images() == [second]


def test_a_decode_runs_while_a_prefetch_encodes(qtbot, fake, image_dir) -> None:
    """The two lanes: a click on the encoded image is answered while the next one encodes."""
    worker = start_fake_worker(qtbot, fake, prefetch=1)
    try:
        current, upcoming = _paths(image_dir, "truck", "groceries")
        fake.watch(current, upcoming)
        results: list[DecodeResult] = []
        worker.decoded.connect(results.append)
        worker.set_focus(current, [upcoming])
        fake.release(current)
        qtbot.waitUntil(lambda: fake.encode_count(upcoming) == 1, timeout=FAKE_MS)
        _answered(qtbot, worker, results, DecodeRequest(next_request_id(), current, _point(9, 9)))
        assert fake.log == [
            ("encode", current),
            ("encoded", current),
            ("encode", upcoming),
            ("decode", current),
        ]
        assert not worker.is_encoded(upcoming)  # still held: the decode did not wait for it
    finally:
        fake.release_all()
        assert worker.shutdown()


def test_jumping_away_cancels_the_encode(qtbot, fake, fake_worker, image_dir) -> None:
    worker = fake_worker
    events = _events(worker)
    first, second = _paths(image_dir, "truck", "groceries")
    fake.watch(first, second)
    worker.set_focus(first)
    qtbot.waitUntil(lambda: fake.encode_count(first) == 1, timeout=FAKE_MS)
    worker.set_focus(second)
    qtbot.waitUntil(lambda: fake.cancelled == [first], timeout=FAKE_MS)
    fake.release(second)
    qtbot.waitUntil(
        lambda: any(e.path == second and e.state == "ready" for e in events), timeout=FAKE_MS
    )
    assert [e.state for e in events if e.path == first] == ["encoding", "cancelled"]
    assert fake.log == [
        ("encode", first),
        ("cancelled", first),
        ("encode", second),
        ("encoded", second),
    ]
    assert not worker.is_encoded(first)
    assert worker.is_encoded(second)


def test_prefetch_encodes_the_next_images_and_is_cancelled_on_jump(qtbot, fake, image_dir) -> None:
    worker = start_fake_worker(qtbot, fake, prefetch=2)
    events = _events(worker)
    try:
        truck, groceries, cars = _paths(image_dir, "truck", "groceries", "cars")
        fake.watch(truck, groceries, cars)
        worker.set_focus(truck, [groceries, cars])
        qtbot.waitUntil(lambda: fake.encode_count(truck) == 1, timeout=FAKE_MS)
        assert fake.encodes == [truck]  # the current image first, alone
        fake.release(truck)
        qtbot.waitUntil(lambda: fake.encode_count(groceries) == 1, timeout=FAKE_MS)
        # The current image was encoded first, then the prefetch started.
        assert fake.log == [("encode", truck), ("encoded", truck), ("encode", groceries)]
        qtbot.waitUntil(
            lambda: any(e.path == groceries and e.state == "encoding" for e in events),
            timeout=FAKE_MS,
        )
        assert all(not e.current for e in events if e.path == groceries)
        # Jump to an image that is not encoded: the prefetch gives way at once.
        worker.set_focus(cars, [])
        qtbot.waitUntil(lambda: fake.cancelled == [groceries], timeout=FAKE_MS)
        fake.release(cars)
        qtbot.waitUntil(
            lambda: any(e.path == cars and e.state == "ready" for e in events), timeout=FAKE_MS
        )
        assert (groceries, "cancelled") in [(e.path, e.state) for e in events]
        assert fake.log[3:] == [("cancelled", groceries), ("encode", cars), ("encoded", cars)]
        assert not worker.is_encoded(groceries)
    finally:
        fake.release_all()
        assert worker.shutdown()


@pytest.mark.slow
def test_errors_arrive_on_the_one_error_signal(qtbot, worker, tmp_path) -> None:
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not an image")
    with qtbot.waitSignal(worker.failed, timeout=TIMEOUT_MS) as blocker:
        worker.set_focus(str(broken))
    error = blocker.args[0]
    assert error.kind == "image" and error.user_error
    assert "broken.jpg" in error.message
    with qtbot.waitSignal(worker.failed, timeout=TIMEOUT_MS) as blocker:
        worker.load_model(tmp_path / "no-such-model")
    assert blocker.args[0].kind == "model"


def test_a_failed_encode_is_reported_once_and_retried_on_revisit(
    qtbot, fake, fake_worker, image_dir
) -> None:
    worker = fake_worker
    events = _events(worker)
    errors = []
    worker.failed.connect(errors.append)
    broken, other = _paths(image_dir, "truck", "groceries")
    fake.fail(broken)
    fake.release(broken, other)
    with qtbot.waitSignal(worker.failed, timeout=FAKE_MS):
        worker.set_focus(broken)
    assert [(e.kind, e.path, e.user_error) for e in errors] == [("encode", broken, True)]
    worker.set_focus(other)
    qtbot.waitUntil(lambda: worker.is_encoded(other), timeout=FAKE_MS)
    assert fake.encode_count(broken) == 1  # not retried while elsewhere (not a prefetch)
    fake.fail(broken, failing=False)
    worker.set_focus(broken)  # revisiting a failed image retries it
    qtbot.waitUntil(
        lambda: any(e.path == broken and e.state == "ready" for e in events), timeout=FAKE_MS
    )
    assert [e.state for e in events if e.path == broken] == [
        "encoding",
        "failed",
        "encoding",
        "ready",
    ]
    assert len(errors) == 1


def test_reloading_the_model_while_encoding(qtbot, fake, fake_worker, image_dir) -> None:
    worker = fake_worker
    events = _events(worker)
    (path,) = _paths(image_dir, "truck")
    fake.watch(path)
    worker.set_focus(path)
    qtbot.waitUntil(lambda: fake.encode_count(path) == 1, timeout=FAKE_MS)
    with qtbot.waitSignal(worker.model_loaded, timeout=FAKE_MS):
        worker.load_model(FAKE_MODEL)
    assert fake.cancelled == [path]  # the held encode gave way before the model was replaced
    assert fake.loads == [FAKE_MODEL, FAKE_MODEL]
    qtbot.waitUntil(lambda: fake.encode_count(path) == 2, timeout=FAKE_MS)
    fake.release(path)
    qtbot.waitUntil(lambda: bool(events) and events[-1].state == "ready", timeout=FAKE_MS)
    assert [e.state for e in events] == ["encoding", "cancelled", "encoding", "ready"]
    # No encode started with the old model once the new one was asked for.
    assert fake.log == [("encode", path), ("cancelled", path), ("encode", path), ("encoded", path)]
    assert worker.is_encoded(path)


def test_the_next_image_is_shown_from_the_prefetch_without_decoding_it_again(
    qtbot, fake, image_dir, monkeypatch
) -> None:
    """The prefetch decoded the next image's file to encode it; going there reuses those
    pixels (one ``load_image`` per file), unless the file changed since."""
    from sam2_annotator.gui import worker as worker_module

    loads: list[str] = []
    real_load = worker_module.load_image

    def counting_load(path, *args, **kwargs):
        loads.append(str(path))
        return real_load(path, *args, **kwargs)

    monkeypatch.setattr(worker_module, "load_image", counting_load)
    worker = start_fake_worker(qtbot, fake, prefetch=2)
    events = _events(worker)
    try:
        truck, groceries, cars = _paths(image_dir, "truck", "groceries", "cars")
        fake.release_all()  # encodes return at once: this test is about pixels, not order
        worker.set_focus(truck, [groceries, cars])
        qtbot.waitUntil(lambda: worker.is_encoded(groceries), timeout=FAKE_MS)
        with qtbot.waitSignal(worker.image_loaded, timeout=FAKE_MS) as shown:
            worker.set_focus(groceries, [cars])
        assert shown.args[0].path == groceries
        assert shown.args[0].width == 800  # groceries is 800x534: its own pixels
        assert loads.count(groceries) == 1  # by the prefetch only
        qtbot.waitUntil(lambda: worker.is_encoded(cars), timeout=FAKE_MS)
        # cars changes on disk after its prefetch: going there decodes the new file.
        stat = Path(cars).stat()
        os.utime(cars, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
        with qtbot.waitSignal(worker.image_loaded, timeout=FAKE_MS):
            worker.set_focus(cars, [])
        assert loads.count(cars) == 2
        assert any(e.path == groceries and e.state == "ready" for e in events)
    finally:
        fake.release_all()
        assert worker.shutdown()


def test_the_first_click_on_a_prefetched_image_decodes_before_the_next_prefetch(
    qtbot, fake, image_dir
) -> None:
    worker = start_fake_worker(qtbot, fake, prefetch=1, first_click_grace_s=60.0)
    results: list[DecodeResult] = []
    worker.decoded.connect(results.append)
    try:
        truck, groceries, cars = _paths(image_dir, "truck", "groceries", "cars")
        fake.watch(truck, groceries, cars)  # named in the log
        fake.release(truck, groceries, cars)
        worker.set_focus(truck, [groceries])
        qtbot.waitUntil(lambda: worker.is_encoded(groceries), timeout=FAKE_MS)
        with qtbot.waitSignal(worker.image_loaded, timeout=FAKE_MS):
            worker.set_focus(groceries, [cars])
        request = DecodeRequest(next_request_id(), groceries, _point(100, 100))
        _answered(qtbot, worker, results, request)
        qtbot.waitUntil(lambda: fake.encode_count(cars) == 1, timeout=FAKE_MS)
        kinds = [entry for entry in fake.log if entry[1] in (groceries, cars)]
        assert kinds.index(("decode", groceries)) < kinds.index(("encode", cars))
    finally:
        fake.release_all()
        assert worker.shutdown()


def test_without_a_click_the_prefetch_resumes_after_the_grace(qtbot, fake, image_dir) -> None:
    worker = start_fake_worker(qtbot, fake, prefetch=1, first_click_grace_s=0.3)
    try:
        truck, groceries, cars = _paths(image_dir, "truck", "groceries", "cars")
        fake.release_all()
        worker.set_focus(truck, [groceries])
        qtbot.waitUntil(lambda: worker.is_encoded(groceries), timeout=FAKE_MS)
        worker.set_focus(groceries, [cars])
        qtbot.waitUntil(lambda: worker.is_encoded(cars), timeout=FAKE_MS)
        assert not any(kind == "decode" for kind, _ in fake.log)
    finally:
        fake.release_all()
        assert worker.shutdown()
