"""Model I/O contracts: how to talk to one family of exported SAM2 ONNX files.

Each family is one small class registered in :data:`CONTRACTS`. :func:`detect_contract` picks the
one whose input/output names, ranks and dtypes match a pair of loaded sessions, or raises
:class:`~sam2_annotator.errors.ModelError` saying what the closest contract misses, what each known
contract expects and what was found. The engine only ever sees our normalised types
(:class:`Embedding`, :class:`DecoderOutput`).

Every known family preprocesses the image the same way (resize to 1024x1024, ImageNet mean/std),
takes point coordinates in that 1024x1024 space and adds SAM's padding point inside the decoder
graph, so the engine's pre-processing is shared and only names, dtypes and outputs differ.

The base class and its helpers are in :mod:`.contract_base`, the families in
:mod:`.contract_families`; this module reads sessions, detects the contract and re-exports the
public names of both.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol

from sam2_annotator.engine.contract_base import (
    BOOL,
    FLOAT,
    INT32,
    INT64,
    NUM_MASK_TOKENS,
    ModelContract,
    Signature,
    describe_signature,
)
from sam2_annotator.engine.contract_families import (
    CONTRACTS,
    OrtOfficialContract,
    OsamContract,
    OursContract,
)
from sam2_annotator.engine.types import TensorSpec
from sam2_annotator.errors import ModelError

__all__ = [
    "BOOL",
    "CONTRACTS",
    "FLOAT",
    "HINTS",
    "INT32",
    "INT64",
    "NUM_MASK_TOKENS",
    "Hint",
    "ModelContract",
    "OrtOfficialContract",
    "OsamContract",
    "OursContract",
    "Signature",
    "Signatures",
    "describe_signature",
    "detect_contract",
    "signature_of",
    "signatures_from_sessions",
]

log = logging.getLogger(__name__)


# --- reading sessions -------------------------------------------------------------------------


class _NodeArg(Protocol):
    """What we read from ``onnxruntime.NodeArg``."""

    @property
    def name(self) -> str: ...
    @property
    def shape(self) -> Sequence[int | str | None] | None: ...
    @property
    def type(self) -> str: ...


class _Session(Protocol):
    """What we read from ``onnxruntime.InferenceSession`` (kept structural: no import here)."""

    def get_inputs(self) -> Sequence[_NodeArg]: ...
    def get_outputs(self) -> Sequence[_NodeArg]: ...


class Signatures(NamedTuple):
    """The four I/O lists of an encoder/decoder pair; unpacks into :func:`detect_contract`."""

    enc_in: dict[str, TensorSpec]
    enc_out: dict[str, TensorSpec]
    dec_in: dict[str, TensorSpec]
    dec_out: dict[str, TensorSpec]


def signature_of(args: Sequence[_NodeArg]) -> dict[str, TensorSpec]:
    """``name -> TensorSpec`` for a session's inputs or outputs, in graph order."""
    return {a.name: TensorSpec(a.name, tuple(a.shape or ()), a.type) for a in args}


def signatures_from_sessions(encoder_session: _Session, decoder_session: _Session) -> Signatures:
    """Read the encoder's and decoder's inputs and outputs from two ONNX Runtime sessions."""
    return Signatures(
        signature_of(encoder_session.get_inputs()),
        signature_of(encoder_session.get_outputs()),
        signature_of(decoder_session.get_inputs()),
        signature_of(decoder_session.get_outputs()),
    )


# --- detection --------------------------------------------------------------------------------

Hint = Callable[[Signature, Signature, Signature, Signature], str | None]


def _hint_sam1(
    enc_in: Signature, enc_out: Signature, dec_in: Signature, dec_out: Signature
) -> str | None:
    """SAM1 encoders return one feature map and SAM1 decoders take only the embedding and the
    mask as 4-D inputs; SAM2 adds two high-resolution maps to both."""
    maps_out = sum(s.rank == 4 for s in enc_out.values())
    maps_in = sum(s.rank == 4 for s in dec_in.values())
    if (enc_out and maps_out == 1) or (dec_in and maps_in == 2):
        return (
            "is this a SAM (version 1) model? The files carry a single image embedding without "
            "SAM2's two high-resolution feature maps; export a SAM2 / SAM2.1 checkpoint instead."
        )
    return None


def _hint_swapped(
    enc_in: Signature, enc_out: Signature, dec_in: Signature, dec_out: Signature
) -> str | None:
    if "point_coords" in enc_in and "point_coords" not in dec_in:
        return "the encoder and decoder files look swapped."
    return None


#: Small functions that recognise a common mistake and say so in plain words.
HINTS: list[Hint] = [_hint_sam1, _hint_swapped]


def detect_contract(
    enc_in: Signature, enc_out: Signature, dec_in: Signature, dec_out: Signature
) -> ModelContract:
    """Return the contract matching the two graphs, or raise a :class:`ModelError` that names
    the closest contract's differences, lists every known contract's expectations and shows
    what the files declare."""
    diagnoses = [(c, c.mismatches(enc_in, enc_out, dec_in, dec_out)) for c in CONTRACTS]
    for contract, problems in diagnoses:
        if not problems:
            log.info("model contract: %s", contract.name)
            return contract()
    closest, problems = min(diagnoses, key=lambda pair: len(pair[1]))
    hints = [text for hint in HINTS if (text := hint(enc_in, enc_out, dec_in, dec_out))]
    expected = "\n  ".join(c.expectation() for c in CONTRACTS)
    raise ModelError(
        "the ONNX files do not match any known SAM2 contract."
        + "".join(f"\nHint: {text}" for text in hints)
        + f"\nClosest is {closest.name} ({closest.description}): "
        + "; ".join(problems)
        + f".\nFound: encoder inputs [{describe_signature(enc_in)}] outputs "
        f"[{describe_signature(enc_out)}]; decoder inputs [{describe_signature(dec_in)}] "
        f"outputs [{describe_signature(dec_out)}].\n"
        f"Expected one of:\n  {expected}"
    )
