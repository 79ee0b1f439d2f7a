"""The PyTorch side of a comparison: the same SAM2 modules our exporter traces, run eagerly.

The encoder and decoder are the exporter's wrapper modules around the torch model built with the
same variant and weights (random init with the manifest's seed, or the checkpoint), so ONNX
Runtime and PyTorch see identical inputs and differ only in the runtime. torch and sam2 are
imported inside the functions here, never at module level.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2_annotator.engine.contracts import OursContract
from sam2_annotator.engine.manifest import sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.predictor import decoder_feed
from sam2_annotator.engine.preprocess import preprocess
from sam2_annotator.engine.types import DecoderOutput, Embedding, Prompt
from sam2_annotator.errors import ModelError, UserError
from sam2_annotator.models import export

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TorchSource:
    """Which torch weights reproduce a model folder: variant plus checkpoint or seed."""

    variant: str
    checkpoint: Path | None
    seed: int


def unavailable_reason() -> str | None:
    """None when torch and sam2 import; otherwise why not, in words."""
    try:
        import torch  # noqa: F401
        from sam2.build_sam import build_sam2  # noqa: F401
    except ImportError as exc:
        return f"torch/sam2 not installed ({exc})"
    return None


def source_for(files: ModelFiles, checkpoint: Path | None = None) -> TorchSource:
    """The torch weights matching ``files`` (from its manifest); raises UserError if unknown."""
    manifest = files.manifest
    if manifest is None:
        raise UserError(
            f"{files.encoder.parent} has no manifest.json, so the matching PyTorch weights are "
            "unknown; the PyTorch comparison needs a model exported by sam2-annotator"
        )
    if manifest.weights == "random-init":
        if manifest.seed is None:
            raise ModelError("the manifest says random-init but records no seed")
        return TorchSource(manifest.variant, None, manifest.seed)
    if checkpoint is None:
        raise UserError(
            "this model was exported from a checkpoint; pass --checkpoint FILE (the .pt file) "
            "for the PyTorch comparison"
        )
    expected = (manifest.source_checkpoint or {}).get("sha256")
    if expected and sha256_file(checkpoint) != expected:
        raise UserError(f"{checkpoint} is not the checkpoint this model was exported from")
    return TorchSource(manifest.variant, checkpoint, 0)


class TorchModel:
    """Eager PyTorch encoder and decoder taking and returning numpy arrays."""

    def __init__(self, torch: Any, encoder: Any, decoder: Any) -> None:
        self._torch = torch
        self._encoder = encoder
        self._decoder = decoder

    @property
    def version(self) -> str:
        return str(self._torch.__version__)

    @property
    def threads(self) -> int:
        return int(self._torch.get_num_threads())

    @classmethod
    def load(cls, source: TorchSource, threads: int = 0) -> TorchModel:
        """Build the model on CPU; ``threads > 0`` sets torch's intra-op thread count."""
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        model = export.build_model(
            export.resolve_variant(source.variant), source.checkpoint, source.seed
        )
        # The exporter's wrappers are exactly the modules traced into encoder/decoder.onnx.
        encoder_wrapper, decoder_wrapper = export.torch_wrappers()
        log.info(
            "PyTorch %s reference for %s on %d threads",
            torch.__version__,
            source.variant,
            torch.get_num_threads(),
        )
        return cls(torch, encoder_wrapper(model).eval(), decoder_wrapper(model).eval())

    def encode(self, tensor: np.ndarray) -> dict[str, np.ndarray]:
        """The encoder on a preprocessed ``[1, 3, 1024, 1024]`` tensor."""
        with self._torch.inference_mode():
            outputs = self._encoder(self._torch.from_numpy(np.ascontiguousarray(tensor)))
        return {
            name: out.numpy() for name, out in zip(export.ENCODER_OUTPUTS, outputs, strict=True)
        }

    def decode(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The decoder on the feed our ONNX decoder takes (:data:`export.DECODER_INPUTS`)."""
        args = [
            self._torch.from_numpy(np.ascontiguousarray(feed[n])) for n in export.DECODER_INPUTS
        ]
        with self._torch.inference_mode():
            outputs = self._decoder(*args)
        return {
            name: out.numpy() for name, out in zip(export.DECODER_OUTPUTS, outputs, strict=True)
        }


class TorchPredictor:
    """The eager modules behind the engine's own pre-processing, prompt encoding and output
    parsing: what an ONNX model folder is compared with (parity checks, ``eval``, ``bench``).

    The feeds are built by the engine's code, so the two sides differ in the runtime alone.
    """

    def __init__(self, model: TorchModel) -> None:
        self.model = model
        self.contract = OursContract()

    def embed(self, image: np.ndarray) -> Embedding:
        """The encoder on an RGB uint8 image, parsed as the engine parses its ONNX encoder."""
        outputs = self.model.encode(preprocess(image))
        return self.contract.parse_encoder(outputs, (int(image.shape[0]), int(image.shape[1])))

    def decode_raw(self, state: Embedding, prompt: Prompt) -> DecoderOutput:
        """Every mask token's low-res logits and scores for ``prompt`` (no selection)."""
        feed = decoder_feed(self.contract, state, prompt)
        return self.contract.parse_decoder(self.model.decode(feed))
