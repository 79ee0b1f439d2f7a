"""The inference worker on its own: results, latest-wins, cancellation, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.engine.types import Prompt
from sam2_annotator.gui.worker import (
    DecodeRequest,
    EncodeEvent,
    InferenceWorker,
    next_request_id,
)

pytestmark = pytest.mark.slow

TIMEOUT_MS = 60_000


@pytest.fixture
def worker(qtbot, model_dir: Path):
    worker = InferenceWorker(prefetch=0)
    worker.start()
    with qtbot.waitSignal(worker.model_loaded, timeout=TIMEOUT_MS):
        worker.load_model(model_dir)
    yield worker
    assert worker.shutdown()


def _point(x: float, y: float, label: int = 1) -> Prompt:
    return Prompt(np.array([[x, y]], np.float32), np.array([label], np.int64))


def _events(worker: InferenceWorker) -> list[EncodeEvent]:
    events: list[EncodeEvent] = []
    worker.encode_event.connect(events.append)
    return events


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


def test_pending_decode_is_replaced_not_refused(qtbot, worker, image_dir) -> None:
    """Requests made while the image encodes collapse into the newest one."""
    path = str(image_dir / "cars.jpg")
    results = []
    worker.decoded.connect(results.append)
    worker.set_focus(path)
    ids = []
    for i in range(50):
        request = DecodeRequest(next_request_id(), path, _point(10.0 + i, 20.0))
        ids.append(request.request_id)
        worker.submit_decode(request)
    qtbot.waitUntil(lambda: len(results) >= 1, timeout=TIMEOUT_MS)
    qtbot.wait(300)  # any further (wrong) result would arrive now
    assert [r.request_id for r in results] == [ids[-1]]
    # Once encoded, every request is answered in order.
    more = [DecodeRequest(next_request_id(), path, _point(30.0, 40.0 + i)) for i in range(3)]
    for request in more:
        worker.submit_decode(request)
        qtbot.waitUntil(lambda r=request: results[-1].request_id == r.request_id, timeout=10_000)
    assert [r.request_id for r in results][1:] == [r.request_id for r in more]


def test_jumping_away_cancels_the_encode(qtbot, worker, image_dir) -> None:
    events = _events(worker)
    first, second = str(image_dir / "truck.jpg"), str(image_dir / "groceries.jpg")
    worker.set_focus(first)
    qtbot.waitUntil(
        lambda: any(e.path == first and e.state == "encoding" for e in events), timeout=TIMEOUT_MS
    )
    worker.set_focus(second)
    qtbot.waitUntil(
        lambda: any(e.path == second and e.state == "ready" for e in events), timeout=TIMEOUT_MS
    )
    states = [e.state for e in events if e.path == first]
    assert states == ["encoding", "cancelled"]
    assert not worker.is_encoded(first)
    assert worker.is_encoded(second)


def test_prefetch_encodes_the_next_images_and_is_cancelled_on_jump(
    qtbot, model_dir, image_dir
) -> None:
    worker = InferenceWorker(prefetch=2)
    events = _events(worker)
    worker.start()
    try:
        with qtbot.waitSignal(worker.model_loaded, timeout=TIMEOUT_MS):
            worker.load_model(model_dir)
        truck, groceries, cars = (
            str(image_dir / f"{n}.jpg") for n in ("truck", "groceries", "cars")
        )
        worker.set_focus(truck, [groceries, cars])
        qtbot.waitUntil(
            lambda: any(e.path == groceries and e.state == "encoding" for e in events),
            timeout=TIMEOUT_MS,
        )
        # The current image was encoded first, then the prefetch started.
        order = [(e.path, e.state) for e in events]
        assert order.index((truck, "ready")) < order.index((groceries, "encoding"))
        assert all(not e.current for e in events if e.path == groceries)
        # Jump to an image that is not encoded: the prefetch gives way at once.
        worker.set_focus(cars, [])
        qtbot.waitUntil(
            lambda: any(e.path == cars and e.state == "ready" for e in events), timeout=TIMEOUT_MS
        )
        assert (groceries, "cancelled") in [(e.path, e.state) for e in events]
    finally:
        assert worker.shutdown()


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


def test_reloading_the_model_while_encoding(qtbot, worker, model_dir, image_dir) -> None:
    events = _events(worker)
    path = str(image_dir / "truck.jpg")
    worker.set_focus(path)
    qtbot.waitUntil(lambda: any(e.state == "encoding" for e in events), timeout=TIMEOUT_MS)
    with qtbot.waitSignal(worker.model_loaded, timeout=TIMEOUT_MS):
        worker.load_model(model_dir)
    qtbot.waitUntil(lambda: events[-1].state == "ready", timeout=TIMEOUT_MS)
    assert [e.state for e in events] == ["encoding", "cancelled", "encoding", "ready"]
    assert worker.is_encoded(path)
