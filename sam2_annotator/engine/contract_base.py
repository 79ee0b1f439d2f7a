"""The base class of the model I/O contracts and the helpers every contract shares.

:class:`ModelContract` declares a family's names, ranks and dtypes, checks a pair of graphs
against them (the matching helpers below word every difference) and converts tensors into our
normalised types (:class:`Embedding`, :class:`DecoderOutput`). The known families are in
:mod:`.contract_families`; detection is in :mod:`.contracts`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from sam2_annotator.engine.types import DecoderOutput, Embedding, TensorSpec
from sam2_annotator.errors import ModelError

Signature = Mapping[str, TensorSpec]

FLOAT, INT32, INT64, BOOL = "tensor(float)", "tensor(int32)", "tensor(int64)", "tensor(bool)"
#: ONNX Runtime type string -> numpy dtype, for the dtypes a contract may declare for its inputs.
_NUMPY_DTYPES: dict[str, type[np.generic]] = {
    FLOAT: np.float32,
    INT32: np.int32,
    INT64: np.int64,
    BOOL: np.bool_,
}
#: SAM2's mask decoder has four output tokens: 0 is the single-mask token, 1..3 the multimask ones.
NUM_MASK_TOKENS = 4
#: Channels of each :class:`Embedding` feature map; a swapped or foreign encoder fails this check.
_EMBEDDING_CHANNELS = {"image_embed": 256, "high_res_feats_0": 32, "high_res_feats_1": 64}


class ModelContract(ABC):
    """One exported-model family. Subclasses declare names, ranks and dtypes and convert tensors.

    Detection requires the graph's inputs to be exactly the declared ones (ONNX Runtime refuses a
    feed that misses a graph input or names an unknown one), the declared outputs to be present,
    and every declared dtype to match.
    """

    name: ClassVar[str]
    description: ClassVar[str]
    #: name -> rank, for the four parts of the two graphs.
    encoder_inputs: ClassVar[dict[str, int]]
    encoder_outputs: ClassVar[dict[str, int]]
    decoder_inputs: ClassVar[dict[str, int]]
    decoder_outputs: ClassVar[dict[str, int]]
    #: input name (encoder or decoder) -> the ONNX Runtime type string the graph must declare.
    #: :meth:`typed_feed` casts to these, so a feed always carries the declared dtypes.
    input_dtypes: ClassVar[dict[str, str]] = {}
    #: output name -> the type strings this contract's parser accepts.
    output_dtypes: ClassVar[dict[str, tuple[str, ...]]] = {}
    #: What :meth:`extra_match` checks, in words, for error messages.
    extra_requirement: ClassVar[str] = ""

    @classmethod
    def matches(
        cls,
        enc_in: Signature,
        enc_out: Signature,
        dec_in: Signature,
        dec_out: Signature,
    ) -> bool:
        """True when names, ranks and dtypes all fit (see :meth:`mismatches`)."""
        return not cls.mismatches(enc_in, enc_out, dec_in, dec_out)

    @classmethod
    def mismatches(
        cls, enc_in: Signature, enc_out: Signature, dec_in: Signature, dec_out: Signature
    ) -> list[str]:
        """Every way the two graphs differ from this contract, in words; empty when they match."""
        problems = [
            *_input_problems("encoder", cls.encoder_inputs, enc_in, cls.input_dtypes),
            *_output_problems("encoder", cls.encoder_outputs, enc_out, {}),
            *_input_problems("decoder", cls.decoder_inputs, dec_in, cls.input_dtypes),
            *_output_problems("decoder", cls.decoder_outputs, dec_out, cls.output_dtypes),
        ]
        if not problems and not cls.extra_match(enc_in, enc_out, dec_in, dec_out):
            problems.append(f"{cls.name}-specific check failed: {cls.extra_requirement}")
        return problems

    @classmethod
    def extra_match(
        cls, enc_in: Signature, enc_out: Signature, dec_in: Signature, dec_out: Signature
    ) -> bool:
        """Hook for contracts that share names, ranks and dtypes but still differ (describe the
        check in :attr:`extra_requirement`)."""
        return True

    @classmethod
    def expectation(cls) -> str:
        """One human-readable line listing the names (ranks, dtypes) this contract expects."""
        return (
            f"{cls.name} ({cls.description}): encoder {_fmt(cls.encoder_inputs, cls.input_dtypes)}"
            f" -> {_fmt(cls.encoder_outputs)}; decoder "
            f"{_fmt(cls.decoder_inputs, cls.input_dtypes)} -> "
            f"{_fmt(cls.decoder_outputs, _joined_dtypes(cls.output_dtypes))}"
        )

    @property
    def encoder_input_name(self) -> str:
        return next(iter(self.encoder_inputs))

    def typed_feed(self, feed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Cast each array to the dtype this contract declares for it (no copy when it already
        has that dtype)."""
        return {
            name: np.asarray(value, dtype=_NUMPY_DTYPES[self.input_dtypes[name]])
            if name in self.input_dtypes
            else value
            for name, value in feed.items()
        }

    #: Our embedding field -> this family's tensor name (encoder output = decoder input).
    feature_names: ClassVar[dict[str, str]] = {
        "image_embed": "image_embed",
        "high_res_feats_0": "high_res_feats_0",
        "high_res_feats_1": "high_res_feats_1",
    }
    #: Names of the previous-mask input and its 0/1 flag.
    mask_input_names: ClassVar[tuple[str, str]] = ("mask_input", "has_mask_input")
    #: Name of the (H, W) original-size input, for graphs that upsample themselves.
    orig_size_name: ClassVar[str | None] = None

    def parse_encoder(
        self, outputs: Mapping[str, np.ndarray], orig_hw: tuple[int, int]
    ) -> Embedding:
        """Turn the encoder's named outputs into an :class:`Embedding`."""
        return _embedding(self.name, outputs, self.feature_names, orig_hw)

    def decoder_feed(
        self,
        embedding: Embedding,
        coords: np.ndarray,
        labels: np.ndarray,
        mask_input: np.ndarray,
        has_mask_input: bool,
    ) -> dict[str, np.ndarray]:
        """Build the decoder's input feed, cast to the declared dtypes.

        ``coords`` is ``(1, N, 2)`` float32 in the 1024x1024 input space, box corners first
        (labels 2 and 3) then points (1/0), *without* SAM's padding point: every known family
        adds it inside its graph. ``mask_input`` is ``(1, 1, 256, 256)``.
        """
        feed = {theirs: getattr(embedding, ours) for ours, theirs in self.feature_names.items()}
        mask_name, flag_name = self.mask_input_names
        feed.update(
            {
                "point_coords": coords,
                "point_labels": labels,
                mask_name: mask_input,
                flag_name: np.array([1.0 if has_mask_input else 0.0]),
            }
        )
        if self.orig_size_name is not None:
            feed[self.orig_size_name] = np.array(embedding.orig_hw)
        return self.typed_feed(feed)

    @abstractmethod
    def parse_decoder(self, outputs: Mapping[str, np.ndarray]) -> DecoderOutput:
        """Normalise the decoder's named outputs."""


