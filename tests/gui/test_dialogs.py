"""Label chooser, settings, first-run dialog, workspace opening and start-up plumbing."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings, Qt, QTimer, qWarning
from PySide6.QtWidgets import QLabel, QMessageBox, QPlainTextEdit, QPushButton

from sam2_annotator.app.workspace import PROJECT_FILE_NAME, Workspace
from sam2_annotator.errors import ProjectError, UserError
from sam2_annotator.gui import app
from sam2_annotator.gui.dialogs import FirstRunDialog, LabelDialog
from sam2_annotator.gui.settings import AppSettings, qsettings

CATEGORIES = [("car", (200, 0, 0)), ("cat", (0, 200, 0)), ("bicycle", (0, 0, 200))]


# --------------------------------------------------------------------------- label chooser


@pytest.fixture
def label_dialog(qtbot) -> LabelDialog:
    dialog = LabelDialog(None, CATEGORIES, preselect="cat")
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def test_label_dialog_preselects_the_last_label(qtbot, label_dialog) -> None:
    assert label_dialog.visible_names() == ["car", "cat", "bicycle"]
    qtbot.keyClick(label_dialog.edit, Qt.Key.Key_Return)
    assert label_dialog.result() == LabelDialog.DialogCode.Accepted
    assert label_dialog.chosen_name() == "cat" and not label_dialog.is_new()


def test_label_dialog_type_ahead_filters_prefix_first(qtbot, label_dialog) -> None:
    qtbot.keyClicks(label_dialog.edit, "c")
    assert label_dialog.visible_names() == ["car", "cat", "bicycle", "c"]  # + "new category"
    qtbot.keyClicks(label_dialog.edit, "a")
    assert label_dialog.visible_names() == ["car", "cat", "ca"]
    qtbot.keyClick(label_dialog.edit, Qt.Key.Key_Down)  # the highlight moves, the text stays
    qtbot.keyClick(label_dialog.edit, Qt.Key.Key_Return)
    assert label_dialog.chosen_name() == "cat"


def test_label_dialog_creates_a_new_category(qtbot, label_dialog) -> None:
    qtbot.keyClicks(label_dialog.edit, "dog")
    assert label_dialog.visible_names() == ["dog"]
    qtbot.keyClick(label_dialog.edit, Qt.Key.Key_Return)
    assert label_dialog.chosen_name() == "dog" and label_dialog.is_new()


def test_label_dialog_exact_name_is_not_offered_as_new(qtbot, label_dialog) -> None:
    qtbot.keyClicks(label_dialog.edit, "CAR")
    assert label_dialog.visible_names() == ["car"]


# --------------------------------------------------------------------------- settings


def test_settings_round_trip_and_repair(isolated_settings: Path) -> None:
    settings = AppSettings(model_dir="/m", providers="cuda,cpu", threads=3, prefetch=4)
    settings.add_recent("/a")
    settings.add_recent("/b")
    settings.add_recent("/a")
    settings.save()
    assert any(isolated_settings.rglob("*.ini"))  # really in the test's own folder
    loaded = AppSettings.load()
    assert loaded == settings
    assert loaded.recent_projects == ["/a", "/b"]

    store = qsettings()
    store.setValue("settings/threads", "many")
    store.setValue("settings/prefetch", "99")
    store.setValue("settings/mask_opacity", "7")
    store.setValue("settings/export_segmentation", "mesh")
    store.sync()
    repaired = AppSettings.load()
    assert repaired.threads == AppSettings().threads  # unreadable: default
    assert repaired.prefetch == 16 and repaired.mask_opacity == 1.0
    assert repaired.export_segmentation == "polygon"


def test_each_test_gets_fresh_settings() -> None:
    assert AppSettings.load() == AppSettings()
    assert QSettings.defaultFormat() == QSettings.Format.IniFormat


# --------------------------------------------------------------------------- first run


def test_first_run_offers_to_continue_without_ai(qtbot) -> None:
    dialog = FirstRunDialog(None, "No model is set up yet.")
    qtbot.addWidget(dialog)
    assert dialog.choices.count() >= 1  # the catalog's models
    command = dialog.findChild(QPlainTextEdit)
    assert "models export" in command.toPlainText() and "--checkpoint" in command.toPlainText()
    button = dialog.findChild(QPushButton, "withoutAi")
    QTimer.singleShot(0, button.click)
    assert dialog.exec() == FirstRunDialog.DialogCode.Accepted
    assert dialog.model_folder is None


def test_first_run_says_what_each_download_decoder_does(qtbot, tmp_path, monkeypatch) -> None:
    """The catalog's samexporter downloads lack SAM2's single-mask output; the dialog says so,
    and which rule replaces it, and marks files without a checksum."""
    monkeypatch.setenv("SAM2_ANNOTATOR_DATA_DIR", str(tmp_path))
    dialog = FirstRunDialog(None)
    qtbot.addWidget(dialog)
    details = dialog.findChild(QLabel, "choiceDetails")
    assert dialog.choices.currentData() == "sam2.1_hiera_tiny"  # the recommended one first
    assert dialog.choices.currentText().endswith("[multimask-only decoder]")
    assert "(~117 MB)" in dialog.choices.currentText()
    assert "lacks SAM2's single-mask output" in details.text()
    assert "highest predicted IoU" in details.text()
    assert "checked against the catalog's sha256" in details.text()
    large = dialog.choices.findData("sam2.1_hiera_large")
    dialog.choices.setCurrentIndex(large)
    assert dialog.choices.currentText().endswith("[multimask-only decoder, UNVERIFIED]")
    assert "sam2.1_hiera_large is UNVERIFIED: the catalog has no sha256" in details.text()
    assert dialog.choices.itemData(large, Qt.ItemDataRole.ToolTipRole) == details.text()


def test_first_run_accepts_only_a_model_folder(qtbot, tmp_path, model_dir, monkeypatch) -> None:
    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    dialog = FirstRunDialog(None)
    qtbot.addWidget(dialog)
    assert not dialog.use_folder(tmp_path)
    assert warnings and "encoder" in warnings[0]
    assert dialog.use_folder(model_dir)
    assert dialog.model_folder == model_dir


# --------------------------------------------------------------------------- workspace


def test_folder_is_annotated_in_its_annotations_json(tmp_path, shared_images) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("truck", "cars"):
        shutil.copy(shared_images[name], folder / f"{name}.jpg")
    workspace = Workspace.open(folder)
    assert [p.name for p in workspace.images] == ["cars.jpg", "truck.jpg"]
    assert workspace.store is None and not (folder / PROJECT_FILE_NAME).exists()
    image_id = workspace.image_id(workspace.images[1], 1800, 1200)
    category = workspace.category_for("truck")
    assert workspace.category_for("TRUCK") == category
    mask = np.zeros((1200, 1800), bool)
    mask[10:20, 10:30] = True
    workspace.store.add_annotation(image_id, category.id, mask)
    assert workspace.annotation_count(workspace.images[1]) == 1

    again = Workspace.open(folder)
    assert again.annotation_count(folder / "truck.jpg") == 1
    project = Workspace.open(folder / PROJECT_FILE_NAME)
    assert [p.name for p in project.images] == ["truck.jpg"]  # only the project's images
    single = Workspace.open(folder / "cars.jpg")
    assert single.images == [(folder / "cars.jpg").resolve()] and single.store is not None


def test_a_foreign_annotations_json_is_refused_not_overwritten(tmp_path, shared_images) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    shutil.copy(shared_images["cars"], folder / "cars.jpg")
    (folder / PROJECT_FILE_NAME).write_text(json.dumps({"hello": "world"}), encoding="utf-8")
    with pytest.raises(ProjectError):
        Workspace.open(folder)
    assert json.loads((folder / PROJECT_FILE_NAME).read_text(encoding="utf-8")) == {
        "hello": "world"
    }


@pytest.mark.parametrize("name", ["missing", "empty"])
def test_unusable_paths_are_user_errors(tmp_path, name) -> None:
    path = tmp_path / name
    if name == "empty":
        path.mkdir()
    with pytest.raises(UserError):
        Workspace.open(path)


# --------------------------------------------------------------------------- start-up


def test_command_line() -> None:
    args = app.build_parser().parse_args(
        ["photos", "--model", "m", "--providers", "cuda,cpu", "--threads", "2"]
    )
    assert (args.path, args.model, args.providers, args.threads) == (
        Path("photos"),
        Path("m"),
        "cuda,cpu",
        2,
    )
    config = app.session_config(args)
    assert config.providers == ("cuda", "cpu") and config.threads == 2
    assert app.session_config(app.build_parser().parse_args([])) is None
    with pytest.raises(UserError):
        app.session_config(app.build_parser().parse_args(["--providers", "quantum"]))


def test_logging_goes_to_the_log_folder_with_qt_messages(tmp_path, monkeypatch) -> None:
    from PySide6.QtCore import qInstallMessageHandler

    monkeypatch.setenv(app.LOG_DIR_ENV, str(tmp_path / "logs"))
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    try:
        path = app.setup_logging()
        previous = qInstallMessageHandler(app.qt_message_handler)
        try:
            qWarning("a message from Qt")
        finally:
            qInstallMessageHandler(previous)
        for handler in root.handlers:
            handler.flush()
        text = path.read_text(encoding="utf-8")
    finally:
        for handler in root.handlers[len(handlers) :]:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    assert path.parent == tmp_path / "logs"
    assert "WARNING" in text and "qt: a message from Qt" in text


def test_crash_reporter_logs_and_names_the_log_file(qtbot, tmp_path, monkeypatch, caplog) -> None:
    shown: list[tuple[str, str]] = []
    monkeypatch.setattr(
        QMessageBox, "exec", lambda box: shown.append((box.text(), box.informativeText())) or 0
    )
    reporter = app.CrashReporter(tmp_path / "x.log")
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        with caplog.at_level(logging.CRITICAL):
            reporter.excepthook(type(exc), exc, exc.__traceback__)
    assert len(shown) == 1
    assert "boom" in shown[0][0] and str(tmp_path / "x.log") in shown[0][1]
    assert "unhandled exception" in caplog.text and "boom" in caplog.text


def test_download_reports_progress_and_can_be_cancelled(qtbot, monkeypatch) -> None:
    import threading

    from sam2_annotator.app import model_setup
    from sam2_annotator.errors import OperationCancelled

    started = threading.Event()

    def fake_download(name, progress, cancel):
        progress(0.25, f"{name}: 25 of 100 MB")
        started.set()
        if not cancel.wait(10):
            raise AssertionError("never cancelled")
        raise OperationCancelled("download cancelled")

    monkeypatch.setattr(model_setup, "download", fake_download)
    dialog = FirstRunDialog(None)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.progress.value() == 250, timeout=5000)
    assert "25 of 100 MB" in dialog.progress_text.text()
    assert not dialog.download_button.isEnabled() and dialog.cancel_button.isEnabled()
    dialog.cancel_button.click()
    qtbot.waitUntil(lambda: dialog.download_button.isEnabled(), timeout=5000)
    assert "cancelled" in dialog.progress_text.text()
    assert dialog.model_folder is None and dialog.isVisible()


def test_a_finished_download_becomes_the_model(qtbot, monkeypatch, tmp_path) -> None:
    from sam2_annotator.app import model_setup

    monkeypatch.setattr(model_setup, "download", lambda name, progress, cancel: tmp_path)
    dialog = FirstRunDialog(None)
    qtbot.addWidget(dialog)
    dialog.show()
    with qtbot.waitSignal(dialog.accepted, timeout=5000):
        dialog.download_button.click()
    assert dialog.model_folder == tmp_path


def test_settings_dialog_edits_a_copy(qtbot, monkeypatch) -> None:
    from sam2_annotator.gui.dialogs import SettingsDialog

    original = AppSettings()
    dialog = SettingsDialog(None, original)
    qtbot.addWidget(dialog)
    dialog.prefetch.setValue(5)
    dialog.providers.setText("cpu")
    dialog.segmentation.setCurrentText("rle")
    result = dialog.result_settings()
    assert (result.prefetch, result.providers, result.export_segmentation) == (5, "cpu", "rle")
    assert original.prefetch == 2  # untouched until the window takes the result

    warnings: list[str] = []
    monkeypatch.setattr(QMessageBox, "warning", lambda *args: warnings.append(args[2]))
    dialog.providers.setText("warp-drive")
    dialog.show()
    dialog._check_and_accept()
    assert warnings and "warp-drive" in warnings[0]
    assert dialog.result() != SettingsDialog.DialogCode.Accepted


def test_main_opens_the_path_and_exits_cleanly(qapp, tmp_path, monkeypatch, shared_images) -> None:
    import signal
    import sys
    import threading

    from PySide6.QtCore import qInstallMessageHandler
    from PySide6.QtWidgets import QApplication

    from sam2_annotator.gui.main_window import MainWindow

    monkeypatch.setenv(app.LOG_DIR_ENV, str(tmp_path / "logs"))
    monkeypatch.setenv("SAM2_ANNOTATOR_DATA_DIR", str(tmp_path / "data"))  # no model installed
    monkeypatch.setattr(FirstRunDialog, "exec", lambda dialog: 0)  # "later"
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)
    monkeypatch.setattr(signal, "signal", lambda *args: None)
    photo = tmp_path / "cars.jpg"
    shutil.copy(shared_images["cars"], photo)
    seen: dict[str, object] = {}

    def close_when_shown() -> None:
        windows = [w for w in QApplication.topLevelWidgets() if isinstance(w, MainWindow)]
        if windows and windows[0].loaded is not None:
            seen["title"] = windows[0].windowTitle()
            windows[0].close()
        else:
            QTimer.singleShot(20, close_when_shown)

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    QTimer.singleShot(0, close_when_shown)
    try:
        code = app.main([str(photo)])
    finally:
        qInstallMessageHandler(None)
        for handler in root.handlers[len(handlers) :]:
            handler.close()
        root.handlers[:] = handlers
        root.setLevel(level)
    assert code == 0
    assert "cars.jpg (1/1)" in str(seen["title"])
    assert (tmp_path / "logs" / app.LOG_FILE_NAME).is_file()


def test_default_model_comes_from_the_locator(monkeypatch, model_dir, tmp_path) -> None:
    from sam2_annotator.app import model_setup
    from sam2_annotator.models import locate

    assert model_setup.first_installed_model() is None  # isolated: nothing bundled or installed
    monkeypatch.setenv(locate.MODEL_ENV, str(model_dir))
    assert model_setup.first_installed_model() == model_dir
    monkeypatch.setenv(locate.MODEL_ENV, str(tmp_path))  # not a model folder: ignored
    assert model_setup.first_installed_model() is None
