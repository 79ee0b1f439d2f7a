"""A scripted session of the real window, for ``bench --gui``: start-up, prefetch, memory.

``python -m sam2_annotator.gui.probe --model DIR --images DIR --out FILE [--t0 UNIX_TIME]``
starts the app's own :class:`MainWindow` (own settings and embedding cache in temporary folders
unless ``--cache-dir`` names one), and records, as seconds since ``--t0`` (the launcher's clock
just before it started this process; else this module's import):

* ``window_shown``: the window is visible and the event loop runs (model loading is still in
  the background); ``model_loaded``; ``first_image_shown``;
* with ``--prefetch N``: when the current image and the next N are encoded, the process's RSS
  (and the peak so far) with N + 1 embeddings in the memory cache;
* decode latency (click to mask on screen) on the current image, several clicks;
* the *next image*'s first mask: from pressing "next" to its mask on screen (it was prefetched);
* ``first_mask_after_open``: from opening the folder to the first mask on the first image (the
  figure for a reopened folder whose embeddings are on disk).

Everything runs on the real worker thread and signals; nothing is simulated except the clicks
(the canvas's own ``point_clicked`` signal, at the image centre).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

_IMPORTED = time.time()

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

#: Clicks on the first image whose click-to-mask latency is measured.
DECODE_CLICKS = 5
#: Give up (and write what was measured) after this long.
TIMEOUT_S = 600.0


def rss_mb() -> dict[str, float]:
    """Current and peak resident set size (Linux ``/proc``; empty elsewhere)."""
    values: dict[str, float] = {}
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                key, _, rest = line.partition(":")
                if key in ("VmRSS", "VmHWM"):
                    values[key] = int(rest.split()[0]) / 1024.0
    except OSError:
        pass
    return {"rss_mb": values.get("VmRSS", 0.0), "peak_rss_mb": values.get("VmHWM", 0.0)}


class Probe:
    """Drives the window through the scenario, one step per signal."""

    def __init__(self, window, images: list[Path], t0: float, prefetch: int) -> None:
        self.window = window
        self.images = images
        self.t0 = t0
        self.prefetch = prefetch
        self.result: dict = {"events": {}, "memory": {}, "decode_ms": [], "decoder_run_ms": []}
        self._click_at: float | None = None
        self._on_mask: Callable[[], None] | None = None
        self._opened_at = 0.0
        self._pressed: float | None = None
        self._last_ms = self._last_decoder_ms = 0.0
        window.worker.model_loaded.connect(self._model_loaded)
        window.image_shown.connect(self._image_shown)
        window.mask_shown.connect(self._mask_shown)
        window.worker.failed.connect(self._failed)
        window.worker.encode_event.connect(self._encoded)

    def mark(self, name: str) -> None:
        self.result["events"][name] = round(time.time() - self.t0, 4)

    def shown(self) -> None:
        if self.window.isVisible():
            self.mark("window_shown")
            self.result["memory"]["at_window_shown"] = rss_mb()

    def _encoded(self, event) -> None:
        if event.state == "ready" and event.ms is not None:
            self.result.setdefault("encode_ms", []).append(round(event.ms, 1))

    def _failed(self, error) -> None:
        self.result.setdefault("errors", []).append(str(getattr(error, "message", error)))

    def _model_loaded(self, *_args) -> None:
        if "model_loaded" in self.result["events"]:
            return
        self.mark("model_loaded")
        self.result["memory"]["at_model_loaded"] = rss_mb()
        self._opened_at = time.perf_counter()
        self.mark("open_folder")
        self.window.open_path(self.images[0].parent)

    def _image_shown(self, path: str) -> None:
        if self._pressed is not None and "next_image_shown_ms" not in self.result:
            self.result["next_image_shown_ms"] = round(
                (time.perf_counter() - self._pressed) * 1e3, 1
            )
        if "first_image_shown" not in self.result["events"]:
            self.mark("first_image_shown")
            self._click(self._first_mask)

    def _click(self, then: Callable[[], None]) -> None:
        self._on_mask = then
        self._click_at = time.perf_counter()
        loaded = self.window.loaded
        if loaded is None:  # the next image is not decoded yet: try again on image_shown
            QTimer.singleShot(5, lambda: self._click(then))
            return
        self.window.canvas.point_clicked.emit(loaded.width / 2.0, loaded.height / 2.0, True)

    def _mask_shown(self, result) -> None:
        if self._click_at is None or self._on_mask is None:
            return
        elapsed = (time.perf_counter() - self._click_at) * 1000.0
        self._click_at = None
        then, self._on_mask = self._on_mask, None
        self._last_ms = elapsed
        self._last_decoder_ms = float(result.prediction.decoder_ms)
        then()

    def _first_mask(self) -> None:
        self.result["first_mask_after_open_ms"] = round(
            (time.perf_counter() - self._opened_at) * 1000.0, 1
        )
        self.result["first_mask_click_ms"] = round(self._last_ms, 1)
        self._wait_prefetched()

    def _wait_prefetched(self) -> None:
        upcoming = [str(p) for p in self.images[1 : 1 + self.prefetch]]
        if all(self.window.worker.is_encoded(p) for p in upcoming):
            self.mark("prefetched")
            self.result["memory"][f"with_{len(upcoming) + 1}_embeddings"] = rss_mb()
            self.window.clear_prompt()
            self._decode_clicks(DECODE_CLICKS)
        else:
            QTimer.singleShot(50, self._wait_prefetched)

    def _decode_clicks(self, left: int) -> None:
        if left == 0:
            self._next_image()
            return

        def done() -> None:
            self.result["decode_ms"].append(round(self._last_ms, 2))
            self.result["decoder_run_ms"].append(round(self._last_decoder_ms, 2))
            self.window.clear_prompt()
            self._decode_clicks(left - 1)

        self._click(done)

    def _next_image(self) -> None:
        pressed = self._pressed = time.perf_counter()
        self.window.go_by(1)

        def done() -> None:
            self.result["next_image_first_mask_ms"] = round(
                (time.perf_counter() - pressed) * 1000.0, 1
            )
            self.result["next_image_decoder_run_ms"] = round(self._last_decoder_ms, 2)
            self.finish()

        self._click(done)

    def finish(self) -> None:
        self.mark("done")
        self.result["memory"]["at_end"] = rss_mb()
        QApplication.instance().quit()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="sam2_annotator.gui.probe", description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--images", type=Path, required=True, help="a folder of images")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--prefetch", type=int, default=8)
    parser.add_argument("--cache-dir", type=Path, help="embedding disk cache (default: a new one)")
    parser.add_argument("--t0", type=float, help="launcher's time.time() before it started us")
    args = parser.parse_args(argv)
    t0 = args.t0 if args.t0 is not None else _IMPORTED
    with tempfile.TemporaryDirectory() as tmp:
        QSettings.setDefaultFormat(QSettings.Format.IniFormat)
        QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp)
        os.environ["SAM2_ANNOTATOR_CACHE_DIR"] = str(args.cache_dir or Path(tmp) / "cache")
        import onnxruntime  # noqa: F401  - before Qt's libraries, as the app does

        from sam2_annotator.engine.image_io import list_images
        from sam2_annotator.gui.main_window import MainWindow
        from sam2_annotator.gui.settings import AppSettings

        images = list_images(args.images)  # the window's own order
        if len(images) < 2:
            print(f"error: {args.images} needs at least 2 images", file=sys.stderr)
            return 2
        app = QApplication.instance() or QApplication(["sam2-annotator-probe"])
        settings = AppSettings(prefetch=args.prefetch, cache_mb=max(512, 20 * (args.prefetch + 2)))
        window = MainWindow(settings, model_dir=args.model, ask_for_model=False)
        probe = Probe(window, images, t0, args.prefetch)
        probe.result["imported_s"] = round(_IMPORTED - t0, 4)
        window.show()
        QTimer.singleShot(0, probe.shown)
        QTimer.singleShot(int(TIMEOUT_S * 1000), lambda: _timeout(probe))
        app.exec()
        window.close()
        args.out.write_text(json.dumps(probe.result, indent=1))
    return 0 if "done" in probe.result["events"] else 1


def _timeout(probe: Probe) -> None:
    probe.result["timed_out"] = True
    QApplication.instance().quit()


if __name__ == "__main__":
    sys.exit(main())
