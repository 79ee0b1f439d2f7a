"""Tiny ONNX graphs with the I/O of each SAM2 export family, for tests (not a test module).

The graphs compute nothing SAM-like, only values that tell a test what reached them:

* encoder: every output is ``mean(image) + offset`` broadcast to SAM2's real feature shapes,
  with :data:`EMBED_OFFSET`, :data:`FEAT0_OFFSET` and :data:`FEAT1_OFFSET` telling the maps apart;
* decoder: candidate ``k`` of the low-res logits is :func:`expected_low_res`, i.e. ``k`` + the
  number of points fed + ``has_mask * mean(mask)`` + a weighted sum of the three feature means
  (so a missing padding point, a dropped mask flag or swapped feature maps all change it); the
  scores are :func:`expected_iou`; upsampled masks (float or bool) have the fed original size.

:func:`stub_model` builds a graph with arbitrary I/O (outputs are constants, inputs unused) for
detection-only tests of broken or foreign files.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper

OPSET = 17
IR_VERSION = 8
SIDE = 1024
#: SAM2 feature maps: channels and stride relative to the 1024 input.
EMBED_SHAPE = [1, 256, SIDE // 16, SIDE // 16]
FEAT0_SHAPE = [1, 32, SIDE // 4, SIDE // 4]
FEAT1_SHAPE = [1, 64, SIDE // 8, SIDE // 8]
LOW_RES_SIDE = SIDE // 4
EMBED_OFFSET, FEAT0_OFFSET, FEAT1_OFFSET = 1.0, 2.0, 3.0
#: Weights of the three feature means in the decoder's low-res logits.
EMBED_WEIGHT, FEAT0_WEIGHT, FEAT1_WEIGHT = 1.0, 10.0, 100.0

Dim = int | str


@dataclass(frozen=True)
class Tensor:
    """One graph input or output: name, ONNX element type (``TensorProto.FLOAT``...), shape."""

    name: str
    elem_type: int
    shape: list[Dim]

    def value_info(self) -> onnx.ValueInfoProto:
        return helper.make_tensor_value_info(self.name, self.elem_type, self.shape)


@dataclass(frozen=True)
class EncoderSpec:
    image: str
    embed: str
    feat0: str
    feat1: str


@dataclass(frozen=True)
class DecoderSpec:
    embed: str
    feat0: str
    feat1: str
    coords: str = "point_coords"
    labels: str = "point_labels"
    labels_dtype: int = TensorProto.FLOAT
    mask: str = "mask_input"
    has_mask: str = "has_mask_input"
    orig_size: str | None = None
    orig_size_dtype: int = TensorProto.INT64
    masks: str = "masks"
    #: what ``masks`` holds: low-res logits, upsampled float logits or upsampled booleans.
    masks_kind: Literal["low_res", "upsampled", "upsampled_bool"] = "low_res"
    low_res: str | None = None
    iou: str = "iou_predictions"
    candidates: int = 4


# Families, as read from their export scripts (see the docstrings in engine/contracts.py).
OURS_ENCODER = EncoderSpec("image", "image_embed", "high_res_feats_0", "high_res_feats_1")
OURS_DECODER = DecoderSpec("image_embed", "high_res_feats_0", "high_res_feats_1")
#: samexporter: our names, but multimask_output is hard-coded so only tokens 1..3 come back.
SAMEXPORTER_DECODER = DecoderSpec(
    "image_embed", "high_res_feats_0", "high_res_feats_1", candidates=3
)
ORT_ENCODER = EncoderSpec("image", "image_embeddings", "image_features_0", "image_features_1")
ORT_DECODER_MULTI = DecoderSpec(
    "image_embeddings",
    "image_features_0",
    "image_features_1",
    labels_dtype=TensorProto.INT32,
    mask="input_masks",
    has_mask="has_input_masks",
    orig_size="original_image_size",
    orig_size_dtype=TensorProto.INT32,
    masks_kind="upsampled_bool",
    low_res="low_res_masks",
    candidates=3,
)
#: ONNX Runtime's default (single-mask) decoder: one candidate chosen inside the graph.
ORT_DECODER_SINGLE = replace(ORT_DECODER_MULTI, candidates=1)
#: An ONNX Runtime decoder exported with return_logits=True: float upsampled logits.
ORT_DECODER_LOGITS = replace(ORT_DECODER_MULTI, masks_kind="upsampled")
OSAM_ENCODER = EncoderSpec("input", "image_embeddings", "high_res_features1", "high_res_features2")
OSAM_DECODER = DecoderSpec(
    "image_embeddings",
    "high_res_features1",
    "high_res_features2",
    orig_size="orig_im_size",
    orig_size_dtype=TensorProto.INT64,
    masks_kind="upsampled",
    low_res="low_res_masks",
    candidates=4,
)

#: SAM (version 1) official ONNX I/O, for "unknown model" tests.
SAM1_ENCODER_IO = (
    [Tensor("image", TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
    [Tensor("image_embeddings", TensorProto.FLOAT, EMBED_SHAPE)],
)
SAM1_DECODER_IO = (
    [
        Tensor("image_embeddings", TensorProto.FLOAT, EMBED_SHAPE),
        Tensor("point_coords", TensorProto.FLOAT, [1, "num_points", 2]),
        Tensor("point_labels", TensorProto.FLOAT, [1, "num_points"]),
        Tensor("mask_input", TensorProto.FLOAT, [1, 1, LOW_RES_SIDE, LOW_RES_SIDE]),
        Tensor("has_mask_input", TensorProto.FLOAT, [1]),
        Tensor("orig_im_size", TensorProto.FLOAT, [2]),
    ],
    [
        Tensor("masks", TensorProto.FLOAT, [1, 4, "height", "width"]),
        Tensor("iou_predictions", TensorProto.FLOAT, [1, 4]),
        Tensor("low_res_masks", TensorProto.FLOAT, [1, 4, LOW_RES_SIDE, LOW_RES_SIDE]),
    ],
)


# --- expected values --------------------------------------------------------------------------


def expected_low_res(
    candidate: int,
    num_points: int,
    has_mask: bool,
    mask_mean: float,
    feature_means: tuple[float, float, float],
) -> float:
    """The value of every pixel of low-res candidate ``candidate`` for the given feed."""
    embed, feat0, feat1 = feature_means
    return (
        candidate
        + num_points
        + (mask_mean if has_mask else 0.0)
        + EMBED_WEIGHT * embed
        + FEAT0_WEIGHT * feat0
        + FEAT1_WEIGHT * feat1
    )


def expected_iou(candidate: int, labels_sum: float) -> float:
    return 0.1 * candidate + 0.01 * labels_sum


# --- builders ---------------------------------------------------------------------------------


def _const(name: str, values: np.ndarray) -> onnx.NodeProto:
    return helper.make_node(
        "Constant", [], [name], value=onnx.numpy_helper.from_array(values, name)
    )


def _model(
    nodes: list[onnx.NodeProto], inputs: list[Tensor], outputs: list[Tensor], name: str
) -> onnx.ModelProto:
    graph = helper.make_graph(
        nodes, name, [t.value_info() for t in inputs], [t.value_info() for t in outputs]
    )
    model = helper.make_model(
        graph, opset_imports=[helper.make_opsetid("", OPSET)], ir_version=IR_VERSION
    )
    onnx.checker.check_model(model)
    return model


def encoder_io(spec: EncoderSpec) -> tuple[list[Tensor], list[Tensor]]:
    return (
        [Tensor(spec.image, TensorProto.FLOAT, [1, 3, SIDE, SIDE])],
        [
            Tensor(spec.embed, TensorProto.FLOAT, EMBED_SHAPE),
            Tensor(spec.feat0, TensorProto.FLOAT, FEAT0_SHAPE),
            Tensor(spec.feat1, TensorProto.FLOAT, FEAT1_SHAPE),
        ],
    )


def encoder_model(spec: EncoderSpec) -> onnx.ModelProto:
    """Outputs ``mean(image) + offset`` at SAM2's real feature shapes."""
    inputs, outputs = encoder_io(spec)
    nodes = [helper.make_node("ReduceMean", [spec.image], ["mean"], keepdims=1)]
    offsets = (EMBED_OFFSET, FEAT0_OFFSET, FEAT1_OFFSET)
    for out, offset in zip(outputs, offsets, strict=True):
        nodes += [
            _const(f"{out.name}_offset", np.array(offset, np.float32)),
            _const(f"{out.name}_shape", np.array(out.shape, np.int64)),
            helper.make_node("Add", ["mean", f"{out.name}_offset"], [f"{out.name}_value"]),
            helper.make_node("Expand", [f"{out.name}_value", f"{out.name}_shape"], [out.name]),
        ]
    return _model(nodes, inputs, outputs, "encoder")


