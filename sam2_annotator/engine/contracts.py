"""Model I/O contracts: how to talk to one family of exported SAM2 ONNX files.

Each family is one small class registered in :data:`CONTRACTS`. :func:`detect_contract` picks the
one whose input/output names and ranks match a pair of loaded sessions, or raises
:class:`~sam2_annotator.errors.ModelError` saying what each known contract expects and what was
found. The engine only ever sees our normalised types (:class:`Embedding`, :class:`DecoderOutput`).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from sam2_annotator.engine.types import DecoderOutput, Embedding, TensorSpec
from sam2_annotator.errors import ModelError

Signature = Mapping[str, TensorSpec]


class ModelContract(ABC):
    """One exported-model family. Subclasses declare names and ranks and convert tensors."""

    name: ClassVar[str]
    description: ClassVar[str]
    #: name -> rank, for the four parts of the two graphs.
    encoder_inputs: ClassVar[dict[str, int]]
    encoder_outputs: ClassVar[dict[str, int]]
    decoder_inputs: ClassVar[dict[str, int]]
    decoder_outputs: ClassVar[dict[str, int]]

    @classmethod
    def matches(
        cls,
        enc_in: Signature,
        enc_out: Signature,
        dec_in: Signature,
        dec_out: Signature,
    ) -> bool:
        """True when every declared name is present with the declared rank."""
        pairs = (
            (cls.encoder_inputs, enc_in),
            (cls.encoder_outputs, enc_out),
            (cls.decoder_inputs, dec_in),
            (cls.decoder_outputs, dec_out),
        )
        return all(_has_all(expected, found) for expected, found in pairs) and cls.extra_match(
            enc_in, enc_out, dec_in, dec_out
        )

    @classmethod
    def extra_match(
        cls, enc_in: Signature, enc_out: Signature, dec_in: Signature, dec_out: Signature
    ) -> bool:
        """Hook for contracts that share names but differ in dtypes."""
        return True

    @classmethod
    def expectation(cls) -> str:
        """One human-readable line per graph listing the names this contract expects."""
        return (
            f"{cls.name} ({cls.description}): encoder {_fmt(cls.encoder_inputs)} -> "
            f"{_fmt(cls.encoder_outputs)}; decoder {_fmt(cls.decoder_inputs)} -> "
            f"{_fmt(cls.decoder_outputs)}"
        )

    @property
    def encoder_input_name(self) -> str:
        return next(iter(self.encoder_inputs))

    @abstractmethod
    def parse_encoder(
        self, outputs: Mapping[str, np.ndarray], orig_hw: tuple[int, int]
    ) -> Embedding:
        """Turn the encoder's named outputs into an :class:`Embedding`."""

    @abstractmethod
    def decoder_feed(
        self,
        embedding: Embedding,
        coords: np.ndarray,
        labels: np.ndarray,
        mask_input: np.ndarray,
        has_mask_input: bool,
    ) -> dict[str, np.ndarray]:
        """Build the decoder's input feed.

        ``coords`` is ``(1, N, 2)`` float32 in the 1024x1024 input space, box corners first
        (labels 2 and 3) then points (1/0), *without* SAM's padding point: contracts whose graph
        does not add it themselves add it here. ``mask_input`` is ``(1, 1, 256, 256)``.
        """

    @abstractmethod
    def parse_decoder(self, outputs: Mapping[str, np.ndarray]) -> DecoderOutput:
        """Normalise the decoder's named outputs."""


def _has_all(expected: Mapping[str, int], found: Signature) -> bool:
    return all(name in found and found[name].rank == rank for name, rank in expected.items())


def _fmt(names: Mapping[str, int]) -> str:
    return "[" + ", ".join(f"{n} (rank {r})" for n, r in names.items()) + "]"


def describe_signature(sig: Signature) -> str:
    """``name [shape] dtype`` items, for error messages."""
    return ", ".join(
        f"{s.name} {list(s.shape)} {s.dtype.removeprefix('tensor(').rstrip(')')}"
        for s in sig.values()
    )


class OursContract(ModelContract):
    """Our exporter's files, which use the samexporter names shared by most third-party tools.

    The decoder adds SAM's padding point inside the graph and returns all four candidates'
    low-resolution logits (token 0 is the single-mask token).
    """

    name = "sam2-annotator"
    description = "our exporter / samexporter names"
    encoder_inputs: ClassVar[dict[str, int]] = {"image": 4}
    encoder_outputs: ClassVar[dict[str, int]] = {
        "high_res_feats_0": 4,
        "high_res_feats_1": 4,
        "image_embed": 4,
    }
    decoder_inputs: ClassVar[dict[str, int]] = {
        "image_embed": 4,
        "high_res_feats_0": 4,
        "high_res_feats_1": 4,
        "point_coords": 3,
        "point_labels": 2,
        "mask_input": 4,
        "has_mask_input": 1,
    }
    decoder_outputs: ClassVar[dict[str, int]] = {"masks": 4, "iou_predictions": 2}

    def parse_encoder(
        self, outputs: Mapping[str, np.ndarray], orig_hw: tuple[int, int]
    ) -> Embedding:
        return Embedding(
            image_embed=outputs["image_embed"],
            high_res_feats_0=outputs["high_res_feats_0"],
            high_res_feats_1=outputs["high_res_feats_1"],
            orig_hw=orig_hw,
        )

    def decoder_feed(
        self,
        embedding: Embedding,
        coords: np.ndarray,
        labels: np.ndarray,
        mask_input: np.ndarray,
        has_mask_input: bool,
    ) -> dict[str, np.ndarray]:
        return {
            "image_embed": embedding.image_embed,
            "high_res_feats_0": embedding.high_res_feats_0,
            "high_res_feats_1": embedding.high_res_feats_1,
            "point_coords": coords.astype(np.float32, copy=False),
            "point_labels": labels.astype(np.float32, copy=False),
            "mask_input": mask_input.astype(np.float32, copy=False),
            "has_mask_input": np.array([1.0 if has_mask_input else 0.0], np.float32),
        }

    def parse_decoder(self, outputs: Mapping[str, np.ndarray]) -> DecoderOutput:
        masks = outputs["masks"][0]
        iou = outputs["iou_predictions"][0]
        return DecoderOutput(low_res_logits=masks, iou_predictions=iou, single_token=len(iou) == 4)


#: Every known contract, tried in order by :func:`detect_contract`.
CONTRACTS: list[type[ModelContract]] = [OursContract]


def detect_contract(
    enc_in: Signature, enc_out: Signature, dec_in: Signature, dec_out: Signature
) -> ModelContract:
    """Return the contract matching the two graphs, or raise a :class:`ModelError` that lists
    every known contract's expectations next to what the files declare."""
    for contract in CONTRACTS:
        if contract.matches(enc_in, enc_out, dec_in, dec_out):
            return contract()
    expected = "\n  ".join(c.expectation() for c in CONTRACTS)
    raise ModelError(
        "the ONNX files do not match any known SAM2 contract.\n"
        f"Found: encoder inputs [{describe_signature(enc_in)}] outputs "
        f"[{describe_signature(enc_out)}]; decoder inputs [{describe_signature(dec_in)}] "
        f"outputs [{describe_signature(dec_out)}].\n"
        f"Expected one of:\n  {expected}"
    )
