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

Threads. A GUI worker prefetches while the GUI asks for the current image, so both levels may be
used from several threads. :class:`MemoryCache` guards its dictionary with a lock held only for
dictionary work; :class:`DiskCache` needs no lock because every file appears through one atomic
``os.replace`` and a reader sees either no file or a complete one.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import platformdirs

from sam2_annotator.engine.types import Embedding

log = logging.getLogger(__name__)

#: Environment variable naming the embeddings folder, instead of the per-user cache folder.
CACHE_DIR_ENV = "SAM2_ANNOTATOR_CACHE_DIR"
#: Bumped whenever the layout of a disk entry changes; older entries then read as misses.
FORMAT_VERSION = 1
#: The three feature arrays of :class:`Embedding`, in the order they are stored.
ARRAY_FIELDS = ("image_embed", "high_res_feats_0", "high_res_feats_1")
#: Temp files older than this are left-overs of a killed process and are removed on open.
STALE_TEMP_S = 3600.0

_KEY_RE = re.compile(r"[0-9a-f]{16,128}")
_TEMP_SUFFIX = ".tmp"
_ENTRY_SUFFIX = ".npz"
#: What reading a damaged or foreign ``.npz`` can raise; anything else is a bug and propagates.
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class _Mismatch(ValueError):
    """A readable entry that is not what this cache expects (version, model, key or layout)."""


def cache_key(image_hash: str) -> str:
    """Normalise an image content hash (hex, 16 to 128 digits) into a cache key.

    Keys become file names on disk, so anything other than hex digits is refused: a key can never
    name a path outside the cache folder.
    """
    key = image_hash.strip().lower()
    if not _KEY_RE.fullmatch(key):
        raise ValueError(f"not a hex content hash (16-128 hex digits): {image_hash!r}")
    return key