def decoder_io(spec: DecoderSpec) -> tuple[list[Tensor], list[Tensor]]:
    k = spec.candidates
    inputs = [
        Tensor(spec.embed, TensorProto.FLOAT, EMBED_SHAPE),
        Tensor(spec.feat0, TensorProto.FLOAT, FEAT0_SHAPE),
        Tensor(spec.feat1, TensorProto.FLOAT, FEAT1_SHAPE),
        Tensor(spec.coords, TensorProto.FLOAT, [1, "num_points", 2]),
        Tensor(spec.labels, spec.labels_dtype, [1, "num_points"]),
        Tensor(spec.mask, TensorProto.FLOAT, [1, 1, LOW_RES_SIDE, LOW_RES_SIDE]),
        Tensor(spec.has_mask, TensorProto.FLOAT, [1]),
    ]
    if spec.orig_size is not None:
        inputs.append(Tensor(spec.orig_size, spec.orig_size_dtype, [2]))
    low_res_shape: list[Dim] = [1, k, LOW_RES_SIDE, LOW_RES_SIDE]
    if spec.masks_kind == "low_res":
        outputs = [Tensor(spec.masks, TensorProto.FLOAT, low_res_shape)]
    else:
        elem = TensorProto.BOOL if spec.masks_kind == "upsampled_bool" else TensorProto.FLOAT
        outputs = [Tensor(spec.masks, elem, [1, k, "height", "width"])]
    outputs.append(Tensor(spec.iou, TensorProto.FLOAT, [1, k]))
    if spec.low_res is not None:
        outputs.append(Tensor(spec.low_res, TensorProto.FLOAT, low_res_shape))
    return inputs, outputs


