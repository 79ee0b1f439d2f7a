"""The catalog of downloadable, pre-exported SAM2/SAM2.1 ONNX models, and where they install.

The data lives in ``catalog.json`` next to this module (package data) so that adding a model or
fixing a URL is a data change. Every entry points at files in the samexporter layout (encoder
``image`` -> ``high_res_feats_0/1, image_embed``; decoder ``image_embed, high_res_feats_0/1,
point_coords, point_labels, mask_input, has_mask_input`` -> ``masks, iou_predictions``), and
states its **decoder contract** (:data:`DECODER_CONTRACTS`): whether the decoder returns SAM2's
single-mask output (``sam2-annotator-exact``, our exporter) or only the three multimask
candidates (``samexporter-multimask-only``).

URLs are a *source* base URL plus a path relative to it. A source's base URL is pinned to one
revision (Hugging Face ``resolve/<commit>``, never a moving ``resolve/main``), and every file
carries its sha256 and byte size where public material states them; a file without a sha256 is
marked ``unverified`` (with the reason) in the data, and every surface that offers it says so.
Setting ``SAM2_ANNOTATOR_MODEL_MIRROR`` replaces the base URL of every source with the mirror's,
so a mirror is one folder (HTTP server, bucket, intranet share, ``file://`` folder) holding the
files under the same relative paths, e.g. ``$MIRROR/sam2_hiera_tiny.encoder.onnx`` and
``$MIRROR/sam2.1_hiera_tiny_20260221.zip``. The relative paths are unique across all sources for
exactly this reason. ``SAM2_ANNOTATOR_EXTRA_CATALOG`` names a JSON file in the same format whose
entries are added (e.g. the release pipeline's ``catalog-entries.json`` before it is merged).

Installed models live in ``<data dir>/models/<name>``; the data dir is
``platformdirs.user_data_dir("sam2-annotator")`` unless ``SAM2_ANNOTATOR_DATA_DIR`` names another
one (tests, portable installs).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

from sam2_annotator.errors import ModelError

log = logging.getLogger(__name__)

#: Replaces every source's base URL; the mirror must hold the files under the same relative paths.
MIRROR_ENV = "SAM2_ANNOTATOR_MODEL_MIRROR"
#: Replaces the per-user data dir (the models root is ``$SAM2_ANNOTATOR_DATA_DIR/models``).
DATA_DIR_ENV = "SAM2_ANNOTATOR_DATA_DIR"
#: A catalog JSON file whose entries are added to the packaged ones.
EXTRA_CATALOG_ENV = "SAM2_ANNOTATOR_EXTRA_CATALOG"
APP_NAME = "sam2-annotator"
CATALOG_RESOURCE = "catalog.json"

Archive = Literal["zip", "onnx-pair"]
Role = Literal["archive", "encoder", "decoder", "checkpoint"]
_ROLES_BY_ARCHIVE: dict[str, tuple[str, ...]] = {
    "zip": ("archive",),
    "onnx-pair": ("encoder", "decoder"),
}


@dataclass(frozen=True)
class DecoderContract:
    """What an entry's decoder returns, and what the app does about it, in words."""

    name: str
    exact: bool  # True: the masks follow SAM2ImagePredictor's rule exactly
    short: str  # one word for tables
    text: str  # one sentence for reports, dialogs and the README


#: Every decoder contract a catalog entry may state.
DECODER_CONTRACTS: dict[str, DecoderContract] = {
    c.name: c
    for c in (
        DecoderContract(
            "sam2-annotator-exact",
            True,
            "exact",
            "exported by sam2-annotator: the decoder returns all four mask tokens, so masks "
            "follow SAM2ImagePredictor's rule exactly (multimask for one point, else the "
            "single-mask output when stable); checked against PyTorch before release",
        ),
        DecoderContract(
            "samexporter-multimask-only",
            False,
            "multimask-only",
            "samexporter export: the decoder lacks SAM2's single-mask output (token 0) and "
            "returns only the 3 multimask candidates, so for several points or a box the app "
            "takes the candidate with the highest predicted IoU instead of SAM2's rule "
            "(the single-mask output when its stability score is >= 0.98)",
        ),
    )
}
DEFAULT_CONTRACT = "samexporter-multimask-only"


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: a path relative to its source's base URL."""

    role: Role
    path: str
    bytes: int | None = None
    sha256: str | None = None
    #: Why there is no sha256 (from the catalog data); empty for a verified file.
    unverified: str = ""

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]

    @property
    def verified(self) -> bool:
        """True when a download of this file is checked against a known sha256."""
        return self.sha256 is not None