def default_cache_dir() -> Path:
    """The embeddings folder: ``$SAM2_ANNOTATOR_CACHE_DIR`` if set, else the user cache folder."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override).expanduser()
    return Path(platformdirs.user_cache_dir("sam2-annotator")) / "embeddings"


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


class DiskCache:
    """Embeddings as float16 ``.npz`` files under ``root/<model_key[:16]>/<key>.npz``.

    ``model_key`` is the model's sha256 (hex). Each file also records the format version, the full
    model key, its own key and ``orig_hw``; a file that does not match, or cannot be read at all
    (truncated, corrupt), is a miss: it is logged and deleted, never raised to the caller.

    Files are written uncompressed with ``np.savez``: float16 already halves them, and deflate
    gains little on noisy feature maps while costing far more time than the read it would save.
    A file appears only through ``os.replace`` of a finished temp file in the same folder, so an
    interrupted ``encode`` leaves either the old state or a complete entry, which is what makes
    it resumable. There is no fsync: an entry damaged by a power cut fails its zip CRC on reading
    and is treated as a miss, which a cache can afford.
    """

    def __init__(self, root: Path, model_key: str) -> None:
        self.root = Path(root)
        self.model_key = cache_key(model_key)
        self.folder = self.root / self.model_key[:16]
        self._remove_stale_temps()

    def path_for(self, key: str) -> Path:
        return self.folder / f"{cache_key(key)}{_ENTRY_SUFFIX}"

    def __contains__(self, key: object) -> bool:
        """Whether an entry file exists (cheap; its content is checked only by :meth:`get`)."""
        return isinstance(key, str) and self.path_for(key).is_file()

    def get(self, key: str) -> Embedding | None:
        """The entry as float32 contiguous arrays, or None if absent or unusable."""
        path = self.path_for(key)
        try:
            return self._read(path, cache_key(key))
        except FileNotFoundError:
            return None
        except _READ_ERRORS as exc:
            log.warning("discarding unusable cache entry %s: %s", path, exc)
            self._delete(path)
            return None

    def put(self, key: str, emb: Embedding) -> bool:
        """Write the entry atomically. False if it cannot be stored in float16 (not finite).

        Raises OSError when the file cannot be written; no temp file is left behind.
        """
        path = self.path_for(key)
        with np.errstate(over="ignore"):  # overflow shows up as inf, checked just below
            arrays = {n: np.asarray(getattr(emb, n), dtype=np.float16) for n in ARRAY_FIELDS}
        bad = [name for name, a in arrays.items() if not np.isfinite(a).all()]
        if bad:
            log.warning("not caching %s on disk: %s not finite in float16", path.name, bad)
            return False
        fields = {
            "format_version": np.array(FORMAT_VERSION, np.int64),
            "model_key": np.array(self.model_key),
            "image_key": np.array(cache_key(key)),
            "orig_hw": np.array(emb.orig_hw, np.int64),
            **arrays,
        }
        self.folder.mkdir(parents=True, exist_ok=True)
        self._write_atomic(path, fields)
        return True

    def size_bytes(self) -> int:
        """Total size of this model's entry files."""
        total = 0
        for path in self._files(_ENTRY_SUFFIX):
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue  # removed by another thread or process while we were counting
        return total

    def clear(self) -> None:
        """Delete this model's entries (and temp files); other models' folders are untouched."""
        for path in self._files(_ENTRY_SUFFIX) + self._files(_TEMP_SUFFIX):
            self._delete(path)

    def _read(self, path: Path, key: str) -> Embedding:
        with np.load(path, allow_pickle=False) as npz:
            version = int(npz["format_version"])
            if version != FORMAT_VERSION:
                raise _Mismatch(f"format version {version}, expected {FORMAT_VERSION}")
            if str(npz["model_key"]) != self.model_key:
                raise _Mismatch("written for another model")
            if str(npz["image_key"]) != key:
                raise _Mismatch(f"holds key {npz['image_key']}")
            orig_hw = npz["orig_hw"]
            if orig_hw.shape != (2,) or (orig_hw <= 0).any():
                raise _Mismatch(f"bad orig_hw {orig_hw.tolist()}")
            arrays = {name: _load_array(npz, name) for name in ARRAY_FIELDS}
        h, w = (int(v) for v in orig_hw)
        return Embedding(orig_hw=(h, w), **arrays)

    def _write_atomic(self, path: Path, fields: dict[str, np.ndarray]) -> None:
        fd, tmp_name = tempfile.mkstemp(
            prefix=f"{path.stem}.", suffix=_TEMP_SUFFIX, dir=self.folder
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **fields)
            os.replace(tmp, path)
        except BaseException:
            self._delete(tmp)
            raise

    def _files(self, suffix: str) -> list[Path]:
        try:
            return [p for p in self.folder.iterdir() if p.name.endswith(suffix)]
        except FileNotFoundError:
            return []

    def _remove_stale_temps(self) -> None:
        """Remove temp files left by a killed writer; fresh ones may belong to a live process."""
        cutoff = time.time() - STALE_TEMP_S
        for path in self._files(_TEMP_SUFFIX):
            try:
                stale = path.stat().st_mtime < cutoff
            except FileNotFoundError:
                continue  # its writer just finished or cleaned up
            if stale:
                log.info("removing stale temp file %s", path)
                self._delete(path)

    @staticmethod
    def _delete(path: Path) -> None:
        try:
            path.unlink(missing_ok=True)
        except OSError as exc:
            log.warning("could not delete %s: %s", path, exc)


def _load_array(npz: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    stored = npz[name]
    if stored.dtype != np.float16 or stored.ndim != 4 or stored.shape[0] != 1:
        raise _Mismatch(f"{name} is {stored.dtype} {stored.shape}, expected float16 [1, C, H, W]")
    return np.ascontiguousarray(stored, dtype=np.float32)


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
        if key in self.disk:
            return True
        try:
            return self.disk.put(key, emb)
        except OSError as exc:
            log.warning("could not write embedding cache entry %s: %s", key, exc)
            return False

    def __contains__(self, key: object) -> bool:
        return key in self.memory or (self.disk is not None and key in self.disk)
