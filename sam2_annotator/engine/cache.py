"""Embedding cache: a byte-bounded LRU in RAM, optionally backed by fp16 files on disk.

Encoding an image is the slow step (seconds on a CPU); decoding a click is fast. Keeping the
encoder's output lets the user go back to an image without waiting, and the disk level lets
``sam2-annotator encode DIR`` do the slow part for a whole folder ahead of time.

Keys. An entry is found by the image's *content* hash (so renaming or moving a file keeps its
entry, and editing it does not reuse a stale one) and, on disk, by the model's sha256 (one folder
per model, so switching models never returns another model's features). :func:`cache_key` turns a
content hash (``image_io.image_hash``) into a key. The memory level does not know the model:
build one :class:`EmbeddingCache` per loaded model (or clear its memory on a switch).

Precision. The disk level stores float16, which halves the files (about 8 MiB instead of 16 MiB
per image) at the cost of rounding every value to 11 significant bits: a relative change of at
most 2**-11 (about 4.9e-4) per element, plus an absolute change below 3e-8 for values too small
for fp16's normal range. That changes the decoder's logits slightly, so masks from a disk entry
may differ from a fresh encode by a pixel along uncertain edges. The engine's exact-parity path
uses the float32 embedding it just computed (kept as is in memory); the disk cache is an opt-in
speed-up. An entry read back from disk is promoted to memory as the rounded float32 values.

Threads and processes. A GUI worker prefetches while the GUI asks for the current image, and
``encode --shard K/N`` runs many processes (on many machines) against one cache folder on a shared
file system, so both levels are used concurrently. :class:`MemoryCache` guards its dictionary with
a lock held only for dictionary work. :class:`DiskCache` needs no lock between processes: names
are content-addressed (a key always means the same image's embedding by the same model, so two
writers of one key write equivalent data), every file appears through one ``os.replace`` of a
finished temp file with a unique name in the same folder, and a reader sees either no file or a
complete one. A file that does not read back (truncated, corrupt, evicted under the reader) is a
logged miss, never an error.

Size cap. The disk level is bounded (the constructor's ``max_bytes``, else the cap recorded in
the cache folder by ``encode --cache-max-gb``, else ``$SAM2_ANNOTATOR_CACHE_MAX_GB``, else
:data:`DEFAULT_MAX_BYTES`) with least-recently-used eviction over the whole cache folder
(every model's entries): a hit sets the file's mtime to now (atime is unreliable: ``noatime``,
``relatime``), and after a write that takes the folder past the cap the oldest files are deleted
until it is under :data:`EVICT_TO` of the cap. Each process checks the folder after its own writes
and at least every :data:`RESCAN_S` seconds while writing, so with several writers the folder may
exceed the cap for a while by what the others wrote since their last check.

Layout. :mod:`.cache_config` holds the folder, key and cap settings, :mod:`.cache_memory` the
memory level, :mod:`.cache_disk` the disk level; this module joins the two levels and re-exports
the public names of all three.
"""

from __future__ import annotations

import logging

from sam2_annotator.engine.cache_config import (
    CACHE_DIR_ENV,
    CACHE_MAX_GB_ENV,
    DEFAULT_MAX_BYTES,
    LIMIT_FILE,
    cache_key,
    default_cache_dir,
    default_max_bytes,
    parse_max_gb,
    record_max_bytes,
    recorded_max_bytes,
)
from sam2_annotator.engine.cache_disk import (
    ARRAY_FIELDS,
    EVICT_TO,
    FORMAT_VERSION,
    RESCAN_S,
    STALE_TEMP_S,
    DiskCache,
)
from sam2_annotator.engine.cache_memory import MemoryCache
from sam2_annotator.engine.types import Embedding

__all__ = [
    "ARRAY_FIELDS",
    "CACHE_DIR_ENV",
    "CACHE_MAX_GB_ENV",
    "DEFAULT_MAX_BYTES",
    "EVICT_TO",
    "FORMAT_VERSION",
    "LIMIT_FILE",
    "RESCAN_S",
    "STALE_TEMP_S",
    "DiskCache",
    "EmbeddingCache",
    "MemoryCache",
    "cache_key",
    "default_cache_dir",
    "default_max_bytes",
    "parse_max_gb",
    "record_max_bytes",
    "recorded_max_bytes",
]

log = logging.getLogger(__name__)


class EmbeddingCache:
    """Memory first, then disk (an entry found there is promoted to memory); ``put`` fills both.

    A disk failure never fails the caller: it is logged, and the memory level keeps working.
    """

    def __init__(self, memory: MemoryCache, disk: DiskCache | None = None) -> None:
        self.memory = memory
        self.disk = disk

    def get(self, key: str) -> Embedding | None:
        emb = self.memory.get(key)
        if emb is not None or self.disk is None:
            return emb
        emb = self.disk.get(key)
        if emb is not None:
            self.memory.put(key, emb)
        return emb

    def put(self, key: str, emb: Embedding) -> bool:
        """Store in both levels; True if the entry is on disk afterwards.

        An existing disk entry is kept: keys are content hashes within one model's folder, so it
        holds the same embedding.
        """
        self.memory.put(key, emb)
        if self.disk is None:
            return False
        if self.disk.touch(key):  # already there (and now recently used)
            return True
        try:
            return self.disk.put(key, emb)
        except OSError as exc:
            log.warning("could not write embedding cache entry %s: %s", key, exc)
            return False

    def __contains__(self, key: object) -> bool:
        return key in self.memory or (self.disk is not None and key in self.disk)
