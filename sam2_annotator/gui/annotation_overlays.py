"""Overlays of accepted annotations, built on a background thread and cached.

Turning an annotation into something the canvas can paint means decoding its RLE to a full-size
mask, cropping, tracing and colouring it: milliseconds for a phone photo, over 100 ms for an
8000x6000 one. Opening an image with dozens of annotations would stall the GUI for seconds, so
the window asks :meth:`AnnotationOverlays.get`, which answers from the cache or queues the work
and returns ``None``; :attr:`AnnotationOverlays.ready` then tells the window to repaint.
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor

from PySide6.QtCore import QObject, Signal

from sam2_annotator.annotations import Annotation, Rle
from sam2_annotator.gui.overlay import RGB, MaskOverlay, make_overlay

log = logging.getLogger(__name__)

_Key = tuple[int, Rle, RGB]


class AnnotationOverlays(QObject):
    """Cache of ``annotation id -> overlay`` for the current mask and colour of each annotation.

    Lives in the GUI thread; the pool thread emits :attr:`_built` on it, so results are queued
    into the GUI thread (the same arrangement as the inference worker).
    """

    ready = Signal()
    _built = Signal(object)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cache: dict[int, tuple[Rle, RGB, MaskOverlay]] = {}
        self._pending: set[_Key] = set()
        self._closed = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sam2-overlays")
        self._built.connect(self._store)

    def get(self, annotation: Annotation, color: RGB) -> MaskOverlay | None:
        """The overlay if it is ready. Otherwise it is queued, and the previous overlay of the
        same annotation (other colour or mask) is returned meanwhile, or ``None`` if there is
        none, so that a relabelled annotation does not blink."""
        cached = self._cache.get(annotation.id)
        if cached is not None and cached[0] == annotation.rle and cached[1] == color:
            return cached[2]
        key = (annotation.id, annotation.rle, color)
        if key not in self._pending and not self._closed:
            self._pending.add(key)
            self._pool.submit(self._build, annotation, color, key)
        return cached[2] if cached is not None else None

    def cached(self, annotation: Annotation) -> MaskOverlay | None:
        """The ready overlay of this annotation's current mask (any colour), without queuing."""
        cached = self._cache.get(annotation.id)
        return cached[2] if cached is not None and cached[0] == annotation.rle else None

    @property
    def busy(self) -> bool:
        return bool(self._pending)

    def clear(self) -> None:
        self._cache.clear()

    def shutdown(self) -> None:
        """Stop the pool (the window is closing); later :meth:`get` calls only read the cache."""
        self._closed = True
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _build(self, annotation: Annotation, color: RGB, key: _Key) -> None:  # pool thread
        try:
            overlay: MaskOverlay | None = make_overlay(annotation.mask, color)
        except Exception:  # the top of a pool job: log it, keep the pool alive
            log.exception("could not draw annotation %d", annotation.id)
            overlay = None
        self._built.emit((key, overlay))

    def _store(self, item: tuple[_Key, MaskOverlay | None]) -> None:
        key, overlay = item
        self._pending.discard(key)
        if overlay is not None:
            annotation_id, rle, color = key
            self._cache[annotation_id] = (rle, color, overlay)
        self.ready.emit()
