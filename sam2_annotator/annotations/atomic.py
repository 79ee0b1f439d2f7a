"""Crash-safe file replacement with one backup (stdlib only).

A reader of ``path`` sees either the complete old content or the complete new content, never a
mix, whatever moment the writing process dies at:

1. the new bytes go to a temporary file *in the same folder* (``os.replace`` is only atomic
   within one file system), which is flushed and ``fsync``-ed so the data is on disk before the
   name points at it;
2. the current file is hard-linked (or, where links are not supported, copied) to a temporary
   name and that is renamed over ``path.bak``, so the backup is also always complete;
3. ``os.replace`` swaps the new file in, and the folder is ``fsync``-ed so the rename itself
   survives a power cut (POSIX only; Windows has no directory handles to sync).

A process killed between steps leaves at most a stray ``.<name>.*.tmp`` file next to the project.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import shutil
import stat
import tempfile
from pathlib import Path

from sam2_annotator.errors import ProjectError

log = logging.getLogger(__name__)

BACKUP_SUFFIX = ".bak"


class ProjectSaveError(ProjectError):
    """Writing the project failed (disk full, permission, ...); the previous file is intact."""


def backup_path(path: Path) -> Path:
    return path.with_name(path.name + BACKUP_SUFFIX)


def write_atomic(path: str | os.PathLike[str], data: bytes, *, backup: bool = True) -> None:
    """Replace ``path`` with ``data`` atomically, keeping the previous version as ``path.bak``.

    Raises :class:`ProjectSaveError` (with the reason in plain words) when anything fails; the
    file at ``path`` is then untouched and no temporary file is left behind.
    """
    target = Path(path)
    folder = target.parent
    mode = _mode_for(target)
    tmp_name: str | None = None
    try:
        fd, tmp_name = tempfile.mkstemp(dir=folder, prefix=f".{target.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp_name, mode)
        if backup and target.exists():
            _make_backup(target)
        os.replace(tmp_name, target)
        tmp_name = None
        _sync_folder(folder)
    except OSError as exc:
        raise ProjectSaveError(f"could not save {target}: {_reason(exc)}") from exc
    finally:
        if tmp_name is not None:
            _remove_quietly(Path(tmp_name))
    log.debug("saved %s (%d bytes)", target, len(data))


def _make_backup(target: Path) -> None:
    """Point ``target.bak`` at the current content, atomically."""
    backup = backup_path(target)
    fd, staging = tempfile.mkstemp(dir=target.parent, prefix=f".{backup.name}.", suffix=".tmp")
    os.close(fd)
    try:
        os.unlink(staging)  # mkstemp reserved a unique name; link/copy need it free
        try:
            os.link(target, staging)
        except OSError as exc:
            log.debug("hard link for the backup failed (%s); copying instead", exc)
            shutil.copy2(target, staging)
        os.replace(staging, backup)
    except OSError:
        _remove_quietly(Path(staging))
        raise


def _mode_for(target: Path) -> int:
    """Keep the permissions of the file being replaced; new files get 0o666 minus the umask
    (``mkstemp`` alone would leave every project readable by its owner only)."""
    try:
        return stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return _new_file_mode()


@functools.cache
def _new_file_mode() -> int:
    # The umask can only be read by setting it; do that once, not on every save.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def _sync_folder(folder: Path) -> None:
    if not hasattr(os, "O_DIRECTORY"):
        return  # Windows: directory entries cannot be fsync-ed
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        log.debug("cannot open %s to sync it: %s", folder, exc)
        return
    try:
        os.fsync(fd)
    except OSError as exc:  # some file systems (e.g. network mounts) refuse; the data is synced
        log.debug("fsync of folder %s failed: %s", folder, exc)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        try:
            path.unlink()
        except OSError as exc:
            log.warning("could not remove temporary file %s: %s", path, exc)


_REASONS = {
    getattr(errno, name): reason
    for name, reason in (
        ("ENOSPC", "the disk is full"),
        ("EDQUOT", "the disk quota is exceeded"),
        ("EACCES", "permission denied"),
        ("EPERM", "operation not permitted"),
        ("EROFS", "the file system is read-only"),
        ("ENOENT", "the folder does not exist"),
    )
    if hasattr(errno, name)
}


def _reason(exc: OSError) -> str:
    return _REASONS.get(exc.errno or 0) or exc.strerror or str(exc) or type(exc).__name__
