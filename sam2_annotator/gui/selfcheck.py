"""The Qt half of ``--self-test``: Qt starts offscreen, its plugins and our icons load."""

from __future__ import annotations

import importlib


def offscreen_check() -> str:
    """Start Qt offscreen, render the app icon and import the GUI modules; describe the result."""
    from PySide6 import __version__ as pyside_version
    from PySide6.QtCore import Qt
    from PySide6.QtGui import QImage, QPainter
    from PySide6.QtSvg import QSvgRenderer
    from PySide6.QtWidgets import QApplication

    from sam2_annotator.errors import UserError
    from sam2_annotator.resources import APP_ICON_SVG, resource_path

    app = QApplication.instance() or QApplication(["sam2-annotator", "-platform", "offscreen"])
    renderer = QSvgRenderer(str(resource_path(APP_ICON_SVG)))
    if not renderer.isValid():
        raise UserError("Qt could not load the app icon (SVG support missing from the bundle?)")
    image = QImage(64, 64, QImage.Format.Format_ARGB32)
    image.fill(Qt.GlobalColor.transparent)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    if image.pixelColor(32, 32).alpha() == 0:
        raise UserError("Qt rendered an empty icon")
    for module in ("sam2_annotator.gui.app", "sam2_annotator.gui.main_window"):
        try:
            importlib.import_module(module)
        except ImportError as exc:
            raise UserError(f"GUI module {module} cannot be imported: {exc}") from exc
    return f"Qt {pyside_version} ({app.platformName()}) OK"