@dataclass(frozen=True)
class Source:
    name: str
    base_url: str
    about: str = ""
    #: The repository and the revision the base URL is pinned to (for the reports).
    repo: str = ""
    revision: str = ""


@dataclass(frozen=True)
class CatalogEntry:
    """One downloadable model: a zip holding the ONNX pair, or the two ONNX files themselves."""

    name: str  # what the user types, and the install folder's name
    family: str  # "sam2" or "sam2.1"
    size: str  # tiny / small / base_plus / large
    variant: str  # the SAM2 config name, as in our manifests: "sam2.1_hiera_t"
    source: Source
    archive: Archive
    files: tuple[RemoteFile, ...]
    #: Download size in MB: the files' byte sizes when all are known, else an estimate with a
    #: stated basis (``approx_basis``), else None (unknown).
    approx_mb: int | None
    note: str = ""
    decoder_contract: str = DEFAULT_CONTRACT
    precision: str = "fp32"
    approx_basis: str = ""

    @property
    def contract(self) -> DecoderContract:
        return DECODER_CONTRACTS[self.decoder_contract]

    @property
    def unverified_files(self) -> tuple[RemoteFile, ...]:
        return tuple(f for f in self.files if not f.verified)

    @property
    def verified(self) -> bool:
        return not self.unverified_files

    @property
    def size_text(self) -> str:
        return "size unknown" if self.approx_mb is None else f"~{self.approx_mb} MB"

    def base_url(self, mirror: str | None = None) -> str:
        """The mirror (argument, else ``$SAM2_ANNOTATOR_MODEL_MIRROR``) or the source's base."""
        mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "").strip()
        return (mirror or self.source.base_url).rstrip("/")

    def url(self, remote: RemoteFile, mirror: str | None = None) -> str:
        return f"{self.base_url(mirror)}/{remote.path.lstrip('/')}"


@dataclass(frozen=True)
class CatalogCheck:
    """How installed files compare with the catalog (the install report's ``catalog:`` line)."""

    entry: CatalogEntry | None
    verified: bool
    text: str


def download_check(entry: CatalogEntry) -> CatalogCheck:
    """The check a completed download of ``entry`` passed: the fetch refuses any file whose size
    or sha256 differs from the catalog's, so every file with a sha256 matched it."""
    checked = [f for f in entry.files if f.verified]
    unchecked = entry.unverified_files
    pin = f" at {entry.source.revision[:12]}" if entry.source.revision else ""

    def names(files: tuple[RemoteFile, ...] | list[RemoteFile]) -> str:
        return ", ".join(f.filename for f in files)

    if not unchecked:
        sums = ", ".join(f"{f.filename} {(f.sha256 or '')[:12]}…" for f in checked)
        return CatalogCheck(entry, True, f"sha256 matches the catalog{pin} ({sums})")
    text = (
        f"UNVERIFIED: the catalog lists no sha256 for {names(unchecked)} "
        f"({unchecked[0].unverified}); only its format and I/O contract were checked"
    )
    if checked:
        text += f"; {names(checked)} matched the catalog's sha256"
    return CatalogCheck(entry, False, text)


@dataclass(frozen=True)
class Catalog:
    entries: tuple[CatalogEntry, ...]

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    def get(self, name: str) -> CatalogEntry:
        for entry in self.entries:
            if entry.name == name:
                return entry
        raise ModelError(f"unknown model {name!r}; known models: {', '.join(self.names)}")

    def __add__(self, other: Catalog) -> Catalog:
        merged = Catalog(self.entries + other.entries)
        _check_unique(merged.entries)
        return merged

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        """Parse and validate the JSON catalog; a broken catalog is a packaging bug."""
        sources = {key: _source(key, value) for key, value in data["sources"].items()}
        entries = tuple(_entry(raw, sources) for raw in data["models"])
        _check_unique(entries)
        return cls(entries)


def _check_unique(entries: tuple[CatalogEntry, ...]) -> None:
    names = [e.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"duplicate model names in the catalog: {names}")
    paths = [f.path for e in entries for f in e.files]
    if len(set(paths)) != len(paths):
        raise ValueError("two catalog files share a relative path (one mirror folder serves all)")


def _source(key: str, raw: dict[str, Any]) -> Source:
    base_url = raw["base_url"]
    if "{" in base_url:
        raise ValueError(
            f"catalog source {key!r} is not published yet: its URL {base_url} still holds a "
            "placeholder (fill in the revision the archives were uploaded at)"
        )
    return Source(
        name=key,
        base_url=base_url,
        about=raw.get("about", ""),
        repo=raw.get("repo", ""),
        revision=raw.get("revision", ""),
    )


