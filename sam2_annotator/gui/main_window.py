"""The main window: images, canvas, prompt loop, annotation list, status bar.

Data flow. A click on the :class:`~.canvas.Canvas` adds a step to the
:class:`~.prompt.PromptSession` and sends a :class:`~.worker.DecodeRequest` with a fresh id; the
markers appear at once. The worker answers with :attr:`~.worker.InferenceWorker.decoded`; the
window shows the result only if its id is still the latest and it is for the image on screen
(anything else is stale and dropped). Accepting the mask asks for a label and adds the annotation
through the :class:`~sam2_annotator.annotations.ProjectStore` (undoable, autosaved); the store's
change callbacks refresh the canvas, the annotation list and the file list.
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import (
    QAction,
    QCloseEvent,
    QDragEnterEvent,
    QDropEvent,
    QIcon,
    QKeySequence,
)
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QSlider,
    QStyle,
    QToolBar,
)

from sam2_annotator.annotations import Annotation, Change, PromptRecord, write_coco
from sam2_annotator.annotations.model import default_color
from sam2_annotator.annotations.saver import SaveResult
from sam2_annotator.app import model_setup
from sam2_annotator.app.prompt import DecodeOrder, PromptSession, Step, candidate_cycle
from sam2_annotator.app.workspace import Workspace, resume_candidate
from sam2_annotator.engine.cache import default_cache_dir
from sam2_annotator.engine.image_io import IMAGE_EXTENSIONS
from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
from sam2_annotator.errors import UserError
from sam2_annotator.gui import save_prompts
from sam2_annotator.gui.annotation_list import AnnotationList, AnnotationRow
from sam2_annotator.gui.annotation_overlays import AnnotationOverlays
from sam2_annotator.gui.canvas import AnnotationShape, Canvas
from sam2_annotator.gui.dialogs import ErrorBox, FirstRunDialog, LabelDialog, SettingsDialog
from sam2_annotator.gui.file_list import EmbeddingState, FileList
from sam2_annotator.gui.icons import redo_icon, undo_icon
from sam2_annotator.gui.save_prompts import CloseChoice
from sam2_annotator.gui.settings import AppSettings, load_window_state, save_window_state
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

#: How long transient status messages stay.
MESSAGE_MS = 5000
#: Worker error kinds shown in the (non-modal) error box; the others go to the status bar.
BOXED_ERRORS = frozenset({"model", "image", "encode", "internal"})
#: File list state for each encoder event.
EVENT_STATES: dict[str, EmbeddingState] = {
    "encoding": "encoding",
    "ready": "ready",
    "cancelled": "unknown",
    "failed": "failed",
}


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


@dataclass(frozen=True)
class ActionSpec:
    """One entry of the action table: menu text, shortcuts, handler, menu and toolbar icon."""

    name: str
    text: str
    handler: str
    shortcuts: tuple[str, ...] = ()
    menu: str = ""
    icon: QStyle.StandardPixmap | Callable[[], QIcon] | None = None
    tip: str = ""
    checkable: bool = False


#: Every command of the window. Handlers are method names; menus are created in this order.
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_images", "Open &Images…", "choose_images", ("Ctrl+O",), "File",
               QStyle.StandardPixmap.SP_DialogOpenButton),
    ActionSpec("open_folder", "Open &Folder…", "choose_folder", ("Ctrl+Shift+O",), "File",
               QStyle.StandardPixmap.SP_DirOpenIcon),
    ActionSpec("open_project", "Open &Project (COCO)…", "choose_project", (), "File"),
    ActionSpec("export", "&Export COCO…", "export_coco", ("Ctrl+E",), "File"),
    ActionSpec("settings", "&Settings…", "edit_settings", ("Ctrl+,",), "File"),
    ActionSpec("setup_model", "Set up a &model…", "setup_model", (), "File"),
    ActionSpec("quit", "&Quit", "close", ("Ctrl+Q",), "File"),
    ActionSpec("undo", "&Undo", "undo", ("Ctrl+Z",), "Edit",
               undo_icon, "Undo the last point, or the last edit"),
    ActionSpec("redo", "&Redo", "redo", ("Ctrl+Y", "Ctrl+Shift+Z"), "Edit", redo_icon),
    ActionSpec("accept", "&Accept mask…", "accept_mask", ("Return", "Enter"), "Edit",
               QStyle.StandardPixmap.SP_DialogApplyButton, "Accept the mask and label it (Enter "
               "or Space)"),
    ActionSpec("next_object", "Accept and &next object", "next_object", ("N",), "Edit",
               tip="Accept with the last label and start the next object"),
    ActionSpec("remove_point", "Remove &last point", "remove_last_point", ("Backspace",), "Edit"),
    ActionSpec("clear", "&Clear prompt", "clear_prompt", ("Esc",), "Edit"),
    ActionSpec("cycle", "Next &candidate mask", "cycle_candidate", ("Tab",), "Edit"),
    ActionSpec("relabel", "Re&label annotation…", "relabel_selected", ("L",), "Edit"),
    ActionSpec("delete", "&Delete annotation", "delete_selected", ("Delete",), "Edit"),
    ActionSpec("prev", "&Previous image", "prev_image", ("A", "PgUp"), "Go",
               QStyle.StandardPixmap.SP_MediaSeekBackward),
    ActionSpec("next", "&Next image", "next_image", ("D", "PgDown"), "Go",
               QStyle.StandardPixmap.SP_MediaSeekForward),
    ActionSpec("fit", "&Fit to window", "fit_to_window", ("F",), "View",
               QStyle.StandardPixmap.SP_TitleBarMaxButton),
    ActionSpec("zoom_in", "Zoom &in", "zoom_in", ("Ctrl++", "Ctrl+="), "View"),
    ActionSpec("zoom_out", "Zoom &out", "zoom_out", ("Ctrl+-",), "View"),
    ActionSpec("zoom_100", "&Actual pixels", "zoom_actual", ("Ctrl+1",), "View"),
    ActionSpec("show_annotations", "Show &annotations", "toggle_annotations", ("H",), "View",
               QStyle.StandardPixmap.SP_FileDialogDetailedView, checkable=True),
    ActionSpec("shortcuts", "&Keyboard shortcuts", "show_shortcuts", ("F1",), "Help"),
)  # fmt: skip

TOOLBAR = ("open_images", "open_folder", None, "prev", "next", None, "fit", None, "undo", "redo",
           None, "accept", None, "show_annotations")  # fmt: skip


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
        self.session: PromptSession | None = None
        self.model: ModelInfo | None = None
        self.label_dialog: LabelDialog | None = None
        self.last_decode_ms: float | None = None
        self.last_latency_ms: float | None = None
        self.stale_results = 0
        self._latest_request = 0
        self._applied_request = 0
        self._accept_when_ready = False
        self._model_loading = False
        self._hidden: set[int] = set()
        self.overlays = AnnotationOverlays(self)
        self._canvas_refresh = QTimer(self)  # many overlays finishing together: one repaint
        self._canvas_refresh.setSingleShot(True)
        self._canvas_refresh.setInterval(0)
        self._canvas_refresh.timeout.connect(self._refresh_canvas_annotations)
        self.overlays.ready.connect(self._canvas_refresh.start)
        self._encoder_current = ""
        self._encoder_background = ""
        self._session_config = session_config

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
        self.last_save: SaveResult | None = None
        app = QApplication.instance()
        if app is not None:  # a window dropped without close() must not leave the thread running
            app.aboutToQuit.connect(self.worker.shutdown)

        self._build_widgets()
        self._build_actions()
        self._build_status_bar()
        self._restore_geometry()
        self._update_actions()

        folder = model_dir or self._configured_model()
        if folder is not None:
            self.load_model(folder)
        elif ask_for_model and not self.settings.no_ai:
            QTimer.singleShot(0, lambda: self.setup_model("No model is set up yet."))
        else:
            self._show_model_state()

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
        self.canvas.cursor_moved.connect(self._on_cursor)
        self.canvas.zoom_changed.connect(self._on_zoom)

        self.file_list = FileList(self)
        self.file_list.image_chosen.connect(self.go_to)
        self.annotation_list = AnnotationList(self)
        self.annotation_list.selected.connect(self.canvas.highlight_annotation)
        self.annotation_list.visibility_changed.connect(self._on_visibility)
        self.annotation_list.relabel_requested.connect(self.relabel)
        self.annotation_list.delete_requested.connect(self.delete_annotations)
        for title, name, widget in (
            ("Images", "imagesDock", self.file_list),
            ("Annotations", "annotationsDock", self.annotation_list),
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

    def _build_actions(self) -> None:
        self.actions_by_name: dict[str, QAction] = {}
        menus: dict[str, QMenu] = {}
        for spec in ACTIONS:
            action = QAction(spec.text, self)
            action.setObjectName(spec.name)
            if spec.shortcuts:
                action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
                action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
            if isinstance(spec.icon, QStyle.StandardPixmap):
                action.setIcon(self.style().standardIcon(spec.icon))
            elif spec.icon is not None:
                action.setIcon(spec.icon())
            tip = spec.tip or spec.text.replace("&", "").rstrip("…")
            if spec.shortcuts:
                tip += f" ({', '.join(spec.shortcuts)})"
            action.setToolTip(tip)
            action.setStatusTip(tip)
            action.setCheckable(spec.checkable)
            action.triggered.connect(functools.partial(self._trigger, spec.handler))
            self.addAction(action)
            if spec.menu:
                if spec.menu not in menus:
                    menus[spec.menu] = self.menuBar().addMenu(f"&{spec.menu}")
                menus[spec.menu].addAction(action)
                if spec.name == "open_project":
                    self.recent_menu = menus[spec.menu].addMenu("Open &Recent")
                    menus[spec.menu].addSeparator()
            self.actions_by_name[spec.name] = action
        self.actions_by_name["show_annotations"].setChecked(True)
        toolbar = QToolBar("Tools", self)
        toolbar.setObjectName("toolbar")
        toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
        for name in TOOLBAR:
            if name is None:
                toolbar.addSeparator()
            else:
                toolbar.addAction(self.actions_by_name[name])
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(self.settings.annotation_opacity * 100))
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Opacity of accepted annotations")
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        toolbar.addWidget(QLabel(" opacity "))
        toolbar.addWidget(self.opacity_slider)
        self.addToolBar(toolbar)
        self._rebuild_recent_menu()

    def _trigger(self, handler: str, _checked: bool = False) -> None:
        getattr(self, handler)()

    def _build_status_bar(self) -> None:
        bar = self.statusBar()
        self.status_model = QLabel("no model")
        self.status_provider = QLabel("")
        self.status_decode = QLabel("decode: -")
        self.status_encoder = QLabel("encoder: idle")
        self.status_cursor = QLabel("")
        for label in (self.status_cursor, self.status_encoder, self.status_decode,
                      self.status_provider, self.status_model):  # fmt: skip
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)

    def _restore_geometry(self) -> None:
        geometry, state = load_window_state()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 820)
        if state is not None:
            self.restoreState(state)

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
        for path in self.image_paths:  # embeddings belong to the model that made them
            self.file_list.set_state(str(path), "unknown")
        self.status_model.setText(f"loading {Path(folder).name}…")
        self.status_provider.setText("")
        self.worker.load_model(folder, config)
        self._update_busy()

    def setup_model(self, reason: str = "") -> None:
        dialog = FirstRunDialog(self, reason)
        if dialog.exec() != FirstRunDialog.DialogCode.Accepted:
            self._show_model_state()
            return
        if dialog.model_folder is None:
            self.settings.no_ai = True
            self.settings.save()
            self._show_model_state()
            return
        self.settings.model_dir = str(dialog.model_folder)
        self.settings.no_ai = False
        self.settings.save()
        self.load_model(dialog.model_folder)

    def _on_model_loaded(self, info: ModelInfo) -> None:
        self.model = info
        self._model_loading = False
        self._show_model_state()
        self._show_encoder_state()
        self._update_busy()
        self.statusBar().showMessage(
            f"model {info.display_name} ready on {info.provider} ({info.load_ms:.0f} ms)",
            MESSAGE_MS,
        )
        if self.session is not None and not self.session.empty:
            self._resend_top()

    def _show_model_state(self) -> None:
        if self.model is not None:
            self.status_model.setText(self.model.display_name)
            self.status_model.setToolTip(str(self.model.folder))
            self.status_provider.setText(f"provider: {self.model.provider}")
            style = "color: #c0392b; font-weight: bold;" if self.model.random_init else ""
            self.status_model.setStyleSheet(style)
        elif self._model_loading:
            self.status_model.setText("loading model…")
        else:
            self.status_model.setText("no model (clicks disabled)")
            self.status_provider.setText("")
            self.status_encoder.setText("encoder: off")

    @property
    def ai_ready(self) -> bool:
        return self.model is not None

    # ------------------------------------------------------------------ opening

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
        workspace = Workspace.open(path, resume=resume)
        self._set_workspace(workspace)

    def _set_workspace(self, workspace: Workspace) -> None:
        self._clear_prompt()
        if self.workspace is not None:
            self.workspace.close()  # writes what is pending for the previous project
        self.workspace = workspace
        workspace.use_background_saver(self.save_finished.emit)
        self.overlays.clear()
        self._hidden.clear()
        workspace.add_listener(self._on_project_change)
        counts = [workspace.annotation_count(p) for p in workspace.images]
        self.current_index = -1
        self.file_list.set_images(workspace.images, counts)
        remembered = workspace.opened or workspace.project_path
        self.settings.add_recent(str(remembered))
        self.settings.save()
        self._rebuild_recent_menu()
        if workspace.store is not None and workspace.store.report is not None:
            issues = workspace.store.report.issues
            if issues:
                self.statusBar().showMessage(
                    f"opened with {len(issues)} note(s): {issues[0].message}", MESSAGE_MS * 2
                )
        if workspace.source is not None:
            self.statusBar().showMessage(
                f"{workspace.source.name} is from another tool and is never changed; your work "
                f"is saved in {workspace.project_path.name}",
                MESSAGE_MS * 2,
            )
        self.go_to(0)

    def choose_images(self) -> None:
        patterns = " ".join(f"*{ext}" for ext in sorted(IMAGE_EXTENSIONS))
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", f"Images ({patterns})")
        if files:
            self.open_path(files)

    def choose_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.open_path(folder)

    def choose_project(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a COCO project", "", "COCO (*.json)")
        if path:
            self.open_path(path)

    def _rebuild_recent_menu(self) -> None:
        self.recent_menu.clear()
        for path in self.settings.recent_projects:
            self.recent_menu.addAction(path, functools.partial(self.open_path, path))
        self.recent_menu.setEnabled(bool(self.settings.recent_projects))

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        if event.mimeData().hasUrls() and all(u.isLocalFile() for u in event.mimeData().urls()):
            event.acceptProposedAction()

    def dropEvent(self, event: QDropEvent) -> None:
        paths = [u.toLocalFile() for u in event.mimeData().urls()]
        if paths:
            event.acceptProposedAction()
            self.open_path(paths if len(paths) > 1 else paths[0])

    # ------------------------------------------------------------------ navigation

    @property
    def image_paths(self) -> list[Path]:
        return self.workspace.images if self.workspace is not None else []

    def go_to(self, index: int) -> None:
        paths = self.image_paths
        if not paths or not 0 <= index < len(paths) or index == self.current_index:
            return
        self._clear_prompt()
        self.current_index = index
        self.current_path = str(paths[index])
        self.loaded = None
        self.session = None
        self.canvas.set_image(None)
        self.annotation_list.set_rows([])
        self.file_list.set_current_row_silently(index)
        upcoming = [str(p) for p in paths[index + 1 : index + 1 + self.settings.prefetch]]
        self.worker.set_focus(self.current_path, upcoming)
        ready = self.file_list.state_of(self.current_path) == "ready"
        self._encoder_current = "ready (cached)" if ready else "waiting"
        self._show_encoder_state()
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
        self.session = PromptSession((loaded.height, loaded.width))
        self.canvas.set_image(loaded.pyramid)
        if not self.file_list.hasFocus():  # keep arrow-key browsing in the list working
            self.canvas.setFocus()
        record = self.workspace.record(loaded.path) if self.workspace else None
        if record is not None and (record.width, record.height) != (loaded.width, loaded.height):
            self.show_error(
                f"{Path(loaded.path).name} is {loaded.width}x{loaded.height} but the project "
                f"says {record.width}x{record.height}; its annotations may be misplaced"
            )
        self._refresh_annotations()
        self._update_busy()
        self._update_title()
        self.image_shown.emit(loaded.path)

    def _update_title(self) -> None:
        if self.current_path is None or self.workspace is None:
            self.setWindowTitle("sam2-annotator")
            return
        name = Path(self.current_path).name
        total = len(self.image_paths)
        project = self.workspace.project_path.name
        if self.workspace.source is not None:
            project += f" (from {self.workspace.source.name})"
        self.setWindowTitle(
            f"{name} ({self.current_index + 1}/{total}) — {project} — sam2-annotator"
        )

    # ------------------------------------------------------------------ encoder state

    def _on_encode_event(self, event: EncodeEvent) -> None:
        self.file_list.set_state(event.path, EVENT_STATES[event.state])
        name = Path(event.path).name
        if event.path == self.current_path:
            self._encoder_current = {
                "encoding": f"encoding {name}…",
                "ready": "ready" if event.ms is None else f"ready ({event.ms / 1000:.1f} s)",
                "cancelled": "cancelled",
                "failed": "failed",
            }[event.state]
            self._update_busy()
        else:
            self._encoder_background = {
                "encoding": f"prefetching {name}…",
                "ready": "",
                "cancelled": "",
                "failed": f"{name} failed",
            }[event.state]
        self._show_encoder_state()

    def _show_encoder_state(self) -> None:
        if not self.ai_ready:
            self.status_encoder.setText("encoder: off" if not self._model_loading else "")
            return
        parts = [p for p in (self._encoder_current, self._encoder_background) if p]
        self.status_encoder.setText("encoder: " + (" · ".join(parts) or "idle"))

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

    @property
    def current_encoded(self) -> bool:
        return bool(self.current_path) and self.file_list.state_of(self.current_path) == "ready"

    # ------------------------------------------------------------------ prompt loop

    def _on_point(self, x: float, y: float, positive: bool) -> None:
        if self.session is None or not self.session.contains(x, y):
            return
        if not self.ai_ready:
            self._no_model_hint()
            return
        self._send(self.session.add_point(x, y, positive))

    def _on_box(self, x0: float, y0: float, x1: float, y1: float) -> None:
        if self.session is None:
            return
        if not self.ai_ready:
            self._no_model_hint()
            return
        self._send(self.session.set_box(x0, y0, x1, y1))

    def _no_model_hint(self) -> None:
        self.statusBar().showMessage(
            "No model loaded: set one up (File > Set up a model) to segment by clicking.",
            MESSAGE_MS,
        )

    def _send(self, order: DecodeOrder) -> None:
        assert self.current_path is not None
        request = DecodeRequest(
            next_request_id(), self.current_path, order.prompt, candidate=order.candidate
        )
        self._latest_request = request.request_id
        self.worker.submit_decode(request)
        self._show_prompt()

    def _resend_top(self) -> None:
        """Decode the current prompt again (after a model change)."""
        if self.session is None or self.session.top is None:
            return
        top = self.session.top
        self._send(DecodeOrder(top.sent or top.prompt))

    def _invalidate_requests(self) -> None:
        """Results of requests sent so far are no longer wanted."""
        self._latest_request = next_request_id()
        self._applied_request = self._latest_request
        self._accept_when_ready = False

    def _show_prompt(self) -> None:
        top = self.session.top if self.session is not None else None
        if top is None:
            self.canvas.clear_prompt()
            self.canvas.set_current_mask(None)
            self.canvas.set_info(None)
            return
        self.canvas.set_prompt(top.points, top.labels, top.box)

    def _show_top_mask(self) -> None:
        top = self.session.top if self.session is not None else None
        self.canvas.set_current_mask(top.overlay if top is not None else None)
        self.canvas.set_info(self._candidate_text(top))

    @staticmethod
    def _candidate_text(step: Step | None) -> str | None:
        if step is None or step.prediction is None:
            return None
        prediction = step.prediction
        cycle = candidate_cycle(prediction)
        position = cycle.index(prediction.candidate) + 1
        scores = "  ".join(
            f"{'▸' if i == prediction.candidate else ''}{prediction.scores[i]:.2f}" for i in cycle
        )
        return f"mask {position}/{len(cycle)} (Tab)   scores {scores}"

    def _on_decoded(self, result: DecodeResult) -> None:
        if (
            result.request_id != self._latest_request
            or result.image != self.current_path
            or self.session is None
        ):
            self.stale_results += 1
            return
        if not self.session.apply(result.request.prompt, result.prediction, result.overlay):
            self.stale_results += 1
            return
        self._applied_request = result.request_id
        self.last_decode_ms = result.prediction.total_ms
        self.last_latency_ms = (time.perf_counter() - result.request.created) * 1000.0
        self._show_top_mask()
        self.status_decode.setText(
            f"decode: {result.prediction.decoder_ms:.0f} ms (click→mask "
            f"{self.last_latency_ms:.0f} ms)"
        )
        self.mask_shown.emit(result)
        if self._accept_when_ready:
            self._accept_when_ready = False
            self.accept_mask()

    @property
    def awaiting_result(self) -> bool:
        return self._latest_request != self._applied_request

    def undo(self) -> None:
        """Ctrl+Z: the last point while drawing an object, else the last project edit."""
        if self.session is not None and not self.session.empty:
            self.remove_last_point()
            return
        store = self.workspace.store if self.workspace else None
        if store is not None and store.can_undo:
            label = store.history.undo_label
            self._store_call(store.undo)
            self.statusBar().showMessage(f"undid {label}", MESSAGE_MS)

    def redo(self) -> None:
        store = self.workspace.store if self.workspace else None
        if store is not None and store.can_redo:
            label = store.history.redo_label
            self._store_call(store.redo)
            self.statusBar().showMessage(f"redid {label}", MESSAGE_MS)

    def remove_last_point(self) -> None:
        if self.session is None or self.session.empty:
            return
        order = self.session.undo()
        if order is not None:
            self._send(order)
        else:
            self._invalidate_requests()
        self._show_prompt()
        self._show_top_mask()

    def clear_prompt(self) -> None:
        self._clear_prompt()

    def _clear_prompt(self) -> None:
        if self.session is not None:
            self.session.clear()
        self._invalidate_requests()
        self.canvas.clear_prompt()
        self.canvas.set_current_mask(None)
        self.canvas.set_info(None)

    def cycle_candidate(self) -> None:
        if self.session is None:
            return
        order = self.session.cycle_candidate()
        if order is not None:
            self._send(order)

    # ------------------------------------------------------------------ accepting

    def accept_mask(self) -> None:
        """Enter / Space: label the current mask and save it (waits for a pending decode)."""
        self._accept(reuse_label=False)

    def next_object(self) -> None:
        """N: accept with the last label (asks if there is none) and start the next object."""
        self._accept(reuse_label=True)

    def _accept(self, reuse_label: bool) -> None:
        if self.session is None or self.session.empty or self.label_dialog is not None:
            return
        if self.awaiting_result or self.session.prediction is None:
            self._accept_when_ready = True
            self.statusBar().showMessage("waiting for the mask…", MESSAGE_MS)
            return
        step = self.session.top
        assert step is not None
        if reuse_label and self.settings.last_category:
            self._save_annotation(step, self.settings.last_category)
            return
        self._ask_label(lambda name: self._save_annotation(step, name))

    def _ask_label(self, then: Callable[[str], None], title: str = "Label") -> None:
        categories = [
            (c.name, c.color or default_color(c.id))
            for c in (self.workspace.categories if self.workspace else [])
        ]
        dialog = LabelDialog(self, categories, self.settings.last_category, title)
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
    def _save_annotation(self, step: Step, name: str) -> None:
        if self.workspace is None or self.loaded is None or step.prediction is None:
            return
        workspace, loaded, prediction = self.workspace, self.loaded, step.prediction
        store = workspace.ensure_store()
        self._clear_prompt()

        def accept() -> None:
            with store.transaction():  # category + image + annotation: one save
                category = workspace.category_for(name)
                image_id = workspace.image_id(loaded.path, loaded.width, loaded.height)
                store.add_annotation(
                    image_id,
                    category.id,
                    prediction.mask,
                    prompts=PromptRecord.from_prompt(step.prompt),
                    score=prediction.score,
                )
            self.settings.last_category = category.name
            self.settings.save()

        self._store_call(accept)

    def _store_call(self, call: Callable[[], Any]) -> None:
        """Run a store edit; a failed autosave keeps the edit in memory and says so."""
        try:
            call()
        except UserError as exc:
            self.show_error(f"{exc}\nThe change is kept in memory and saved with the next edit.")

    # ------------------------------------------------------------------ annotations

    def selected_annotation_ids(self) -> list[int]:
        return self.annotation_list.selected_ids()

    def relabel_selected(self) -> None:
        ids = self.selected_annotation_ids()
        if ids:
            self.relabel(ids[0])

    def relabel(self, annotation_id: int) -> None:
        store = self.workspace.store if self.workspace else None
        if store is None or self.label_dialog is not None:
            return

        def apply(name: str) -> None:
            workspace = self.workspace
            if workspace is None:
                return

            def relabel() -> None:
                with store.transaction():  # a new category and the relabel: one save
                    category = workspace.category_for(name)
                    store.relabel(annotation_id, category.id)
                self.settings.last_category = category.name

            self._store_call(relabel)

        self._ask_label(apply, f"Relabel annotation {annotation_id}")

    def delete_selected(self) -> None:
        self.delete_annotations(self.selected_annotation_ids())

    def delete_annotations(self, ids: list[int]) -> None:
        store = self.workspace.store if self.workspace else None
        if store is None or not ids:
            return
        if len(ids) == 1:
            self._store_call(lambda: store.delete_annotation(ids[0]))
        else:
            self._store_call(lambda: store.delete_annotations(ids))

    def _on_visibility(self, annotation_id: int, visible: bool) -> None:
        if visible:
            self._hidden.discard(annotation_id)
        else:
            self._hidden.add(annotation_id)
        self.canvas.set_annotation_visible(annotation_id, visible)

    def toggle_annotations(self) -> None:
        self.canvas.set_annotations_visible(self.actions_by_name["show_annotations"].isChecked())

    def _on_opacity(self, value: int) -> None:
        self.settings.annotation_opacity = value / 100.0
        self.canvas.set_annotation_opacity(value / 100.0)

    def _current_image_id(self) -> int | None:
        if self.workspace is None or self.current_path is None:
            return None
        record = self.workspace.record(self.current_path)
        return record.id if record is not None else None

    def _on_save_finished(self, result: SaveResult) -> None:
        """A background save ended (queued from the saver thread)."""
        self.last_save = result
        if result.ok:
            self.statusBar().showMessage(f"saved {result.path.name} ({result.ms:.0f} ms)", 2000)
            return
        self.show_error(
            f"{result.error}\nYour work is kept in memory and saved again with the next edit; "
            "closing the window asks what to do."
        )

    def _on_project_change(self, change: Change) -> None:
        """The store's callback (GUI thread), after every edit, undo, redo and save."""
        store = self.workspace.store if self.workspace else None
        if store is None:
            return
        if change.kind == "saved":
            self.statusBar().showMessage(f"saved {store.path.name}", 2000)
            return
        if change.kind.startswith("annotation") and change.image_id in store.project.images:
            path = str(store.image_path(change.image_id).resolve())
            self.file_list.set_count(path, len(store.annotations_for(change.image_id)))
            if change.image_id == self._current_image_id():
                self._refresh_annotations()
        self._update_actions()

    def _annotation_colors(self) -> list[tuple[Annotation, tuple[int, int, int], str]]:
        """The current image's annotations with their colour and category name."""
        if self.workspace is None or self.current_path is None or self.workspace.store is None:
            return []
        categories = self.workspace.store.project.categories
        out = []
        for annotation in self.workspace.annotations(self.current_path):
            category = categories.get(annotation.category_id)
            color = category.color if category is not None and category.color else None
            name = category.name if category is not None else f"category {annotation.category_id}"
            out.append((annotation, color or default_color(annotation.category_id), name))
        return out

    def _refresh_annotations(self) -> None:
        """Rebuild the annotation list and the canvas's accepted masks for the current image."""
        if self.loaded is None:
            self.canvas.set_annotations(())
            self.annotation_list.set_rows([])
            return
        rows = [
            AnnotationRow(a.id, name, color, a.score, a.area, a.id not in self._hidden)
            for a, color, name in self._annotation_colors()
        ]
        self.annotation_list.set_rows(rows)
        self._refresh_canvas_annotations()

    def _refresh_canvas_annotations(self) -> None:
        """Show the annotations whose overlays are ready (the others follow when built)."""
        if self.loaded is None:
            return
        shapes = []
        for annotation, color, _name in self._annotation_colors():
            overlay = self.overlays.get(annotation, color)
            if overlay is not None:
                shapes.append(
                    AnnotationShape(annotation.id, overlay, annotation.id not in self._hidden)
                )
        self.canvas.set_annotations(shapes)
        selected = self.annotation_list.selected_ids()
        self.canvas.highlight_annotation(selected[0] if len(selected) == 1 else None)

    # ------------------------------------------------------------------ view

    def fit_to_window(self) -> None:
        self.canvas.fit_to_window()

    def zoom_in(self) -> None:
        self.canvas.zoom_to(self.canvas.zoom * 1.25)

    def zoom_out(self) -> None:
        self.canvas.zoom_to(self.canvas.zoom / 1.25)

    def zoom_actual(self) -> None:
        self.canvas.zoom_to(1.0)

    def _on_cursor(self, position: tuple[int, int] | None) -> None:
        self.status_cursor.setText("" if position is None else f"x {position[0]}  y {position[1]}")

    def _on_zoom(self, zoom: float) -> None:
        self.status_cursor.setToolTip(f"zoom {zoom * 100:.0f}%")

    def show_shortcuts(self) -> None:
        lines = [
            "Left click: positive point — Right click or Shift+click: negative point",
            "Drag: box — Wheel: zoom — Middle drag or Space+drag: pan",
        ]
        for spec in ACTIONS:
            if spec.shortcuts:
                lines.append(f"{', '.join(spec.shortcuts)}: {spec.text.replace('&', '')}")
        lines.append("Space (tap): accept mask")
        box = QMessageBox(
            QMessageBox.Icon.Information,
            "Keyboard and mouse",
            "\n".join(lines),
            QMessageBox.StandardButton.Close,
            self,
        )
        box.setModal(False)
        box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
        box.show()

    # ------------------------------------------------------------------ settings and export

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
        model_changed = (old.model_dir, old.providers, old.threads) != (
            new.model_dir,
            new.providers,
            new.threads,
        )
        if model_changed and new.model_dir:
            self.load_model(Path(new.model_dir))
        if (old.cache_mb, old.disk_cache) != (new.cache_mb, new.disk_cache):
            self.statusBar().showMessage("cache settings apply after a restart", MESSAGE_MS)

    @reports_errors
    def export_coco(self) -> None:
        store = self.workspace.store if self.workspace else None
        if store is None:
            self.statusBar().showMessage("nothing to export yet", MESSAGE_MS)
            return
        default = str(store.path.with_name(store.path.stem + "_export.json"))
        path, _ = QFileDialog.getSaveFileName(self, "Export COCO", default, "COCO (*.json)")
        if not path:
            return
        report = write_coco(
            store.project, path, segmentation=self.settings.export_segmentation, tool_data=False
        )
        note = (
            f"; {len(report.warnings)} warning(s): {report.warnings[0]}" if report.warnings else ""
        )
        self.statusBar().showMessage(
            f"exported {Path(path).name} ({report.polygon} polygon, {report.rle} RLE){note}",
            MESSAGE_MS * 2,
        )

    # ------------------------------------------------------------------ errors

    def show_error(self, text: str, details: str = "") -> None:
        """The one place errors are shown: a non-modal box plus the status bar."""
        self.statusBar().showMessage(text.splitlines()[0], MESSAGE_MS * 2)
        self.error_box.setIcon(ErrorBox.Icon.Warning)
        self.error_box.show_message(text, details)

    def _on_worker_error(self, error: WorkerError) -> None:
        if error.kind == "model":
            self._model_loading = False
            self.model = None
            self._show_model_state()
        if error.path is not None and error.kind in ("image", "encode", "prefetch"):
            self.file_list.set_state(error.path, "failed")
        if error.path == self.current_path:
            self._update_busy()
        text = error.message
        if not error.user_error:
            text += "\n(see the log file for details)"
        if error.kind in BOXED_ERRORS:
            self.show_error(text)
        else:
            self.statusBar().showMessage(text, MESSAGE_MS * 2)

    # ------------------------------------------------------------------ state

    def _confirm_saved(self) -> bool:
        return _confirm_saved_impl(self)

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

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._confirm_saved():
            event.ignore()
            return
        save_window_state(QByteArray(self.saveGeometry()), QByteArray(self.saveState()))
        self.settings.save()
        if self.workspace is not None:
            self.workspace.close()
        self.worker.shutdown()
        self._canvas_refresh.stop()
        self.overlays.shutdown()
        super().closeEvent(event)


def _confirm_saved_impl(window: MainWindow) -> bool:
    """Closing: make sure the project is on disk, or that the user chose to drop the changes."""
    store = window.workspace.store if window.workspace else None
    if store is None:
        return True
    store.flush(30)
    while store.dirty:
        reason = "The last save did not finish."
        try:
            store.save()
            return True
        except UserError as exc:
            reason = str(exc)
        choice = save_prompts.ask_unsaved(window, store.path, reason)
        if choice is CloseChoice.CANCEL:
            return False
        if choice is CloseChoice.DISCARD:
            log.warning("closing without saving the latest changes to %s", store.path)
            return True
        if choice is CloseChoice.SAVE_ELSEWHERE:
            target = save_prompts.ask_save_path(window, store.path)
            if target is not None:
                try:
                    store.save_as(target)
                except UserError as exc:
                    window.show_error(str(exc))
    return True


def app_icon() -> QIcon | None:
    """The application icon from the package resources, if they are installed."""
    try:
        from sam2_annotator.resources import APP_ICON_SVG, resource_path
    except ImportError:
        return None
    path = resource_path(APP_ICON_SVG)
    return QIcon(str(path)) if path.is_file() else None
