"""The known exported-model families, each one small :class:`ModelContract` subclass.

Each docstring says where its names, ranks, dtypes and outputs were read; :data:`CONTRACTS` is the
table :func:`~.contracts.detect_contract` tries in order.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import ClassVar

import numpy as np

from sam2_annotator.engine.contract_base import (
    BOOL,
    FLOAT,
    INT32,
    INT64,
    ModelContract,
    make_decoder_output,
)
from sam2_annotator.engine.types import DecoderOutput


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
        return make_decoder_output(self.name, outputs["masks"], outputs["iou_predictions"])


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
        return make_decoder_output(
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
        return make_decoder_output(
            self.name, outputs["low_res_masks"], outputs["iou_predictions"], outputs["masks"]
        )


#: Every known contract, tried in order by :func:`detect_contract`.
CONTRACTS: list[type[ModelContract]] = [OursContract, OrtOfficialContract, OsamContract]
