"""The catalog of downloadable, pre-exported SAM2/SAM2.1 ONNX models, and where they install.

The data lives in ``catalog.json`` next to this module (package data) so that adding a model or
fixing a URL is a data change. Every entry points at files in the samexporter layout (encoder
``image`` -> ``high_res_feats_0/1, image_embed``; decoder ``image_embed, high_res_feats_0/1,
point_coords, point_labels, mask_input, has_mask_input`` -> ``masks, iou_predictions``).

URLs are a *source* base URL plus a path relative to it. Setting ``SAM2_ANNOTATOR_MODEL_MIRROR``
replaces the base URL of every source with the mirror's, so a mirror is one folder (HTTP server,
bucket, intranet share) holding the files under the same relative paths, e.g.
``$MIRROR/sam2_hiera_tiny.encoder.onnx`` and ``$MIRROR/sam2.1_hiera_tiny_20260221.zip``. The
relative paths are unique across all sources for exactly this reason.

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
APP_NAME = "sam2-annotator"
CATALOG_RESOURCE = "catalog.json"

Archive = Literal["zip", "onnx-pair"]
Role = Literal["archive", "encoder", "decoder"]
_ROLES_BY_ARCHIVE: dict[str, tuple[str, ...]] = {
    "zip": ("archive",),
    "onnx-pair": ("encoder", "decoder"),
}


@dataclass(frozen=True)
class RemoteFile:
    """One file to fetch: a path relative to its source's base URL."""

    role: Role
    path: str
    bytes: int | None = None
    sha256: str | None = None

    @property
    def filename(self) -> str:
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Source:
    name: str
    base_url: str
    about: str = ""


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
    approx_mb: int
    note: str = ""

    def base_url(self, mirror: str | None = None) -> str:
        """The mirror (argument, else ``$SAM2_ANNOTATOR_MODEL_MIRROR``) or the source's base."""
        mirror = mirror if mirror is not None else os.environ.get(MIRROR_ENV, "").strip()
        return (mirror or self.source.base_url).rstrip("/")

    def url(self, remote: RemoteFile, mirror: str | None = None) -> str:
        return f"{self.base_url(mirror)}/{remote.path.lstrip('/')}"


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

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Catalog:
        """Parse and validate the JSON catalog; a broken catalog is a packaging bug."""
        sources = {
            key: Source(name=key, base_url=value["base_url"], about=value.get("about", ""))
            for key, value in data["sources"].items()
        }
        entries = tuple(_entry(raw, sources) for raw in data["models"])
        names = [e.name for e in entries]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate model names in the catalog: {names}")
        return cls(entries)


def _entry(raw: dict[str, Any], sources: dict[str, Source]) -> CatalogEntry:
    files = tuple(
        RemoteFile(role=f["role"], path=f["path"], bytes=f.get("bytes"), sha256=f.get("sha256"))
        for f in raw["files"]
    )
    archive = raw["archive"]
    if archive not in _ROLES_BY_ARCHIVE:
        raise ValueError(f"{raw['name']}: unknown archive kind {archive!r}")
    roles = _ROLES_BY_ARCHIVE[archive]
    if tuple(f.role for f in files) != roles:
        raise ValueError(f"{raw['name']}: a {archive} entry needs files with roles {roles}")
    return CatalogEntry(
        name=raw["name"],
        family=raw["family"],
        size=raw["size"],
        variant=raw["variant"],
        source=sources[raw["source"]],
        archive=archive,
        files=files,
        approx_mb=int(raw["approx_mb"]),
        note=raw.get("note", ""),
    )


@lru_cache(maxsize=1)
def load_catalog() -> Catalog:
    """The packaged catalog (read once)."""
    text = resources.files("sam2_annotator.models").joinpath(CATALOG_RESOURCE).read_text("utf-8")
    return Catalog.from_dict(json.loads(text))


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