# --- matching helpers -------------------------------------------------------------------------


def _short(dtype: str) -> str:
    return dtype.removeprefix("tensor(").rstrip(")")


def _input_problems(
    graph: str, expected: Mapping[str, int], found: Signature, dtypes: Mapping[str, str]
) -> list[str]:
    problems = _declared_problems(graph, "input", expected, found, allow_unknown_rank=False)
    for name in expected:
        want = dtypes.get(name)
        if name in found and want is not None and found[name].dtype != want:
            problems.append(
                f"{graph} input {name!r} is {_short(found[name].dtype)}, expected {_short(want)}"
            )
    problems += [
        f"{graph} has an input {name!r} that this contract does not feed"
        for name in found
        if name not in expected
    ]
    return problems


def _output_problems(
    graph: str,
    expected: Mapping[str, int],
    found: Signature,
    dtypes: Mapping[str, tuple[str, ...]],
) -> list[str]:
    # ONNX Runtime reports an output whose shape the graph does not declare as rank 0: accept it.
    problems = _declared_problems(graph, "output", expected, found, allow_unknown_rank=True)
    for name, allowed in dtypes.items():
        if name in found and found[name].dtype not in allowed:
            problems.append(
                f"{graph} output {name!r} is {_short(found[name].dtype)}, expected "
                + " or ".join(_short(d) for d in allowed)
            )
    return problems


