"""Widgets of the sequence window (Qt only): the timeline, the object list and the track badges.

They display :class:`~sam2_annotator.app.sequence.SequenceModel` state and report what the user
did through signals; the window forwards that to the session and the worker.
"""

from __future__ import annotations

from collections.abc import Iterable

from PySide6.QtCore import QPointF, QRectF, Qt, Signal
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPaintEvent
from PySide6.QtWidgets import (
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSlider,
    QStyle,
    QStyleOptionGraphicsItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from sam2_annotator.app.sequence import SequenceModel, TrackObject
from sam2_annotator.gui.annotation_list import swatch
from sam2_annotator.gui.canvas_items import Z_POINTS

PROMPT_MARK = QColor(255, 200, 0)
TRACKED_MARK = QColor(60, 170, 90)
ABSENT_MARK = QColor(120, 120, 120)


class FrameStrip(QWidget):
    """Under the slider: which frames the active object is tracked on (green), absent on (grey)
    and clicked on (yellow ticks), like a CVAT track's key frames."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setFixedHeight(8)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed)
        self.num_frames = 1
        self.present: frozenset[int] = frozenset()
        self.absent: frozenset[int] = frozenset()
        self.prompted: frozenset[int] = frozenset()

    def set_marks(
        self,
        num_frames: int,
        present: Iterable[int],
        absent: Iterable[int],
        prompted: Iterable[int],
    ) -> None:
        self.num_frames = max(1, num_frames)
        self.present, self.absent = frozenset(present), frozenset(absent)
        self.prompted = frozenset(prompted)
        self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        width = self.width() / self.num_frames
        for frames, colour, height in (
            (self.present, TRACKED_MARK, 4.0),
            (self.absent, ABSENT_MARK, 4.0),
            (self.prompted, PROMPT_MARK, 8.0),
        ):
            for frame in frames:
                rect = QRectF(frame * width, 8.0 - height, max(width, 1.5), height)
                painter.fillRect(rect, colour)
        painter.end()


class Timeline(QWidget):
    """Play/pause, the frame slider with its strip, and "frame 12 / 132"."""

    frame_changed = Signal(int)
    play_toggled = Signal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.play_button = QToolButton()
        self.play_button.setObjectName("playButton")
        self.play_button.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.play_button.clicked.connect(self.play_toggled)
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName("frameSlider")
        self.slider.setFocusPolicy(Qt.FocusPolicy.NoFocus)  # arrows are the window's shortcuts
        self.slider.valueChanged.connect(self.frame_changed)
        self.strip = FrameStrip()
        self.label = QLabel("frame - / -")
        self.label.setObjectName("frameLabel")
        self.label.setToolTip("frame index (from 0, as in exported file names) / frame count")
        self.label.setMinimumWidth(130)
        column = QVBoxLayout()
        column.setContentsMargins(0, 0, 0, 0)
        column.setSpacing(1)
        column.addWidget(self.slider)
        column.addWidget(self.strip)
        row = QHBoxLayout(self)
        row.setContentsMargins(8, 4, 8, 4)
        row.addWidget(self.play_button)
        row.addLayout(column, 1)
        row.addWidget(self.label)
        self.set_playing(False)
        self.set_range(1)

    def set_range(self, num_frames: int) -> None:
        self.slider.blockSignals(True)
        self.slider.setRange(0, max(0, num_frames - 1))
        self.slider.setPageStep(max(1, num_frames // 20))
        self.slider.blockSignals(False)
        self.strip.num_frames = max(1, num_frames)

    def set_frame(self, frame: int, num_frames: int) -> None:
        if self.slider.value() != frame:
            self.slider.blockSignals(True)
            self.slider.setValue(frame)
            self.slider.blockSignals(False)
        self.label.setText(f"frame {frame} / {num_frames}")

    def set_playing(self, playing: bool) -> None:
        icon = (
            QStyle.StandardPixmap.SP_MediaPause if playing else QStyle.StandardPixmap.SP_MediaPlay
        )
        self.play_button.setIcon(self.style().standardIcon(icon))
        self.play_button.setToolTip("Pause (K)" if playing else "Play (K)")


class ObjectsPanel(QWidget):
    """The tracked objects: colour, track id, label and on how many frames each is present.

    Clicks go to the selected object; "New object" (N) starts the next track id with the label
    typed above the list.
    """

    chosen = Signal(int)
    new_requested = Signal(str)
    delete_requested = Signal(int)
    relabel_requested = Signal(int, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.label_edit = QLineEdit()
        self.label_edit.setObjectName("trackLabel")
        self.label_edit.setPlaceholderText("label of the selected / next object")
        self.label_edit.returnPressed.connect(self._relabel)
        self.list = QListWidget()
        self.list.setObjectName("trackList")
        self.list.currentItemChanged.connect(self._current_changed)
        self.new_button = QPushButton("New object (N)")
        self.new_button.clicked.connect(lambda: self.new_requested.emit(self.label_edit.text()))
        self.delete_button = QPushButton("Delete")
        self.delete_button.setToolTip("Delete the selected object on every frame")
        self.delete_button.clicked.connect(self._delete)
        buttons = QHBoxLayout()
        buttons.addWidget(self.new_button)
        buttons.addWidget(self.delete_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Label (Enter renames the selected object):"))
        layout.addWidget(self.label_edit)
        layout.addWidget(self.list, 1)
        layout.addLayout(buttons)
        self._updating = False
        self._active: int | None = None

    def refresh(self, model: SequenceModel, active: int | None) -> None:
        """Show ``model``'s objects. Rebuilt only when the objects changed (during propagation
        only the counts change: the texts are updated in place, the selection stays)."""
        self._updating = True
        try:
            ids = sorted(model.objects)
            if ids != self.ids():
                self.list.clear()
                for track_id in ids:
                    item = QListWidgetItem()
                    item.setData(Qt.ItemDataRole.UserRole, track_id)
                    self.list.addItem(item)
            for row, track_id in enumerate(ids):
                obj, item = model.objects[track_id], self.list.item(row)
                item.setIcon(swatch(obj.color))
                item.setText(self.text(obj, model))
                if track_id == active and self.list.currentItem() is not item:
                    self.list.setCurrentItem(item)
            if active != self._active and active in model.objects:
                self.label_edit.setText(model.objects[active].label)  # not while typing
            self._active = active
            self.delete_button.setEnabled(active is not None)
        finally:
            self._updating = False

    @staticmethod
    def text(obj: TrackObject, model: SequenceModel) -> str:
        frames = model.frames_with(obj.track_id)
        clicked = len(model.prompted_frames(obj.track_id))
        return f"#{obj.track_id} {obj.label} — {frames} frames, {clicked} clicked"

    def ids(self) -> list[int]:
        return [self.list.item(i).data(Qt.ItemDataRole.UserRole) for i in range(self.list.count())]

    def _current(self) -> int | None:
        item = self.list.currentItem()
        return None if item is None else int(item.data(Qt.ItemDataRole.UserRole))

    def _current_changed(self, *_: object) -> None:
        track_id = self._current()
        if not self._updating and track_id is not None:
            self.chosen.emit(track_id)

    def _relabel(self) -> None:
        track_id = self._current()
        if track_id is not None and self.label_edit.text().strip():
            self.relabel_requested.emit(track_id, self.label_edit.text().strip())

    def _delete(self) -> None:
        track_id = self._current()
        if track_id is not None:
            self.delete_requested.emit(track_id)


class TrackBadge(QGraphicsItem):
    """A badge "#3 rabbit" in the object's colour at the top left of its mask (fixed size)."""

    def __init__(
        self, x: float, y: float, text: str, color: tuple[int, int, int], row: int = 0
    ) -> None:
        super().__init__()
        self.setPos(QPointF(x, y))
        self.setZValue(Z_POINTS)
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemIgnoresTransformations, True)
        self.text = text
        self._color = QColor(*color)
        self._font = QFont()
        self._font.setPointSizeF(9.0)
        self._font.setBold(True)
        metrics = QFontMetricsF(self._font)
        height = metrics.height() + 4
        # ``row`` stacks badges whose masks start at the same corner (screen pixels: the item
        # ignores the view's scale)
        self._rect = QRectF(0, height * (row - 1), metrics.horizontalAdvance(text) + 8, height)

    def boundingRect(self) -> QRectF:
        return self._rect

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem, widget=None) -> None:
        painter.fillRect(self._rect, self._color.darker(160))
        painter.setFont(self._font)
        painter.setPen(QColor(255, 255, 255))
        painter.drawText(self._rect, Qt.AlignmentFlag.AlignCenter, self.text)
