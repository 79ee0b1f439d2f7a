"""Download, check and install a catalog model; a partial or failed download is never installed.

The steps, each of which can fail with one clear :class:`DownloadError` line naming the URL:

1. stream every remote file to ``<root>/.downloads/<file>.part`` (resuming with an HTTP ``Range``
   request when a ``.part`` exists; a server answering 200 instead of 206 restarts from zero);
2. check the length, the sha256 when the catalog knows it, and the file's signature (ZIP magic for
   archives, an ONNX protobuf header for bare graphs), then rename ``.part`` to the final name;
3. unpack (zip, guarded against path traversal and links) or move the files into a dot-prefixed
   staging folder under the models root;
4. verify the folder (checksums, both graphs load in ONNX Runtime, a known contract) and write a
   ``manifest.json`` if the archive had none;
5. ``os.replace`` the staging folder to ``<root>/<name>``: the only step that makes a model
   visible, and an atomic one.

A GUI runs :func:`download_model` on a worker thread with a ``progress`` callback (called on that
thread: forward it with a signal) and a :class:`threading.Event` to cancel; the CLI uses
:class:`TqdmProgress`. Only the standard library talks HTTP, so there is nothing to install.
"""

from __future__ import annotations

import datetime as _dt
import http.client
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import urllib.error
import urllib.request
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import IO, Any

from sam2_annotator import __version__
from sam2_annotator.engine.manifest import MANIFEST_NAME, FileEntry, Manifest, sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.errors import DownloadError, ModelError, OperationCancelled
from sam2_annotator.models.catalog import (
    MIRROR_ENV,
    CatalogEntry,
    RemoteFile,
    load_catalog,
    models_root,
)
from sam2_annotator.models.verify import VerifyReport, verify_folder

log = logging.getLogger(__name__)

