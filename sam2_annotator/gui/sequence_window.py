"""The sequence window: click objects on any frame of a clip and track them through it (Qt only).

Opened by the main window for a video file or a folder of frames (File > Open Video…, a video
given on the command line or dropped). Data flow, as in the image mode: a click on the
:class:`~.canvas.Canvas` goes to the Qt-free :class:`~sam2_annotator.app.sequence.SequenceSession`,
which records the prompt in the :class:`~sam2_annotator.app.sequence.SequenceModel` and returns an
order with a request id; the :class:`~.sequence_worker.SequenceWorker` runs it on its own thread
and answers with a signal; the session applies the answer if it is still the latest. Propagation
streams one signal per frame into the model; the model's change callbacks redraw the frame on
screen (if it is the one that changed), the object list and the timeline, and hand a snapshot
to the background saver, so the project file beside the clip follows every change.
"""

from __future__ import annotations

import logging
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import (
    QApplication,
    QDialog,
    QDockWidget,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QVBoxLayout,
    QWidget,
)

from sam2_annotator.annotations.saver import SaveResult
from sam2_annotator.app.sequence import (
    SequenceChange,
    SequenceModel,
    SequenceSession,
    objects_without_prompts,
)
from sam2_annotator.app.sequence_io import SequenceSaver, open_model, project_path_for
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.errors import UserError
from sam2_annotator.gui.canvas import AnnotationShape, Canvas
from sam2_annotator.gui.dialogs import ErrorBox, reports_errors
from sam2_annotator.gui.sequence_actions import install_sequence_actions
from sam2_annotator.gui.sequence_view import ObjectsPanel, Timeline, TrackBadge
from sam2_annotator.gui.sequence_worker import (
    ClickResult,
    FrameRequest,
    FrameView,
    PropagateEnd,
    PropagateStep,
    SequenceWorker,
    SourceInfo,
    TrackerFactory,
    TrackerInfo,
)
from sam2_annotator.gui.settings import AppSettings
from sam2_annotator.gui.status import RANDOM_INIT_STYLE
from sam2_annotator.gui.worker_messages import WorkerError, next_request_id

log = logging.getLogger(__name__)

MESSAGE_MS = 5000
#: Playback speed of a folder of frames (a video plays at its own rate).
FOLDER_FPS = 12.0
#: Worker error kinds shown in the error box; the others go to the status bar.
BOXED_ERRORS = frozenset({"model", "image", "internal"})


