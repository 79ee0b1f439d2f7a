"""Benchmarks (not timed tests) of painting on an 8000x6000 image: what one mouse move costs
while a stroke is drawn, and what the stroke costs on release (rasterised into the draft on the
GUI thread; the overlay is built on a job thread).

Run ``pytest tests/gui/test_paint_benchmark.py --benchmark-enable``; under the default
``--benchmark-disable`` each case runs once and checks that it did its work.
"""

from __future__ import annotations

import itertools

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from sam2_annotator.app.controller import PromptController
from sam2_annotator.app.tools import Stroke
from sam2_annotator.gui.canvas import Canvas
from sam2_annotator.gui.overlay import make_overlay
from sam2_annotator.gui.tool_layer import ToolLayer

SHAPE = (6000, 8000)
STROKE = tuple((1000.0 + 10 * i, 1000.0 + 5 * i) for i in range(300))


def test_mouse_move_while_painting(benchmark, qtbot) -> None:
    canvas = Canvas()
    qtbot.addWidget(canvas)
    canvas.resize(1200, 800)
    image = QImage(SHAPE[1], SHAPE[0], QImage.Format.Format_Grayscale8)  # 8000x6000, 48 MB
    image.fill(0x40)
    canvas.set_image([image])
    canvas.show()
    layer = ToolLayer(canvas)
    layer.set_tool("brush", 20)
    layer._stroke = list(STROKE)  # a long stroke in progress
    positions = itertools.cycle([QPointF(4000 + i, 2500 + i) for i in range(50)])

    def move() -> None:
        layer.move(next(positions), None)
        QApplication.processEvents()

    benchmark(move)
    assert len(layer._stroke) > len(STROKE)


def test_stroke_release_on_a_big_image(benchmark) -> None:
    ids = itertools.count(1)
    controller = PromptController(lambda: next(ids))
    controller.set_image("big.jpg", SHAPE)
    stroke = Stroke(STROKE, 20)
    draft = benchmark(controller.stroke, stroke, None)
    assert draft.mask.shape == SHAPE and draft.mask[1000, 1000] and not draft.mask[0, 0]


def test_draft_overlay_on_a_big_image(benchmark) -> None:
    """Built on a job thread after each stroke (the GUI keeps drawing the vector path)."""
    mask = np.zeros(SHAPE, bool)
    mask[1000:2500, 1000:4000] = True
    overlay = benchmark(make_overlay, mask)
    assert overlay.crop.shape == (1500, 3000)
