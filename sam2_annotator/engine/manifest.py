"""``manifest.json``: what a model folder holds and where it came from.

Written by our exporter and by ``models download``; optional for third-party folders.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from sam2_annotator.errors import ModelError

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = 1

Weights = Literal["checkpoint", "random-init", "unknown"]


@dataclass(frozen=True)
class FileEntry:
    sha256: str
    bytes: int


@dataclass(frozen=True)
class Manifest:
    variant: str  # e.g. "sam2.1_hiera_t"
    weights: Weights
    files: dict[str, FileEntry]
    contract: str = "sam2-annotator"
    precision: str = "fp32"
    input_size: int = 1024
    seed: int | None = None
    io: dict[str, Any] = field(default_factory=dict)
    source_checkpoint: dict[str, Any] | None = None
    exporter: dict[str, Any] = field(default_factory=dict)
    created: str = ""
    format: int = MANIFEST_FORMAT

    @property
    def is_random_init(self) -> bool:
        return self.weights == "random-init"

    @property
    def display_name(self) -> str:
        """The name every user-facing surface shows; random weights are always said."""
        name = self.variant if self.precision == "fp32" else f"{self.variant} ({self.precision})"
        return f"{name} [random-init, masks meaningless]" if self.is_random_init else name

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def write(self, folder: Path) -> Path:
        path = Path(folder) / MANIFEST_NAME
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Manifest:
        try:
            files = {k: FileEntry(**v) for k, v in data["files"].items()}
            known = {f for f in cls.__dataclass_fields__ if f != "files"}
            rest = {k: v for k, v in data.items() if k in known}
            return cls(files=files, **rest)
        except (KeyError, TypeError, AttributeError) as exc:
            raise ModelError(f"manifest is malformed ({exc!r})") from exc

    @classmethod
    def read(cls, folder: Path) -> Manifest | None:
        """The folder's manifest, or None if it has none. A broken one is an error."""
        path = Path(folder) / MANIFEST_NAME
        if not path.is_file():
            return None
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read {path}: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{path} is not a JSON object")
        return cls.from_dict(data)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(chunk):
            digest.update(block)
    return digest.hexdigest()
