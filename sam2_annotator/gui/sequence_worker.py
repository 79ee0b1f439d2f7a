"""The sequence worker: the tracker and the frame decoding run here, never on the GUI thread.

The same pattern as :class:`~.worker.InferenceWorker`: a QObject that stays in the GUI thread,
whose thread-safe request methods only store a request under a lock and wake a pull loop, and
whose results come back as queued signals; errors travel through the one :attr:`failed` signal
(:class:`~.worker.WorkerError`). Two lanes:

* the *tracker lane* (a QThread) opens the :class:`~sam2_annotator.engine.tracker.VideoTracker`
  (replaying saved clicks), applies clicks and propagates. Clicks wait in one pending slot *per
  frame and object*: a newer click for the same frame and object replaces the pending one (it
  carries that object's whole prompt on the frame, so nothing is lost); clicks for other targets
  queue in order. A propagation runs frame by frame and emits each frame as it is done; Cancel
  (or shutdown) stops it before the next frame. Clicks sent meanwhile run once it has stopped.
* the *frame lane* (a helper thread) decodes the frame on screen from a frame source of its own
  (the tracker's stays sequential) and paints its masks into overlays; only the latest request
  is served, so scrubbing or playing never builds a backlog, and it works while the tracker lane
  is busy propagating.

Masks leave the tracker lane as COCO RLE (:class:`~sam2_annotator.app.sequence.FrameMask`), never
as full-size arrays: a clip's masks would not fit in RAM, and the project stores RLE anyway.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QObject, QThread, Signal
from PySide6.QtGui import QImage

from sam2_annotator.annotations.masks import Rle, mask_to_rle
from sam2_annotator.app.sequence import (
    ClickOrder,
    FrameMask,
    FramePrompt,
    MaskSource,
    PropagateOrder,
)
from sam2_annotator.engine.cache import MemoryCache
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.engine.tracker import (
    DEFAULT_CACHE_BYTES,
    FrameResult,
    FrameTimings,
    TrackerOptions,
    VideoTracker,
    tracker_from_folder,
)
from sam2_annotator.engine.video_io import FrameSource, open_source
from sam2_annotator.errors import UserError
from sam2_annotator.gui.overlay import MaskOverlay, make_overlay
from sam2_annotator.gui.pyramid import build_pyramid
from sam2_annotator.gui.worker_messages import WorkerError

log = logging.getLogger(__name__)

RGB = tuple[int, int, int]
#: Opens the tracker for (model folder, frame source, session config); tests may pass another.
TrackerFactory = Callable[[Path, FrameSource, SessionConfig], VideoTracker]


def open_tracker(folder: Path, source: FrameSource, config: SessionConfig) -> VideoTracker:
    """The default factory. A click on an already tracked frame is made a conditioning frame
    (``add_all_frames_to_correct_as_cond``), so a correction holds when propagation goes on from
    it; with the reference's default the next propagation would overwrite it."""
    from sam2_annotator.engine.model_files import ModelFiles

    ModelFiles.from_folder(folder)  # the model folder's own error first (missing, no pair)
    options = TrackerOptions(add_all_frames_to_correct_as_cond=True)
    return tracker_from_folder(
        str(folder), source, config, MemoryCache(DEFAULT_CACHE_BYTES), options
    )


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class SourceInfo:
    """The clip, as the frame lane opened it."""

    path: Path
    name: str
    num_frames: int
    frame_hw: tuple[int, int]
    fps: float | None


@dataclass(frozen=True)
class TrackerInfo:
    """The tracker is ready (``replayed``: saved clicks given to it)."""

    model_folder: Path
    display_name: str
    random_init: bool
    load_ms: float
    replayed: int


@dataclass(frozen=True)
class FrameRequest:
    request_id: int
    frame: int
    masks: tuple[tuple[int, Rle, RGB], ...] = ()


