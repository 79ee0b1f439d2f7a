"""Install a model from files on disk: a model zip, a model folder, or an encoder/decoder pair.

For machines without a connection (the files came on a USB stick or a network share): the same
archives and ONNX files the catalog downloads, with the same checks as a download, and the source
is only ever read. The steps, each of which fails with one :class:`ModelError` line and installs
nothing:

1. find what the source is: a ``.zip`` (ZIP signature), a folder (its one encoder/decoder pair,
   :func:`~sam2_annotator.engine.model_files.candidate_pairs`), one ``.onnx`` (its partner in the
   same folder) or two ``.onnx`` files; every ONNX file must carry the ONNX signature;
2. unpack (with the download's guards against traversal, links and zip bombs) or copy the files
   into a dot-prefixed staging folder under the models root, hashing them;
3. compare with the catalog: a file whose sha256 is a catalog file's is *verified*; a file named
   like a catalog file must have that file's sha256 and size, or it is refused (corrupt,
   truncated or another version); anything else is installed but said to be *unverified*;
4. verify the staged folder (both graphs load in ONNX Runtime, a known I/O contract) and give it a
   ``manifest.json`` if it brought none;
5. ``os.replace`` the staging folder to ``<root>/<name>``, the one step that makes it visible.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sam2_annotator import __version__
from sam2_annotator.engine.manifest import MANIFEST_NAME, Manifest, sha256_file
from sam2_annotator.engine.model_files import ModelFiles, candidate_pairs
from sam2_annotator.errors import DownloadError, ModelError, OperationCancelled
from sam2_annotator.models.catalog import (
    Catalog,
    CatalogCheck,
    CatalogEntry,
    load_catalog,
    models_root,
)
from sam2_annotator.models.fetch import ONNX_FIRST_BYTE, ZIP_MAGIC, describe_head
from sam2_annotator.models.install import (
    STAGING_PREFIX,
    describe_folder,
    install_folder,
    locate_model_folder,
    rebase_report,
    remove_tree,
    report_lines,
    safe_extract,
)
from sam2_annotator.models.verify import VerifyReport, load_io, verify_folder

log = logging.getLogger(__name__)

#: ``progress(done, total, text)`` in bytes, called on the importing thread.
ImportProgress = Callable[[int, int, str], None]
CancelledFn = Callable[[], bool]

COPY_BLOCK = 1 << 20


@dataclass(frozen=True)
class ImportResult:
    name: str
    path: Path
    source: str
    report: VerifyReport
    check: CatalogCheck

    @property
    def verified(self) -> bool:
        return self.check.verified

    def lines(self) -> list[str]:
        """The install report: the source, the catalog comparison, the verification."""
        return report_lines(self.report, self.check, self.source)


@dataclass(frozen=True)
class _Plan:
    kind: str  # "zip" or "pair"
    files: tuple[Path, ...]  # the zip, or the two ONNX files (encoder first when the names say)
    label: str  # the source, as the user named it


# --------------------------------------------------------------------------- the public entry


def import_model(
    sources: str | Path | Sequence[str | Path],
    *,
    name: str | None = None,
    root: Path | None = None,
    force: bool = False,
    rename_if_exists: bool = False,
    progress: ImportProgress | None = None,
    cancelled: CancelledFn | None = None,
    catalog: Catalog | None = None,
) -> ImportResult:
    """Install a model zip, a model folder or an encoder/decoder pair into ``root / name``.

    ``name`` defaults to the matching catalog entry's name, else the zip's or the files' stem.
    An existing install is an error unless ``force`` (replace it) or ``rename_if_exists`` (use
    ``NAME-2``, ``NAME-3``...). Raises :class:`ModelError` or :class:`OperationCancelled`; the
    sources are never written to.
    """
    paths = [Path(sources)] if isinstance(sources, str | Path) else [Path(s) for s in sources]
    plan = plan_import(paths)
    catalog = catalog if catalog is not None else load_catalog()
    root = Path(root) if root is not None else models_root()
    if name is not None:
        _check_name(name)
        _check_free(root / name, force or rename_if_exists)
    emit = progress or (lambda done, total, text: None)
    try:
        root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}import-", dir=root))
    except OSError as exc:
        raise ModelError(f"cannot write into the models folder {root}: {exc}") from exc
    try:
        if plan.kind == "zip":
            folder, check = _stage_zip(plan, staging, catalog, emit, cancelled)
        else:
            folder, check = _stage_pair(plan, staging, catalog, emit, cancelled)
        name = name or (check.entry.name if check.entry else _default_name(plan))
        _check_name(name)
        target = root / name
        if target.exists() and rename_if_exists and not force:
            target = _free_name(root, name)
        _check_free(target, force)
        emit(0, 0, "checking the graphs…")
        report = _verify(folder, plan, staging)
        report = _describe(folder, report, check, plan, target.name)
        _raise_if_cancelled(cancelled)
        install_folder(folder, target)
    except DownloadError as exc:  # the archive guards and the final move speak "download"
        raise ModelError(_in_source_terms(str(exc), staging, plan)) from exc
    except OSError as exc:
        raise ModelError(f"cannot install {plan.label} under {root}: {exc}") from exc
    finally:
        remove_tree(staging)
    log.info("imported %s from %s (%s)", target, plan.label, check.text)
    return ImportResult(target.name, target, plan.label, rebase_report(report, target), check)


# --------------------------------------------------------------------------- what the source is


def plan_import(paths: Sequence[Path]) -> _Plan:
    """Classify the source or raise one clear line (missing file, not a model file...)."""
    if not 1 <= len(paths) <= 2:
        raise ModelError(
            "give one model .zip, one model folder, or the encoder and decoder .onnx files"
        )
    for path in paths:
        if not path.exists():
            raise ModelError(f"no such file or folder: {path}")
    label = " + ".join(str(p) for p in paths)
    if len(paths) == 2:
        for path in paths:
            if path.is_dir():
                raise ModelError(f"{path} is a folder; give two .onnx files or one folder")
            _check_onnx(path)
        encoder, decoder = paths
        if _looks_like("decoder", encoder.name) and _looks_like("encoder", decoder.name):
            encoder, decoder = decoder, encoder
        return _Plan("pair", (encoder, decoder), label)
    (path,) = paths
    if path.is_dir():
        return _Plan("pair", _one_pair(path, candidate_pairs(path)), label)
    head = _head(path)
    if head.startswith(ZIP_MAGIC):
        return _Plan("zip", (path,), label)
    if path.suffix.lower() == ".zip":
        raise ModelError(f"{path} is not a zip archive ({describe_head(head)})")
    if path.suffix.lower() in (".pt", ".pth", ".ckpt"):
        raise ModelError(
            f"{path} is a PyTorch checkpoint, not an ONNX model: convert it with "
            "`sam2-annotator models export --checkpoint FILE` first"
        )
    _check_onnx(path)
    pairs = [pair for pair in candidate_pairs(path.parent) if path in pair]
    return _Plan("pair", _one_pair(path, pairs, of_file=True), label)


def _one_pair(
    source: Path, pairs: list[tuple[Path, Path]], of_file: bool = False
) -> tuple[Path, Path]:
    if len(pairs) == 1:
        return pairs[0]
    folder = source.parent if of_file else source
    if not pairs:
        if of_file:
            raise ModelError(
                f"{source} has no partner in {folder}: give the encoder and the decoder file"
            )
        try:
            ModelFiles.from_folder(folder)  # its error names what the folder holds
        except ModelError as exc:
            raise ModelError(f"{folder} is not a model folder: {exc}") from exc
    listed = "; ".join(f"{e.name} + {d.name}" for e, d in pairs)
    raise ModelError(
        f"{folder} holds several encoder/decoder pairs ({listed}); give the two files, e.g. "
        f"sam2-annotator models import {pairs[0][0]} {pairs[0][1]}"
    )


def _head(path: Path, size: int = 16) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(size)
    except OSError as exc:
        raise ModelError(f"cannot read {path}: {exc}") from exc


def _check_onnx(path: Path) -> None:
    head = _head(path)
    if not head or head[0] != ONNX_FIRST_BYTE:
        raise ModelError(f"{path} is not an ONNX model ({describe_head(head)})")


def _looks_like(role: str, name: str) -> bool:
    lowered = name.lower()
    return role in lowered or (role == "encoder" and lowered.endswith("_preprocess.onnx"))


# --------------------------------------------------------------------------- staging


def _stage_zip(
    plan: _Plan,
    staging: Path,
    catalog: Catalog,
    emit: ImportProgress,
    cancelled: CancelledFn | None,
) -> tuple[Path, CatalogCheck]:
    (archive,) = plan.files
    digest = _hash(archive, emit, cancelled)
    check = match_catalog(catalog, [(archive, digest)])
    emit(0, 0, f"unpacking {archive.name}…")
    safe_extract(archive, staging, _CancelFlag(cancelled))
    if not any(staging.rglob("*.onnx")):
        found = sorted(str(p.relative_to(staging)) for p in staging.rglob("*") if p.is_file())
        raise ModelError(
            f"{archive} is not a model archive: it holds no .onnx file (it holds {found[:5]})"
        )
    try:
        folder = locate_model_folder(staging, archive.name)
    except DownloadError as exc:
        raise ModelError(f"{archive} is not a model archive: {exc}") from exc
    pairs = candidate_pairs(folder)
    if len(pairs) > 1:
        listed = "; ".join(f"{e.name} + {d.name}" for e, d in pairs)
        raise ModelError(
            f"{archive} holds several encoder/decoder pairs ({listed}); unzip it and give the "
            "two files: sam2-annotator models import ENCODER DECODER"
        )
    if check.entry is None and len(pairs) == 1:  # an unknown zip of catalog graphs?
        inner = match_catalog(catalog, [(p, sha256_file(p)) for p in pairs[0]])
        if inner.verified:
            check = inner
    return folder, check


def _stage_pair(
    plan: _Plan,
    staging: Path,
    catalog: Catalog,
    emit: ImportProgress,
    cancelled: CancelledFn | None,
) -> tuple[Path, CatalogCheck]:
    encoder, decoder = plan.files
    extra = _manifest_files(encoder, decoder)
    total = sum(p.stat().st_size for p in (encoder, decoder, *extra))
    done = 0
    digests = []
    for path in (encoder, decoder, *extra):
        digest, done = _copy(path, staging / path.name, emit, done, total, cancelled)
        digests.append((path, digest))
    check = match_catalog(catalog, digests[:2])
    return staging, check


def _manifest_files(encoder: Path, decoder: Path) -> list[Path]:
    """A folder of our exporter: its manifest and every file it lists come along (and are
    checked against it), when it describes exactly this pair."""
    folder = encoder.parent
    if decoder.parent != folder or not (folder / MANIFEST_NAME).is_file():
        return []
    try:
        manifest = Manifest.read(folder)
    except ModelError:
        return []
    names = set(manifest.files) if manifest else set()
    if not {encoder.name, decoder.name} <= names or not all((folder / n).is_file() for n in names):
        return []
    return [folder / n for n in sorted(names - {encoder.name, decoder.name})] + [
        folder / MANIFEST_NAME
    ]


def _copy(
    src: Path,
    dst: Path,
    emit: ImportProgress,
    done: int,
    total: int,
    cancelled: CancelledFn | None,
) -> tuple[str, int]:
    """Copy ``src`` to ``dst``, hashing what was written; returns (sha256, bytes done so far)."""
    digest = hashlib.sha256()
    with open(src, "rb") as fin, open(dst, "wb") as fout:
        while block := fin.read(COPY_BLOCK):
            _raise_if_cancelled(cancelled)
            digest.update(block)
            fout.write(block)
            done += len(block)
            emit(done, total, f"copying {src.name}")
    return digest.hexdigest(), done


def _hash(path: Path, emit: ImportProgress, cancelled: CancelledFn | None) -> str:
    digest = hashlib.sha256()
    total, done = path.stat().st_size, 0
    with open(path, "rb") as fh:
        while block := fh.read(COPY_BLOCK):
            _raise_if_cancelled(cancelled)
            digest.update(block)
            done += len(block)
            emit(done, total, f"checking {path.name}")
    return digest.hexdigest()


def _raise_if_cancelled(cancelled: CancelledFn | None) -> None:
    if cancelled is not None and cancelled():
        raise OperationCancelled("model import cancelled; nothing was installed")


class _CancelFlag:
    """A ``threading.Event`` look-alike over a ``cancelled()`` callable (for safe_extract)."""

    def __init__(self, cancelled: CancelledFn | None) -> None:
        self._cancelled = cancelled

    def is_set(self) -> bool:
        return self._cancelled is not None and self._cancelled()


# --------------------------------------------------------------------------- the catalog


def match_catalog(catalog: Catalog, files: list[tuple[Path, str]]) -> CatalogCheck:
    """Compare ``(path, sha256)`` with the catalog's files, by sha256 and by file name.

    A name match whose sha256 (or size) differs from the catalog's is refused: the file is
    corrupt, truncated or another version than the one the catalog describes.
    """
    by_sha = {
        r.sha256.lower(): (e, r) for e in catalog.entries for r in e.files if r.sha256 is not None
    }
    by_name = {r.filename: (e, r) for e in catalog.entries for r in e.files}
    hits: list[tuple[CatalogEntry | None, bool]] = []
    for path, digest in files:
        if digest in by_sha:
            hits.append((by_sha[digest][0], True))
            continue
        if path.name not in by_name:
            hits.append((None, False))
            continue
        entry, remote = by_name[path.name]
        size = path.stat().st_size
        if remote.sha256 is not None or (remote.bytes is not None and remote.bytes != size):
            got, want = (
                (f"sha256 {digest}", f"{remote.sha256}")
                if remote.sha256 is not None
                else (f"{size} bytes", f"{remote.bytes}")
            )
            raise ModelError(
                f"{path} is named like {remote.filename} of the catalog's {entry.name} but does "
                f"not match it ({got}, expected {want}): the file is corrupt, incomplete or "
                "another version; nothing was installed"
            )
        hits.append((entry, False))
    names = ", ".join(path.name for path, _digest in files)
    entries = {e.name: e for e, _ok in hits if e is not None}
    if len(entries) == 1 and all(e is not None for e, _ok in hits):
        (entry,) = entries.values()
        if all(ok for _e, ok in hits):
            return CatalogCheck(entry, True, f"sha256 matches the catalog's {entry.name} ({names})")
        return CatalogCheck(
            entry,
            False,
            f"UNVERIFIED: named like the catalog's {entry.name}, but the catalog lists no "
            f"sha256 for {names}; only its format and I/O contract were checked",
        )
    if not entries:
        text = (
            f"UNVERIFIED: {names} not in the catalog (no name or sha256 matches); only its "
            "format and I/O contract were checked"
        )
    else:
        text = f"UNVERIFIED: only some of {names} match the catalog ({', '.join(entries)})"
    return CatalogCheck(None, False, text)


# --------------------------------------------------------------------------- verify and name


def _verify(folder: Path, plan: _Plan, staging: Path) -> VerifyReport:
    try:
        if plan.kind == "pair":
            _name_the_pair(folder, plan)
        return verify_folder(folder)
    except ModelError as exc:
        message = _in_source_terms(str(exc), staging, plan)
        raise ModelError(f"{plan.label} is not a usable model: {message}") from exc


def _name_the_pair(folder: Path, plan: _Plan) -> None:
    """Make the staged pair findable by the folder layouts: keep the names when they already
    say which is which, else learn the roles from the graphs' I/O and rename them."""
    first, second = (folder / p.name for p in plan.files)
    if first.name == second.name:
        raise ModelError(f"the encoder and the decoder have the same name, {first.name}")
    try:
        found = ModelFiles.from_folder(folder)
    except ModelError:
        found = None
    if found is not None and {found.encoder, found.decoder} == {first, second}:
        return
    from sam2_annotator.engine.contracts import detect_contract

    ios = {p: load_io(p) for p in (first, second)}
    problems: list[ModelError] = []
    for encoder, decoder in ((first, second), (second, first)):
        try:
            detect_contract(
                ios[encoder].inputs, ios[encoder].outputs, ios[decoder].inputs, ios[decoder].outputs
            )
        except ModelError as exc:
            problems.append(exc)
            continue
        os.replace(encoder, folder / "encoder.tmp")
        os.replace(decoder, folder / "decoder.tmp")
        os.replace(folder / "encoder.tmp", folder / "encoder.onnx")
        os.replace(folder / "decoder.tmp", folder / "decoder.onnx")
        return
    raise problems[0]


