"""Fetch one remote file of a catalog model: stream, resume, check, then rename into place.

``fetch_file`` streams the file to ``<file>.part`` (resuming with an HTTP ``Range`` request when a
``.part`` exists; a server answering 200 instead of 206 restarts from zero), checks the length,
the sha256 when the catalog knows it and the file's signature (ZIP magic for archives, an ONNX
protobuf header for bare graphs), and only then renames ``.part`` to the final name. Every
failure is one :class:`~sam2_annotator.errors.DownloadError` line naming the URL. Only the
standard library talks HTTP.
"""

from __future__ import annotations

import errno
import http.client
import logging
import os
import re
import socket
import threading
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from sam2_annotator import __version__
from sam2_annotator.engine.manifest import sha256_file
from sam2_annotator.errors import DownloadError, OperationCancelled
from sam2_annotator.models.catalog import MIRROR_ENV, RemoteFile

#: Records keep the name of the public module, :mod:`sam2_annotator.models.download`.
log = logging.getLogger("sam2_annotator.models.download")

PART_SUFFIX = ".part"
CHUNK_BYTES = 1 << 16
DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = f"sam2-annotator/{__version__} (+urllib)"
ZIP_MAGIC = b"PK\x03\x04"
#: An ONNX ``ModelProto`` starts with field 1 (``ir_version``, varint): tag byte 0x08.
ONNX_FIRST_BYTE = 0x08


