"""The main window: wiring between the widgets, the worker, the controller and the project.

Data flow. A click on the :class:`~.canvas.Canvas` goes to the Qt-free
:class:`~sam2_annotator.app.controller.PromptController`, which returns a decode order with a fresh
request id; the window sends it to the worker and the markers appear at once. The worker answers
with :attr:`~.worker.InferenceWorker.decoded`; the controller applies a result only if its id is
still the latest and it is for the image on screen (anything else is stale and dropped).
Accepting asks for a label and saves through the :class:`~sam2_annotator.annotations.ProjectStore`
in one transaction (undoable; written by the background saver); the store's change callbacks
refresh the views. Per-image state lives in :class:`~sam2_annotator.app.image_states.ImageStates`,
which the file list and status bar display. Polygon, brush and eraser are mask operations in
:mod:`sam2_annotator.app.tools`, drawn by :mod:`.tool_layer`; the commands are in :mod:`.actions`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from PySide6.QtCore import QByteArray, Qt, QTimer, Signal
from PySide6.QtGui import QCloseEvent, QDragEnterEvent, QDropEvent
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow

from sam2_annotator.annotations import Change
from sam2_annotator.annotations.saver import SaveResult
from sam2_annotator.app.controller import AcceptPlan, Outgoing, PromptController
from sam2_annotator.app.image_states import ImageStates, initial_states
from sam2_annotator.app.workspace import Workspace, resume_candidate
from sam2_annotator.engine.cache import default_cache_dir
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.errors import UserError
from sam2_annotator.gui import save_prompts
from sam2_annotator.gui.actions import ACTIONS, install_actions
from sam2_annotator.gui.annotation_list import AnnotationList
from sam2_annotator.gui.annotation_view import AnnotationPresenter
from sam2_annotator.gui.canvas import Canvas
from sam2_annotator.gui.category_wiring import CategoryWiring
from sam2_annotator.gui.dialogs import ErrorBox, LabelDialog, reports_errors
from sam2_annotator.gui.editing import EditingTools
from sam2_annotator.gui.file_list import ImagesPanel
from sam2_annotator.gui.icons import app_icon
from sam2_annotator.gui.jobs import shutdown_jobs
from sam2_annotator.gui.model_control import ModelControl
from sam2_annotator.gui.opening import OpenCommands
from sam2_annotator.gui.settings import AppSettings, load_window_state, save_window_state
from sam2_annotator.gui.status import StatusPanel, candidate_text
from sam2_annotator.gui.view_controls import ViewControls
from sam2_annotator.gui.worker import (
    DecodeRequest,
    DecodeResult,
    InferenceWorker,
    LoadedImage,
    ModelInfo,
    next_request_id,
)

log = logging.getLogger(__name__)

__all__ = ["ACTIONS", "MainWindow", "app_icon"]

#: How long transient status messages stay.
MESSAGE_MS = 5000
#: Worker error kinds shown in the (non-modal) error box; the others go to the status bar.
BOXED_ERRORS = frozenset({"model", "image", "encode", "internal"})


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

        self.worker = InferenceWorker(
            memory_bytes=self.settings.cache_bytes,
            disk_cache_dir=default_cache_dir() if self.settings.disk_cache else None,
            prefetch=self.settings.prefetch,
            engine_factory=engine_factory,
        )
        self.worker.image_loaded.connect(self._on_image_loaded)
        self.worker.decoded.connect(self._on_decoded)
        self.worker.start()
        self.save_finished.connect(self._on_save_finished)
        app = QApplication.instance()
        if app is not None:  # a window dropped without close() must not leave the thread running
            app.aboutToQuit.connect(self.worker.shutdown)

        self.status = StatusPanel(self.statusBar())
        self.status_model = self.status.model
        self.status_provider = self.status.provider
        self.status_decode = self.status.decode
        self.models = ModelControl(self, session_config)
        self._build_widgets()
        self.actions_by_name, self.recent_menu, toolbar = install_actions(self)
        self.actions_by_name["show_annotations"].setChecked(True)
        self.view = ViewControls(self, toolbar)
        self.opacity_slider = self.view.opacity_slider
        self.addToolBar(toolbar)
        self.opening = OpenCommands(self)
        self.opening.rebuild_recent_menu()
        self._restore_geometry()
        self.editing.set_tool("prompt")
        self._update_actions()

        folder = model_dir or self.models.configured_model()
        if folder is not None:
            self.models.load(folder)
        elif ask_for_model and not self.settings.no_ai:
            QTimer.singleShot(0, lambda: self.models.setup("No model is set up yet."))
        else:
            self.status.show_model(None, False)

    # ------------------------------------------------------------------ construction

    def _build_widgets(self) -> None:
        self.canvas = Canvas(self)
        self.canvas.set_mask_opacity(self.settings.mask_opacity)
        self.canvas.annotation_layer.set_opacity(self.settings.annotation_opacity)
        self.setCentralWidget(self.canvas)
        self.canvas.point_clicked.connect(
            lambda x, y, positive: self._prompt("click", x, y, positive)
        )
        self.canvas.box_drawn.connect(lambda *box: self._prompt("box", *box))
        self.canvas.accept_requested.connect(self.accept_mask)
        self.canvas.cycle_requested.connect(self.cycle_candidate)
        self.canvas.cursor_moved.connect(self.status.show_cursor)
        self.editing = EditingTools(self)
        self.tools = self.editing.layer

        self.images_panel = ImagesPanel(self)
        self.file_list = self.images_panel.list
        self.file_list.bind(self.states)
        self.file_list.image_chosen.connect(self.go_to)
        show_counts = lambda *_: self.status.show_counts(self.states.summary())  # noqa: E731
        self.states.listeners.append(show_counts)
        self.states.reset_listeners.append(show_counts)
        self.annotation_list = AnnotationList(self)
        self.annotations = AnnotationPresenter(self.canvas, self.annotation_list, self.states)
        self.annotation_list.selected.connect(self.canvas.annotation_layer.highlight)
        self.annotation_list.visibility_changed.connect(self.annotations.set_visible)
        self.annotation_list.relabel_requested.connect(self.relabel)
        self.annotation_list.edit_requested.connect(self.editing.edit_annotation)
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

    def _restore_geometry(self) -> None:
        geometry, state = load_window_state()
        if geometry is None or not self.restoreGeometry(geometry):
            self.resize(1280, 820)
        if state is not None:
            self.restoreState(state)

    # ------------------------------------------------------------------ read-outs

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
    def image_paths(self) -> list[Path]:
        return self.workspace.images if self.workspace is not None else []

    @property
    def ai_ready(self) -> bool:
        return self.model is not None

    @property
    def current_encoded(self) -> bool:
        return bool(self.current_path) and self.file_list.state_of(self.current_path) == "ready"

    # ------------------------------------------------------------------ opening and navigation

    @reports_errors
    def open_path(self, path: str | Path | Sequence[str | Path]) -> None:
        if self.opening.open_sequence_path(path):  # a video or a .sam2-track.json
            return
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
        self.status.show_encoder(self.ai_ready, self.models.loading)
        self.models.update_busy()
        self._update_title()
        self._update_actions()

    def go_by(self, step: int) -> None:
        """A / D (PgUp / PgDown): the previous / next image."""
        self.go_to(self.current_index + step)

    def _on_image_loaded(self, loaded: LoadedImage) -> None:
        if loaded.path != self.current_path:
            return
        self.loaded = loaded
        self.controller.set_image(loaded.path, (loaded.height, loaded.width))
        self.canvas.set_image(loaded.pyramid)
        self.editing.set_tool(self.controller.tool)
        if not self.file_list.hasFocus():  # keep arrow-key browsing in the list working
            self.canvas.setFocus()
        record = self.workspace.record(loaded.path) if self.workspace else None
        if record is not None and (record.width, record.height) != (loaded.width, loaded.height):
            self.show_error(
                f"{Path(loaded.path).name} is {loaded.width}x{loaded.height} but the project "
                f"says {record.width}x{record.height}; its annotations may be misplaced"
            )
        self.annotations.set_image(loaded.path)
        self.models.update_busy()
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

    # ------------------------------------------------------------------ prompt loop

    def _prompt(self, kind: str, *args: Any) -> None:
        """A click (x, y, positive) or a box (x0, y0, x1, y1) for the model."""
        if self.controller.session is None:
            return
        if not self.ai_ready:
            self.status.message(
                "No model loaded: set one up (File > Set up a model) to segment by clicking, "
                "or use the polygon (P) or brush (B).",
                MESSAGE_MS,
            )
            return
        self._send(getattr(self.controller, kind)(*args))

    def resend_prompt(self) -> None:
        """Decode the current prompt again (a new model was loaded)."""
        outgoing = self.controller.resend()
        if outgoing is not None:
            self._send(outgoing)

    def _send(self, outgoing: Outgoing | None) -> None:
        if outgoing is not None and self.current_path is not None:
            order = outgoing.order
            request = DecodeRequest(
                outgoing.request_id, self.current_path, order.prompt, candidate=order.candidate
            )
            self.worker.submit_decode(request)
        self.show_prompt(mask=False)

    def show_prompt(self, mask: bool = True) -> None:
        """The prompt's markers (and, with ``mask``, the mask of the step on top)."""
        top = self.controller.top
        if top is None:
            self.canvas.clear_prompt()
        else:
            self.canvas.set_prompt(top.points, top.labels, top.box)
        if mask or (top is None and self.controller.draft is None):
            self.canvas.set_current_mask(top.overlay if top is not None else None)
            self.canvas.set_info(candidate_text(top.prediction) if top is not None else None)

    def _on_decoded(self, result: DecodeResult) -> None:
        prediction = result.prediction
        if not self.controller.apply_result(
            result.request_id, result.image, result.request.prompt, prediction, result.overlay
        ):
            return
        self.last_decode_ms = prediction.total_ms
        self.last_latency_ms = (time.perf_counter() - result.request.created) * 1000.0
        self.show_prompt()
        self.status.show_decode(prediction.decoder_ms, self.last_latency_ms)
        self.mask_shown.emit(result)
        if self.controller.accept_when_ready:
            self.controller.accept_when_ready = False
            self.accept_mask()

    def remove_last_point(self) -> None:
        """Backspace: the last polygon vertex, or the last click of the prompt."""
        if self.editing.remove_last_vertex():
            return
        session = self.controller.session
        if session is None or session.empty:
            return
        self._send(self.controller.remove_last_point())
        self.show_prompt()

    def clear_prompt(self) -> None:
        """Esc: drop the prompt, the polygon, the painting and any edit (nothing is saved)."""
        self.controller.clear()
        self.controller.set_tool(self.controller.tool)
        self.canvas.clear_prompt()
        self.canvas.set_current_mask(None)
        self.canvas.set_info(None)
        self.annotations.set_editing(None)
        self.tools.clear_pending()
        self.editing.show_tool()

    def cycle_candidate(self) -> None:
        outgoing = self.controller.cycle_candidate()
        if outgoing is not None:
            self._send(outgoing)

    def history(self, direction: str = "undo") -> None:
        """Ctrl+Z: while something is being drawn or corrected, its last click or vertex (never a
        saved edit underneath it); otherwise the last project edit. Ctrl+Y: redo."""
        if direction == "undo" and self.controller.drawing:
            if self.controller.draft is not None:
                self.status.message("Esc drops the painting; Ctrl+Z undoes saved edits", MESSAGE_MS)
            else:
                self.remove_last_point()
            return
        store = self.workspace.store if self.workspace else None
        if store is None or not getattr(store, f"can_{direction}"):
            return
        label = getattr(store.history, f"{direction}_label")
        self.store_call(getattr(store, direction))
        self.status.message(f"{direction.replace('o', 'id', 1)} {label}", MESSAGE_MS)

    # ------------------------------------------------------------------ accepting

    def accept_mask(self) -> None:
        """Enter / Space: save the mask, polygon or painting (waits for a pending decode)."""
        self.accept(reuse_label=False)

    def accept(self, reuse_label: bool) -> None:
        """``reuse_label`` (N): with the last label, without asking, and on to the next object."""
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
        if plan.annotation_id is not None and plan.annotation_id not in store.project.annotations:
            self.clear_prompt()
            self.show_error(f"annotation {plan.annotation_id} was deleted meanwhile; nothing saved")
            return
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

        self.store_call(save)
        if result:
            self.controller.accepted(plan, result[0])
            self.clear_prompt()

    def store_call(self, call: Callable[[], Any]) -> None:
        """Run a store edit; a failed synchronous save keeps the edit in memory and says so."""
        try:
            call()
        except UserError as exc:
            self.show_error(f"{exc}\nThe change is kept in memory and saved with the next edit.")

    # ------------------------------------------------------------------ annotations

    def relabel(self, annotation_id: int | None = None) -> None:
        """L: relabel the annotation (default: the selected one)."""
        store = self.workspace.store if self.workspace else None
        ids = [annotation_id] if annotation_id is not None else self.annotation_list.selected_ids()
        if store is None or self.label_dialog is not None or not ids:
            return
        self._ask_label(
            lambda name: self.categories.assign_name(name, ids[:1]),
            f"Relabel annotation {ids[0]}",
        )

    def delete_annotations(self, ids: list[int] | None = None) -> None:
        """Delete: the annotations (default: the selected ones), one undo step."""
        store = self.workspace.store if self.workspace else None
        ids = list(ids) if ids is not None else self.annotation_list.selected_ids()
        if store is None or not ids:
            return
        if len(ids) == 1:
            self.store_call(lambda: store.delete_annotation(ids[0]))
        else:
            self.store_call(lambda: store.delete_annotations(ids))

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

    def show_error(self, text: str, details: str = "") -> None:
        """The one place errors are shown: a non-modal box plus the status bar."""
        self.status.message(text.splitlines()[0], MESSAGE_MS * 2)
        self.error_box.setIcon(ErrorBox.Icon.Warning)
        self.error_box.show_message(text, details)

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