def _declared_problems(
    graph: str, kind: str, expected: Mapping[str, int], found: Signature, allow_unknown_rank: bool
) -> list[str]:
    problems = []
    for name, rank in expected.items():
        spec = found.get(name)
        if spec is None:
            problems.append(f"{graph} {kind} {name!r} (rank {rank}) is missing")
        elif spec.rank != rank and not (allow_unknown_rank and spec.rank == 0):
            problems.append(
                f"{graph} {kind} {name!r} has rank {spec.rank} {list(spec.shape)}, "
                f"expected rank {rank}"
            )
    return problems


def _joined_dtypes(dtypes: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    return {name: "|".join(_short(d) for d in allowed) for name, allowed in dtypes.items()}


def _fmt(names: Mapping[str, int], dtypes: Mapping[str, str] | None = None) -> str:
    dtypes = dtypes or {}

    def one(name: str, rank: int) -> str:
        dtype = dtypes.get(name)
        return f"{name} (rank {rank}, {_short(dtype)})" if dtype else f"{name} (rank {rank})"

    return "[" + ", ".join(one(n, r) for n, r in names.items()) + "]"


def describe_signature(sig: Signature) -> str:
    """``name [shape] dtype`` items, for error messages."""
    return ", ".join(f"{s.name} {list(s.shape)} {_short(s.dtype)}" for s in sig.values())


# --- parsing helpers --------------------------------------------------------------------------


def _embedding(
    contract: str,
    outputs: Mapping[str, np.ndarray],
    names: Mapping[str, str],
    orig_hw: tuple[int, int],
) -> Embedding:
    """Build an :class:`Embedding` from ``names`` (our field -> graph output name), checking each
    map is ``[1, C, H, W]`` float32 with SAM2's channel count (catches swapped feature maps)."""
    arrays: dict[str, np.ndarray] = {}
    for field_name, graph_name in names.items():
        array = np.asarray(outputs[graph_name], dtype=np.float32)
        channels = _EMBEDDING_CHANNELS[field_name]
        if array.ndim != 4 or array.shape[0] != 1 or array.shape[1] != channels:
            raise ModelError(
                f"{contract} encoder output {graph_name!r} has shape {list(array.shape)}; "
                f"expected [1, {channels}, H, W] for SAM2's {field_name}"
            )
        arrays[field_name] = array
    return Embedding(
        image_embed=arrays["image_embed"],
        high_res_feats_0=arrays["high_res_feats_0"],
        high_res_feats_1=arrays["high_res_feats_1"],
        orig_hw=orig_hw,
    )


def make_decoder_output(
    contract: str,
    low_res: np.ndarray,
    iou: np.ndarray,
    upsampled: np.ndarray | None = None,
    single_token: bool | None = None,
) -> DecoderOutput:
    """Drop the batch axis of ``(1, K, 256, 256)`` logits and ``(1, K)`` scores and check that
    both hold the same K candidates. Unless the contract knows better, K == 4 means all of
    SAM2's tokens, token 0 first."""
    if low_res.ndim != 4 or iou.ndim != 2 or low_res.shape[1] != iou.shape[1]:
        raise ModelError(
            f"{contract} decoder returned masks {list(low_res.shape)} and scores "
            f"{list(iou.shape)}; expected (1, K, 256, 256) and (1, K) with the same K"
        )
    candidates = iou.shape[1]
    return DecoderOutput(
        low_res_logits=np.asarray(low_res[0], dtype=np.float32),
        iou_predictions=np.asarray(iou[0], dtype=np.float32),
        single_token=candidates == NUM_MASK_TOKENS if single_token is None else single_token,
        upsampled_logits=None if upsampled is None else np.asarray(upsampled[0], np.float32),
    )
