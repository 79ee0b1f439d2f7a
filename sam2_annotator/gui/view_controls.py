"""View commands of the window (Qt only): the opacity slider, showing accepted annotations, zoom."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSlider, QToolBar

if TYPE_CHECKING:
    from sam2_annotator.gui.main_window import MainWindow


class ViewControls:
    def __init__(self, window: MainWindow, toolbar: QToolBar) -> None:
        self.window = window
        self.opacity_slider = QSlider(Qt.Orientation.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(round(window.settings.annotation_opacity * 100))
        self.opacity_slider.setFixedWidth(110)
        self.opacity_slider.setToolTip("Opacity of accepted annotations")
        self.opacity_slider.valueChanged.connect(self._on_opacity)
        toolbar.addWidget(QLabel(" opacity "))
        toolbar.addWidget(self.opacity_slider)

    def _on_opacity(self, value: int) -> None:
        self.window.settings.annotation_opacity = value / 100.0
        self.window.canvas.annotation_layer.set_opacity(value / 100.0)

    def toggle_annotations(self) -> None:
        """H: show or hide every accepted annotation."""
        checked = self.window.actions_by_name["show_annotations"].isChecked()
        self.window.canvas.annotation_layer.set_all_visible(checked)

    def zoom_by(self, factor: float) -> None:
        canvas = self.window.canvas
        canvas.zoom_to(canvas.zoom * factor)
