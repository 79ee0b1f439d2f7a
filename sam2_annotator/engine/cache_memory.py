"""The memory level of the embedding cache: a byte-bounded, thread-safe LRU (see :mod:`.cache`)."""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict

from sam2_annotator.engine.types import Embedding

#: Records keep the name of the public module, :mod:`sam2_annotator.engine.cache`.
log = logging.getLogger("sam2_annotator.engine.cache")


class MemoryCache:
    """Least-recently-used embeddings in RAM, bounded by their total size in bytes.

    ``max_bytes=0`` disables the cache (nothing is stored). Embeddings are stored and returned as
    they are, not copied: callers must not write into their arrays.
    """

    def __init__(self, max_bytes: int) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, Embedding] = OrderedDict()
        self._nbytes = 0
        self._lock = threading.Lock()

    def get(self, key: str) -> Embedding | None:
        """The entry for ``key``, marked as most recently used, or None."""
        with self._lock:
            emb = self._entries.get(key)
            if emb is not None:
                self._entries.move_to_end(key)
            return emb

    def put(self, key: str, emb: Embedding) -> None:
        """Store ``emb`` as most recently used, evicting the oldest entries beyond the budget."""
        size = emb.nbytes
        with self._lock:
            self._pop(key)  # a new value for a key makes the old one stale, even if not stored
            if self.max_bytes == 0:
                return  # disabled
            if size > self.max_bytes:
                log.debug(
                    "not caching %s in memory: %d bytes > budget %d", key, size, self.max_bytes
                )
                return
            self._entries[key] = emb
            self._nbytes += size
            while self._nbytes > self.max_bytes:
                old_key, old = self._entries.popitem(last=False)
                self._nbytes -= old.nbytes
                log.debug("evicted %s from memory (%d bytes)", old_key, old.nbytes)

    def discard(self, key: str) -> None:
        with self._lock:
            self._pop(key)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
            self._nbytes = 0

    def lru_keys(self) -> list[str]:
        """A snapshot of the keys, least recently used first."""
        with self._lock:
            return list(self._entries)

    @property
    def nbytes(self) -> int:
        """Total size of the stored arrays."""
        with self._lock:
            return self._nbytes

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._entries

    def __len__(self) -> int:
        with self._lock:
            return len(self._entries)

    def _pop(self, key: str) -> None:
        """Remove ``key`` if present; the caller holds the lock."""
        old = self._entries.pop(key, None)
        if old is not None:
            self._nbytes -= old.nbytes
