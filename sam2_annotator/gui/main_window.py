"""The main window: wiring between the widgets, the worker, the controller and the project.

Data flow. A click on the :class:`~.canvas.Canvas` goes to the Qt-free
:class:`~sam2_annotator.app.controller.PromptController`, which returns a decode order with a fresh
request id; the window sends it to the worker and the markers appear at once. The worker answers
with :attr:`~.worker.InferenceWorker.decoded`; the controller applies a result only if its id is
still the latest and it is for the image on screen (anything else is stale and dropped).
Accepting asks for a label and saves through the
:class:`~sam2_annotator.annotations.ProjectStore` in one transaction (undoable; written by the
background saver); the store's change callbacks refresh the views. Per-image state lives in
:class:`~sam2_annotator.app.image_states.ImageStates`, which the file list and status bar display.
Polygon, brush and eraser are mask operations in :mod:`sam2_annotator.app.tools`, drawn by the
:class:`~.tool_layer.ToolLayer`. The commands themselves are the table in :mod:`.actions`.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent, QIcon
from PySide6.QtWidgets import QApplication, QDockWidget, QLabel, QMainWindow, QMessageBox, QSlider

from sam2_annotator.annotations import Change
from sam2_annotator.annotations.saver import SaveResult
from sam2_annotator.app import model_setup
from sam2_annotator.app.controller import AcceptPlan, Outgoing, PromptController
from sam2_annotator.app.image_states import ImageStates, initial_states
from sam2_annotator.app.prompt import candidate_cycle
from sam2_annotator.app.tools import ToolName, next_brush_size
from sam2_annotator.app.workspace import Workspace, resume_candidate
from sam2_annotator.engine.cache import default_cache_dir
from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
from sam2_annotator.errors import UserError
from sam2_annotator.gui import save_prompts
from sam2_annotator.gui.actions import ACTIONS, TOOL_ACTIONS, install_actions, shortcut_lines
from sam2_annotator.gui.annotation_list import AnnotationList
from sam2_annotator.gui.annotation_view import AnnotationPresenter
from sam2_annotator.gui.canvas import Canvas
from sam2_annotator.gui.category_wiring import CategoryWiring
from sam2_annotator.gui.dialogs import ErrorBox, FirstRunDialog, LabelDialog, SettingsDialog
from sam2_annotator.gui.file_list import ImagesPanel
from sam2_annotator.gui.jobs import shutdown_jobs
from sam2_annotator.gui.opening import OpenCommands
from sam2_annotator.gui.overlay import make_overlay
from sam2_annotator.gui.settings import AppSettings, load_window_state, save_window_state
from sam2_annotator.gui.status import StatusPanel
from sam2_annotator.gui.tool_layer import ToolLayer
from sam2_annotator.gui.worker import (
    DecodeRequest,
    DecodeResult,
    EncodeEvent,
    InferenceWorker,
    LoadedImage,
    ModelInfo,
    WorkerError,
    next_request_id,
)

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

__all__ = ["ACTIONS", "MainWindow", "app_icon"]

#: How long transient status messages stay.
MESSAGE_MS = 5000
#: Worker error kinds shown in the (non-modal) error box; the others go to the status bar.
BOXED_ERRORS = frozenset({"model", "image", "encode", "internal"})


def reports_errors(method: F) -> F:
    """Show a :class:`UserError` raised by a user action in the error box instead of crashing."""

    @functools.wraps(method)
    def wrapper(self: MainWindow, *args: Any, **kwargs: Any) -> Any:
        try:
            return method(self, *args, **kwargs)
        except UserError as exc:
            log.warning("%s: %s", method.__name__, exc)
            self.show_error(str(exc))
            return None

    return wrapper  # type: ignore[return-value]


class MainWindow(QMainWindow):
    """See the module docstring."""

    #: A decode result was applied to the canvas (for tests and tools).
    mask_shown = Signal(object)
    #: The image on screen changed and its pixels are shown (path).
    image_shown = Signal(str)
    #: A background save finished (SaveResult); emitted from the saver thread, queued here.
    save_finished = Signal(object)

    def __init__(
        self,
        settings: AppSettings | None = None,
        *,
        model_dir: Path | None = None,
        session_config: SessionConfig | None = None,
        ask_for_model: bool = True,
        engine_factory: Callable[..., Any] | None = None,  # InferenceWorker's; tests pass a fake
    ) -> None:
        super().__init__()
        self.setObjectName("mainWindow")
        self.setWindowTitle("sam2-annotator")
        self.setAcceptDrops(True)
        icon = app_icon()
        if icon is not None:
            self.setWindowIcon(icon)
        self.settings = settings if settings is not None else AppSettings.load()
        self.workspace: Workspace | None = None
        self.current_index = -1
        self.current_path: str | None = None
        self.loaded: LoadedImage | None = None
        self.model: ModelInfo | None = None
        self.label_dialog: LabelDialog | None = None
        self.last_decode_ms: float | None = None
        self.last_latency_ms: float | None = None
        self.last_save: SaveResult | None = None
        self.controller = PromptController(next_request_id)
        self.states = ImageStates()
        self._model_loading = False
        self._session_config = session_config
        self.brush_radius = 12

        self.worker = InferenceWorker(
            memory_bytes=self.settings.cache_bytes,
            disk_cache_dir=default_cache_dir() if self.settings.disk_cache else None,
            prefetch=self.settings.prefetch,
            engine_factory=engine_factory,
        )
        self.worker.model_loaded.connect(self._on_model_loaded)
        self.worker.image_loaded.connect(self._on_image_loaded)
        self.worker.encode_event.connect(self._on_encode_event)
        self.worker.decoded.connect(self._on_decoded)
        self.worker.failed.connect(self._on_worker_error)
        self.worker.start()
        self.save_finished.connect(self._on_save_finished)
        app = QApplication.instance()
        if app is not None:  # a window dropped without close() must not leave the thread running
            app.aboutToQuit.connect(self.worker.shutdown)

        self._build_widgets()
        self.actions_by_name, self.recent_menu, toolbar = install_actions(self)
        self.actions_by_name["show_annotations"].setChecked(True)
        self._build_opacity_slider(toolbar)
        self.addToolBar(toolbar)
        self.opening = OpenCommands(self)
        self.opening.rebuild_recent_menu()
        self.status = StatusPanel(self.statusBar())
        self._restore_geometry()
        self.set_tool("prompt")
        self._update_actions()

        folder = model_dir or self._configured_model()
        if folder is not None:
            self.load_model(folder)
        elif ask_for_model and not self.settings.no_ai:
            QTimer.singleShot(0, lambda: self.setup_model("No model is set up yet."))
        else:
            self.status.show_model(None, False)

    # ------------------------------------------------------------------ construction

    def _build_widgets(self) -> None:
        self.canvas = Canvas(self)
        self.canvas.set_mask_opacity(self.settings.mask_opacity)
        self.canvas.set_annotation_opacity(self.settings.annotation_opacity)
        self.setCentralWidget(self.canvas)
        self.canvas.point_clicked.connect(self._on_point)
        self.canvas.box_drawn.connect(self._on_box)
        self.canvas.accept_requested.connect(self.accept_mask)
        self.canvas.cycle_requested.connect(self.cycle_candidate)
        self.canvas.cursor_moved.connect(lambda pos: self.status.show_cursor(pos))
        self.canvas.select_requested.connect(self._on_select_at)
        self.canvas.double_clicked.connect(self._on_double_click)
        self.tools = ToolLayer(self.canvas)
        self.tools.vertex_added.connect(lambda x, y: self._polygon_edit("add", x, y))
        self.tools.vertex_moved.connect(lambda i, x, y: self._polygon_edit("move", x, y, i))
        self.tools.vertex_inserted.connect(lambda x, y: self._polygon_edit("insert", x, y))
        self.tools.close_requested.connect(self.accept_mask)
        self.tools.stroke_finished.connect(self._on_stroke)

        self.images_panel = ImagesPanel(self)
        self.file_list = self.images_panel.list
        self.file_list.bind(self.states)
        self.file_list.image_chosen.connect(self.go_to)
        self.states.listeners.append(lambda _path, _state: self._show_counts())
        self.states.reset_listeners.append(self._show_counts)
        self.annotation_list = AnnotationList(self)
        self.annotations = AnnotationPresenter(self.canvas, self.annotation_list, self.states)
        self.annotation_list.selected.connect(self.canvas.highlight_annotation)
        self.annotation_list.visibility_changed.connect(self.annotations.set_visible)
        self.annotation_list.relabel_requested.connect(self.relabel)
        self.annotation_list.edit_requested.connect(self.edit_annotation)
        self.annotation_list.delete_requested.connect(self.delete_annotations)
        self.categories = CategoryWiring(self)
        for title, name, widget in (
            ("Images", "imagesDock", self.images_panel),
            ("Annotations", "annotationsDock", self.annotation_list),
            ("Categories", "categoriesDock", self.categories.panel),
        ):
            dock = QDockWidget(title, self)
            dock.setObjectName(name)
            dock.setWidget(widget)
            dock.setFeatures(
                QDockWidget.DockWidgetFeature.DockWidgetMovable
                | QDockWidget.DockWidgetFeature.DockWidgetFloatable
            )
            self.addDockWidget(Qt.DockWidgetArea.RightDockWidgetArea, dock)
        self.error_box = ErrorBox(self)

    def _build_opacity_slider(self, toolbar) -> None:
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(self.settings.annotation_opacity * 100))
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Opacity of accepted annotations")
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        toolbar.addWidget(QLabel(" opacity "))
        toolbar.addWidget(self.opacity_slider)

    def _restore_geometry(self) -> None:
        geometry, state = load_window_state()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 820)
        if state is not None:
            self.restoreState(state)

    # ------------------------------------------------------------------ compatibility read-outs

    @property
    def session(self):
        return self.controller.session

    @property
    def stale_results(self) -> int:
        return self.controller.stale_results

    @property
    def awaiting_result(self) -> bool:
        return self.controller.awaiting_result

    @property
    def status_model(self) -> QLabel:
        return self.status.model

    @property
    def status_provider(self) -> QLabel:
        return self.status.provider

    @property
    def status_decode(self) -> QLabel:
        return self.status.decode

    @property
    def image_paths(self) -> list[Path]:
        return self.workspace.images if self.workspace is not None else []

    @property
    def ai_ready(self) -> bool:
        return self.model is not None

    @property
    def current_encoded(self) -> bool:
        return bool(self.current_path) and self.file_list.state_of(self.current_path) == "ready"

    # ------------------------------------------------------------------ model

    def _configured_model(self) -> Path | None:
        if self.settings.model_dir:
            return Path(self.settings.model_dir)
        if self.settings.no_ai:
            return None
        return model_setup.first_installed_model()

    @reports_errors
    def load_model(self, folder: Path) -> None:
        config = self._session_config or SessionConfig(
            providers=tuple(parse_provider_list(self.settings.providers or "auto")),
            threads=self.settings.threads,
        )
        self._model_loading = True
        self.model = None
        for path in self.states.paths:  # embeddings belong to the model that made them
            self.states.update(path, embedding="unknown")
        self.status.model.setText(f"loading {Path(folder).name}…")
        self.status.provider.setText("")
        self.worker.load_model(folder, config)
        self._update_busy()

    def setup_model(self, reason: str = "") -> None:
        dialog = FirstRunDialog(self, reason)
        if dialog.exec() != FirstRunDialog.DialogCode.Accepted:
            self.status.show_model(self.model, self._model_loading)
            return
        self.settings.no_ai = dialog.model_folder is None
        self.settings.model_dir = str(dialog.model_folder) if dialog.model_folder else ""
        self.settings.save()
        if dialog.model_folder is None:
            self.status.show_model(None, False)
        else:
            self.load_model(dialog.model_folder)

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model = info
        self._model_loading = False
        self.status.show_model(info, False)
        self.status.show_encoder(True, False)
        self._update_busy()
        self.status.message(
            f"model {info.display_name} ready on {info.provider} ({info.load_ms:.0f} ms)",
            MESSAGE_MS,
        )
        outgoing = self.controller.resend()
        if outgoing is not None:
            self._send(outgoing)

    # ------------------------------------------------------------------ opening and navigation

    @reports_errors
    def open_path(self, path: str | Path | Sequence[str | Path]) -> None:
        resume = True
        if isinstance(path, (str, Path)):
            sidecar = resume_candidate(path)
            if sidecar is not None:
                answer = save_prompts.ask_resume(self, Path(path), sidecar)
                if answer is None:
                    return
                resume = answer
        self._set_workspace(Workspace.open(path, resume=resume))

    def _set_workspace(self, workspace: Workspace) -> None:
        self.clear_prompt()
        if self.workspace is not None:
            self.workspace.close()  # writes what is pending for the previous project
        self.workspace = workspace
        workspace.use_background_saver(self.save_finished.emit)
        self.annotations.set_workspace(workspace)
        workspace.add_listener(self._on_project_change)
        self.categories.set_workspace(workspace)
        flags = []
        for path in workspace.images:
            record = workspace.record(path)
            flags.append((record.flag("done"), record.flag("review")) if record else (False, False))
        counts = [workspace.annotation_count(p) for p in workspace.images]
        self.current_index = -1
        self.states.reset(initial_states(workspace.images, counts, flags))
        self.opening.remember(workspace)
        self.go_to(0)

    def go_to(self, index: int) -> None:
        paths = self.image_paths
        if not paths or not 0 <= index < len(paths) or index == self.current_index:
            return
        self.clear_prompt()
        self.current_index = index
        self.current_path = str(paths[index])
        self.loaded = None
        self.controller.set_image(self.current_path, None)
        self.canvas.set_image(None)
        self.tools.detach()
        self.annotations.set_image(None)
        self.file_list.set_current_row_silently(index)
        upcoming = [str(p) for p in paths[index + 1 : index + 1 + self.settings.prefetch]]
        self.worker.set_focus(self.current_path, upcoming)
        ready = self.file_list.state_of(self.current_path) == "ready"
        self.status.encoder_current = "ready (cached)" if ready else "waiting"
        self.status.show_encoder(self.ai_ready, self._model_loading)
        self._update_busy()
        self._update_title()
        self._update_actions()

    def prev_image(self) -> None:
        self.go_to(self.current_index - 1)

    def next_image(self) -> None:
        self.go_to(self.current_index + 1)

    def _on_image_loaded(self, loaded: LoadedImage) -> None:
        if loaded.path != self.current_path:
            return
        self.loaded = loaded
        self.controller.set_image(loaded.path, (loaded.height, loaded.width))
        self.canvas.set_image(loaded.pyramid)
        self.set_tool(self.controller.tool)
        if not self.file_list.hasFocus():  # keep arrow-key browsing in the list working
            self.canvas.setFocus()
        record = self.workspace.record(loaded.path) if self.workspace else None
        if record is not None and (record.width, record.height) != (loaded.width, loaded.height):
            self.show_error(
                f"{Path(loaded.path).name} is {loaded.width}x{loaded.height} but the project "
                f"says {record.width}x{record.height}; its annotations may be misplaced"
            )
        self.annotations.set_image(loaded.path)
        self._update_busy()
        self._update_title()
        self.image_shown.emit(loaded.path)

    def _update_title(self) -> None:
        if self.current_path is None or self.workspace is None:
            self.setWindowTitle("sam2-annotator")
            return
        project = self.workspace.project_path.name
        if self.workspace.source is not None:
            project += f" (from {self.workspace.source.name})"
        name, total = Path(self.current_path).name, len(self.image_paths)
        self.setWindowTitle(
            f"{name} ({self.current_index + 1}/{total}) — {project} — sam2-annotator"
        )

    def _on_encode_event(self, event: EncodeEvent) -> None:
        state = {"encoding": "encoding", "ready": "ready", "cancelled": "unknown"}
        self.states.update(event.path, embedding=state.get(event.state, "failed"))
        name = Path(event.path).name
        if event.path == self.current_path:
            ready = "ready" if event.ms is None else f"ready ({event.ms / 1000:.1f} s)"
            texts = {"encoding": f"encoding {name}…", "ready": ready}
            self.status.encoder_current = texts.get(event.state, event.state)
            self._update_busy()
        else:
            texts = {"encoding": f"prefetching {name}…", "failed": f"{name} failed"}
            self.status.encoder_background = texts.get(event.state, "")
        self.status.show_encoder(self.ai_ready, self._model_loading)

    def _update_busy(self) -> None:
        state = self.file_list.state_of(self.current_path) if self.current_path else None
        if self.current_path is None:
            self.canvas.set_busy(False)
        elif self.loaded is None and state != "failed":
            self.canvas.set_busy(True, "Loading image…")
        elif self.ai_ready and state not in ("ready", "failed"):
            self.canvas.set_busy(True, "Encoding image… (clicks are kept)")
        elif self._model_loading:
            self.canvas.set_busy(True, "Loading model…")
        else:
            self.canvas.set_busy(False)

    # ------------------------------------------------------------------ prompt loop

    def _on_point(self, x: float, y: float, positive: bool) -> None:
        if self.controller.session is None:
            return
        if not self.ai_ready:
            self._no_model_hint()
            return
        self._send(self.controller.click(x, y, positive))

    def _on_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.controller.session is None:
            return
        if not self.ai_ready:
            self._no_model_hint()
            return
        self._send(self.controller.box(x0, y0, x1, y1))

    def _no_model_hint(self) -> None:
        self.status.message(
            "No model loaded: set one up (File > Set up a model) to segment by clicking, or use "
            "the polygon (P) or brush (B).",
            MESSAGE_MS,
        )

    def _send(self, outgoing: Outgoing | None) -> None:
        if outgoing is not None and self.current_path is not None:
            order = outgoing.order
            request = DecodeRequest(
                outgoing.request_id, self.current_path, order.prompt, candidate=order.candidate
            )
            self.worker.submit_decode(request)
        self._show_prompt()

    def _show_prompt(self) -> None:
        top = self.controller.top
        if top is None:
            self.canvas.clear_prompt()
            if self.controller.draft is None:
                self.canvas.set_current_mask(None)
                self.canvas.set_info(None)
            return
        self.canvas.set_prompt(top.points, top.labels, top.box)

    def _show_top_mask(self) -> None:
        top = self.controller.top
        self.canvas.set_current_mask(top.overlay if top is not None else None)
        self.canvas.set_info(_candidate_text(top.prediction) if top is not None else None)

    def _on_decoded(self, result: DecodeResult) -> None:
        prediction = result.prediction
        if not self.controller.apply_result(
            result.request_id, result.image, result.request.prompt, prediction, result.overlay
        ):
            return
        self.last_decode_ms = prediction.total_ms
        self.last_latency_ms = (time.perf_counter() - result.request.created) * 1000.0
        self._show_top_mask()
        self.status.show_decode(prediction.decoder_ms, self.last_latency_ms)
        self.mask_shown.emit(result)
        if self.controller.accept_when_ready:
            self.controller.accept_when_ready = False
            self.accept_mask()

    def remove_last_point(self) -> None:
        polygon = self.controller.polygon
        if self.controller.tool == "polygon" and polygon is not None:
            if polygon.remove_last():
                self.tools.set_polygon(polygon.vertices, polygon.annotation_id is not None)
            return
        session = self.controller.session
        if session is None or session.empty:
            return
        self._send(self.controller.remove_last_point())
        self._show_top_mask()

    def clear_prompt(self) -> None:
        """Esc: drop the prompt, the polygon, the painting and any edit (nothing is saved)."""
        self.controller.clear()
        self.controller.set_tool(self.controller.tool)
        self.canvas.clear_prompt()
        self.canvas.set_current_mask(None)
        self.canvas.set_info(None)
        self.annotations.set_editing(None)
        self._show_tool()

    def cycle_candidate(self) -> None:
        outgoing = self.controller.cycle_candidate()
        if outgoing is not None:
            self._send(outgoing)

    def undo(self) -> None:
        """Ctrl+Z: the last point while drawing an object, else the last project edit."""
        session = self.controller.session
        if session is not None and not session.empty and self.controller.editing is None:
            self.remove_last_point()
            return
        self._history("undo")

    def redo(self) -> None:
        self._history("redo")

    def _history(self, direction: str) -> None:
        store = self.workspace.store if self.workspace else None
        if store is None or not getattr(store, f"can_{direction}"):
            return
        label = getattr(store.history, f"{direction}_label")
        self._store_call(getattr(store, direction))
        self.status.message(f"{direction.replace('o', 'id', 1)} {label}", MESSAGE_MS)

    # ------------------------------------------------------------------ tools and editing

    def set_tool(self, tool: ToolName) -> None:
        """S / P / B / X: SAM clicks, polygon, brush, eraser (works without a model)."""
        self.controller.set_tool(tool)
        self.canvas.tool_handler = None if tool == "prompt" else self.tools
        if self.loaded is not None:
            self.tools.set_tool(tool, self.brush_radius)
        for name, action_name in TOOL_ACTIONS.items():
            self.actions_by_name[action_name].setChecked(name == tool)
        self._show_tool()

    def resize_brush(self, bigger: bool) -> None:
        self.brush_radius = next_brush_size(self.brush_radius, bigger)
        self.tools.set_tool(self.controller.tool, self.brush_radius)
        self._show_tool()

    def _show_tool(self) -> None:
        polygon = self.controller.polygon
        if polygon is not None and self.controller.tool == "polygon":
            self.tools.set_polygon(polygon.vertices, polygon.annotation_id is not None)
        else:
            self.tools.set_polygon([])
        self.status.show_tool(self.controller.tool, self.brush_radius)

    def _polygon_edit(self, kind: str, x: float, y: float, index: int = -1) -> None:
        polygon = self.controller.polygon
        if polygon is None:
            return
        if kind == "add":
            polygon.add(x, y)
        elif kind == "move":
            polygon.move(index, x, y)
        else:
            polygon.insert_on_edge(x, y, radius=12.0 / max(self.canvas.zoom, 1e-6))
        self.tools.set_polygon(polygon.vertices, polygon.annotation_id is not None)

    def _on_stroke(self, stroke) -> None:
        started = time.perf_counter()
        draft = self.controller.stroke(stroke, self.annotations.selected())
        if draft is None:
            return
        if draft.annotation_id is not None:
            self.annotations.set_editing(draft.annotation_id)
        self.canvas.clear_prompt()
        self.canvas.set_current_mask(make_overlay(draft.mask))
        self.canvas.set_info(f"painting ({draft.strokes} stroke(s)) — Enter accepts, Esc cancels")
        log.debug("stroke applied in %.1f ms", (time.perf_counter() - started) * 1000.0)

    def edit_selected(self) -> None:
        ids = self.annotation_list.selected_ids()
        if len(ids) == 1:
            self.edit_annotation(ids[0])

    def edit_annotation(self, annotation_id: int) -> None:
        """Correct an accepted annotation: its polygon's vertices, or its mask with clicks."""
        annotation = self.annotations.annotation(annotation_id)
        if annotation is None or self.loaded is None:
            return
        self.annotation_list.select_id(annotation_id)
        if self.controller.begin_polygon_edit(annotation):
            self.set_tool("polygon")
        else:
            self.set_tool("prompt")
            top_overlay = make_overlay(annotation.mask)
            self.controller.begin_edit(annotation, top_overlay)
            self._show_prompt()
            self._show_top_mask()
        self.annotations.set_editing(annotation_id)
        self.status.message(
            f"correcting annotation {annotation_id}: click to refine, Enter saves, Esc leaves it",
            MESSAGE_MS * 2,
        )

    def _on_select_at(self, x: float, y: float) -> None:
        self.annotation_list.select_id(self.annotations.annotation_at(x, y))

    def _on_double_click(self, x: float, y: float) -> None:
        hit = self.annotations.annotation_at(x, y)
        if hit is not None and self.controller.editing is None:
            self.edit_annotation(hit)

    # ------------------------------------------------------------------ accepting

    def accept_mask(self) -> None:
        """Enter / Space: save the mask, polygon or painting (waits for a pending decode)."""
        self._accept(reuse_label=False)

    def next_object(self) -> None:
        """N: accept with the last label (asks if there is none) and start the next object."""
        self._accept(reuse_label=True)

    def _accept(self, reuse_label: bool) -> None:
        if self.label_dialog is not None:
            return
        state = self.controller.accept_state()
        if state == "wait":
            self.controller.accept_when_ready = True
            self.status.message("waiting for the mask…", MESSAGE_MS)
            return
        plan = self.controller.accept_plan()
        if plan is None:
            return
        if plan.annotation_id is not None:
            self.save_plan(plan, None)
        elif reuse_label and self.settings.last_category:
            self.save_plan(plan, self.settings.last_category)
        else:
            self._ask_label(lambda name: self.save_plan(plan, name))

    def _ask_label(self, then: Callable[[str], None], title: str = "Label") -> None:
        dialog = LabelDialog(self, self.categories.choices(), self.settings.last_category, title)
        self.label_dialog = dialog

        def finished(code: int) -> None:
            self.label_dialog = None
            if code == LabelDialog.DialogCode.Accepted and dialog.chosen_name():
                then(dialog.chosen_name())
            dialog.deleteLater()
            self.activateWindow()
            self.canvas.setFocus()

        dialog.finished.connect(finished)
        dialog.open()

    @reports_errors
    def save_plan(self, plan: AcceptPlan, name: str | None) -> None:
        """Save ``plan`` as a new annotation labelled ``name``, or as the new mask of the
        annotation it edits: one transaction, one undo step, one save."""
        workspace, loaded = self.workspace, self.loaded
        if workspace is None or loaded is None:
            return
        store = workspace.ensure_store()
        result: list[int] = []

        def save() -> None:
            with store.transaction():
                if plan.annotation_id is not None:
                    store.replace_mask(plan.annotation_id, plan.mask, prompts=plan.prompts,
                                       score=plan.score, geometry=plan.geometry)  # fmt: skip
                    result.append(plan.annotation_id)
                    return
                assert name is not None
                category = workspace.category_for(name)
                image_id = workspace.image_id(loaded.path, loaded.width, loaded.height)
                added = store.add_annotation(image_id, category.id, plan.mask,
                                             prompts=plan.prompts, score=plan.score,
                                             geometry=plan.geometry)  # fmt: skip
                result.append(added.id)
                self.settings.last_category = category.name
            self.settings.save()

        self._store_call(save)
        if result:
            self.controller.accepted(plan, result[0])
            self.clear_prompt()

    def _store_call(self, call: Callable[[], Any]) -> None:
        """Run a store edit; a failed synchronous save keeps the edit in memory and says so."""
        try:
            call()
        except UserError as exc:
            self.show_error(f"{exc}\nThe change is kept in memory and saved with the next edit.")

    # ------------------------------------------------------------------ annotations

    def relabel_selected(self) -> None:
        ids = self.annotation_list.selected_ids()
        if ids:
            self.relabel(ids[0])

    def relabel(self, annotation_id: int) -> None:
        store = self.workspace.store if self.workspace else None
        if store is None or self.label_dialog is not None:
            return
        self._ask_label(
            lambda name: self.categories.assign_name(name, [annotation_id]),
            f"Relabel annotation {annotation_id}",
        )

    def choose_category_number(self, number: int) -> None:
        """1-9: the n-th category for the current mask (accepts it) or the selection."""
        self.categories.choose_number(number)

    def toggle_iscrowd(self) -> None:
        self.categories.toggle_iscrowd(self.annotation_list.selected_ids())

    def delete_selected(self) -> None:
        self.delete_annotations(self.annotation_list.selected_ids())

    def delete_annotations(self, ids: list[int]) -> None:
        store = self.workspace.store if self.workspace else None
        if store is None or not ids:
            return
        if len(ids) == 1:
            self._store_call(lambda: store.delete_annotation(ids[0]))
        else:
            self._store_call(lambda: store.delete_annotations(ids))

    def toggle_flag(self, flag: str) -> None:
        """Ctrl+D / Ctrl+R: mark the image done / needs review (stored in the project)."""
        if self.workspace is None or self.loaded is None:
            return
        value = self.actions_by_name[f"flag_{flag}"].isChecked()
        loaded, workspace = self.loaded, self.workspace
        store = workspace.ensure_store()

        def set_flag() -> None:
            with store.transaction():
                image_id = workspace.image_id(loaded.path, loaded.width, loaded.height)
                store.set_image_flag(image_id, flag, value)

        self._store_call(set_flag)

    def toggle_annotations(self) -> None:
        self.canvas.set_annotations_visible(self.actions_by_name["show_annotations"].isChecked())

    def _on_opacity(self, value: int) -> None:
        self.settings.annotation_opacity = value / 100.0
        self.canvas.set_annotation_opacity(value / 100.0)

    def zoom_by(self, factor: float) -> None:
        self.canvas.zoom_to(self.canvas.zoom * factor)

    def _on_project_change(self, change: Change) -> None:
        """The store's callback (GUI thread), after every edit, undo and redo."""
        store = self.workspace.store if self.workspace else None
        if store is None or change.kind == "saved":
            return
        if change.image_id in store.project.images:
            record = store.project.images[change.image_id]
            path = str(store.image_path(change.image_id).resolve())
            self.states.update(path, count=len(store.annotations_for(change.image_id)),
                               done=record.flag("done"), review=record.flag("review"))  # fmt: skip
            if path == self.current_path:
                self.annotations.refresh()
        if change.kind.startswith("category"):
            self.annotations.refresh()
        self.categories.refresh()
        self._update_actions()

    def _on_save_finished(self, result: SaveResult) -> None:
        """A background save ended (queued from the saver thread)."""
        self.last_save = result
        if result.ok:
            self.status.message(f"saved {result.path.name} ({result.ms:.0f} ms)", 2000)
            return
        self.show_error(
            f"{result.error}\nYour work is kept in memory and saved again with the next edit; "
            "closing the window asks what to do."
        )

    def _show_counts(self) -> None:
        self.status.show_counts(self.states.summary())

    # ------------------------------------------------------------------ dialogs

    def show_shortcuts(self) -> None:
        text = "\n".join(shortcut_lines())
        box = QMessageBox(QMessageBox.Icon.Information, "Keyboard and mouse", text,
                          QMessageBox.StandardButton.Close, self)  # fmt: skip
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()

    def edit_settings(self) -> None:
        dialog = SettingsDialog(self, self.settings)
        if dialog.exec() != SettingsDialog.DialogCode.Accepted:
            return
        old, new = self.settings, dialog.result_settings()
        self.settings = new
        new.save()
        self.canvas.set_mask_opacity(new.mask_opacity)
        self.canvas.set_annotation_opacity(new.annotation_opacity)
        self.opacity_slider.setValue(round(new.annotation_opacity * 100))
        self.worker.set_prefetch(new.prefetch)
        model = ("model_dir", "providers", "threads")
        if any(getattr(old, k) != getattr(new, k) for k in model) and new.model_dir:
            self.load_model(Path(new.model_dir))
        if (old.cache_mb, old.disk_cache) != (new.cache_mb, new.disk_cache):
            self.status.message("cache settings apply after a restart", MESSAGE_MS)
        self.categories.apply_predefined(new.labels)

    def export_dialog(self) -> None:
        """File > Export…: COCO RLE / polygons, YOLO-seg, PNG masks, with progress."""
        self.opening.export()

    def show_error(self, text: str, details: str = "") -> None:
        """The one place errors are shown: a non-modal box plus the status bar."""
        self.status.message(text.splitlines()[0], MESSAGE_MS * 2)
        self.error_box.setIcon(ErrorBox.Icon.Warning)
        self.error_box.show_message(text, details)

    def _on_worker_error(self, error: WorkerError) -> None:
        if error.kind == "model":
            self._model_loading = False
            self.model = None
            self.status.show_model(None, False)
        if error.path is not None and error.kind in ("image", "encode", "prefetch"):
            self.states.update(error.path, embedding="failed")
        if error.path == self.current_path:
            self._update_busy()
        text = error.message + ("" if error.user_error else "\n(see the log file for details)")
        if error.kind in BOXED_ERRORS:
            self.show_error(text)
        else:
            self.status.message(text, MESSAGE_MS * 2)

    # ------------------------------------------------------------------ state

    def _update_actions(self) -> None:
        store = self.workspace.store if self.workspace else None
        has_images = bool(self.image_paths)
        enabled = {
            "prev": has_images and self.current_index > 0,
            "next": has_images and self.current_index < len(self.image_paths) - 1,
            "redo": store is not None and store.can_redo,
            "export": store is not None,
        }
        for name, on in enabled.items():
            self.actions_by_name[name].setEnabled(on)
        state = self.states.get(self.current_path) if self.current_path else None
        for flag in ("done", "review"):
            action = self.actions_by_name[f"flag_{flag}"]
            action.setChecked(bool(state is not None and getattr(state, flag)))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths if len(paths) > 1 else paths[0])

    def closeEvent(self, event: QCloseEvent) -> None:
        if not save_prompts.confirm_saved(self, self.workspace.store if self.workspace else None):
            event.ignore()
            return
        save_window_state(QByteArray(self.saveGeometry()), QByteArray(self.saveState()))
        self.settings.save()
        if self.workspace is not None:
            self.workspace.close()
        self.worker.shutdown()
        self.annotations.shutdown()
        shutdown_jobs(timeout_ms=5000)
        super().closeEvent(event)


def _candidate_text(prediction) -> str | None:
    if prediction is None:
        return None
    cycle = candidate_cycle(prediction)
    if prediction.candidate not in cycle:
        return None
    position = cycle.index(prediction.candidate) + 1
    scores = "  ".join(
        f"{'▸' if i == prediction.candidate else ''}{prediction.scores[i]:.2f}" for i in cycle
    )
    return f"mask {position}/{len(cycle)} (Tab)   scores {scores}"


def app_icon() -> QIcon | None:
    """The application icon from the package resources, if they are installed."""
    try:
        from sam2_annotator.resources import APP_ICON_SVG, resource_path
    except ImportError:
        return None
    path = resource_path(APP_ICON_SVG)
    return QIcon(str(path)) if path.is_file() else None
