"""GUI test setup: offscreen Qt, isolated settings and embedding cache per test."""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import shutil
from pathlib import Path

import numpy as np
import pytest
from PySide6.QtCore import QSettings

from sam2_annotator.annotations import ProjectStore
from sam2_annotator.app.workspace import PROJECT_FILE_NAME


@pytest.fixture(autouse=True)
def isolated_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own settings file and embeddings folder."""
    folder = tmp_path / "settings"
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(folder))
    monkeypatch.setenv("SAM2_ANNOTATOR_CACHE_DIR", str(tmp_path / "embeddings"))
    # No model is found unless a test names one: no bundled, installed or $-named model.
    from sam2_annotator.models import locate

    monkeypatch.delenv(locate.MODEL_ENV, raising=False)
    monkeypatch.setattr(locate, "app_dir", lambda: tmp_path / "app")
    monkeypatch.setenv("SAM2_ANNOTATOR_DATA_DIR", str(tmp_path / "data"))
    return folder


@pytest.fixture
def project_dir(image_dir: Path) -> Path:
    """The three photos and a project with two annotations on cars.jpg."""
    store = ProjectStore.create(image_dir / PROJECT_FILE_NAME)
    image = store.add_image(image_dir / "cars.jpg", width=2250, height=1500)
    car = store.add_category("car")
    for box in ((100, 200, 400, 600), (900, 300, 1300, 900)):
        mask = np.zeros((1500, 2250), bool)
        mask[box[1] : box[3], box[0] : box[2]] = True
        store.add_annotation(image.id, car.id, mask, score=0.9)
    return image_dir


@pytest.fixture
def image_dir(tmp_path: Path, shared_images: dict[str, Path]) -> Path:
    """A writable folder with copies of the three test photos (truck, groceries, cars)."""
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("truck", "groceries", "cars"):
        shutil.copy(shared_images[name], folder / f"{name}.jpg")
    return folder


class ReferenceEmbeddings:
    """The engine's own embeddings of the test photos, computed once per session (a fresh
    float32 encode, never the disk cache), to compare the GUI's masks against."""

    def __init__(self, engine) -> None:
        self.engine = engine
        self._embeddings: dict[str, object] = {}

    def get(self, path: Path):
        from sam2_annotator.engine.image_io import load_image

        key = Path(path).name
        if key not in self._embeddings:
            self._embeddings[key] = self.engine.encode(load_image(path))
        return self._embeddings[key]

    def mask(self, path: Path, prompt, **kwargs):
        return self.engine.decode(self.get(path), prompt, **kwargs).mask


@pytest.fixture(scope="session")
def reference(engine) -> ReferenceEmbeddings:
    return ReferenceEmbeddings(engine)


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the stall and latency figures the end-to-end tests measured."""
    import sys

    for name in ("tests.gui.test_main_window", "tests.gui.test_sequence_window"):
        figures = getattr(sys.modules.get(name), "FIGURES", None)
        for figure, value in (figures or {}).items():
            terminalreporter.write_line(f"gui: {figure}: {value:.1f}")