DOWNLOADS_DIR = ".downloads"
PART_SUFFIX = ".part"
STAGING_PREFIX = ".staging-"
OLD_PREFIX = ".old-"
CHUNK_BYTES = 1 << 16
DEFAULT_TIMEOUT_S = 30.0
USER_AGENT = f"sam2-annotator/{__version__} (+urllib)"
#: Refuse archives that would unpack to more than this (a corrupt or hostile zip).
MAX_UNPACKED_BYTES = 16 << 30
ZIP_MAGIC = b"PK\x03\x04"
#: An ONNX ``ModelProto`` starts with field 1 (``ir_version``, varint): tag byte 0x08.
ONNX_FIRST_BYTE = 0x08


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report. ``total`` is None when the server does not say."""

    model: str
    file: str
    index: int  # 1-based position of this file in the model's file list
    count: int
    done: int
    total: int | None

    @property
    def fraction(self) -> float | None:
        return None if not self.total else min(1.0, self.done / self.total)


ProgressCallback = Callable[[DownloadProgress], None]


@dataclass(frozen=True)
class InstallResult:
    name: str
    path: Path
    #: None when the model was already installed and nothing was downloaded.
    report: VerifyReport | None

    @property
    def already_installed(self) -> bool:
        return self.report is None


# --------------------------------------------------------------------------- the public entry


def download_model(
    model: str | CatalogEntry,
    *,
    root: Path | None = None,
    force: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
) -> InstallResult:
    """Download, verify and install one catalog model into ``root / name``.

    Raises :class:`DownloadError` (network, HTTP, checksum, signature, archive or verification
    problems) or :class:`OperationCancelled` when ``cancel`` is set; in both cases nothing new is
    installed. Partial downloads stay in ``root/.downloads`` so the next call resumes them.
    """
    entry = load_catalog().get(model) if isinstance(model, str) else model
    root = Path(root) if root is not None else models_root()
    target = root / entry.name
    if target.is_dir() and not force:
        log.info("%s is already installed at %s", entry.name, target)
        return InstallResult(entry.name, target, None)
    try:
        fetched = _fetch_all(entry, root, progress, cancel, timeout)
        report = _assemble_and_install(entry, fetched, root, target, cancel)
    except OSError as exc:  # the local disk: full, read-only, permissions
        raise DownloadError(
            f"cannot write the download of {entry.name} under {root}: {exc}"
        ) from exc
    log.info("installed %s at %s", entry.name, target)
    return InstallResult(entry.name, target, report)


def _fetch_all(
    entry: CatalogEntry,
    root: Path,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    timeout: float,
) -> list[Path]:
    downloads = root / DOWNLOADS_DIR
    downloads.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(root, entry.name)
    fetched = []
    for index, remote in enumerate(entry.files, start=1):
        emit = _emitter(progress, entry.name, remote.filename, index, len(entry.files))
        dest = downloads / remote.filename
        fetched.append(fetch_file(entry.url(remote), dest, remote, emit, cancel, timeout))
    return fetched


def _assemble_and_install(
    entry: CatalogEntry,
    fetched: list[Path],
    root: Path,
    target: Path,
    cancel: threading.Event | None,
) -> VerifyReport:
    """Unpack into a staging folder, verify, install; the downloads go once they are used up
    (or proved useless). A cancel keeps them for the next try."""
    staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{entry.name}-", dir=root))
    try:
        folder = ASSEMBLERS[entry.archive](fetched, staging, cancel)
        report = _verify_and_describe(entry, folder)
        _install(folder, target)
    except (DownloadError, ModelError) as exc:
        _discard(fetched)
        message = str(exc) if isinstance(exc, DownloadError) else _unusable(entry, exc)
        raise DownloadError(message) from exc
    finally:
        _remove_tree(staging)
    _discard(fetched)
    return _rebase(report, target)


def _unusable(entry: CatalogEntry, exc: Exception) -> str:
    return f"the files downloaded for {entry.name} are not a usable model: {exc}"


def _emitter(
    progress: ProgressCallback | None, model: str, file: str, index: int, count: int
) -> Callable[[int, int | None], None]:
    def emit(done: int, total: int | None) -> None:
        if progress is not None:
            progress(DownloadProgress(model, file, index, count, done, total))

    return emit


# --------------------------------------------------------------------------- fetching one file


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
        raise DownloadError(f"{url} is not a zip archive ({_describe_head(head)}); deleted it")


def _check_onnx_signature(path: Path, url: str) -> None:
    with open(path, "rb") as fh:
        head = fh.read(16)
    if not head or head[0] != ONNX_FIRST_BYTE:
        raise DownloadError(f"{url} is not an ONNX model ({_describe_head(head)}); deleted it")


def _describe_head(head: bytes) -> str:
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
}


# --------------------------------------------------------------------------- assembling a folder


def _assemble_zip(fetched: list[Path], staging: Path, cancel: threading.Event | None) -> Path:
    (archive,) = fetched
    safe_extract(archive, staging, cancel)
    return locate_model_folder(staging, archive.name)


def _assemble_pair(fetched: list[Path], staging: Path, cancel: threading.Event | None) -> Path:
    for path in fetched:
        os.replace(path, staging / path.name)
    return staging


#: Turn the fetched files into one folder holding the encoder/decoder pair, per archive kind.
ASSEMBLERS: dict[str, Callable[[list[Path], Path, threading.Event | None], Path]] = {
    "zip": _assemble_zip,
    "onnx-pair": _assemble_pair,
}


def _is_junk(name: str) -> bool:
    """macOS resource forks would match ``*encoder*.onnx`` and break the folder."""
    parts = name.split("/")
    return parts[0] == "__MACOSX" or parts[-1].startswith("._")


def _safe_target(dest: Path, info: zipfile.ZipInfo, archive: Path) -> Path:
    name = info.filename.replace("\\", "/")
    mode = info.external_attr >> 16
    problem = None
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        problem = "an absolute path"
    elif any(part == ".." for part in name.split("/")):
        problem = "a path leaving the archive ('..')"
    elif stat.S_ISLNK(mode):
        problem = "a symbolic link"
    target = (dest / name).resolve()
    if problem is None and not target.is_relative_to(dest.resolve()):
        problem = "a path leaving the archive"
    if problem is not None:
        raise DownloadError(f"{archive.name} holds {problem}: {info.filename!r}; refusing it")
    return target


def safe_extract(archive: Path, dest: Path, cancel: threading.Event | None = None) -> list[Path]:
    """Extract regular files only, refusing absolute paths, ``..``, links and zip bombs."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = [i for i in zf.infolist() if not i.is_dir() and not _is_junk(i.filename)]
            unpacked = sum(i.file_size for i in members)
            if unpacked > MAX_UNPACKED_BYTES:
                raise DownloadError(f"{archive.name} would unpack to {unpacked} bytes; refusing it")
            targets = [_safe_target(dest, info, archive) for info in members]
            for info, target in zip(members, targets, strict=True):
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as out:
                    _copy_stream(src, out, cancel, archive)
    except (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError) as exc:
        raise DownloadError(f"the archive {archive.name} is corrupt: {exc}") from exc
    return targets


def _copy_stream(
    src: IO[bytes], out: IO[bytes], cancel: threading.Event | None, archive: Path
) -> None:
    while block := src.read(1 << 20):
        if cancel is not None and cancel.is_set():
            raise OperationCancelled(f"unpacking {archive.name} cancelled")
        out.write(block)


