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

Steps 1-2 are :mod:`.fetch`, steps 3-5 :mod:`.install`; this module runs them in order and
re-exports their public names. A GUI runs :func:`download_model` on a worker thread with a
``progress`` callback (called on that thread: forward it with a signal) and a
:class:`threading.Event` to cancel; the CLI uses :class:`TqdmProgress`. Only the standard library
talks HTTP, so there is nothing to install.
"""

from __future__ import annotations

import logging
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from sam2_annotator.errors import DownloadError, ModelError
from sam2_annotator.models.catalog import (
    CatalogCheck,
    CatalogEntry,
    RemoteFile,
    download_check,
    load_catalog,
    models_root,
)
from sam2_annotator.models.fetch import (
    CHUNK_BYTES,
    DEFAULT_TIMEOUT_S,
    ONNX_FIRST_BYTE,
    PART_SUFFIX,
    SIGNATURES,
    USER_AGENT,
    ZIP_MAGIC,
    NoConnection,
    fetch_file,
    offline_message,
)
from sam2_annotator.models.install import (
    ASSEMBLERS,
    MAX_UNPACKED_BYTES,
    OLD_PREFIX,
    STAGING_PREFIX,
    discard,
    install_folder,
    locate_model_folder,
    rebase_report,
    remove_leftovers,
    remove_tree,
    report_lines,
    safe_extract,
    verify_and_describe,
)
from sam2_annotator.models.verify import VerifyReport

__all__ = [
    "ASSEMBLERS",
    "CHUNK_BYTES",
    "DEFAULT_TIMEOUT_S",
    "DOWNLOADS_DIR",
    "MAX_UNPACKED_BYTES",
    "OLD_PREFIX",
    "ONNX_FIRST_BYTE",
    "PART_SUFFIX",
    "SIGNATURES",
    "STAGING_PREFIX",
    "USER_AGENT",
    "ZIP_MAGIC",
    "DownloadProgress",
    "InstallResult",
    "NoConnection",
    "ProgressCallback",
    "TqdmProgress",
    "download_model",
    "fetch_file",
    "locate_model_folder",
    "offline_message",
    "safe_extract",
    "unverified_warning",
]

log = logging.getLogger(__name__)

DOWNLOADS_DIR = ".downloads"


@dataclass(frozen=True)
class DownloadProgress:
    """One progress report. ``total`` is None when the server does not say."""

    model: str
    file: str
    index: int  # 1-based position of this file in the model's file list
    count: int
    done: int
    total: int | None
    #: False when the catalog has no sha256 for this file: it can only be checked for format.
    verified: bool = True

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
    #: How the downloaded files compared with the catalog (None when nothing was downloaded).
    check: CatalogCheck | None = None

    @property
    def already_installed(self) -> bool:
        return self.report is None

    @property
    def verified(self) -> bool:
        return self.check is not None and self.check.verified

    def lines(self) -> list[str]:
        """The install report: the catalog comparison, the decoder, the verification."""
        if self.report is None or self.check is None:
            return []
        return report_lines(self.report, self.check)


def unverified_warning(entry: CatalogEntry) -> str | None:
    """What to say before downloading files the catalog has no sha256 for (None: all known)."""
    files = entry.unverified_files
    if not files:
        return None
    names = ", ".join(f.filename for f in files)
    return (
        f"{entry.name} is UNVERIFIED: the catalog has no sha256 for {names} "
        f"({files[0].unverified}), so the download can only be checked for its format and I/O "
        "contract, not its content"
    )


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
    warning = unverified_warning(entry)
    if warning is not None:
        log.warning("%s", warning)
    try:
        try:
            fetched = _fetch_all(entry, root, progress, cancel, timeout)
        except NoConnection as exc:  # name every file to fetch elsewhere, not just the first
            urls = [entry.url(f) for f in entry.files]
            raise NoConnection(urls, exc.reason, exc.hint) from exc
        report = _assemble_and_install(entry, fetched, root, target, cancel)
    except OSError as exc:  # the local disk: full, read-only, permissions
        raise DownloadError(
            f"cannot write the download of {entry.name} under {root}: {exc}"
        ) from exc
    check = download_check(entry)
    log.info("installed %s at %s (%s)", entry.name, target, check.text)
    return InstallResult(entry.name, target, report, check)


def _fetch_all(
    entry: CatalogEntry,
    root: Path,
    progress: ProgressCallback | None,
    cancel: threading.Event | None,
    timeout: float,
) -> list[Path]:
    downloads = root / DOWNLOADS_DIR
    downloads.mkdir(parents=True, exist_ok=True)
    remove_leftovers(root, entry.name)
    fetched = []
    for index, remote in enumerate(entry.files, start=1):
        emit = _emitter(progress, entry.name, remote, index, len(entry.files))
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
        report = verify_and_describe(entry, folder)
        install_folder(folder, target)
    except (DownloadError, ModelError) as exc:
        discard(fetched)
        message = str(exc) if isinstance(exc, DownloadError) else _unusable(entry, exc)
        raise DownloadError(message) from exc
    finally:
        remove_tree(staging)
    discard(fetched)
    return rebase_report(report, target)


def _unusable(entry: CatalogEntry, exc: Exception) -> str:
    return f"the files downloaded for {entry.name} are not a usable model: {exc}"


def _emitter(
    progress: ProgressCallback | None, model: str, remote: RemoteFile, index: int, count: int
) -> Callable[[int, int | None], None]:
    def emit(done: int, total: int | None) -> None:
        if progress is not None:
            progress(
                DownloadProgress(model, remote.filename, index, count, done, total, remote.verified)
            )

    return emit


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
