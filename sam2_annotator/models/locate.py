"""Where the app finds a model when none is named: bundled with the installer, then installed."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from sam2_annotator.engine.model_files import LAYOUTS
from sam2_annotator.models.catalog import installed_models

#: Folder name, next to the frozen executable (or in the repo for source runs), that installers
#: built with a bundled model fill.
BUNDLED_DIR = "models"
MODEL_ENV = "SAM2_ANNOTATOR_MODEL"


def app_dir() -> Path:
    """The frozen app's folder (PyInstaller onedir), or the source tree's root."""
    if getattr(sys, "frozen", False):
        return Path(getattr(sys, "_MEIPASS", Path(sys.executable).parent))
    return Path(__file__).resolve().parents[2]


def bundled_models() -> list[Path]:
    """Model folders shipped with the app (each with an encoder/decoder pair)."""
    root = app_dir() / BUNDLED_DIR
    if not root.is_dir():
        return []
    return sorted(
        p for p in root.iterdir() if p.is_dir() and any(layout.find(p) for layout in LAYOUTS)
    )


def default_model() -> Path | None:
    """``$SAM2_ANNOTATOR_MODEL``, else the first bundled model, else the first installed one."""
    env = os.environ.get(MODEL_ENV)
    if env:
        return Path(env)
    candidates = bundled_models() or installed_models()
    return candidates[0] if candidates else None