@dataclass(frozen=True)
class FrameView:
    """A frame ready to show: its pyramid and its objects' overlays (track id, overlay)."""

    request: FrameRequest
    pyramid: tuple[QImage, ...]
    overlays: tuple[tuple[int, MaskOverlay], ...]
    ms: float

    @property
    def frame(self) -> int:
        return self.request.frame


@dataclass(frozen=True)
class ClickResult:
    order: ClickOrder
    mask: FrameMask | None  # None: the click failed (the error went through ``failed``)
    ms: float
    timings: FrameTimings = field(default_factory=FrameTimings)


@dataclass(frozen=True)
class PropagateStep:
    order: PropagateOrder
    frame: int
    masks: dict[int, FrameMask]
    timings: FrameTimings
    wall_ms: float


@dataclass(frozen=True)
class PropagateEnd:
    order: PropagateOrder
    frames: int
    cancelled: bool
    failed: bool
    ms: float


@dataclass(frozen=True)
class _OpenRequest:
    folder: Path
    config: SessionConfig
    replay: tuple[tuple[int, int, FramePrompt], ...]


def frame_masks(result: FrameResult, source: MaskSource = "tracked") -> dict[int, FrameMask]:
    """The tracker's logits as RLE masks at the frame's size."""
    return {
        obj_id: FrameMask(mask_to_rle(mask), float(result.object_scores[obj_id]), source)
        for obj_id, mask in result.masks().items()
    }


class _TrackerThread(QThread):
    def __init__(self, worker: SequenceWorker) -> None:
        super().__init__()
        self._worker = worker
        self.setObjectName("sam2-tracker")

    def run(self) -> None:
        self._worker._tracker_loop()


# --------------------------------------------------------------------------- the worker


