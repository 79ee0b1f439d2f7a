"""The first-run dialog's model files: install from a file, folders with several pairs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog, QMessageBox, QPushButton

from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.predictor import Sam2Engine
from sam2_annotator.gui import dialogs
from sam2_annotator.gui.dialogs import FirstRunDialog
from sam2_annotator.models.catalog import models_root
from tests.engine import onnx_graphs as g
from tests.models.conftest import decoder_bytes, encoder_bytes, zip_bytes

MODEL = "sam2_hiera_tiny"


def _write(path: Path, model) -> None:
    path.write_bytes(model.SerializeToString())


@pytest.fixture
def ort_export(tmp_path: Path) -> Path:
    """A folder as ONNX Runtime's SAM2 exporter writes it (``convert_to_onnx.py --demo``, plus
    ``--components prompt_encoder mask_decoder``): ``<model>_image_encoder.onnx``, the single-mask
    ``<model>_image_decoder.onnx``, the multimask ``<model>_image_decoder_multi.onnx`` and the two
    part graphs."""
    folder = tmp_path / "sam2_onnx_models"
    folder.mkdir()
    _write(folder / f"{MODEL}_image_encoder.onnx", g.encoder_model(g.ORT_ENCODER))
    _write(folder / f"{MODEL}_image_decoder.onnx", g.decoder_model(g.ORT_DECODER_SINGLE))
    _write(folder / f"{MODEL}_image_decoder_multi.onnx", g.decoder_model(g.ORT_DECODER_MULTI))
    inputs, outputs = g.decoder_io(g.ORT_DECODER_MULTI)
    _write(folder / f"{MODEL}_prompt_encoder.onnx", g.stub_model(inputs[3:5], outputs[1:2]))
    _write(folder / f"{MODEL}_mask_decoder.onnx", g.stub_model(inputs[:3], outputs[1:2]))
    return folder


@pytest.fixture
def dialog(qtbot, monkeypatch) -> FirstRunDialog:
    notes: list[str] = []
    monkeypatch.setattr(QMessageBox, "information", lambda *args: notes.append(args[2]))
    box = FirstRunDialog(None)
    box.notes = notes  # type: ignore[attr-defined]
    qtbot.addWidget(box)
    box.show()
    return box


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _choose(monkeypatch, index: int | None, seen: list[list[str]]) -> None:
    def choose(parent, folder, labels):
        seen.append(labels)
        return index

    monkeypatch.setattr(dialogs, "choose_pair", choose)


def test_ort_export_folder_asks_which_pair_and_loads(
    qtbot, dialog, monkeypatch, ort_export
) -> None:
    before = _snapshot(ort_export)
    seen: list[list[str]] = []
    _choose(monkeypatch, 1, seen)
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *a, **k: str(ort_export))
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.folder_button.click()
    assert seen == [
        [
            f"{MODEL}_image_encoder.onnx + {MODEL}_image_decoder.onnx",
            f"{MODEL}_image_encoder.onnx + {MODEL}_image_decoder_multi.onnx",
        ]
    ]  # the prompt_encoder / mask_decoder parts are never offered
    folder = dialog.model_folder
    assert folder is not None and folder.parent == models_root()
    assert folder.name == f"{MODEL}-multi"
    files = ModelFiles.from_folder(folder)
    assert files.decoder.name == f"{MODEL}_image_decoder_multi.onnx"
    engine = Sam2Engine(files)  # the folder loads, with ONNX Runtime's contract
    assert engine.contract.name == "onnxruntime-sam2"
    assert dialog.notes and "UNVERIFIED" in dialog.notes[0]  # not a catalog file: said so
    assert _snapshot(ort_export) == before  # the source folder is untouched


def test_cancelling_the_pair_choice_keeps_the_dialog_open(
    qtbot, dialog, monkeypatch, ort_export
) -> None:
    _choose(monkeypatch, None, [])
    assert not dialog.use_folder(ort_export)
    assert dialog.isVisible() and dialog.model_folder is None
    assert not models_root().exists() or list(models_root().iterdir()) == []


def test_install_from_a_zip_file_runs_on_a_job(qtbot, dialog, monkeypatch, tmp_path) -> None:
    archive = tmp_path / "usb" / "my_model.zip"
    archive.parent.mkdir()
    archive.write_bytes(
        zip_bytes({"m.encoder.onnx": encoder_bytes(), "m.decoder.onnx": decoder_bytes()})
    )
    digest = hashlib.sha256(archive.read_bytes()).hexdigest()
    filters: list[str] = []

    def pick(parent, caption, folder, file_filter):
        filters.append(file_filter)
        return [str(archive)], file_filter

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", pick)
    button = dialog.findChild(QPushButton, "installFromFile")
    assert button.text() == "Install from a file…"
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        button.click()
        assert not button.isEnabled()  # busy while the job runs
    assert "*.zip" in filters[0] and "*.onnx" in filters[0]
    assert dialog.model_folder == models_root() / "my_model"
    assert ModelFiles.from_folder(dialog.model_folder).encoder.name == "m.encoder.onnx"
    assert hashlib.sha256(archive.read_bytes()).hexdigest() == digest


def test_an_explicit_encoder_and_decoder_pair(qtbot, dialog, monkeypatch, ort_export) -> None:
    encoder = ort_export / f"{MODEL}_image_encoder.onnx"
    decoder = ort_export / f"{MODEL}_image_decoder.onnx"
    monkeypatch.setattr(
        QFileDialog, "getOpenFileNames", lambda *a, **k: ([str(decoder), str(encoder)], "")
    )
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        dialog.install_button.click()
    files = ModelFiles.from_folder(dialog.model_folder)
    assert (files.encoder.name, files.decoder.name) == (encoder.name, decoder.name)
    assert dialog.model_folder.name == MODEL


def test_one_onnx_file_with_several_partners_asks(qtbot, dialog, monkeypatch, ort_export) -> None:
    seen: list[list[str]] = []
    _choose(monkeypatch, 0, seen)
    with qtbot.waitSignal(dialog.accepted, timeout=10_000):
        assert dialog.install_files([ort_export / f"{MODEL}_image_encoder.onnx"])
    assert len(seen[0]) == 2
    assert ModelFiles.from_folder(dialog.model_folder).decoder.name == f"{MODEL}_image_decoder.onnx"


def test_a_corrupted_file_is_reported_in_the_dialog(qtbot, dialog, tmp_path) -> None:
    broken = tmp_path / "x.encoder.onnx"
    broken.write_bytes(b"\x08" + b"\xff" * 64)  # an ONNX first byte, then garbage
    partner = tmp_path / "x.decoder.onnx"
    partner.write_bytes(decoder_bytes())
    assert dialog.install_files([broken])
    qtbot.waitUntil(lambda: dialog.install_button.isEnabled(), timeout=10_000)
    text = dialog.install_status.text()
    assert text.startswith("not installed: ") and "is not a usable model" in text
    assert str(broken) in text
    assert dialog.isVisible() and dialog.model_folder is None
    assert list(models_root().iterdir()) == []  # no staging folder left either


def test_a_missing_file_is_reported(qtbot, dialog, tmp_path) -> None:
    assert dialog.install_files([tmp_path / "gone.zip"])
    qtbot.waitUntil(lambda: dialog.install_button.isEnabled(), timeout=10_000)
    assert "no such file or folder" in dialog.install_status.text()


def test_offline_download_tells_how_to_install_from_a_file(qtbot, dialog, monkeypatch) -> None:
    import socket

    def no_dns(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    dialog.download_button.click()
    qtbot.waitUntil(lambda: dialog.download_button.isEnabled(), timeout=10_000)
    text = dialog.progress_text.text()
    assert "no internet connection ([Errno -2] Name or service not known)" in text
    assert "sam2-annotator models import" in text and "“Install from a file…”" in text
    assert dialog.isVisible() and dialog.model_folder is None
