"""Find the encoder/decoder pair in a model folder (ours or a third party's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sam2_annotator.errors import ModelError
from sam2_annotator.models.manifest import Manifest


@dataclass(frozen=True)
class ModelFiles:
    encoder: Path
    decoder: Path
    manifest: Manifest | None = None

    @property
    def display_name(self) -> str:
        if self.manifest is not None:
            return self.manifest.display_name
        return f"{self.encoder.parent.name} (third-party, no manifest)"

    @property
    def is_random_init(self) -> bool:
        return self.manifest is not None and self.manifest.is_random_init

    @classmethod
    def from_folder(cls, folder: str | Path) -> ModelFiles:
        """A folder with exactly one ``*encoder*.onnx`` and one ``*decoder*.onnx``."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelError(f"model folder not found: {folder}")
        encoders = sorted(folder.glob("*encoder*.onnx"))
        decoders = sorted(folder.glob("*decoder*.onnx"))
        if len(encoders) != 1 or len(decoders) != 1:
            raise ModelError(
                f"{folder} must hold exactly one *encoder*.onnx and one *decoder*.onnx; found "
                f"{len(encoders)} encoder file(s) {[p.name for p in encoders]} and "
                f"{len(decoders)} decoder file(s) {[p.name for p in decoders]}"
            )
        return cls(encoders[0], decoders[0], Manifest.read(folder))

    @classmethod
    def from_paths(cls, encoder: str | Path, decoder: str | Path) -> ModelFiles:
        paths = [Path(encoder), Path(decoder)]
        for p in paths:
            if not p.is_file():
                raise ModelError(f"model file not found: {p}")
        manifest = Manifest.read(paths[0].parent) if paths[0].parent == paths[1].parent else None
        return cls(paths[0], paths[1], manifest)
