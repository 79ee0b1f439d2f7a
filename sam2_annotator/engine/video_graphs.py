"""The tracking graphs of a model folder: file names, I/O names and ``video.json``.

A model folder that can track holds, beside the image graphs (``encoder.onnx``,
``decoder.onnx``), a ``video/`` sub-folder with three more graphs and a ``video.json`` manifest:

* ``video/memory_attention.onnx``: ``image_embed`` [1,256,64,64] (the encoder's output),
  ``mask_memory`` [T,64,64,64] (the memory encoder's features of T frames), ``mask_memory_tpos``
  [T] int64 (index into ``maskmem_tpos_enc``), ``obj_ptrs`` [P,256], ``obj_ptr_tpos`` [P] float
  (signed frame distance / t_diff_max) -> ``pix_feat_with_mem`` [1,256,64,64]. T and P are
  dynamic. RoPE is computed with cos/sin (no complex numbers).
* ``video/memory_encoder.onnx``: ``image_embed``, ``mask_logits`` [1,1,256,256] (the chosen
  low-resolution mask logits), ``object_score_logits`` [1,1], ``binarize`` [1] (1 = clicked frame)
  -> ``maskmem_features`` [1,64,64,64].
* ``video/track_decoder.onnx``: the image decoder's inputs -> ``masks`` [1,4,256,256],
  ``iou_predictions`` [1,4], ``obj_ptr`` [1,4,256] (every mask token's object pointer, already
  replaced by ``no_obj_ptr`` when the object is absent), ``object_score_logits`` [1,1].

The graphs live in a sub-folder so that the image engine's folder layouts (one ``*encoder*.onnx``
and one ``*decoder*.onnx``) keep matching exactly one pair. Third-party (image-only) folders have
no ``video.json``; :func:`VideoModel.from_folder` then says so.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sam2_annotator.errors import ModelError

VIDEO_MANIFEST = "video.json"
VIDEO_FORMAT = 1
VIDEO_DIR = "video"
MEMORY_ATTENTION_FILE = f"{VIDEO_DIR}/memory_attention.onnx"
MEMORY_ENCODER_FILE = f"{VIDEO_DIR}/memory_encoder.onnx"
TRACK_DECODER_FILE = f"{VIDEO_DIR}/track_decoder.onnx"

MEMORY_ATTENTION_INPUTS = (
    "image_embed",
    "mask_memory",
    "mask_memory_tpos",
    "obj_ptrs",
    "obj_ptr_tpos",
)
MEMORY_ATTENTION_OUTPUTS = ("pix_feat_with_mem",)
MEMORY_ENCODER_INPUTS = ("image_embed", "mask_logits", "object_score_logits", "binarize")
MEMORY_ENCODER_OUTPUTS = ("maskmem_features",)
TRACK_DECODER_INPUTS = (
    "image_embed",
    "high_res_feats_0",
    "high_res_feats_1",
    "point_coords",
    "point_labels",
    "mask_input",
    "has_mask_input",
)
TRACK_DECODER_OUTPUTS = ("masks", "iou_predictions", "obj_ptr", "object_score_logits")


@dataclass(frozen=True)
class VideoConfig:
    """The SAM2 settings the tracker follows (SAM2.1 values; the exporter records the model's)."""

    num_maskmem: int = 7
    max_obj_ptrs_in_encoder: int = 16
    max_cond_frames_in_attn: int = -1
    memory_temporal_stride_for_eval: int = 1
    use_signed_tpos_enc_to_obj_ptrs: bool = True
    only_obj_ptrs_in_the_past_for_eval: bool = True
    multimask_output_in_sam: bool = True
    multimask_output_for_tracking: bool = True
    multimask_min_pt_num: int = 0
    multimask_max_pt_num: int = 1
    use_mask_input_as_output_without_sam: bool = True
    #: ``build_sam2_video_predictor``'s post-processing default.
    binarize_mask_from_pts_for_mem_enc: bool = True
    mem_dim: int = 64
    hidden_dim: int = 256

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> VideoConfig:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class VideoManifest:
    """``video.json``: the tracking graphs, their I/O and the settings they were exported with."""

    config: VideoConfig
    files: dict[str, dict[str, Any]]
    io: dict[str, Any] = field(default_factory=dict)
    encoder_sha256: str = ""
    exporter: dict[str, Any] = field(default_factory=dict)
    format: int = VIDEO_FORMAT

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"

    def write(self, folder: Path) -> Path:
        path = Path(folder) / VIDEO_MANIFEST
        path.write_text(self.to_json(), encoding="utf-8")
        return path

    @classmethod
    def read(cls, folder: Path) -> VideoManifest:
        path = Path(folder) / VIDEO_MANIFEST
        if not path.is_file():
            raise ModelError(
                f"the model folder {folder} has no video graphs ({VIDEO_MANIFEST} is missing): "
                "tracking needs a folder written by `sam2-annotator models export` with the "
                "video graphs; image-only (third-party) folders can only segment single images"
            )
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("format") != VIDEO_FORMAT:
                raise ModelError(f"{path}: unsupported format {data.get('format')!r}")
            return cls(
                config=VideoConfig.from_dict(data["config"]),
                files=dict(data["files"]),
                io=dict(data.get("io", {})),
                encoder_sha256=str(data.get("encoder_sha256", "")),
                exporter=dict(data.get("exporter", {})),
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            raise ModelError(f"cannot read {path}: {exc!r}") from exc


@dataclass(frozen=True)
class VideoModel:
    """Paths of the three tracking graphs of one model folder, and its settings."""

    folder: Path
    manifest: VideoManifest

    @property
    def config(self) -> VideoConfig:
        return self.manifest.config

    @property
    def memory_attention(self) -> Path:
        return self.folder / MEMORY_ATTENTION_FILE

    @property
    def memory_encoder(self) -> Path:
        return self.folder / MEMORY_ENCODER_FILE

    @property
    def track_decoder(self) -> Path:
        return self.folder / TRACK_DECODER_FILE

    @classmethod
    def from_folder(cls, folder: str | Path) -> VideoModel:
        folder = Path(folder)
        manifest = VideoManifest.read(folder)
        model = cls(folder, manifest)
        for path in (model.memory_attention, model.memory_encoder, model.track_decoder):
            if not path.is_file():
                raise ModelError(f"{folder}: video graph {path.name} is missing")
        return model
