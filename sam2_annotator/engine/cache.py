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
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
import threading
import time
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import BinaryIO

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
#: Environment variable: the disk cache's size cap in GiB (``0`` = no cap).
CACHE_MAX_GB_ENV = "SAM2_ANNOTATOR_CACHE_MAX_GB"
#: Default size cap of the disk cache: about 500 images at 8 MiB each (every SAM2 size has the
#: same embedding shapes).
DEFAULT_MAX_BYTES = 4 * 2**30
#: Eviction deletes down to this fraction of the cap, so a full cache is not rescanned per write.
EVICT_TO = 0.9
#: A writing process re-reads the folder's size at least this often (others may be writing too).
RESCAN_S = 60.0
#: File in the cache folder that records its cap (see :func:`record_max_bytes`).
LIMIT_FILE = "cache-limit.json"
#: Temp files older than this are left-overs of a killed process and are removed on open.
STALE_TEMP_S = 3600.0

_KEY_RE = re.compile(r"[0-9a-f]{16,128}")
_MODEL_FOLDER_RE = re.compile(r"[0-9a-f]{16}")
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


def parse_max_gb(text: str) -> int:
    """GiB (a number >= 0; ``0`` = no cap) as bytes; ValueError with the reason otherwise."""
    try:
        gib = float(text)
    except ValueError:
        raise ValueError(f"not a number of GiB: {text!r}") from None
    if not (gib >= 0 and gib != float("inf")):  # also refuses nan
        raise ValueError(f"a cache size cap must be a number of GiB >= 0 (0 = no cap): {text!r}")
    return int(gib * 2**30)


def default_max_bytes(root: Path | None = None) -> int:
    """The disk cache's cap when none is given.

    In order: the cap recorded in the cache folder ``root`` by :func:`record_max_bytes` (so a
    folder filled on a cluster with no cap is not evicted down to a laptop's default by the first
    app that writes to it), ``$SAM2_ANNOTATOR_CACHE_MAX_GB`` if set and valid, the default.
    """
    recorded = None if root is None else recorded_max_bytes(root)
    if recorded is not None:
        return recorded
    override = os.environ.get(CACHE_MAX_GB_ENV)
    if override:
        try:
            return parse_max_gb(override)
        except ValueError as exc:
            log.warning("ignoring $%s: %s", CACHE_MAX_GB_ENV, exc)
    return DEFAULT_MAX_BYTES


def recorded_max_bytes(root: Path) -> int | None:
    """The cap recorded in the cache folder ``root`` (``0`` = no cap), or None."""
    path = Path(root) / LIMIT_FILE
    try:
        value = json.loads(path.read_text(encoding="utf-8"))["max_bytes"]
    except FileNotFoundError:
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("ignoring unreadable %s: %s", path, exc)
        return None
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        log.warning("ignoring %s: max_bytes must be an integer >= 0, got %r", path, value)
        return None
    return value


def record_max_bytes(root: Path, max_bytes: int) -> None:
    """Remember ``max_bytes`` as the cap of the cache folder ``root`` for every later user.

    ``encode --cache-max-gb`` calls it. Written atomically; not rewritten when unchanged, so many
    shards starting at once with the same option leave one file.
    """
    if max_bytes < 0:
        raise ValueError(f"max_bytes must be >= 0 (0 = no cap), got {max_bytes}")
    root = Path(root)
    if recorded_max_bytes(root) == max_bytes:
        return
    root.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f"{LIMIT_FILE}.{_writer_tag()}.", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"max_bytes": int(max_bytes)}, f)
        os.replace(tmp_name, root / LIMIT_FILE)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


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
            prefix=f"{path.stem}.{_writer_tag()}.", suffix=_TEMP_SUFFIX, dir=self.folder
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
                if not name.endswith(_ENTRY_SUFFIX) or not _KEY_RE.fullmatch(
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


def _writer_tag() -> str:
    """``<host>-<pid>`` for temp names: which machine and process left a temp file behind."""
    host = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname().split(".")[0])[:24] or "host"
    return f"{host}-{os.getpid()}"


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
        if self.disk.touch(key):  # already there (and now recently used)
            return True
        try:
            return self.disk.put(key, emb)
        except OSError as exc:
            log.warning("could not write embedding cache entry %s: %s", key, exc)
            return False

    def __contains__(self, key: object) -> bool:
        return key in self.memory or (self.disk is not None and key in self.disk)
