"""The GUI's one door to the model catalog and downloader (:mod:`sam2_annotator.models`).

Kept thin and in one place so the dialogs do not depend on the catalog's internals.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from sam2_annotator.engine.model_files import ModelFiles, candidate_pairs
from sam2_annotator.errors import ModelError, UserError
from sam2_annotator.models.catalog import CatalogEntry, installed_models, load_catalog, models_root
from sam2_annotator.models.download import DownloadProgress, download_model, unverified_warning
from sam2_annotator.models.importing import import_model
from sam2_annotator.models.locate import default_model

log = logging.getLogger(__name__)

#: The catalog model suggested first (fast on a CPU).
RECOMMENDED = "sam2.1_hiera_tiny"


@dataclass(frozen=True)
class CatalogChoice:
    name: str
    size_text: str  # "~117 MB" or "size unknown"
    note: str
    installed: bool
    #: The decoder contract in one word ("exact", "multimask-only") and whether every file
    #: has a sha256 in the catalog.
    decoder: str = "exact"
    verified: bool = True
    #: What the decoder does and how the download is checked, in sentences (shown under the list).
    details: str = ""

    @property
    def label(self) -> str:
        state = "installed" if self.installed else self.size_text
        note = f" - {self.note}" if self.note else ""
        tags = f"{self.decoder} decoder" + ("" if self.verified else ", UNVERIFIED")
        return f"{self.name} ({state}){note} [{tags}]"


def catalog_choices() -> list[CatalogChoice]:
    """Every downloadable model, the recommended one first."""
    root = models_root()
    choices = [
        CatalogChoice(
            e.name,
            e.size_text,
            e.note,
            (root / e.name).is_dir(),
            e.contract.short,
            e.verified,
            _details(e),
        )
        for e in load_catalog().entries
    ]
    return sorted(choices, key=lambda c: c.name != RECOMMENDED)


def _details(entry: CatalogEntry) -> str:
    warning = unverified_warning(entry)
    check = f"{warning}." if warning else "Download checked against the catalog's sha256."
    return f"Decoder: {entry.contract.text}. {check}"


def models_folder() -> Path:
    return models_root()


def usable_model_folder(folder: Path) -> str | None:
    """``None`` if ``folder`` holds an encoder/decoder pair, else the reason it does not."""
    try:
        ModelFiles.from_folder(folder)
    except ModelError as exc:
        return str(exc)
    return None


def first_installed_model() -> Path | None:
    """The model to use when none is configured: ``$SAM2_ANNOTATOR_MODEL``, a model bundled with
    the installer, or an installed one (the recommended one first); ``None`` if none is usable."""
    chosen = default_model()
    if chosen is not None and usable_model_folder(chosen) is None:
        return chosen
    try:
        folders = installed_models()
    except OSError as exc:
        log.warning("cannot list installed models: %s", exc)
        return None
    usable = [f for f in folders if usable_model_folder(f) is None]
    usable.sort(key=lambda f: f.name != RECOMMENDED)
    return usable[0] if usable else None


def export_command(config: str = "sam2.1_hiera_t", checkpoint: str = "sam2.1_hiera_tiny.pt") -> str:
    """The command that exports an official checkpoint into the models folder."""
    out = models_root() / "sam2.1_hiera_tiny"
    return (
        f'sam2-annotator models export --config {config} --checkpoint "{checkpoint}" --out "{out}"'
    )


ProgressFn = Callable[[float | None, str], None]


def download(name: str, progress: ProgressFn, cancel: threading.Event) -> Path:
    """Download and install ``name``; returns its folder. Call from a worker thread.

    ``progress(fraction or None, text)`` is called on that thread. Raises
    :class:`~sam2_annotator.errors.UserError` subclasses (download failed, cancelled).
    """

    def report(p: DownloadProgress) -> None:
        done_mb = p.done / 1e6
        total = f" of {p.total / 1e6:.0f}" if p.total else ""
        check = "" if p.verified else " - UNVERIFIED: the catalog has no sha256 for this file"
        progress(p.fraction, f"{p.file} ({p.index}/{p.count}): {done_mb:.0f}{total} MB{check}")

    result = download_model(name, progress=report, cancel=cancel)
    problem = usable_model_folder(result.path)
    if problem is not None:
        raise UserError(f"the downloaded model is not usable: {problem}")
    return result.path


# --------------------------------------------------------------------------- files on disk

#: What the "Install from a file…" picker offers.
MODEL_FILE_FILTER = "Model files (*.zip *.onnx);;All files (*)"


@dataclass(frozen=True)
class PairChoice:
    """One encoder/decoder pair a folder offers."""

    encoder: Path
    decoder: Path

    @property
    def label(self) -> str:
        return f"{self.encoder.name} + {self.decoder.name}"


def model_pairs(folder: Path) -> list[PairChoice]:
    """Every encoder/decoder pair in ``folder`` (the CLI's folder detection); several for e.g.
    ONNX Runtime's export with a single-mask and a multimask decoder."""
    return [PairChoice(e, d) for e, d in candidate_pairs(folder)]


def pairs_with(file: Path) -> list[PairChoice]:
    """The pairs of ``file``'s folder that include it (one .onnx picked: find its partner)."""
    return [p for p in model_pairs(file.parent) if file in (p.encoder, p.decoder)]


@dataclass(frozen=True)
class InstalledModel:
    folder: Path
    verified: bool
    #: The catalog comparison, one line ("sha256 matches ..." or "UNVERIFIED: ...").
    note: str


JobProgress = Callable[[int, int, str], None]


def install_from_files(
    paths: Sequence[Path], progress: JobProgress, cancelled: Callable[[], bool]
) -> InstalledModel:
    """Install a model zip, a folder or an encoder/decoder pair into the models folder (a new
    name when the name is taken), with the checks of ``models import``. Call from a job thread;
    ``progress(done, total, text)`` counts KiB (Qt signals carry 32-bit ints)."""

    def report(done: int, total: int, text: str) -> None:
        progress(done // 1024, total // 1024, text)

    result = import_model(list(paths), rename_if_exists=True, progress=report, cancelled=cancelled)
    if not result.verified:
        log.warning("installed %s from %s: %s", result.path, result.source, result.check.text)
    return InstalledModel(result.path, result.verified, result.check.text)