class SequenceWindow(QMainWindow):
    """See the module docstring. ``model_dir`` must hold video graphs to track; without it the
    clip and its saved masks can still be viewed and exported."""

    #: A frame was shown with its masks (FrameView; for tests and tools).
    frame_shown = Signal(object)
    #: The project file was written (SaveResult), queued from the saver thread.
    save_finished = Signal(object)
    #: The window closed (the main window drops its reference).
    closed = Signal()

    def __init__(
        self,
        source: Path,
        model_dir: Path | None,
        settings: AppSettings | None = None,
        session_config: SessionConfig | None = None,
        tracker_factory: TrackerFactory | None = None,
    ) -> None:
        super().__init__()
        self.setObjectName("sequenceWindow")
        self.source_path = Path(source).expanduser().resolve()
        self.project_path = project_path_for(self.source_path)
        self.model_dir = model_dir
        self.settings = settings if settings is not None else AppSettings.load()
        self.session_config = session_config or SessionConfig()
        self.info: SourceInfo | None = None
        self.tracker: TrackerInfo | None = None
        self.tracker_error: str | None = None
        self.model: SequenceModel | None = None
        self.session: SequenceSession | None = None
        self.saver: SequenceSaver | None = None
        self.last_save: SaveResult | None = None
        self.shown: FrameView | None = None
        self._frame_request = 0
        self._badges: list[TrackBadge] = []
        self._shut_down = False
        self.export_dialog: QDialog | None = None
        self.setWindowTitle(f"{self.source_path.name} — sequence — sam2-annotator")

        self.canvas = Canvas(self)
        self.canvas.hint.setText("Opening the clip…")
        self.canvas.hint.adjustSize()
        self.timeline = Timeline()
        central = QWidget()
        layout = QVBoxLayout(central)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.canvas, 1)
        layout.addWidget(self.timeline)
        self.setCentralWidget(central)
        self.objects = ObjectsPanel()
        dock = QDockWidget("Objects", self)
        dock.setObjectName("objectsDock")
        dock.setWidget(self.objects)
        dock.setFeatures(QDockWidget.DockWidgetFeature.DockWidgetMovable)
        self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.error_box = ErrorBox(self)
        self.actions_by_name = install_sequence_actions(self)
        self.progress = QProgressBar()
        self.progress.setObjectName("propagationProgress")
        self.progress.setMaximumWidth(220)
        self.progress.setVisible(False)
        self.model_label = QLabel("no model")
        self.speed_label = QLabel("")
        self.statusBar().addWidget(self.speed_label)
        self.statusBar().addPermanentWidget(self.progress)
        self.statusBar().addPermanentWidget(self.model_label)

        self.play_timer = QTimer(self)
        self.play_timer.timeout.connect(self._play_tick)
        self.canvas.point_clicked.connect(self.click)
        self.canvas.box_drawn.connect(self.box)
        self.canvas.accept_requested.connect(self.toggle_play)
        self.timeline.frame_changed.connect(self.go_to)
        self.timeline.play_toggled.connect(self.toggle_play)
        self.objects.chosen.connect(self.choose)
        self.objects.new_requested.connect(self.new_object)
        self.objects.delete_requested.connect(self.delete_object)
        self.objects.relabel_requested.connect(self.relabel)
        self.save_finished.connect(self._on_saved)

        self.worker = SequenceWorker(self.source_path, tracker_factory)
        self.worker.source_opened.connect(self._on_source_opened)
        self.worker.tracker_ready.connect(self._on_tracker_ready)
        self.worker.frame_ready.connect(self._on_frame_ready)
        self.worker.clicked.connect(self._on_clicked)
        self.worker.propagated.connect(self._on_propagated)
        self.worker.propagation_ended.connect(self._on_propagation_ended)
        self.worker.failed.connect(self._on_failed)
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.shutdown)
        self.worker.start()
        self.resize(1200, 800)
        self._update_actions()

    # ------------------------------------------------------------------ opening

    @property
    def tracking_ready(self) -> bool:
        return self.tracker is not None

    def _on_source_opened(self, info: SourceInfo) -> None:
        self.info = info
        try:
            model = open_model(self.project_path, self.source_path.name, info.num_frames,
                               info.frame_hw)  # fmt: skip
        except UserError as exc:
            self.show_error(f"{exc}\nThe clip is shown, but nothing is saved.")
            model = SequenceModel(self.source_path.name, info.num_frames, info.frame_hw)
        else:
            self.saver = SequenceSaver(model, self.project_path, self.save_finished.emit)
        self.model = model
        self.session = SequenceSession(model, next_request_id)
        model.listeners.append(self._on_model_change)
        self.timeline.set_range(info.num_frames)
        self.canvas.hint.setText("Loading the frame…")
        self.canvas.hint.adjustSize()
        self._refresh_objects()
        self._show_frame()
        if self.model_dir is None:
            self.tracker_error = "no model is set up: set one up in the main window to track"
            self.model_label.setText("no model: viewing only")
        else:
            replay = tuple(sorted(model.prompts.items()))
            self.worker.open_tracker(
                self.model_dir, self.session_config, tuple((f, t, p) for (f, t), p in replay)
            )
            self.model_label.setText(f"loading {self.model_dir.name}…")
        saved = len(model.processed_frames())
        if saved:
            self.status(f"opened {self.project_path.name}: {saved} frames with masks")
        self._update_actions()

    def _on_tracker_ready(self, info: TrackerInfo) -> None:
        self.tracker = info
        self.tracker_error = None
        self.model_label.setText(info.display_name)
        self.model_label.setToolTip(str(info.model_folder))
        self.model_label.setStyleSheet(RANDOM_INIT_STYLE if info.random_init else "")
        replayed = f", {info.replayed} saved clicks replayed" if info.replayed else ""
        self.status(f"tracker ready ({info.load_ms / 1000:.1f} s{replayed})")
        self._update_actions()

    def _on_failed(self, error: WorkerError) -> None:
        """The one handler of the worker's errors."""
        if error.kind == "model":
            self.tracker_error = error.message
            self.model_label.setText("tracking off (see the message)")
            self.model_label.setStyleSheet(RANDOM_INIT_STYLE)
            self._update_actions()
        if error.kind == "image" and self.info is None:
            self.canvas.hint.setText("This clip cannot be opened (see the message).")
            self.canvas.hint.adjustSize()
        text = error.message + ("" if error.user_error else "\n(see the log file for details)")
        if error.kind in BOXED_ERRORS:
            self.show_error(text)
        else:
            self.status(text, MESSAGE_MS * 2)

    def show_error(self, text: str) -> None:
        self.status(text.splitlines()[0], MESSAGE_MS * 2)
        self.error_box.show_message(text)

    def status(self, text: str, ms: int = MESSAGE_MS) -> None:
        self.statusBar().showMessage(text, ms)

    # ------------------------------------------------------------------ frames

    @property
    def frame(self) -> int:
        return self.session.frame if self.session is not None else 0

    def go_to(self, frame: int) -> None:
        if self.session is not None and self.session.go_to(frame):
            self._show_frame()

    def step(self, delta: int) -> None:
        self.go_to(self.frame + delta)

    def go_to_last(self) -> None:
        if self.model is not None:
            self.go_to(self.model.num_frames - 1)

    def _show_frame(self) -> None:
        """Ask the frame lane for the frame on screen with its masks; markers and read-outs now."""
        model, session = self.model, self.session
        if model is None or session is None:
            return
        self._frame_request = next_request_id()
        masks = tuple(
            (t, m.rle, model.objects[t].color)
            for t, m in sorted(model.masks_on(session.frame).items())
            if t in model.objects
        )
        self.worker.show_frame(FrameRequest(self._frame_request, session.frame, masks))
        self.timeline.set_frame(session.frame, model.num_frames)
        self._show_prompt()
        name = self.source_path.name
        self.setWindowTitle(f"{name} — frame {session.frame} / {model.num_frames} — sequence")

    def _on_frame_ready(self, view: FrameView) -> None:
        if view.request.request_id != self._frame_request:
            return  # a newer frame (or newer masks) was asked for meanwhile
        if self.shown is None or self.shown.frame != view.frame or not self.canvas.has_image:
            first = not self.canvas.has_image
            self.canvas.set_frame(view.pyramid)
            if first:  # a first image clears the canvas's markers
                self._show_prompt()
        self.shown = view
        self.canvas.annotation_layer.set_shapes(
            AnnotationShape(t, overlay) for t, overlay in view.overlays
        )
        self.canvas.annotation_layer.highlight(self.session.active_track if self.session else None)
        for badge in self._badges:
            self.canvas.scene().removeItem(badge)
        model = self.model
        self._badges = []
        anchors: dict[tuple[int, int], int] = {}
        for track_id, overlay in view.overlays:
            if model is None or track_id not in model.objects:
                continue
            obj = model.objects[track_id]
            cell = (overlay.x0 // 48, overlay.y0 // 48)  # badges at one corner are stacked
            row = anchors[cell] = anchors.get(cell, -1) + 1
            badge = TrackBadge(overlay.x0, overlay.y0, f"#{track_id} {obj.label}", obj.color, row)
            self.canvas.scene().addItem(badge)
            self._badges.append(badge)
        self.frame_shown.emit(view)

    def _show_prompt(self) -> None:
        session = self.session
        if session is None:
            return
        prompt = session.prompt
        if prompt.empty:
            self.canvas.clear_prompt()
        else:
            points, labels, box = prompt.arrays()
            self.canvas.set_prompt(points, labels, box)

    def toggle_play(self) -> None:
        if self.play_timer.isActive():
            self.play_timer.stop()
        elif self.model is not None:
            if self.frame >= self.model.num_frames - 1:
                self.go_to(0)
            fps = (self.info.fps if self.info is not None else None) or FOLDER_FPS
            self.play_timer.start(max(1, round(1000 / fps)))
        self.timeline.set_playing(self.play_timer.isActive())

    def _play_tick(self) -> None:
        if self.model is None or self.frame >= self.model.num_frames - 1:
            self.toggle_play()
            return
        if self.shown is not None and self.shown.frame == self.frame:
            self.step(1)  # the next frame only once this one is on screen: no backlog

    # ------------------------------------------------------------------ clicks and objects

    def _can_click(self) -> bool:
        session = self.session
        if session is None:
            return False
        if self.tracker is None:
            self.status(self.tracker_error or "the tracker is still loading; click again soon")
            return False
        if session.active_track is None:  # the first click starts an object with the typed label
            self.new_object()
        return True

    @reports_errors
    def click(self, x: float, y: float, positive: bool) -> None:
        if self._can_click():
            self._send(self.session.click(x, y, positive))

    @reports_errors
    def box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self._can_click():
            self._send(self.session.box(x0, y0, x1, y1))

    @reports_errors
    def undo_click(self) -> None:
        if self.session is not None and self._can_click():
            order = self.session.undo_click()
            if order is not None:
                self._send(order)

    def _send(self, order) -> None:
        self.worker.submit_click(order)
        self._show_prompt()
        if self.session is not None and self.session.propagating:
            self.status("the click is applied once the propagation stops (Esc cancels it)")

    def _on_clicked(self, result: ClickResult) -> None:
        if self.session is None or not self.session.apply_click(result.order, result.mask):
            return
        t = result.timings
        self.speed_label.setText(
            f"click: {result.ms:.0f} ms (encoder {t.encoder:.0f}, memory attention "
            f"{t.memory_attention:.0f}, decoder {t.decoder:.0f})"
        )

    @reports_errors
    def new_object(self, label: str = "") -> None:
        if self.session is None:
            return
        obj = self.session.new_object(label or self.objects.label_edit.text() or "object")
        self.status(f"new object #{obj.track_id} {obj.label}: click on it")
        self._refresh_objects()

    def choose(self, track_id: int) -> None:
        if self.session is not None and track_id in self.session.model.objects:
            self.session.choose(track_id)
            self._refresh_objects()
            self._show_prompt()
            self.canvas.annotation_layer.highlight(track_id)

    def choose_nth(self, n: int) -> None:
        ids = self.objects.ids()
        if 0 < n <= len(ids):
            self.choose(ids[n - 1])

    @reports_errors
    def relabel(self, track_id: int, label: str) -> None:
        if self.model is not None:
            self.model.set_label(track_id, label)

    @reports_errors
    def delete_object(self, track_id: int | None = None, confirm: bool = True) -> None:
        session = self.session
        track_id = track_id if track_id is not None else (session.active_track if session else None)
        if session is None or track_id is None:
            return
        if session.propagating:
            self.status("wait for the propagation to end (or cancel it) before deleting")
            return
        if confirm:
            answer = QMessageBox.question(
                self, "Delete object",
                f"Delete object #{track_id} and its masks on every frame?",
            )  # fmt: skip
            if answer != QMessageBox.StandardButton.Yes:
                return
        session.remove_object(track_id)
        self.worker.remove_object(track_id)
        self._refresh_objects()
        self._show_prompt()

    # ------------------------------------------------------------------ propagation

    @reports_errors
    def propagate(self, reverse: bool = False, max_frames: int | None = None) -> None:
        if self.session is None or not self._can_click():
            return
        order = self.session.propagate(reverse, max_frames)
        self.worker.propagate(order)
        running = self.session.propagation
        assert running is not None
        self.progress.setRange(0, running.total)
        self.progress.setValue(0)
        self.progress.setFormat(f"{'backward' if reverse else 'forward'} %v / %m")
        self.progress.setVisible(True)
        unprompted = objects_without_prompts(self.session.model)
        note = f" (objects {unprompted} have no click yet)" if unprompted else ""
        self.status(f"propagating {'backward' if reverse else 'forward'} from frame "
                    f"{order.start}…{note}")  # fmt: skip
        self._update_actions()

    def cancel(self) -> None:
        """Esc: stop the propagation (after the frame in progress), else stop playing."""
        if self.session is not None and self.session.cancel():
            self.worker.cancel_propagation()
            self.status("cancelling after the frame in progress…")
        elif self.play_timer.isActive():
            self.toggle_play()

    def _on_propagated(self, step: PropagateStep) -> None:
        session = self.session
        if session is None:
            return
        session.apply_step(step.order, step.frame, step.masks)
        running = session.propagation
        if running is not None and running.order.request_id == step.order.request_id:
            running.frame_ms.append(step.wall_ms)
            self.progress.setValue(running.done)
        t = step.timings
        self.speed_label.setText(
            f"frame {step.frame}: {step.wall_ms:.0f} ms (encoder {t.encoder:.0f}, memory "
            f"attention {t.memory_attention:.0f}, decoder {t.decoder:.0f}, memory encoder "
            f"{t.memory_encoder:.0f})"
        )

    def _on_propagation_ended(self, end: PropagateEnd) -> None:
        session = self.session
        running = session.finish(end.order) if session is not None else None
        if running is None:
            return
        self.progress.setVisible(False)
        per_frame = sum(running.frame_ms) / len(running.frame_ms) if running.frame_ms else 0.0
        what = "cancelled after" if end.cancelled else "failed after" if end.failed else "tracked"
        self.status(f"{what} {end.frames} frames in {end.ms / 1000:.1f} s "
                    f"({per_frame:.0f} ms per frame)", MESSAGE_MS * 2)  # fmt: skip
        self._update_actions()

    # ------------------------------------------------------------------ model changes

    def _on_model_change(self, change: SequenceChange) -> None:
        if change.kind == "objects" or (change.kind == "masks" and change.frame == self.frame):
            self._show_frame()
        if change.kind != "prompt":
            self._refresh_objects()

    def _refresh_objects(self) -> None:
        model, session = self.model, self.session
        if model is None or session is None:
            return
        self.objects.refresh(model, session.active_track)
        active = session.active_track
        present = [f for f, m in model.masks.items() if active in m and m[active].present]
        absent = [f for f, m in model.masks.items() if active in m and not m[active].present]
        prompted = model.prompted_frames(active) if active is not None else []
        self.timeline.strip.set_marks(model.num_frames, present, absent, prompted)
        self._update_actions()

    def _update_actions(self) -> None:
        session = self.session
        busy = session is not None and session.propagating
        ready = self.tracker is not None and session is not None
        enabled = {
            "propagate_forward": ready and not busy,
            "propagate_backward": ready and not busy,
            "cancel": True,
            "export": session is not None and bool(session.model.masks),
            "delete_object": session is not None and session.active_track is not None,
        }
        for name, on in enabled.items():
            self.actions_by_name[name].setEnabled(on)

    def _on_saved(self, result: SaveResult) -> None:
        self.last_save = result
        if not result.ok:
            self.show_error(f"{result.error}\nYour work is kept in memory and saved again with "
                            "the next change.")  # fmt: skip

    # ------------------------------------------------------------------ export and closing

    def export(self) -> None:
        from sam2_annotator.gui.sequence_export_dialog import SequenceExportDialog

        if self.model is None or not self.model.masks:
            self.status("nothing to export yet: click on an object and propagate first")
            return
        dialog = SequenceExportDialog(self, self.model.snapshot(), self.source_path)
        dialog.exported.connect(lambda summary: self.status(summary.line(), MESSAGE_MS * 2))
        dialog.show()
        self.export_dialog = dialog

    def shutdown(self) -> None:
        """Stop the worker and write what is pending (idempotent)."""
        if self._shut_down:
            return
        self._shut_down = True
        self.play_timer.stop()
        app = QApplication.instance()
        if app is not None:
            app.aboutToQuit.disconnect(self.shutdown)  # the app must not keep a closed window
        self.worker.shutdown()
        if self.saver is not None:
            self.saver.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        self.closed.emit()
        super().closeEvent(event)
