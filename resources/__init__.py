"""Package data: icons, the sample image and the desktop entry (read with importlib.resources)."""

from importlib.resources import files
from pathlib import Path


def resource_path(name: str) -> Path:
    """Filesystem path of a bundled resource (works installed, editable and frozen)."""
    return Path(str(files(__name__).joinpath(name)))


SAMPLE_IMAGE = "sample.jpg"
SAMPLE_VIDEO = "sample.mp4"
APP_ICON_SVG = "icons/sam2-annotator.svg"
APP_ICON_PNG = "icons/sam2-annotator.png"