def decoder_model(spec: DecoderSpec) -> onnx.ModelProto:
    """Low-res logits, scores and (optionally) upsampled masks that encode the feed; see the
    module docstring and :func:`expected_low_res`."""
    inputs, outputs = decoder_io(spec)
    k = spec.candidates
    low_res_name = spec.masks if spec.masks_kind == "low_res" else spec.low_res
    if low_res_name is None:
        raise ValueError("a decoder with upsampled masks needs a low_res output in this helper")
    weights = {spec.embed: EMBED_WEIGHT, spec.feat0: FEAT0_WEIGHT, spec.feat1: FEAT1_WEIGHT}
    nodes = [
        # Number of points fed, as float.
        helper.make_node("Shape", [spec.coords], ["coords_shape"]),
        _const("one", np.array(1, np.int64)),
        helper.make_node("Gather", ["coords_shape", "one"], ["n_int"], axis=0),
        helper.make_node("Cast", ["n_int"], ["n"], to=TensorProto.FLOAT),
        # has_mask * mean(mask)
        helper.make_node("ReduceMean", [spec.mask], ["mask_mean"], keepdims=0),
        helper.make_node("Mul", ["mask_mean", spec.has_mask], ["mask_term"]),
        helper.make_node("Add", ["n", "mask_term"], ["acc0"]),
    ]
    for i, (name, weight) in enumerate(weights.items()):
        nodes += [
            helper.make_node("ReduceMean", [name], [f"mean{i}"], keepdims=0),
            _const(f"w{i}", np.array(weight, np.float32)),
            helper.make_node("Mul", [f"mean{i}", f"w{i}"], [f"term{i}"]),
            helper.make_node("Add", [f"acc{i}", f"term{i}"], [f"acc{i + 1}"]),
        ]
    nodes += [
        _const("ramp", np.arange(k, dtype=np.float32).reshape(1, k, 1, 1)),
        helper.make_node("Add", ["ramp", "acc3"], ["per_candidate"]),  # [1, K, 1, 1]
        _const("low_res_shape", np.array([1, k, LOW_RES_SIDE, LOW_RES_SIDE], np.int64)),
        helper.make_node("Expand", ["per_candidate", "low_res_shape"], [low_res_name]),
        # iou = 0.1 * k + 0.01 * sum(labels)
        helper.make_node("Cast", [spec.labels], ["labels_f"], to=TensorProto.FLOAT),
        helper.make_node("ReduceSum", ["labels_f"], ["labels_sum"], keepdims=0),
        _const("hundredth", np.array(0.01, np.float32)),
        helper.make_node("Mul", ["labels_sum", "hundredth"], ["labels_term"]),
        _const("iou_ramp", (0.1 * np.arange(k, dtype=np.float32)).reshape(1, k)),
        helper.make_node("Add", ["iou_ramp", "labels_term"], [spec.iou]),
    ]
    if spec.masks_kind != "low_res":
        assert spec.orig_size is not None, "upsampled masks need an original-size input"
        nodes += [
            helper.make_node("Cast", [spec.orig_size], ["hw"], to=TensorProto.INT64),
            _const("batch_k", np.array([1, k], np.int64)),
            helper.make_node("Concat", ["batch_k", "hw"], ["up_shape"], axis=0),
        ]
        if spec.masks_kind == "upsampled":
            nodes.append(helper.make_node("Expand", ["per_candidate", "up_shape"], [spec.masks]))
        else:
            nodes += [
                helper.make_node("Expand", ["per_candidate", "up_shape"], ["up_logits"]),
                _const("zero", np.array(0.0, np.float32)),
                helper.make_node("Greater", ["up_logits", "zero"], [spec.masks]),
            ]
    return _model(nodes, inputs, outputs, "decoder")


def stub_model(inputs: list[Tensor], outputs: list[Tensor]) -> onnx.ModelProto:
    """A graph with exactly this I/O: outputs are zeros (symbolic dims become 1), inputs unused
    (ONNX Runtime still requires them in a feed). For detection-only tests."""
    nodes = []
    for out in outputs:
        shape = [d if isinstance(d, int) else 1 for d in out.shape]
        nodes += [
            _const(f"{out.name}_shape", np.array(shape, np.int64)),
            helper.make_node("ConstantOfShape", [f"{out.name}_shape"], [f"{out.name}_zeros"]),
            helper.make_node("Cast", [f"{out.name}_zeros"], [out.name], to=out.elem_type),
        ]
    return _model(nodes, inputs, outputs, "stub")


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