def fetch_file(
    url: str,
    dest: Path,
    remote: RemoteFile,
    emit: Callable[[int, int | None], None] = lambda done, total: None,
    cancel: threading.Event | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> Path:
    """Fetch ``url`` to ``dest`` through ``dest.part``; return ``dest`` once it is complete and
    checked. A complete ``dest`` left by an earlier run is reused if it still checks out."""
    if dest.is_file():
        if remote.sha256 is None or sha256_file(dest) == remote.sha256.lower():
            _check_signature(dest, url, remote)
            size = dest.stat().st_size
            emit(size, size)
            log.info("reusing the completed download %s", dest)
            return dest
        log.warning("discarding %s: its sha256 no longer matches the catalog", dest)
        dest.unlink()
    part = dest.with_name(dest.name + PART_SUFFIX)
    total = _stream(url, part, emit, cancel, timeout)
    _check_complete(url, part, remote, total)
    _check_signature(part, url, remote)
    os.replace(part, dest)
    return dest


def _check_signature(path: Path, url: str, remote: RemoteFile) -> None:
    """Run the role's signature check; a file that fails it is deleted (it can never pass)."""
    try:
        SIGNATURES[remote.role](path, url)
    except DownloadError:
        path.unlink(missing_ok=True)
        raise


def _stream(
    url: str,
    part: Path,
    emit: Callable[[int, int | None], None],
    cancel: threading.Event | None,
    timeout: float,
) -> int | None:
    """Write the remote file into ``part`` (resuming when possible); return its total size."""
    for _attempt in range(3):
        _raise_if_cancelled(cancel, url, part)
        offset = part.stat().st_size if part.is_file() else 0
        try:
            response = urllib.request.urlopen(_request(url, offset), timeout=timeout)
        except urllib.error.HTTPError as exc:
            with exc:
                if exc.code == 416 and offset:
                    total = _range_total(exc.headers.get("Content-Range"))
                    if total == offset:
                        return total  # the part was already complete
                    log.warning("server rejected resuming %s at %d; restarting", url, offset)
                    part.unlink()
                    continue
                raise DownloadError(f"HTTP {exc.code} {exc.reason} for {url}{_hint()}") from exc
        except _NETWORK_ERRORS as exc:
            if is_offline(exc):
                raise NoConnection([url], _reason(exc), _hint()) from exc
            raise DownloadError(f"cannot download {url}: {_reason(exc)}{_hint()}") from exc
        with response:
            mode, done, total = _resume_plan(url, response, offset)
            if mode is None:
                part.unlink()
                continue
            _copy(url, response, part, mode, done, total, emit, cancel)
            return total
    raise DownloadError(f"cannot download {url}: the server keeps rejecting resumed requests")


def _request(url: str, offset: int) -> urllib.request.Request:
    request = urllib.request.Request(url, headers={"User-Agent": USER_AGENT})
    if offset:
        request.add_header("Range", f"bytes={offset}-")
        log.info("resuming %s from byte %d", url, offset)
    return request


def _resume_plan(url: str, response: Any, offset: int) -> tuple[str | None, int, int | None]:
    """How to write the body: (file mode, bytes already there, total) or mode None to restart."""
    length = _int_or_none(response.headers.get("Content-Length"))
    if offset and response.status == 206:
        start, total = _content_range(response.headers.get("Content-Range"))
        if start != offset:
            log.warning("server answered %s with a range starting at %s; restarting", url, start)
            return None, 0, None
        if total is None and length is not None:
            total = offset + length
        return "ab", offset, total
    if offset:
        log.info("server ignored the Range request for %s; restarting from zero", url)
    return "wb", 0, length


def _copy(
    url: str,
    response: IO[bytes],
    part: Path,
    mode: str,
    done: int,
    total: int | None,
    emit: Callable[[int, int | None], None],
    cancel: threading.Event | None,
) -> None:
    with open(part, mode) as out:
        emit(done, total)
        while True:
            _raise_if_cancelled(cancel, url, part)
            try:
                block = response.read(CHUNK_BYTES)
            except _NETWORK_ERRORS as exc:
                raise DownloadError(
                    f"download of {url} broke off after {done} bytes ({_reason(exc)}); "
                    "run the same command again to resume"
                ) from exc
            if not block:
                return
            out.write(block)
            done += len(block)
            emit(done, total)


def _check_complete(url: str, part: Path, remote: RemoteFile, total: int | None) -> None:
    size = part.stat().st_size
    if total is not None and size < total:
        raise DownloadError(
            f"download of {url} stopped at {size} of {total} bytes; "
            "run the same command again to resume"
        )
    if (total is not None and size > total) or (remote.bytes is not None and size != remote.bytes):
        part.unlink()
        expected = remote.bytes if remote.bytes is not None else total
        raise DownloadError(f"{url} sent {size} bytes but {expected} were expected; deleted it")
    if remote.sha256 is not None:
        digest = sha256_file(part)
        if digest != remote.sha256.lower():
            part.unlink()
            raise DownloadError(
                f"sha256 mismatch for {url}: got {digest}, expected {remote.sha256}; "
                "deleted the download"
            )


def _raise_if_cancelled(cancel: threading.Event | None, url: str, part: Path) -> None:
    if cancel is not None and cancel.is_set():
        kept = part.stat().st_size if part.is_file() else 0
        raise OperationCancelled(
            f"download of {url} cancelled; {kept} bytes kept in {part} to resume later"
        )


_NETWORK_ERRORS: tuple[type[BaseException], ...] = (
    urllib.error.URLError,
    http.client.HTTPException,
    TimeoutError,
    ConnectionError,
    OSError,
    ValueError,  # urllib raises it for malformed URLs ("unknown url type")
)


class NoConnection(DownloadError):
    """The server could not be reached at all: no name resolution, connection refused, network
    unreachable or no answer in time. The message says how to install the files from another
    machine (:func:`offline_message`)."""

    def __init__(self, urls: list[str], reason: str, hint: str = "") -> None:
        self.urls = list(urls)
        self.reason = reason
        self.hint = hint
        super().__init__(offline_message(self.urls, reason, hint))


def offline_message(urls: list[str], reason: str, hint: str = "") -> str:
    """One line for a user without a connection: what failed, and the offline install (the
    same words for the CLI and the GUI's first-run dialog)."""
    several = len(urls) > 1
    files = " and ".join(urls)
    command = "sam2-annotator models import " + ("ENCODER DECODER" if several else "FILE")
    return (
        f"cannot download {urls[0]}: this computer seems to have no internet connection "
        f"({reason}){hint}. To install the model from another machine: download {files} there, "
        f"copy {'both files' if several else 'the file'} to this computer (USB stick, network "
        f"share), then run `{command}` or use “Install from a file…” in the first-run dialog"
    )


#: errno values of a network that cannot be reached (besides refused connections and timeouts).
_OFFLINE_ERRNOS = frozenset(
    getattr(errno, name)
    for name in ("ENETUNREACH", "EHOSTUNREACH", "ENETDOWN", "ECONNREFUSED", "ETIMEDOUT")
    if hasattr(errno, name)
)


def is_offline(exc: BaseException) -> bool:
    """True when ``exc`` (from ``urlopen``) means the server was never reached."""
    reason = getattr(exc, "reason", None)
    for cause in (exc, reason):
        if isinstance(cause, socket.gaierror | ConnectionRefusedError | TimeoutError):
            return True
        if isinstance(cause, OSError) and cause.errno in _OFFLINE_ERRNOS:
            return True
    return False


def _reason(exc: BaseException) -> str:
    reason = getattr(exc, "reason", None) or exc
    text = str(reason).strip()
    if isinstance(reason, TimeoutError) or isinstance(exc, TimeoutError):
        return f"timed out ({text or 'no answer'})"
    return text or type(reason).__name__


def _hint() -> str:
    mirror = os.environ.get(MIRROR_ENV, "").strip()
    return f" (mirror {mirror} from ${MIRROR_ENV})" if mirror else ""


def _int_or_none(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


_RANGE_RE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_RANGE_TOTAL_RE = re.compile(r"bytes\s+(?:\*|\d+-\d+)/(\d+)")


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """``bytes START-END/TOTAL`` -> (START, TOTAL); Nones where absent."""
    match = _RANGE_RE.match(value or "")
    if not match:
        return None, None
    total = None if match.group(3) == "*" else int(match.group(3))
    return int(match.group(1)), total


def _range_total(value: str | None) -> int | None:
    match = _RANGE_TOTAL_RE.match(value or "")
    return int(match.group(1)) if match else None


# --------------------------------------------------------------------------- signatures


def _check_zip_signature(path: Path, url: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        raise DownloadError(f"{url} is not a zip archive ({describe_head(head)}); deleted it")


def _check_checkpoint_signature(path: Path, url: str) -> None:
    """``torch.save`` writes a zip archive (since PyTorch 1.6, and all of SAM2's checkpoints)."""
    with open(path, "rb") as fh:
        head = fh.read(len(ZIP_MAGIC))
    if head != ZIP_MAGIC:
        raise DownloadError(
            f"{url} is not a PyTorch checkpoint ({describe_head(head)}); deleted it"
        )


def _check_onnx_signature(path: Path, url: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head or head[0] != ONNX_FIRST_BYTE:
        raise DownloadError(f"{url} is not an ONNX model ({describe_head(head)}); deleted it")


def describe_head(head: bytes) -> str:
    """What a file that failed its signature check starts with, in words."""
    if not head:
        return "it is empty"
    if head.lstrip()[:1] in (b"<", b"{"):
        return "the server sent a web page or an error message instead"
    return f"it starts with {head[:8]!r}"


#: How to recognise each kind of remote file before trusting it.
SIGNATURES: dict[str, Callable[[Path, str], None]] = {
    "archive": _check_zip_signature,
    "encoder": _check_onnx_signature,
    "decoder": _check_onnx_signature,
    "checkpoint": _check_checkpoint_signature,
}
