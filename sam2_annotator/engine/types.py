"""Plain data passed between the engine, the CLI and the GUI."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: SAM2's square input resolution; the encoder only works at this size.
INPUT_SIZE = 1024
#: Side of the decoder's low-resolution mask logits (and of ``mask_input``).
LOW_RES = 256
#: Label values inside the decoder's ``point_labels``.
LABEL_NEGATIVE, LABEL_POSITIVE, LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT = 0, 1, 2, 3


@dataclass(frozen=True)
class TensorSpec:
    """One input or output of an ONNX graph as ONNX Runtime reports it."""

    name: str
    shape: tuple[int | str | None, ...]
    dtype: str  # ONNX Runtime's type string, e.g. "tensor(float)"

    @property
    def rank(self) -> int:
        return len(self.shape)


@dataclass(frozen=True)
class Prompt:
    """What the user clicked, in original-image pixel coordinates.

    ``labels`` are 1 (positive) or 0 (negative). ``box`` is ``x0, y0, x1, y1``.
    ``mask_input`` is the previous decode's low-resolution logits (256x256), used for refinement.
    """

    points: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), np.float32))
    labels: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))
    box: np.ndarray | None = None
    mask_input: np.ndarray | None = None

    @property
    def is_empty(self) -> bool:
        return len(self.points) == 0 and self.box is None


#: The shapes of :class:`Embedding`'s arrays, the same for every SAM2 size.
EMBEDDING_SHAPES: dict[str, tuple[int, ...]] = {
    "image_embed": (1, 256, 64, 64),
    "high_res_feats_0": (1, 32, 256, 256),
    "high_res_feats_1": (1, 64, 128, 128),
}


@dataclass(frozen=True)
class Embedding:
    """The encoder's output for one image, in our (samexporter) layout."""

    image_embed: np.ndarray  # [1, 256, 64, 64]
    high_res_feats_0: np.ndarray  # [1, 32, 256, 256]
    high_res_feats_1: np.ndarray  # [1, 64, 128, 128]
    orig_hw: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.image_embed.nbytes + self.high_res_feats_0.nbytes + self.high_res_feats_1.nbytes

    @classmethod
    def zeros(cls, orig_hw: tuple[int, int]) -> Embedding:
        """An all-zero float32 embedding (what warming a decoder session up runs on)."""
        arrays = {name: np.zeros(shape, np.float32) for name, shape in EMBEDDING_SHAPES.items()}
        return cls(orig_hw=orig_hw, **arrays)


@dataclass(frozen=True)
class DecoderOutput:
    """A decoder's raw answer, normalised by its contract.

    ``low_res_logits`` holds every candidate the graph returns, ``(K, 256, 256)``. When
    ``single_token`` is true, candidate 0 is SAM2's single-mask token and 1..K-1 are the multimask
    candidates; otherwise all K are multimask candidates. ``upsampled_logits`` is set only by
    contracts whose graph already upsamples to the original size.
    """

    low_res_logits: np.ndarray
    iou_predictions: np.ndarray
    single_token: bool
    upsampled_logits: np.ndarray | None = None
