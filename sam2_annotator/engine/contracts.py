"""Model I/O contracts: how to talk to one family of exported SAM2 ONNX files.

Each family is one small class registered in :data:`CONTRACTS`. :func:`detect_contract` picks the
one whose input/output names, ranks and dtypes match a pair of loaded sessions, or raises
:class:`~sam2_annotator.errors.ModelError` saying what the closest contract misses, what each known
contract expects and what was found. The engine only ever sees our normalised types
(:class:`Embedding`, :class:`DecoderOutput`).

Every known family preprocesses the image the same way (resize to 1024x1024, ImageNet mean/std),
takes point coordinates in that 1024x1024 space and adds SAM's padding point inside the decoder
graph, so the engine's pre-processing is shared and only names, dtypes and outputs differ.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from typing import ClassVar, NamedTuple, Protocol

import numpy as np

from sam2_annotator.engine.types import DecoderOutput, Embedding, TensorSpec
from sam2_annotator.errors import ModelError

log = logging.getLogger(__name__)

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


def _decoder_output(
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


# --- the contracts ----------------------------------------------------------------------------


class OursContract(ModelContract):
    """Our exporter's files, which use the samexporter names shared by most third-party tools.

    Our decoder adds SAM's padding point inside the graph and returns all four candidates'
    low-resolution logits (token 0 is the single-mask token).

    samexporter, read in vietanhdev/samexporter:
    - samexporter/export_sam2.py: encoder ``image`` -> high_res_feats_0, high_res_feats_1,
      image_embed (no_mem_embed already added); decoder has no orig_im_size input.
    - samexporter/export_sam2.py: point_labels traced as float; the graph adds +0.5 and the
      padding point (0, 0)/-1 itself, so we send none.
    - samexporter/export_sam2.py: multimask_output is hard-coded True, so ``masks`` holds only
      tokens 1..3 (3 candidates, 256x256 logits clamped to +-32) and ``single_token`` is False.
    - samexporter/sam2_onnx.py: its client resizes the low-res masks to the image itself.
    The candidate count (4 for ours, 3 for samexporter) is read from the outputs at parse time.
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
    input_dtypes: ClassVar[dict[str, str]] = {
        "image": FLOAT,
        "image_embed": FLOAT,
        "high_res_feats_0": FLOAT,
        "high_res_feats_1": FLOAT,
        "point_coords": FLOAT,
        "point_labels": FLOAT,
        "mask_input": FLOAT,
        "has_mask_input": FLOAT,
    }
    output_dtypes: ClassVar[dict[str, tuple[str, ...]]] = {
        "masks": (FLOAT,),
        "iou_predictions": (FLOAT,),
    }

    def parse_decoder(self, outputs: Mapping[str, np.ndarray]) -> DecoderOutput:
        return _decoder_output(self.name, outputs["masks"], outputs["iou_predictions"])


class OrtOfficialContract(ModelContract):
    """ONNX Runtime's own SAM2 export (``convert_to_onnx.py`` in its transformers tools).

    Read in microsoft/onnxruntime, onnxruntime/python/tools/transformers/models/sam2/:
    - image_encoder.py: ``image`` [B,3,1024,1024] -> image_features_0 [32ch, 256^2],
      image_features_1 [64ch, 128^2], image_embeddings [256ch, 64^2] (no_mem_embed added).
    - image_decoder.py: inputs point_coords [L,P,2] float in the 1024 space, point_labels int32,
      input_masks [L,1,256,256], has_input_masks [L] float, original_image_size [2] int32 (H, W).
    - prompt_encoder.py: the graph adds +0.5 and the padding point (0, 0)/-1 itself.
    - mask_decoder.py: the multimask export keeps tokens 1..3 (3 candidates); the default single
      export returns 1 candidate picked by dynamic multimask via stability, so ``single_token``
      is always False (a single candidate is already the graph's choice).
    - image_decoder.py: ``masks`` is the low-res logits bilinearly upsampled to
      original_image_size then thresholded at 0 (bool; float logits only if exported with
      return_logits); ``low_res_masks`` are 256x256 logits clamped to +-32.
    - convert_to_onnx.py: single and multimask decoders are separate files
      (``*_image_decoder.onnx``, ``*_image_decoder_multi.onnx``).
    - sam2_image_onnx_predictor.py: the image is prepared by SAM2's transforms, as ours is.
    ``low_res_logits`` come from ``low_res_masks``; ``upsampled_logits`` is set only when
    ``masks`` holds float logits (a bool mask is not a logit map; the engine upsamples itself).
    """

    name = "onnxruntime-sam2"
    description = "ONNX Runtime's SAM2 export (convert_to_onnx.py)"
    encoder_inputs: ClassVar[dict[str, int]] = {"image": 4}
    encoder_outputs: ClassVar[dict[str, int]] = {
        "image_features_0": 4,
        "image_features_1": 4,
        "image_embeddings": 4,
    }
    decoder_inputs: ClassVar[dict[str, int]] = {
        "image_features_0": 4,
        "image_features_1": 4,
        "image_embeddings": 4,
        "point_coords": 3,
        "point_labels": 2,
        "input_masks": 4,
        "has_input_masks": 1,
        "original_image_size": 1,
    }
    decoder_outputs: ClassVar[dict[str, int]] = {
        "masks": 4,
        "iou_predictions": 2,
        "low_res_masks": 4,
    }
    input_dtypes: ClassVar[dict[str, str]] = {
        "image": FLOAT,
        "image_features_0": FLOAT,
        "image_features_1": FLOAT,
        "image_embeddings": FLOAT,
        "point_coords": FLOAT,
        "point_labels": INT32,
        "input_masks": FLOAT,
        "has_input_masks": FLOAT,
        "original_image_size": INT32,
    }
    output_dtypes: ClassVar[dict[str, tuple[str, ...]]] = {
        "masks": (BOOL, FLOAT),
        "iou_predictions": (FLOAT,),
        "low_res_masks": (FLOAT,),
    }

    feature_names: ClassVar[dict[str, str]] = {
        "image_embed": "image_embeddings",
        "high_res_feats_0": "image_features_0",
        "high_res_feats_1": "image_features_1",
    }
    mask_input_names: ClassVar[tuple[str, str]] = ("input_masks", "has_input_masks")
    orig_size_name: ClassVar[str | None] = "original_image_size"

    def parse_decoder(self, outputs: Mapping[str, np.ndarray]) -> DecoderOutput:
        masks = outputs["masks"]
        upsampled = None if masks.dtype == np.bool_ else masks
        return _decoder_output(
            self.name,
            outputs["low_res_masks"],
            outputs["iou_predictions"],
            upsampled,
            single_token=False,
        )


