"""Turn fetched files into an installed model folder: unpack, verify, install atomically.

The fetched files are unpacked (zip, guarded against path traversal, links and zip bombs) or
moved into a dot-prefixed staging folder under the models root; the folder is verified
(checksums, both graphs load in ONNX Runtime, a known contract) and given a ``manifest.json`` if
the archive had none; then ``os.replace`` moves it to ``<root>/<name>``: the only step that makes
a model visible, and an atomic one.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
import re
import shutil
import stat
import sys
import threading
import zipfile
import zlib
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from sam2_annotator import __version__
from sam2_annotator.engine.manifest import (
    MANIFEST_NAME,
    FileEntry,
    Manifest,
    Weights,
    sha256_file,
)
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.errors import DownloadError, OperationCancelled
from sam2_annotator.models.catalog import CatalogCheck, CatalogEntry
from sam2_annotator.models.verify import VerifyReport, verify_folder

#: Records keep the name of the public module, :mod:`sam2_annotator.models.download`.
log = logging.getLogger("sam2_annotator.models.download")

STAGING_PREFIX = ".staging-"
OLD_PREFIX = ".old-"
#: Refuse archives that would unpack to more than this (a corrupt or hostile zip).
MAX_UNPACKED_BYTES = 16 << 30


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
    """The one folder in ``tree`` holding ``*encoder*.onnx`` (the archive's root or a subfolder).

    Folders below it are its own parts (our exports keep the video graphs, one of them a
    ``memory_encoder.onnx``, in ``video/``), so the top one of nested candidates is the model.
    """
    folders = sorted({p.parent for p in tree.rglob("*encoder*.onnx")}, key=lambda p: len(p.parts))
    if folders and all(f.is_relative_to(folders[0]) for f in folders):
        folders = folders[:1]
    if len(folders) != 1:
        found = [str(p.relative_to(tree)) for p in tree.rglob("*.onnx")]
        raise DownloadError(
            f"{archive_name} must hold one folder with an *encoder*.onnx and a *decoder*.onnx; "
            f"found ONNX files {found}"
        )
    return folders[0]


# --------------------------------------------------------------------------- verify and install


def verify_and_describe(entry: CatalogEntry, folder: Path) -> VerifyReport:
    """Verify the staged folder and give it a manifest if the archive brought none."""
    report = verify_folder(folder)
    if report.manifest is not None:
        return report
    exporter = {
        "by": "third party (samexporter layout)",
        "decoder_contract": entry.decoder_contract,
        "source": entry.source.about,
        "catalog_name": entry.name,
        "urls": [entry.url(f) for f in entry.files],
        "downloaded_by": f"sam2-annotator {__version__}",
    }
    return describe_folder(folder, report, entry.variant, "checkpoint", exporter)


def describe_folder(
    folder: Path, report: VerifyReport, variant: str, weights: Weights, exporter: dict[str, Any]
) -> VerifyReport:
    """Write a ``manifest.json`` listing every file of the verified ``folder`` (sizes, sha256s),
    so that ``models verify`` can check them later; return the report with it."""
    files = {
        p.name: FileEntry(sha256=sha256_file(p), bytes=p.stat().st_size)
        for p in sorted(folder.iterdir())
        if p.is_file() and p.name != MANIFEST_NAME
    }
    manifest = Manifest(
        variant=variant,
        weights=weights,
        files=files,
        contract=report.contract,
        io={"encoder": report.encoder.to_json(), "decoder": report.decoder.to_json()},
        exporter=exporter,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )
    manifest.write(folder)
    model_files = ModelFiles(report.files.encoder, report.files.decoder, manifest)
    return replace(report, files=model_files, manifest_written=True)


def report_lines(report: VerifyReport, check: CatalogCheck, source: str = "") -> list[str]:
    """The install report: how the files compare with the catalog (the check that can fail),
    what the catalog says of the decoder, then what the verification found."""
    head = [f"source:   {source}"] if source else []
    head.append(f"catalog:  {check.text}")
    if check.entry is not None:
        contract = check.entry.contract
        head.append(f"decoder:  {contract.name}: {contract.text}")
    return head + report.lines()


def install_folder(folder: Path, target: Path) -> None:
    """Atomically put ``folder`` at ``target``; an existing install (``--force``) is swapped out
    first and restored if the swap fails."""
    old = None
    if target.exists():
        old = target.with_name(f"{OLD_PREFIX}{target.name}-{os.getpid()}")
        remove_tree(old)
        os.replace(target, old)
    try:
        os.replace(folder, target)
    except OSError as exc:
        if old is not None:
            os.replace(old, target)
        raise DownloadError(f"cannot install into {target}: {exc}") from exc
    if old is not None:
        remove_tree(old)


def rebase_report(report: VerifyReport, target: Path) -> VerifyReport:
    files = report.files
    moved = ModelFiles(target / files.encoder.name, target / files.decoder.name, files.manifest)
    return replace(report, folder=target, files=moved)


def discard(paths: Iterable[Path]) -> None:
    for path in paths:
        path.unlink(missing_ok=True)


def remove_leftovers(root: Path, name: str) -> None:
    """Staging folders of an earlier run that was killed (they are never installed)."""
    for prefix in (STAGING_PREFIX, OLD_PREFIX):
        for path in root.glob(f"{prefix}{name}-*"):
            log.info("removing the leftover %s", path)
            remove_tree(path)


def remove_tree(path: Path) -> None:
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
