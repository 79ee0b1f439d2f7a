"""The window's side of the model and the encoder (Qt only): loading a model, the first-run
dialog, encoder events, worker errors and the canvas's busy badge."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

from PySide6.QtCore import QObject

from sam2_annotator.app import model_setup
from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
from sam2_annotator.errors import UserError
from sam2_annotator.gui.dialogs import FirstRunDialog
from sam2_annotator.gui.worker import EncodeEvent, ModelInfo, WorkerError

if TYPE_CHECKING:
    from sam2_annotator.gui.main_window import MainWindow

log = logging.getLogger(__name__)

MESSAGE_MS = 5000
#: Worker error kinds shown in the (non-modal) error box; the others go to the status bar.
BOXED_ERRORS = frozenset({"model", "image", "encode", "internal"})
#: Image-state embedding value for each encoder event.
EVENT_STATES = {"encoding": "encoding", "ready": "ready", "cancelled": "unknown"}


class ModelControl(QObject):
    """See the module docstring. ``session_config`` overrides the settings' providers."""

    def __init__(self, window: MainWindow, session_config: SessionConfig | None) -> None:
        super().__init__(window)
        self.window = window
        self.session_config = session_config
        self.loading = False
        worker = window.worker
        worker.model_loaded.connect(self.on_model_loaded)
        worker.encode_event.connect(self.on_encode_event)
        worker.failed.connect(self.on_worker_error)

    def configured_model(self) -> Path | None:
        settings = self.window.settings
        if settings.model_dir:
            return Path(settings.model_dir)
        if settings.no_ai:
            return None
        return model_setup.first_installed_model()

    def load(self, folder: Path) -> None:
        window = self.window
        try:
            config = self.session_config or SessionConfig(
                providers=tuple(parse_provider_list(window.settings.providers or "auto")),
                threads=window.settings.threads,
            )
        except UserError as exc:
            window.show_error(str(exc))
            return
        self.loading = True
        window.model = None
        for path in window.states.paths:  # embeddings belong to the model that made them
            window.states.update(path, embedding="unknown")
        window.status.model.setText(f"loading {Path(folder).name}…")
        window.status.provider.setText("")
        window.worker.load_model(folder, config)
        self.update_busy()

    def setup(self, reason: str = "") -> None:
        window = self.window
        dialog = FirstRunDialog(window, reason)
        if dialog.exec() != FirstRunDialog.DialogCode.Accepted:
            window.status.show_model(window.model, self.loading)
            return
        window.settings.no_ai = dialog.model_folder is None
        window.settings.model_dir = str(dialog.model_folder) if dialog.model_folder else ""
        window.settings.save()
        if dialog.model_folder is None:
            window.status.show_model(None, False)
        else:
            self.load(dialog.model_folder)

    def on_model_loaded(self, info: ModelInfo) -> None:
        window = self.window
        window.model = info
        self.loading = False
        window.status.show_model(info, False)
        window.status.show_encoder(True, False)
        self.update_busy()
        window.status.message(
            f"model {info.display_name} ready on {info.provider} ({info.load_ms:.0f} ms)",
            MESSAGE_MS,
        )
        window.resend_prompt()

    def on_encode_event(self, event: EncodeEvent) -> None:
        window, status = self.window, self.window.status
        window.states.update(event.path, embedding=EVENT_STATES.get(event.state, "failed"))
        name = Path(event.path).name
        if event.path == window.current_path:
            ready = "ready" if event.ms is None else f"ready ({event.ms / 1000:.1f} s)"
            texts = {"encoding": f"encoding {name}…", "ready": ready}
            status.encoder_current = texts.get(event.state, event.state)
            self.update_busy()
        else:
            texts = {"encoding": f"prefetching {name}…", "failed": f"{name} failed"}
            status.encoder_background = texts.get(event.state, "")
        status.show_encoder(window.ai_ready, self.loading)

    def update_busy(self) -> None:
        window = self.window
        path = window.current_path
        state = window.file_list.state_of(path) if path else None
        canvas = window.canvas
        if path is None:
            canvas.set_busy(False)
        elif window.loaded is None and state != "failed":
            canvas.set_busy(True, "Loading image…")
        elif window.ai_ready and state not in ("ready", "failed"):
            canvas.set_busy(True, "Encoding image… (clicks are kept)")
        elif self.loading:
            canvas.set_busy(True, "Loading model…")
        else:
            canvas.set_busy(False)

    def on_worker_error(self, error: WorkerError) -> None:
        window = self.window
        if error.kind == "model":
            self.loading = False
            window.model = None
            window.status.show_model(None, False)
        if error.path is not None and error.kind in ("image", "encode", "prefetch"):
            window.states.update(error.path, embedding="failed")
        if error.path == window.current_path:
            self.update_busy()
        text = error.message + ("" if error.user_error else "\n(see the log file for details)")
        if error.kind in BOXED_ERRORS:
            window.show_error(text)
        else:
            window.status.message(text, MESSAGE_MS * 2)
