"""Start the GUI: ``sam2-annotator [PATH] [--model DIR] [--providers LIST] [--threads N]``.

Startup wires the things a desktop app needs when something goes wrong: a log file in the user
log folder (:func:`log_dir`), Qt's own messages routed into that log, and an excepthook that logs
an unhandled exception and shows a dialog naming the log file instead of vanishing.
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import os
import signal
import sys
import threading
import traceback
from collections.abc import Sequence
from pathlib import Path
from types import TracebackType

import platformdirs

from sam2_annotator import __version__
from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)

APP_NAME = "sam2-annotator"
#: Environment variable naming the log folder, instead of the per-user log folder.
LOG_DIR_ENV = "SAM2_ANNOTATOR_LOG_DIR"
LOG_FILE_NAME = "sam2-annotator.log"
LOG_FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=APP_NAME,
        description="Annotate images with SAM2: click on objects, get masks, save COCO.",
    )
    parser.add_argument(
        "path",
        nargs="?",
        type=Path,
        help="an image, a folder of images (annotated in its annotations.json), a COCO file, "
        "or a video (opened as a sequence to track objects through)",
    )
    parser.add_argument("--model", type=Path, metavar="DIR", help="model folder (ONNX pair)")
    parser.add_argument(
        "--providers",
        metavar="LIST",
        help="execution providers, best first, e.g. 'cuda,cpu' (default: the settings, 'auto')",
    )
    parser.add_argument(
        "--threads", type=int, metavar="N", help="ONNX Runtime CPU threads (0 = automatic)"
    )
    parser.add_argument(
        "--labels",
        type=Path,
        metavar="FILE",
        help="predefined categories, one name per line (added to every project opened)",
    )
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    return parser


# --------------------------------------------------------------------------- logging


def log_dir() -> Path:
    override = os.environ.get(LOG_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_log_dir(APP_NAME, appauthor=False))


def setup_logging(verbosity: int = 0) -> Path:
    """Log INFO and above to a rotating file (DEBUG with ``-vv``), warnings to stderr."""
    folder = log_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / LOG_FILE_NAME
    root = logging.getLogger()
    root.setLevel(logging.DEBUG if verbosity >= 2 else logging.INFO)
    file_handler = logging.handlers.RotatingFileHandler(
        path, maxBytes=2_000_000, backupCount=3, encoding="utf-8"
    )
    file_handler.setFormatter(logging.Formatter(LOG_FORMAT))
    console = logging.StreamHandler()
    console.setLevel(logging.INFO if verbosity else logging.WARNING)
    console.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root.addHandler(file_handler)
    root.addHandler(console)
    log.info("sam2-annotator %s, log file %s", __version__, path)
    return path


def qt_message_handler(mode, context, message: str) -> None:
    """Send Qt's warnings and errors into :mod:`logging` (logger ``qt``)."""
    from PySide6.QtCore import QtMsgType

    levels = {
        QtMsgType.QtDebugMsg: logging.DEBUG,
        QtMsgType.QtInfoMsg: logging.INFO,
        QtMsgType.QtWarningMsg: logging.WARNING,
        QtMsgType.QtCriticalMsg: logging.ERROR,
        QtMsgType.QtFatalMsg: logging.CRITICAL,
    }
    where = f" ({context.file}:{context.line})" if context is not None and context.file else ""
    logging.getLogger("qt").log(levels.get(mode, logging.WARNING), "%s%s", message, where)


# --------------------------------------------------------------------------- crashes


class CrashReporter:
    """``sys.excepthook``/``threading.excepthook``: log the traceback, then show a dialog that
    names the log file (one at a time; later exceptions while it is open are only logged)."""

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self._showing = False

    def install(self) -> None:
        sys.excepthook = self.excepthook
        threading.excepthook = self.thread_excepthook

    def excepthook(
        self,
        exc_type: type[BaseException],
        exc: BaseException,
        tb: TracebackType | None,
    ) -> None:
        log.critical("unhandled exception", exc_info=(exc_type, exc, tb))
        if issubclass(exc_type, KeyboardInterrupt):
            return
        self._show(exc_type, exc, tb)

    def thread_excepthook(self, args: threading.ExceptHookArgs) -> None:
        log.critical(
            "unhandled exception in thread %s",
            args.thread.name if args.thread else "?",
            exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
        )

    def _show(
        self, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None
    ) -> None:
        from PySide6.QtWidgets import QApplication, QMessageBox

        if self._showing or QApplication.instance() is None:
            return
        self._showing = True
        try:
            box = QMessageBox(QMessageBox.Icon.Critical, APP_NAME, f"Unexpected error: {exc}")
            box.setInformativeText(
                f"The details are in the log file:\n{self.log_path}\n\n"
                "Your annotations are saved after every change."
            )
            box.setDetailedText("".join(traceback.format_exception(exc_type, exc, tb)))
            box.exec()
        finally:
            self._showing = False


# --------------------------------------------------------------------------- main


def session_config(args: argparse.Namespace) -> SessionConfig | None:
    """Providers/threads from the command line (``None``: use the settings)."""
    if args.providers is None and args.threads is None:
        return None
    from sam2_annotator.gui.settings import AppSettings

    settings = AppSettings.load()
    providers = args.providers if args.providers is not None else settings.providers
    threads = args.threads if args.threads is not None else settings.threads
    return SessionConfig(providers=tuple(parse_provider_list(providers)), threads=threads)


def read_labels_file(path: Path) -> list[str]:
    from sam2_annotator.annotations.labels import read_labels_file as read

    return read(path)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    log_path = setup_logging(args.verbose)
    import onnxruntime  # noqa: F401  - before Qt: DLL load order on Windows (see ENGINEERING.md)
    from PySide6.QtCore import QTimer, qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from sam2_annotator.gui.main_window import MainWindow
    from sam2_annotator.gui.settings import APPLICATION, ORGANIZATION

    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else APP_NAME])
    app.setOrganizationName(ORGANIZATION)
    app.setApplicationName(APPLICATION)
    app.setApplicationVersion(__version__)
    qInstallMessageHandler(qt_message_handler)
    CrashReporter(log_path).install()
    try:
        config = session_config(args)
        labels = read_labels_file(args.labels) if args.labels is not None else None
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    window = MainWindow(model_dir=args.model, session_config=config)
    if labels is not None:
        window.categories.predefined = labels + window.settings.labels
    window.show()
    # Ctrl+C in the terminal closes the window (saving state) instead of being ignored while Qt
    # runs; the idle timer gives the interpreter a chance to run the handler.
    signal.signal(signal.SIGINT, lambda *_: window.close())
    wake = QTimer(window)
    wake.timeout.connect(lambda: None)
    wake.start(250)
    if args.path is not None:
        path = args.path
        QTimer.singleShot(0, lambda: window.open_path(path))
    return int(app.exec())


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
