"""One decoded image kept for the next navigation (the prefetch already decoded it).

Going to the next image used to decode its JPEG, hash its pixels and build the display pyramid
again, although the prefetch had just decoded the same file to encode it: on a 1800x1200 photo
that is ~50 ms before the first click can be decoded. The prefetch offers the decoded image of
the *next* image here; navigating to it takes it back if the file is unchanged (same size and
modification time), so one image's pixels are held at most.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from sam2_annotator.engine.cache_sources import FileSignature


@dataclass(frozen=True)
class Preloaded:
    path: str
    signature: FileSignature
    payload: Any  # what the caller needs to show the image (pixels, cache key, pyramid)


class PreloadSlot:
    """Thread-safe, single slot: a newer offer replaces the older one."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._item: Preloaded | None = None

    def offer(self, path: str, signature: FileSignature | None, payload: Any) -> None:
        if signature is None:
            return
        with self._lock:
            self._item = Preloaded(path, signature, payload)

    def take(self, path: str) -> Any | None:
        """The payload offered for ``path`` if the file is unchanged since; the slot empties."""
        with self._lock:
            item, self._item = self._item, None
        if item is None or item.path != path or FileSignature.of(path) != item.signature:
            return None
        return item.payload

    def clear(self) -> None:
        with self._lock:
            self._item = None
