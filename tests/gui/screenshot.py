"""Take the README screenshot: the real window, one accepted annotation and a mask being edited.

Run under a real X server (not the offscreen platform), e.g.::

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python tests/gui/screenshot.py MODEL_DIR OUT.png

It copies the test photos to a temporary folder, clicks like a user, accepts a mask with a label
and saves ``QWidget.grab()`` of the window, reduced to a palette PNG to keep it small.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from PIL import Image
from PySide6.QtCore import QSettings, Qt, QTimer
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication

ROOT = Path(__file__).resolve().parents[2]
PHOTOS = ROOT.parent / "shared" / "data" / "images"
TIMEOUT_S = 120.0


def wait_until(app: QApplication, condition, timeout_s: float = TIMEOUT_S) -> None:
    import time

    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError("the window did not get there in time")
        app.processEvents()
        time.sleep(0.01)


def main(model_dir: Path, out: Path) -> int:
    work = Path(tempfile.mkdtemp(prefix="sam2-shot-"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "cfg"))
    photos = work / "photos"
    photos.mkdir()
    for name in ("cars", "groceries", "truck"):
        shutil.copy(PHOTOS / f"{name}.jpg", photos / f"{name}.jpg")

    app = QApplication([sys.argv[0]])
    from sam2_annotator.gui.main_window import MainWindow
    from sam2_annotator.gui.settings import AppSettings

    window = MainWindow(AppSettings(prefetch=1, disk_cache=False), model_dir=model_dir)
    window.resize(1280, 800)
    window.show()
    wait_until(app, lambda: window.model is not None)
    window.open_path(photos)
    wait_until(app, lambda: window.loaded is not None and window.current_encoded)

    def click(x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
        QTest.mouseClick(window.canvas.viewport(), button, Qt.KeyboardModifier.NoModifier,
                         window.canvas.view_pos(x, y))  # fmt: skip
        wait_until(app, lambda: not window.awaiting_result)

    def show_candidate(index: int) -> None:  # Tab until the decoder's candidate ``index``
        for _ in range(4):
            if window.session.prediction.candidate == index:
                return
            window.cycle_candidate()
            wait_until(app, lambda: not window.awaiting_result)

    # One accepted annotation ("car"); random weights give large speckled masks, so take the
    # candidate that covers least of the photo ...
    click(300, 775)
    click(890, 1185, Qt.MouseButton.RightButton)
    show_candidate(3)
    window.accept_mask()  # Enter; the tests drive the keys, a bare X server has no focus manager
    wait_until(app, lambda: window.label_dialog is not None)
    QTest.keyClicks(window.label_dialog.edit, "car")
    QTest.keyClick(window.label_dialog.edit, Qt.Key.Key_Return)
    wait_until(app, lambda: len(window.annotation_list.ids()) == 1)
    # ... and an object being drawn: a box and a positive point.
    viewport = window.canvas.viewport()
    start, end = window.canvas.view_pos(1150, 350), window.canvas.view_pos(2200, 1300)
    QTest.mousePress(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, start)
    QTest.mouseMove(viewport, (start + end) / 2)
    QTest.mouseMove(viewport, end)
    QTest.mouseRelease(viewport, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier, end)
    wait_until(app, lambda: not window.awaiting_result)
    click(1600, 800)
    show_candidate(3)
    QTimer.singleShot(300, app.quit)
    app.exec()

    shot = work / "shot.png"
    window.grab().save(str(shot))
    # A 256-colour palette (octree keeps small saturated areas such as the point markers).
    image = Image.open(shot).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"saved {out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
