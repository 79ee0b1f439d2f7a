"""The disk level of the embedding cache: fp16 ``.npz`` files, atomic writes, LRU eviction.

See :mod:`.cache` for the design (keys, precision, concurrent writers, the size cap).
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

from sam2_annotator.engine.cache_config import KEY_RE, cache_key, default_max_bytes, writer_tag
from sam2_annotator.engine.types import Embedding

#: Records keep the name of the public module, :mod:`sam2_annotator.engine.cache`.
log = logging.getLogger("sam2_annotator.engine.cache")

#: Bumped whenever the layout of a disk entry changes; older entries then read as misses.
FORMAT_VERSION = 1
#: The three feature arrays of :class:`Embedding`, in the order they are stored.
ARRAY_FIELDS = ("image_embed", "high_res_feats_0", "high_res_feats_1")
#: Eviction deletes down to this fraction of the cap, so a full cache is not rescanned per write.
EVICT_TO = 0.9
#: A writing process re-reads the folder's size at least this often (others may be writing too).
RESCAN_S = 60.0
#: Temp files older than this are left-overs of a killed process and are removed on open.
STALE_TEMP_S = 3600.0

_MODEL_FOLDER_RE = re.compile(r"[0-9a-f]{16}")
_TEMP_SUFFIX = ".tmp"
_ENTRY_SUFFIX = ".npz"
#: What reading a damaged or foreign ``.npz`` can raise; anything else is a bug and propagates.
_READ_ERRORS = (OSError, EOFError, ValueError, KeyError, TypeError, zipfile.BadZipFile)


class _Mismatch(ValueError):
    """A readable entry that is not what this cache expects (version, model, key or layout)."""


class DiskCache:
    """Embeddings as float16 ``.npz`` files under ``root/<model_key[:16]>/<key>.npz``.

    ``model_key`` is the model's sha256 (hex). Each file also records the format version, the full
    model key, its own key and ``orig_hw``; a file that does not match, or cannot be read at all
    (truncated, corrupt), is a miss: it is logged and deleted, never raised to the caller. It is
    deleted only if it is still the file that failed (same inode, size and mtime): another writer
    may have replaced it with a good entry meanwhile.

    Files are written uncompressed with ``np.savez``: float16 already halves them, and deflate
    gains little on noisy feature maps while costing far more time than the read it would save.
    A file appears only through ``os.replace`` of a finished temp file in the same folder (named
    ``<key>.<host>-<pid>.<random>.tmp``, unique across machines), so an interrupted ``encode``
    leaves either the old state or a complete entry, which is what makes it resumable, and
    concurrent writers of one key never mix their bytes. There is no fsync: an entry damaged by a
    power cut fails its zip CRC on reading and is treated as a miss, which a cache can afford.

    ``max_bytes`` caps the whole cache folder (all models' entries) with LRU eviction, see the
    module notes; ``None`` = :func:`default_max_bytes` (the folder's recorded cap, the environment
    variable or the default), ``0`` = no cap. Only files that look like entries
    (``<16 hex>/<hex>.npz``) are ever counted or evicted, so a cache folder pointed at the wrong
    place cannot delete anything else.
    """

    def __init__(self, root: Path, model_key: str, max_bytes: int | None = None) -> None:
        self.root = Path(root)
        self.model_key = cache_key(model_key)
        self.folder = self.root / self.model_key[:16]
        self.max_bytes = default_max_bytes(self.root) if max_bytes is None else int(max_bytes)
        if self.max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0 (0 = no cap), got {max_bytes}")
        #: Entries this object has evicted so far (from any model's folder).
        self.evicted = 0
        self._estimate: int | None = None  # folder size at the last scan + our writes since
        self._last_scan = 0.0
        self._account_lock = threading.Lock()
        self._scan_lock = threading.Lock()
        self._remove_stale_temps()

    def path_for(self, key: str) -> Path:
        return self.folder / f"{cache_key(key)}{_ENTRY_SUFFIX}"

    def __contains__(self, key: object) -> bool:
        """Whether an entry file exists (cheap; its content is checked only by :meth:`get`)."""
        return isinstance(key, str) and self.path_for(key).is_file()

    def get(self, key: str) -> Embedding | None:
        """The entry as float32 contiguous arrays, or None if absent or unusable.

        A hit marks the entry as recently used (its mtime), which keeps it from eviction.
        """
        path = self.path_for(key)
        try:
            f = path.open("rb")
        except FileNotFoundError:
            return None
        except OSError as exc:  # e.g. no permission: not the entry's fault, keep it
            log.warning("cannot open cache entry %s: %s", path, exc)
            return None
        with f:
            identity = _identity(os.fstat(f.fileno()))
            try:
                emb = self._read(f, cache_key(key))
            except _READ_ERRORS as exc:
                log.warning("discarding unusable cache entry %s: %s", path, exc)
                self._delete_if_unchanged(path, identity)
                return None
        self._touch(path)
        return emb

    def touch(self, key: str) -> bool:
        """Mark an entry as recently used without reading it; False if there is none."""
        path = self.path_for(key)
        return path.is_file() and self._touch(path)

    def put(self, key: str, emb: Embedding) -> bool:
        """Write the entry atomically. False if it cannot be stored in float16 (not finite) or
        is larger than the cap.

        Raises OSError when the file cannot be written; no temp file is left behind.
        """
        path = self.path_for(key)
        with np.errstate(over="ignore"):  # overflow shows up as inf, checked just below
            arrays = {n: np.asarray(getattr(emb, n), dtype=np.float16) for n in ARRAY_FIELDS}
        bad = [name for name, a in arrays.items() if not np.isfinite(a).all()]
        if bad:
            log.warning("not caching %s on disk: %s not finite in float16", path.name, bad)
            return False
        payload = sum(a.nbytes for a in arrays.values())
        if self.max_bytes and payload > self.max_bytes:
            log.warning(
                "not caching %s on disk: %d bytes > cache cap %d",
                path.name,
                payload,
                self.max_bytes,
            )
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
        self._after_write(path, payload)
        return True

    def enforce_limit(self) -> int:
        """Evict least recently used entries if the cache folder is over the cap; how many.

        Deletes the oldest entries (by mtime, over every model's folder) until the total is at most
        :data:`EVICT_TO` of the cap, but never the most recent one. Safe with other processes
        doing the same: a file that vanished meanwhile simply counts as gone.
        """
        if not self.max_bytes or not self._scan_lock.acquire(blocking=False):
            return 0  # no cap, or another thread of this process is scanning right now
        try:
            entries = self._scan_all_entries()
            total = sum(size for _, _, size in entries)
            evicted = 0
            if total > self.max_bytes:
                target = int(self.max_bytes * EVICT_TO)
                entries.sort(key=lambda e: (e[1], e[0].name))
                for path, _, size in entries[:-1]:
                    if total <= target:
                        break
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        pass  # evicted or discarded by someone else: gone all the same
                    except OSError as exc:
                        log.warning("could not evict %s: %s", path, exc)
                        continue
                    else:
                        evicted += 1
                    total -= size
                log.info(
                    "evicted %d cache entries; %d bytes left (cap %d)",
                    evicted,
                    total,
                    self.max_bytes,
                )
            with self._account_lock:
                self._estimate = total
                self._last_scan = time.monotonic()
                self.evicted += evicted
            return evicted
        finally:
            self._scan_lock.release()

    def total_bytes(self) -> int:
        """Total size of every model's entry files under the cache folder (what the cap limits)."""
        return sum(size for _, _, size in self._scan_all_entries())

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

    def _read(self, f: BinaryIO, key: str) -> Embedding:
        with np.load(f, allow_pickle=False) as npz:
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
            prefix=f"{path.stem}.{writer_tag()}.", suffix=_TEMP_SUFFIX, dir=self.folder
        )
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                np.savez(f, **fields)
            os.replace(tmp, path)
        except BaseException:
            self._delete(tmp)
            raise

    def _after_write(self, path: Path, payload: int) -> None:
        """Count a new entry towards the cap; scan (and evict) when over it or when due."""
        if not self.max_bytes:
            return
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            size = payload  # already evicted by another process
        with self._account_lock:
            if self._estimate is not None:
                self._estimate += size
            due = (
                self._estimate is None
                or self._estimate > self.max_bytes
                or time.monotonic() - self._last_scan >= RESCAN_S
            )
        if due:
            self.enforce_limit()

    def _scan_all_entries(self) -> list[tuple[Path, float, int]]:
        """(path, mtime, size) of every entry file of every model under the cache folder."""
        found: list[tuple[Path, float, int]] = []
        try:
            folders = [
                e
                for e in os.scandir(self.root)
                if _MODEL_FOLDER_RE.fullmatch(e.name) and e.is_dir()
            ]
        except FileNotFoundError:
            return found
        for folder in folders:
            try:
                entries = list(os.scandir(folder.path))
            except (FileNotFoundError, NotADirectoryError):
                continue
            for entry in entries:
                name = entry.name
                if not name.endswith(_ENTRY_SUFFIX) or not KEY_RE.fullmatch(
                    name[: -len(_ENTRY_SUFFIX)]
                ):
                    continue
                try:
                    st = entry.stat()
                except FileNotFoundError:
                    continue  # removed while we were listing
                found.append((Path(entry.path), st.st_mtime, st.st_size))
        return found

    def _touch(self, path: Path) -> bool:
        """Set ``path``'s mtime to now (recently used); False if it is gone."""
        try:
            os.utime(path)
        except FileNotFoundError:
            return False
        except OSError as exc:  # a read-only shared cache: recency is best effort
            log.debug("could not mark %s as used: %s", path, exc)
        return True

    def _delete_if_unchanged(self, path: Path, identity: tuple[int, ...]) -> None:
        """Delete ``path`` unless another writer has replaced it since it was opened."""
        try:
            current = _identity(path.stat())
        except FileNotFoundError:
            return
        if current != identity:
            log.info("kept %s: replaced by another writer since it was read", path)
            return
        self._delete(path)

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


def _identity(st: os.stat_result) -> tuple[int, ...]:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)


def _load_array(npz: np.lib.npyio.NpzFile, name: str) -> np.ndarray:
    stored = npz[name]
    if stored.dtype != np.float16 or stored.ndim != 4 or stored.shape[0] != 1:
        raise _Mismatch(f"{name} is {stored.dtype} {stored.shape}, expected float16 [1, C, H, W]")
    return np.ascontiguousarray(stored, dtype=np.float32)
