"""Take the README screenshot of the sequence window: two objects clicked and tracked.

Run under a real X server (not the offscreen platform), e.g.::

    xvfb-run -s "-screen 0 1400x900x24" .venv/bin/python tests/gui/sequence_screenshot.py \
        VIDEO_MODEL_DIR OUT.png

It copies bigbuckbunny.mp4 to a temporary folder (the project file is written beside it), clicks
two objects on frame 0 like a user, propagates over a few frames, scrubs to the last one and
saves ``QWidget.grab()`` of the window as a palette PNG.
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

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from tests.gui.screenshot import wait_until

VIDEO = Path(__file__).resolve().parents[3] / "shared" / "data" / "videos" / "bigbuckbunny.mp4"
FRAMES = 4


def main(model_dir: Path, out: Path) -> int:
    work = Path(tempfile.mkdtemp(prefix="sam2-seqshot-"))
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, str(work / "cfg"))
    video = work / "bigbuckbunny.mp4"
    shutil.copy(VIDEO, video)

    app = QApplication([sys.argv[0]])
    from sam2_annotator.gui.sequence_window import SequenceWindow
    from sam2_annotator.gui.settings import AppSettings

    window = SequenceWindow(video, model_dir, AppSettings(disk_cache=False))
    window.resize(1280, 800)
    window.show()
    wait_until(app, lambda: window.shown is not None and window.tracking_ready)

    def click(x: float, y: float, button=Qt.MouseButton.LeftButton) -> None:
        QTest.mouseClick(window.canvas.viewport(), button, Qt.KeyboardModifier.NoModifier,
                         window.canvas.view_pos(x, y))  # fmt: skip
        wait_until(app, lambda: window.session.awaiting_clicks == 0)

    window.objects.label_edit.setText("bunny")
    click(640, 420)
    window.new_object("bird")
    click(1000, 200)
    window.propagate(False, max_frames=FRAMES - 1)
    wait_until(app, lambda: not window.session.propagating, timeout_s=600)
    window.go_to(FRAMES - 1)
    window.choose(1)
    wait_until(app, lambda: window.shown is not None and window.shown.frame == FRAMES - 1)
    QTimer.singleShot(300, app.quit)
    app.exec()

    shot = work / "shot.png"
    window.grab().save(str(shot))
    image = Image.open(shot).convert("RGB")
    image.quantize(colors=256, method=Image.Quantize.FASTOCTREE).save(out, optimize=True)
    window.close()
    shutil.rmtree(work, ignore_errors=True)
    print(f"saved {out} ({out.stat().st_size // 1024} KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]), Path(sys.argv[2])))
