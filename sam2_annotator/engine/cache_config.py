"""Where the embedding cache lives, how its keys look, and the disk level's size cap.

See :mod:`.cache` for the design; :class:`~.cache_disk.DiskCache` uses these.
"""

from __future__ import annotations

import json
import logging
import os
import re
import socket
import tempfile
from pathlib import Path

import platformdirs

#: Records keep the name of the public module, :mod:`sam2_annotator.engine.cache`.
log = logging.getLogger("sam2_annotator.engine.cache")

#: Environment variable naming the embeddings folder, instead of the per-user cache folder.
CACHE_DIR_ENV = "SAM2_ANNOTATOR_CACHE_DIR"
#: Environment variable: the disk cache's size cap in GiB (``0`` = no cap).
CACHE_MAX_GB_ENV = "SAM2_ANNOTATOR_CACHE_MAX_GB"
#: Default size cap of the disk cache: about 500 images at 8 MiB each (every SAM2 size has the
#: same embedding shapes).
DEFAULT_MAX_BYTES = 4 * 2**30
#: File in the cache folder that records its cap (see :func:`record_max_bytes`).
LIMIT_FILE = "cache-limit.json"

#: A cache key: 16 to 128 lower-case hex digits.
KEY_RE = re.compile(r"[0-9a-f]{16,128}")


def cache_key(image_hash: str) -> str:
    """Normalise an image content hash (hex, 16 to 128 digits) into a cache key.

    Keys become file names on disk, so anything other than hex digits is refused: a key can never
    name a path outside the cache folder.
    """
    key = image_hash.strip().lower()
    if not KEY_RE.fullmatch(key):
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
    fd, tmp_name = tempfile.mkstemp(prefix=f"{LIMIT_FILE}.{writer_tag()}.", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump({"max_bytes": int(max_bytes)}, f)
        os.replace(tmp_name, root / LIMIT_FILE)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def writer_tag() -> str:
    """``<host>-<pid>`` for temp names: which machine and process left a temp file behind."""
    host = re.sub(r"[^A-Za-z0-9-]", "", socket.gethostname().split(".")[0])[:24] or "host"
    return f"{host}-{os.getpid()}"
