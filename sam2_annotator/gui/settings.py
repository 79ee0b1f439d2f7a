"""User settings, stored with QSettings (the registry, a plist or an ini file per platform).

:class:`AppSettings` is a plain dataclass; :meth:`AppSettings.load` and :meth:`AppSettings.save`
convert each field by the type of its default (QSettings hands ini values back as strings), so a
new setting is one new field.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any, Literal

from PySide6.QtCore import QByteArray, QSettings

log = logging.getLogger(__name__)

ORGANIZATION = "sam2-annotator"
APPLICATION = "sam2-annotator"
#: How many recent projects the File menu lists.
MAX_RECENT = 10

SegmentationFormat = Literal["polygon", "rle"]
SEGMENTATION_FORMATS: tuple[SegmentationFormat, ...] = ("polygon", "rle")


def qsettings() -> QSettings:
    """The application's settings store, in the default format (tests switch it to ini files in
    a temporary folder with ``QSettings.setDefaultFormat`` and ``QSettings.setPath``)."""
    return QSettings(
        QSettings.defaultFormat(), QSettings.Scope.UserScope, ORGANIZATION, APPLICATION
    )


@dataclass
class AppSettings:
    """Everything the settings dialog edits, plus a few remembered choices."""

    #: Model folder; empty = not chosen yet (the first-run dialog asks).
    model_dir: str = ""
    #: ONNX Runtime providers, best first, as the CLI's ``--providers`` takes them.
    providers: str = "auto"
    #: ONNX Runtime intra-op threads; 0 = its default.
    threads: int = 0
    #: Images after the current one to encode ahead of time.
    prefetch: int = 2
    #: Memory budget for embeddings, MiB (about 16 MiB per image).
    cache_mb: int = 512
    #: Keep embeddings on disk too (the user cache folder), so reopening a project is instant.
    disk_cache: bool = True
    #: Fill opacity of the mask being edited and of accepted annotations.
    mask_opacity: float = 0.5
    annotation_opacity: float = 0.45
    #: Segmentation written by "Export COCO".
    export_segmentation: str = "polygon"
    #: The user chose to work without a model.
    no_ai: bool = False
    #: The last category chosen (preselected in the label chooser; ``N`` reuses it).
    last_category: str = ""
    recent_projects: list[str] = field(default_factory=list)
    #: Categories every project starts with (in order), from the settings or ``--labels FILE``.
    labels: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, store: QSettings | None = None) -> AppSettings:
        store = store or qsettings()
        values: dict[str, Any] = {}
        defaults = cls()
        for spec in fields(cls):
            default = getattr(defaults, spec.name)
            raw = store.value(f"settings/{spec.name}")
            if raw is None:
                continue
            try:
                values[spec.name] = _CONVERTERS[type(default)](raw)
            except (TypeError, ValueError) as exc:
                log.warning("ignoring the stored setting %s=%r: %s", spec.name, raw, exc)
        settings = cls(**values)
        settings.clamp()
        return settings

    def save(self, store: QSettings | None = None) -> None:
        store = store or qsettings()
        for spec in fields(self):
            value = getattr(self, spec.name)
            store.setValue(
                f"settings/{spec.name}", list(value) if isinstance(value, list) else value
            )
        store.sync()

    def clamp(self) -> None:
        """Bring values from an edited or old settings file back into range."""
        self.threads = max(0, self.threads)
        self.prefetch = min(max(0, self.prefetch), 16)
        self.cache_mb = max(0, self.cache_mb)
        self.mask_opacity = min(max(0.0, self.mask_opacity), 1.0)
        self.annotation_opacity = min(max(0.0, self.annotation_opacity), 1.0)
        if self.export_segmentation not in SEGMENTATION_FORMATS:
            self.export_segmentation = SEGMENTATION_FORMATS[0]
        self.recent_projects = [p for p in self.recent_projects if p][:MAX_RECENT]

    def add_recent(self, path: str) -> None:
        self.recent_projects = [path, *[p for p in self.recent_projects if p != path]][:MAX_RECENT]

    @property
    def cache_bytes(self) -> int:
        return self.cache_mb * 1024 * 1024


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("true", "1", "yes", "on"):
        return True
    if text in ("false", "0", "no", "off", ""):
        return False
    raise ValueError(f"not a boolean: {value!r}")


def _to_list(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value] if value else []
    return [str(v) for v in value]


_CONVERTERS: dict[type, Callable[[Any], Any]] = {
    str: str,
    int: lambda v: int(str(v)),
    float: lambda v: float(str(v)),
    bool: _to_bool,
    list: _to_list,
}


def save_window_state(geometry: QByteArray, state: QByteArray) -> None:
    store = qsettings()
    store.setValue("window/geometry", geometry)
    store.setValue("window/state", state)
    store.sync()


def load_window_state() -> tuple[QByteArray | None, QByteArray | None]:
    store = qsettings()
    geometry = store.value("window/geometry")
    state = store.value("window/state")
    return (
        geometry if isinstance(geometry, QByteArray) else None,
        state if isinstance(state, QByteArray) else None,
    )
