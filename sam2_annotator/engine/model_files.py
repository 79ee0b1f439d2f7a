"""Find the encoder/decoder pair in a model folder (ours or a third party's)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from sam2_annotator.engine.manifest import Manifest
from sam2_annotator.errors import ModelError


@dataclass(frozen=True)
class FolderLayout:
    """How one family names its two files. ``decoder_glob=None``: the one other ``.onnx``."""

    description: str
    encoder_glob: str
    decoder_glob: str | None

    def candidates(self, folder: Path) -> tuple[list[Path], list[Path]]:
        """The folder's encoder and decoder candidates under this layout. Graphs that are only a
        part of one (:data:`PART_GLOBS`) are left out when other candidates remain."""
        encoders = sorted(folder.glob(self.encoder_glob))
        if self.decoder_glob is None:
            decoders = sorted(p for p in folder.glob("*.onnx") if p not in encoders)
        else:
            decoders = sorted(folder.glob(self.decoder_glob))
        parts = {p for pattern in PART_GLOBS for p in folder.glob(pattern)}
        return (
            [p for p in encoders if p not in parts] or encoders,
            [p for p in decoders if p not in parts] or decoders,
        )

    def find(self, folder: Path) -> tuple[Path, Path] | None:
        encoders, decoders = self.candidates(folder)
        if len(encoders) == 1 and len(decoders) == 1:
            return encoders[0], decoders[0]
        return None


#: Graphs ONNX Runtime's SAM2 exporter writes with ``--components prompt_encoder mask_decoder``:
#: halves of its image decoder, never a usable encoder or decoder by themselves.
PART_GLOBS = ("*_prompt_encoder*.onnx", "*_mask_decoder*.onnx")


#: Folder layouts tried in order: ours / samexporter / ONNX Runtime names first, then the
#: osam/ryouchinsa pair (``<name>_preprocess.onnx`` = encoder, ``<name>.onnx`` = decoder).
LAYOUTS: tuple[FolderLayout, ...] = (
    FolderLayout("one *encoder*.onnx and one *decoder*.onnx", "*encoder*.onnx", "*decoder*.onnx"),
    FolderLayout("an osam pair <name>_preprocess.onnx + <name>.onnx", "*_preprocess.onnx", None),
)


def candidate_pairs(folder: str | Path) -> list[tuple[Path, Path]]:
    """Every (encoder, decoder) pair a folder offers under the first layout that finds both, for
    folders holding several: ONNX Runtime's exporter writes ``<model>_image_decoder.onnx`` and
    ``<model>_image_decoder_multi.onnx`` next to one ``<model>_image_encoder.onnx``. Empty when
    the folder holds no pair (or does not exist)."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    for layout in LAYOUTS:
        encoders, decoders = layout.candidates(folder)
        pairs = [(e, d) for e in encoders for d in decoders if e != d]
        if pairs:
            return pairs
    return []


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
        """A folder holding one encoder/decoder pair in one of the known :data:`LAYOUTS`."""
        folder = Path(folder)
        if not folder.is_dir():
            raise ModelError(f"model folder not found: {folder}")
        for layout in LAYOUTS:
            pair = layout.find(folder)
            if pair is not None:
                return cls(*pair, Manifest.read(folder))
        found = sorted(p.name for p in folder.glob("*.onnx"))
        expected = " or ".join(layout.description for layout in LAYOUTS)
        raise ModelError(f"{folder} must hold exactly {expected}; found ONNX files: {found}")

    @classmethod
    def from_paths(cls, encoder: str | Path, decoder: str | Path) -> ModelFiles:
        paths = [Path(encoder), Path(decoder)]
        for p in paths:
            if not p.is_file():
                raise ModelError(f"model file not found: {p}")
        manifest = Manifest.read(paths[0].parent) if paths[0].parent == paths[1].parent else None
        return cls(paths[0], paths[1], manifest)
