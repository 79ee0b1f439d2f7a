"""Which cache key an image *file* had when it was last read: a hint, never a key itself.

The embedding cache is keyed by the hash of an image's decoded pixels, so finding an entry needs
the pixels, and on a reopened folder the disk read then waits behind the JPEG decode. This index
remembers, per file (its absolute path, size and modification time), the key its pixels hashed
to. With it the window starts reading the embedding from disk while the pixels are still being
decoded. A hint is only ever *used* once the pixels are decoded and hash to the same key, so a
stale or wrong hint costs one wasted read and nothing else.

Layout: ``<cache root>/sources/<2 hex>/<30 hex>``, one small text file per file signature, holding
the key. Content-addressed and written through ``os.replace`` of a unique temp file, like the
entries themselves, so concurrent writers (``encode --shard`` on a shared file system) are safe.
The files are tiny (one per version of an image file: a file system block each) and are neither
counted towards the cache's size cap nor pruned; deleting ``sources/`` only costs the hints.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from sam2_annotator.engine.cache_config import KEY_RE, writer_tag

log = logging.getLogger(__name__)

#: The index's folder inside the cache root.
SOURCES_FOLDER = "sources"


@dataclass(frozen=True)
class FileSignature:
    """What identifies one version of a file without reading it."""

    path: str  # absolute
    size: int
    mtime_ns: int

    @classmethod
    def of(cls, path: str | os.PathLike[str]) -> FileSignature | None:
        """The file's signature now; ``None`` when it cannot be stat'ed."""
        absolute = os.path.abspath(path)
        try:
            st = os.stat(absolute)
        except OSError:
            return None
        return cls(absolute, st.st_size, st.st_mtime_ns)

    def digest(self) -> str:
        text = f"{self.path}\0{self.size}\0{self.mtime_ns}"
        return hashlib.sha256(text.encode("utf-8", "surrogateescape")).hexdigest()[:32]


class SourceIndex:
    """File signature -> image key, under ``root/sources``. Every failure is a logged miss."""

    def __init__(self, root: Path) -> None:
        self.folder = Path(root) / SOURCES_FOLDER

    def _path(self, signature: FileSignature) -> Path:
        digest = signature.digest()
        return self.folder / digest[:2] / digest[2:]

    def key_for(self, path: str | os.PathLike[str]) -> str | None:
        """The key ``path``'s pixels had when this version of the file was last hashed."""
        signature = FileSignature.of(path)
        return None if signature is None else _read_key(self._path(signature))

    def remember(self, signature: FileSignature | None, key: str) -> None:
        """Record that the file with ``signature`` (taken *before* its pixels were read) hashed
        to ``key``; a different key recorded before is replaced. Skipped when the file has
        changed since (its signature now differs). Never raises: a cache folder that cannot be
        written (read-only, full, not a folder) only loses the hint."""
        if signature is None or FileSignature.of(signature.path) != signature:
            return
        target = self._path(signature)
        if _read_key(target) == key:
            return
        temp = target.with_name(f"{target.name}.{writer_tag()}.{secrets.token_hex(4)}.tmp")
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            temp.write_text(key, encoding="ascii")
            os.replace(temp, target)
        except OSError as exc:
            log.debug("could not record the key of %s: %s", signature.path, exc)
            with contextlib.suppress(OSError):  # e.g. EROFS, even for a file that is not there
                temp.unlink(missing_ok=True)


def _read_key(path: Path) -> str | None:
    try:
        key = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return key if KEY_RE.fullmatch(key) else None