def locate_model_folder(tree: Path, archive_name: str) -> Path:
    """The one folder in ``tree`` holding ``*encoder*.onnx`` (the archive's root or a subfolder)."""
    folders = sorted({p.parent for p in tree.rglob("*encoder*.onnx")})
    if len(folders) != 1:
        found = [str(p.relative_to(tree)) for p in tree.rglob("*.onnx")]
        raise DownloadError(
            f"{archive_name} must hold one folder with an *encoder*.onnx and a *decoder*.onnx; "
            f"found ONNX files {found}"
        )
    return folders[0]


# --------------------------------------------------------------------------- verify and install


def _verify_and_describe(entry: CatalogEntry, folder: Path) -> VerifyReport:
    """Verify the staged folder and give it a manifest if the archive brought none."""
    report = verify_folder(folder)
    if report.manifest is not None:
        return report
    manifest = _manifest_for(entry, folder, report)
    manifest.write(folder)
    files = ModelFiles(report.files.encoder, report.files.decoder, manifest)
    return replace(report, files=files, checked_sha256=tuple(sorted(manifest.files)))


def _manifest_for(entry: CatalogEntry, folder: Path, report: VerifyReport) -> Manifest:
    files = {
        p.name: FileEntry(sha256=sha256_file(p), bytes=p.stat().st_size)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST_NAME
    }
    return Manifest(
        variant=entry.variant,
        weights="checkpoint",
        files=files,
        contract=report.contract,
        io={"encoder": report.encoder.to_json(), "decoder": report.decoder.to_json()},
        exporter={
            "by": "third party (samexporter layout)",
            "source": entry.source.about,
            "catalog_name": entry.name,
            "urls": [entry.url(f) for f in entry.files],
            "downloaded_by": f"sam2-annotator {__version__}",
        },
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )


def _install(folder: Path, target: Path) -> None:
    """Atomically put ``folder`` at ``target``; an existing install (``--force``) is swapped out
    first and restored if the swap fails."""
    old = None
    if target.exists():
        old = target.with_name(f"{OLD_PREFIX}{target.name}-{os.getpid()}")
        _remove_tree(old)
        os.replace(target, old)
    try:
        os.replace(folder, target)
    except OSError as exc:
        if old is not None:
            os.replace(old, target)
        raise DownloadError(f"cannot install into {target}: {exc}") from exc
    if old is not None:
        _remove_tree(old)


def _rebase(report: VerifyReport, target: Path) -> VerifyReport:
    files = report.files
    moved = ModelFiles(target / files.encoder.name, target / files.decoder.name, files.manifest)
    return replace(report, folder=target, files=moved)


def _discard(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def _remove_leftovers(root: Path, name: str) -> None:
    """Staging folders of an earlier run that was killed (they are never installed)."""
    for prefix in (STAGING_PREFIX, OLD_PREFIX):
        for path in root.glob(f"{prefix}{name}-*"):
            log.info("removing the leftover %s", path)
            _remove_tree(path)


def _remove_tree(path: Path) -> None:
    """Best-effort removal of our own staging folders; failures are logged, not hidden."""
    if not path.exists():
        return
    if sys.version_info >= (3, 12):

        def on_exc(_func: Any, failed: str, exc: BaseException) -> None:
            log.warning("could not remove %s: %s", failed, exc)

        shutil.rmtree(path, onexc=on_exc)
    else:

        def on_error(_func: Any, failed: str, exc_info: Any) -> None:
            log.warning("could not remove %s: %s", failed, exc_info[1])

        shutil.rmtree(path, onerror=on_error)


# --------------------------------------------------------------------------- a tqdm progress bar


class TqdmProgress:
    """A :data:`ProgressCallback` drawing one tqdm bar per file on stderr.

    ``disable=None`` lets tqdm hide the bar when stderr is not a terminal.
    """

    def __init__(self, disable: bool | None = None) -> None:
        self._disable = disable
        self._bar: Any = None
        self._file: str | None = None
        self._last = 0

    def __call__(self, p: DownloadProgress) -> None:
        from tqdm import tqdm

        if p.file != self._file:
            self.close()
            self._file = p.file
            self._bar = tqdm(
                total=p.total,
                initial=p.done,
                desc=f"{p.file} [{p.index}/{p.count}]",
                unit="B",
                unit_scale=True,
                unit_divisor=1024,
                disable=self._disable,
                file=sys.stderr,
            )
            self._last = p.done
            return
        if p.done < self._last:  # the server ignored Range: the file restarts at zero
            self._bar.reset(total=p.total)
            self._last = 0
        self._bar.update(p.done - self._last)
        self._last = p.done

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> TqdmProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
