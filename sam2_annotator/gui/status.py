"""The status bar's permanent read-outs (Qt only): model, provider, last decode, encoder state,
image counts, tool and cursor. The window tells it what happened; it only formats."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QStatusBar

from sam2_annotator.app.image_states import Summary
from sam2_annotator.app.prompt import candidate_cycle

RANDOM_INIT_STYLE = "color: #c0392b; font-weight: bold;"


class StatusPanel:
    """Labels added to ``bar``: on the left the image counts, brush size and cursor (normal
    widgets: a transient message covers them for a few seconds), on the right the permanent
    encoder, decode, provider and model read-outs."""

    def __init__(self, bar: QStatusBar) -> None:
        self.bar = bar
        self.model = QLabel("no model")
        self.provider = QLabel("")
        self.decode = QLabel("decode: -")
        self.encoder = QLabel("encoder: idle")
        self.counts = QLabel("")
        self.tool = QLabel("")
        self.cursor = QLabel("")
        self.encoder_current = ""
        self.encoder_background = ""
        for label in (self.counts, self.tool, self.cursor):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addWidget(label)
        for label in (self.encoder, self.decode, self.provider, self.model):
            label.setContentsMargins(6, 0, 6, 0)
            bar.addPermanentWidget(label)

    def message(self, text: str, ms: int) -> None:
        self.bar.showMessage(text, ms)

    def show_model(self, info, loading: bool) -> None:
        """``info``: the worker's ModelInfo or ``None``."""
        if info is not None:
            self.model.setText(info.display_name)
            self.model.setToolTip(str(info.folder))
            self.provider.setText(f"provider: {info.provider}")
            self.model.setStyleSheet(RANDOM_INIT_STYLE if info.random_init else "")
        elif loading:
            self.model.setText("loading model…")
        else:
            self.model.setText("no model (polygon and brush still work)")
            self.provider.setText("")
            self.encoder.setText("encoder: off")

    def show_encoder(self, ai_ready: bool, model_loading: bool) -> None:
        if not ai_ready:
            self.encoder.setText("encoder: off" if not model_loading else "")
            return
        parts = [p for p in (self.encoder_current, self.encoder_background) if p]
        self.encoder.setText("encoder: " + (" · ".join(parts) or "idle"))

    def show_decode(self, decoder_ms: float, latency_ms: float) -> None:
        self.decode.setText(f"decode: {decoder_ms:.0f} ms (click→mask {latency_ms:.0f} ms)")

    def show_counts(self, summary: Summary) -> None:
        self.counts.setText(summary.text() if summary.images else "")

    def show_tool(self, tool: str, radius: int) -> None:
        """The brush/eraser size (the toolbar shows which tool is active)."""
        sizes = {"brush": f"brush {radius} px", "eraser": f"eraser {radius} px"}
        self.tool.setText(sizes.get(tool, ""))

    def show_cursor(self, position: tuple[int, int] | None) -> None:
        self.cursor.setText("" if position is None else f"x {position[0]}  y {position[1]}")


def candidate_text(prediction) -> str | None:
    if prediction is None:
        return None
    cycle = candidate_cycle(prediction)
    if prediction.candidate not in cycle:
        return None
    position = cycle.index(prediction.candidate) + 1
    scores = "  ".join(
        f"{'▸' if i == prediction.candidate else ''}{prediction.scores[i]:.2f}" for i in cycle
    )
    return f"mask {position}/{len(cycle)} (Tab)   scores {scores}"