def _remote(raw: dict[str, Any], model: str) -> RemoteFile:
    remote = RemoteFile(
        role=raw["role"],
        path=raw["path"],
        bytes=raw.get("bytes"),
        sha256=raw.get("sha256"),
        unverified=raw.get("unverified", ""),
    )
    if remote.sha256 is None and not remote.unverified:
        raise ValueError(f"{model}: {remote.path} has no sha256 and is not marked unverified")
    if remote.sha256 is not None and remote.unverified:
        raise ValueError(f"{model}: {remote.path} has a sha256 but is marked unverified")
    return remote


def _entry(raw: dict[str, Any], sources: dict[str, Source]) -> CatalogEntry:
    name = raw["name"]
    files = tuple(_remote(f, name) for f in raw["files"])
    archive = raw["archive"]
    if archive not in _ROLES_BY_ARCHIVE:
        raise ValueError(f"{name}: unknown archive kind {archive!r}")
    roles = _ROLES_BY_ARCHIVE[archive]
    if tuple(f.role for f in files) != roles:
        raise ValueError(f"{name}: a {archive} entry needs files with roles {roles}")
    contract = raw.get("decoder_contract")
    if contract not in DECODER_CONTRACTS:
        raise ValueError(
            f"{name}: decoder_contract must be one of {sorted(DECODER_CONTRACTS)}, got {contract!r}"
        )
    approx_mb, basis = _approx_mb(raw, files)
    return CatalogEntry(
        name=name,
        family=raw["family"],
        size=raw["size"],
        variant=raw["variant"],
        source=sources[raw["source"]],
        archive=archive,
        files=files,
        approx_mb=approx_mb,
        note=raw.get("note", ""),
        decoder_contract=contract,
        precision=raw.get("precision", "fp32"),
        approx_basis=basis,
    )


def _approx_mb(raw: dict[str, Any], files: tuple[RemoteFile, ...]) -> tuple[int | None, str]:
    """From the files' byte sizes when all are known; else the data's estimate, which must say
    what it rests on (``approx_basis``); else unknown."""
    sizes = [f.bytes for f in files]
    if all(size is not None for size in sizes):
        if "approx_mb" in raw:
            raise ValueError(f"{raw['name']}: approx_mb is computed from the files' bytes")
        return round(sum(s for s in sizes if s is not None) / 1e6), "the files' byte sizes"
    if raw.get("approx_mb") is None:
        return None, ""
    basis = raw.get("approx_basis", "")
    if not basis:
        raise ValueError(f"{raw['name']}: approx_mb without an approx_basis saying where from")
    return int(raw["approx_mb"]), basis


def load_catalog() -> Catalog:
    """The packaged catalog plus ``$SAM2_ANNOTATOR_EXTRA_CATALOG`` (each file read once)."""
    extra = os.environ.get(EXTRA_CATALOG_ENV, "").strip()
    return _load(extra)


@lru_cache(maxsize=4)
def _load(extra: str) -> Catalog:
    text = resources.files("sam2_annotator.models").joinpath(CATALOG_RESOURCE).read_text("utf-8")
    catalog = Catalog.from_dict(json.loads(text))
    if not extra:
        return catalog
    where = f"the catalog {extra} (from ${EXTRA_CATALOG_ENV})"
    try:
        data = json.loads(Path(extra).expanduser().read_text(encoding="utf-8"))
        merged = catalog + Catalog.from_dict(data)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ModelError(f"cannot use {where}: {exc}") from exc
    log.info("added %d entries from %s", len(merged.entries) - len(catalog.entries), where)
    return merged


def data_dir() -> Path:
    """``$SAM2_ANNOTATOR_DATA_DIR`` or the platform's per-user data dir."""
    override = os.environ.get(DATA_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir(APP_NAME, appauthor=False))


def models_root() -> Path:
    """Where ``models download`` installs: one folder per model name."""
    return data_dir() / "models"


def model_dir(name: str, root: Path | None = None) -> Path:
    return (root or models_root()) / name


def is_installed(name: str, root: Path | None = None) -> bool:
    """True when the install folder exists. Partial downloads live elsewhere (``.downloads``,
    dot-prefixed staging folders), so an existing folder is always a completed install."""
    return model_dir(name, root).is_dir()


def installed_models(root: Path | None = None) -> list[Path]:
    """Installed model folders (catalog models and any other folder a user put there)."""
    root = root or models_root()
    if not root.is_dir():
        return []
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