def _describe(
    folder: Path, report: VerifyReport, check: CatalogCheck, plan: _Plan, name: str
) -> VerifyReport:
    if report.manifest is not None:
        return report
    entry = check.entry
    exporter = {
        "by": "third party" if entry is None else "third party (samexporter layout)",
        "source": entry.source.about if entry else "",
        "catalog_name": entry.name if entry else None,
        "catalog_verified": check.verified,
        "imported_from": plan.label,
        "imported_by": f"sam2-annotator {__version__}",
    }
    variant = entry.variant if entry else name
    weights = "checkpoint" if entry else "unknown"
    return describe_folder(folder, report, variant, weights, exporter)


def _default_name(plan: _Plan) -> str:
    if plan.kind == "zip":
        return plan.files[0].stem
    encoder, decoder = (p.name.removesuffix(".onnx") for p in plan.files)
    common = _common_prefix(encoder, decoder)
    base = re.sub(r"[._-]image$", "", common.rstrip("._- "))
    rest = decoder[len(common) :]
    extra = re.sub(r"(^|[._-])(image|decoder|dec)(?=$|[._-])", "", rest).strip("._- ")
    base = base or plan.files[0].parent.name or "imported-model"
    return f"{base}-{extra}" if extra else base


def _common_prefix(a: str, b: str) -> str:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _check_name(name: str) -> None:
    if not name or name.startswith(".") or "/" in name or "\\" in name or name != name.strip():
        raise ModelError(f"{name!r} cannot be a model name (no slashes, no leading dot)")


def _check_free(target: Path, force: bool) -> None:
    if target.exists() and not force:
        raise ModelError(
            f"a model named {target.name} is already installed at {target}; pass --force to "
            "replace it or --name to choose another name"
        )


def _free_name(root: Path, name: str) -> Path:
    for n in range(2, 1000):
        target = root / f"{name}-{n}"
        if not target.exists():
            return target
    raise ModelError(f"too many models named {name}-N in {root}")


def _in_source_terms(message: str, staging: Path, plan: _Plan) -> str:
    """Error text naming the user's files instead of our staging folder."""
    if plan.kind == "zip":
        return message.replace(str(staging), str(plan.files[0]))
    for path in plan.files:
        message = message.replace(str(staging / path.name), str(path))
    return message.replace(str(staging), str(plan.files[0].parent))


__all__ = [
    "CatalogCheck",
    "ImportResult",
    "import_model",
    "match_catalog",
    "plan_import",
]