class OsamContract(ModelContract):
    """ryouchinsa's SAM2 export (RectLabel), which osam downloads and runs.

    Read in ryouchinsa/sam-cpp-macos, export_onnx.py:
    - encoder ``input`` [1,3,1024,1024] -> image_embeddings, high_res_features1 (32ch, 256^2),
      high_res_features2 (64ch, 128^2); files are ``<name>_preprocess.onnx`` and ``<name>.onnx``.
    - decoder inputs as SAM1's official ONNX plus high_res_features1/2: point_labels float32,
      mask_input, has_mask_input [1] float, orig_im_size [2] int64 (H, W).
    - the decoder graph adds +0.5 and the padding point (0, 0)/-1 itself, unlike SAM1's official
      export whose client adds it, so we send none.
    - no token slicing: all 4 tokens come back (token 0 = single mask); ``masks`` are unclamped
      float logits upsampled to orig_im_size, ``low_res_masks`` 256x256 logits clamped to +-32.
    Read in wkentaro/osam:
    - osam/_models/sam2/_decoding.py: its client sends float32 labels, int64 orig_im_size and no
      padding point, then takes the argmax-score mask of the upsampled logits.
    - osam/_models/sam2/_encoding.py, _models.py: feeds ``input``, reads the three outputs in
      that order; downloads sam2.1_*_preprocess.onnx + sam2.1_*.onnx from the same export.
    ``low_res_logits`` come from ``low_res_masks``; ``upsampled_logits`` from ``masks``.
    """

    name = "osam"
    description = "ryouchinsa/RectLabel SAM2 export, used by osam"
    encoder_inputs: ClassVar[dict[str, int]] = {"input": 4}
    encoder_outputs: ClassVar[dict[str, int]] = {
        "image_embeddings": 4,
        "high_res_features1": 4,
        "high_res_features2": 4,
    }
    decoder_inputs: ClassVar[dict[str, int]] = {
        "image_embeddings": 4,
        "high_res_features1": 4,
        "high_res_features2": 4,
        "point_coords": 3,
        "point_labels": 2,
        "mask_input": 4,
        "has_mask_input": 1,
        "orig_im_size": 1,
    }
    decoder_outputs: ClassVar[dict[str, int]] = {
        "masks": 4,
        "iou_predictions": 2,
        "low_res_masks": 4,
    }
    input_dtypes: ClassVar[dict[str, str]] = {
        "input": FLOAT,
        "image_embeddings": FLOAT,
        "high_res_features1": FLOAT,
        "high_res_features2": FLOAT,
        "point_coords": FLOAT,
        "point_labels": FLOAT,
        "mask_input": FLOAT,
        "has_mask_input": FLOAT,
        "orig_im_size": INT64,
    }
    output_dtypes: ClassVar[dict[str, tuple[str, ...]]] = {
        "masks": (FLOAT,),
        "iou_predictions": (FLOAT,),
        "low_res_masks": (FLOAT,),
    }

    feature_names: ClassVar[dict[str, str]] = {
        "image_embed": "image_embeddings",
        "high_res_feats_0": "high_res_features1",
        "high_res_feats_1": "high_res_features2",
    }
    orig_size_name: ClassVar[str | None] = "orig_im_size"

    def parse_decoder(self, outputs: Mapping[str, np.ndarray]) -> DecoderOutput:
        return _decoder_output(
            self.name, outputs["low_res_masks"], outputs["iou_predictions"], outputs["masks"]
        )


#: Every known contract, tried in order by :func:`detect_contract`.
CONTRACTS: list[type[ModelContract]] = [OursContract, OrtOfficialContract, OsamContract]


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