class SequenceWorker(QObject):
    """See the module docstring. Create in the GUI thread, :meth:`start`, then :meth:`open`."""

    source_opened = Signal(object)  # SourceInfo
    tracker_ready = Signal(object)  # TrackerInfo
    frame_ready = Signal(object)  # FrameView
    clicked = Signal(object)  # ClickResult
    propagated = Signal(object)  # PropagateStep
    propagation_ended = Signal(object)  # PropagateEnd
    failed = Signal(object)  # WorkerError

    def __init__(self, source_path: Path, tracker_factory: TrackerFactory | None = None) -> None:
        super().__init__()
        self.source_path = Path(source_path)
        self._factory = tracker_factory or open_tracker
        self._cond = threading.Condition()
        self._stopping = False
        self._open: _OpenRequest | None = None
        self._tracker: VideoTracker | None = None
        self._clicks: dict[tuple[int, int], ClickOrder] = {}
        self._removals: list[int] = []
        self._propagate: PropagateOrder | None = None
        self._cancel = threading.Event()
        self._frame: FrameRequest | None = None
        self._thread: _TrackerThread | None = None
        self._frames_thread: threading.Thread | None = None
        #: Encoder runs of the tracker so far (read by tests and the status bar).
        self.encoder_runs = 0

    # ------------------------------------------------------------------ lifecycle (GUI thread)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the sequence worker is already started")
        self._frames_thread = threading.Thread(
            target=self._frames_loop, name="sam2-frames", daemon=True
        )
        self._frames_thread.start()
        self._thread = _TrackerThread(self)
        self._thread.start()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop both lanes (a propagation stops after its current frame) and wait."""
        with self._cond:
            self._stopping = True
            self._cancel.set()
            self._cond.notify_all()
        stopped = True
        if self._thread is not None:
            stopped = bool(self._thread.wait(int(timeout_s * 1000)))
        if self._frames_thread is not None:
            self._frames_thread.join(timeout_s)
            stopped = stopped and not self._frames_thread.is_alive()
        if not stopped:
            log.error("the sequence worker did not stop within %.0f s", timeout_s)
        return stopped

    # ------------------------------------------------------------------ requests (any thread)

    def open_tracker(
        self,
        folder: Path,
        config: SessionConfig | None = None,
        replay: tuple[tuple[int, int, FramePrompt], ...] = (),
    ) -> None:
        """Open the tracker on the model in ``folder`` and give it the saved clicks."""
        with self._cond:
            self._open = _OpenRequest(Path(folder), config or SessionConfig(), replay)
            self._cond.notify_all()

    def show_frame(self, request: FrameRequest) -> None:
        """Decode ``request.frame`` and paint its masks (replaces a request not started yet)."""
        with self._cond:
            self._frame = request
            self._cond.notify_all()

    def submit_click(self, order: ClickOrder) -> None:
        with self._cond:
            key = (order.frame, order.track_id)
            replaced = self._clicks.pop(key, None)
            if replaced is not None:
                log.debug("click %d replaced by %d", replaced.request_id, order.request_id)
            self._clicks[key] = order
            self._cond.notify_all()

    def propagate(self, order: PropagateOrder) -> None:
        with self._cond:
            self._propagate = order
            self._cancel.clear()
            self._cond.notify_all()

    def cancel_propagation(self) -> None:
        """Stop the running propagation after the frame in progress (one not started yet ends
        at once, answered by :attr:`propagation_ended` like any other)."""
        with self._cond:
            self._cancel.set()
            self._cond.notify_all()

    def remove_object(self, track_id: int) -> None:
        with self._cond:
            for key in [k for k in self._clicks if k[1] == track_id]:
                del self._clicks[key]
            self._removals.append(track_id)
            self._cond.notify_all()

    # ------------------------------------------------------------------ the tracker lane

    def _tracker_loop(self) -> None:
        while True:
            with self._cond:
                job = self._pick()
                while job is None and not self._stopping:
                    self._cond.wait()
                    job = self._pick()
                if self._stopping:
                    break
            try:
                job()
            except Exception as exc:  # the top of a worker loop: report, never let it die
                log.exception("sequence worker job failed")
                self.failed.emit(
                    WorkerError("internal", f"internal error: {exc}", user_error=False)
                )
        tracker, self._tracker = self._tracker, None  # its sessions and frame features go now
        if tracker is not None:
            tracker.source.close()
        log.debug("sequence tracker lane stopped")

    def _pick(self) -> Callable[[], None] | None:
        """The next job (under the lock): open, removals, clicks, then a propagation."""
        if self._open is not None:
            request, self._open = self._open, None
            return lambda: self._open_tracker(request)
        tracker = self._tracker
        if tracker is None:
            return None
        if self._removals:
            removals, self._removals = self._removals, []
            return lambda: self._remove(tracker, removals)
        if self._clicks:
            key = next(iter(self._clicks))
            order = self._clicks.pop(key)
            return lambda: self._click(tracker, order)
        if self._propagate is not None:
            order, self._propagate = self._propagate, None
            return lambda: self._run_propagation(tracker, order)
        return None

    def _open_tracker(self, request: _OpenRequest) -> None:
        start = time.perf_counter()
        old, self._tracker = self._tracker, None
        if old is not None:
            old.source.close()
        try:
            from sam2_annotator.engine.model_files import ModelFiles

            source = open_source(self.source_path)
            tracker = self._factory(request.folder, source, request.config)
            files = ModelFiles.from_folder(request.folder)
        except UserError as exc:
            log.warning("no tracker for %s: %s", self.source_path.name, exc)
            self.failed.emit(WorkerError("model", str(exc), path=str(request.folder)))
            return
        replayed = 0
        for frame, track_id, prompt in request.replay:
            if self._stopping:
                return
            points, labels, box = prompt.arrays()
            try:
                tracker.add_points(frame, track_id, points, labels, box=box)
                replayed += 1
            except UserError as exc:
                self.failed.emit(WorkerError("decode", f"saved click on frame {frame}: {exc}"))
        with self._cond:
            self._tracker = tracker
            self.encoder_runs = tracker.encoder_runs
            self._cond.notify_all()
        ms = (time.perf_counter() - start) * 1000.0
        info = TrackerInfo(request.folder, files.display_name, files.is_random_init, ms, replayed)
        log.info("tracker ready: %s (%.0f ms, %d clicks replayed)", info.display_name, ms, replayed)
        self.tracker_ready.emit(info)

    def _remove(self, tracker: VideoTracker, track_ids: list[int]) -> None:
        for track_id in track_ids:
            # objects are independent in SAM2's tracker: dropping one leaves the others exact
            tracker.objects.pop(track_id, None)

    def _click(self, tracker: VideoTracker, order: ClickOrder) -> None:
        start = time.perf_counter()
        points, labels, box = order.prompt.arrays()
        try:
            result = tracker.add_points(order.frame, order.track_id, points, labels, box=box)
        except UserError as exc:
            self.failed.emit(WorkerError("decode", str(exc), request_id=order.request_id))
            self.clicked.emit(ClickResult(order, None, 0.0))
            return
        self.encoder_runs = tracker.encoder_runs
        mask = frame_masks(result, "prompt")[order.track_id]
        ms = (time.perf_counter() - start) * 1000.0
        self.clicked.emit(ClickResult(order, mask, ms, result.timings))

    def _run_propagation(self, tracker: VideoTracker, order: PropagateOrder) -> None:
        start = time.perf_counter()
        done, failed = 0, False
        cancelled = self._cancel.is_set
        try:
            for result in tracker.propagate(
                order.start, order.max_frames, order.reverse, cancelled
            ):
                self.encoder_runs = tracker.encoder_runs
                masks = frame_masks(result)
                done += 1
                step = PropagateStep(order, result.frame_idx, masks, result.timings, result.wall_ms)
                self.propagated.emit(step)
        except UserError as exc:
            failed = True
            self.failed.emit(WorkerError("decode", str(exc), request_id=order.request_id))
        finally:
            ms = (time.perf_counter() - start) * 1000.0
            was_cancelled = self._cancel.is_set() and not failed
            self.propagation_ended.emit(PropagateEnd(order, done, was_cancelled, failed, ms))
            log.info("propagation %d: %d frames in %.0f ms%s", order.request_id, done, ms,
                     " (cancelled)" if was_cancelled else "")  # fmt: skip

    # ------------------------------------------------------------------ the frame lane

    def _frames_loop(self) -> None:
        source: FrameSource | None = None
        shown: tuple[int, tuple[QImage, ...]] | None = None
        try:
            source = open_source(self.source_path)
        except UserError as exc:
            self.failed.emit(WorkerError("image", str(exc), path=str(self.source_path)))
            return
        self.source_opened.emit(
            SourceInfo(self.source_path, source.name, len(source), source.frame_hw, source.fps)
        )
        try:
            while True:
                with self._cond:
                    while self._frame is None and not self._stopping:
                        self._cond.wait()
                    if self._stopping:
                        return
                    request, self._frame = self._frame, None
                try:
                    shown = self._render(source, request, shown)
                except UserError as exc:
                    self.failed.emit(WorkerError("image", str(exc), path=str(self.source_path)))
                except Exception as exc:  # the top of a worker loop
                    log.exception("rendering frame %d failed", request.frame)
                    self.failed.emit(
                        WorkerError("internal", f"internal error: {exc}", user_error=False)
                    )
        finally:
            source.close()

    def _render(
        self,
        source: FrameSource,
        request: FrameRequest,
        shown: tuple[int, tuple[QImage, ...]] | None,
    ) -> tuple[int, tuple[QImage, ...]]:
        start = time.perf_counter()
        if shown is None or shown[0] != request.frame:
            shown = (request.frame, build_pyramid(source.read(request.frame)))
        overlays = tuple(
            (track_id, make_overlay(rle.decode(), color))
            for track_id, rle, color in request.masks
            if rle.area > 0
        )
        ms = (time.perf_counter() - start) * 1000.0
        self.frame_ready.emit(FrameView(request, shown[1], overlays, ms))
        return shown
