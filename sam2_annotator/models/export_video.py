"""Export the graphs video tracking needs (export time only: needs torch + sam2).

The image graphs come from :mod:`sam2_annotator.models.export`; this module adds, into the
``video/`` sub-folder of the same model folder, the memory attention, the memory encoder and a
decoder that also returns the object pointers and the object score (the layout and I/O are
described in :mod:`sam2_annotator.engine.video_graphs`), and writes ``video.json``.

Every wrapper computes what ``SAM2Base`` computes, with the model's own modules and weights:

* memory attention: ``SAM2Base._prepare_memory_conditioned_features`` from the point where the
  memories are concatenated (the tracker selects them, as the reference does), then
  ``MemoryAttention.forward``. RoPE (``apply_rotary_enc``, written with ``torch.polar`` and
  ``view_as_complex``, which ONNX cannot express) is computed with the real and imaginary parts
  of the model's own ``freqs_cis`` table: ``(a + ib)(c + is) = (ac - bs) + i(as + bc)``, the same
  products and sums as the complex multiply. The current frame's raw features are
  ``image_embed - no_mem_embed`` (the image encoder adds ``no_mem_embed``); that subtraction
  rounds by at most half an ulp of the embedding.
* memory encoder: ``SAM2Base._encode_new_memory`` from the low-resolution mask (the reference
  upsamples it to 1024x1024 first; that bilinear upsample is in the graph).
* track decoder: ``SAM2Base._forward_sam_heads``' decoder part for all four mask tokens.

The position encodings that do not depend on the image (the backbone's and the memory
encoder's sine encodings) are constants of the graphs, computed by the model's modules.
"""

from __future__ import annotations

import logging
import shutil
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sam2_annotator import __version__
from sam2_annotator.engine.manifest import sha256_file
from sam2_annotator.engine.types import INPUT_SIZE, LOW_RES
from sam2_annotator.engine.video_graphs import (
    MEMORY_ATTENTION_FILE,
    MEMORY_ATTENTION_INPUTS,
    MEMORY_ATTENTION_OUTPUTS,
    MEMORY_ENCODER_FILE,
    MEMORY_ENCODER_INPUTS,
    MEMORY_ENCODER_OUTPUTS,
    TRACK_DECODER_FILE,
    TRACK_DECODER_INPUTS,
    TRACK_DECODER_OUTPUTS,
    VIDEO_DIR,
    VideoConfig,
    VideoManifest,
)
from sam2_annotator.models.export import (
    ENCODER_FILE,
    OPSET,
    _import_torch,
    _io_of,
    build_model,
    export_model,
    prompt_embeddings,
    resolve_variant,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

log = logging.getLogger(__name__)

FEAT = INPUT_SIZE // 16  # 64: side of the stride-16 feature map


def video_config_of(model: Any) -> VideoConfig:
    """The tracking settings of a built ``SAM2Base`` (what the tracker must follow)."""
    return VideoConfig(
        num_maskmem=int(model.num_maskmem),
        max_obj_ptrs_in_encoder=int(model.max_obj_ptrs_in_encoder),
        max_cond_frames_in_attn=int(model.max_cond_frames_in_attn),
        memory_temporal_stride_for_eval=int(model.memory_temporal_stride_for_eval),
        use_signed_tpos_enc_to_obj_ptrs=bool(model.use_signed_tpos_enc_to_obj_ptrs),
        only_obj_ptrs_in_the_past_for_eval=bool(model.only_obj_ptrs_in_the_past_for_eval),
        multimask_output_in_sam=bool(model.multimask_output_in_sam),
        multimask_output_for_tracking=bool(model.multimask_output_for_tracking),
        multimask_min_pt_num=int(model.multimask_min_pt_num),
        multimask_max_pt_num=int(model.multimask_max_pt_num),
        use_mask_input_as_output_without_sam=bool(model.use_mask_input_as_output_without_sam),
        # build_sam2_video_predictor turns this on (apply_postprocessing); the image builder not.
        binarize_mask_from_pts_for_mem_enc=True,
        mem_dim=int(model.mem_dim),
        hidden_dim=int(model.hidden_dim),
    )


def _check_supported(model: Any) -> None:
    """The wrappers hard-code SAM2.1's choices; refuse a model that makes others."""
    layer = model.memory_attention.layers[0]
    checks = {
        "use_obj_ptrs_in_encoder": model.use_obj_ptrs_in_encoder,
        "add_tpos_enc_to_obj_ptrs": model.add_tpos_enc_to_obj_ptrs,
        "pred_obj_scores": model.pred_obj_scores,
        "fixed_no_obj_ptr": model.fixed_no_obj_ptr,
        "not soft_no_obj_ptr": not model.soft_no_obj_ptr,
        "directly_add_no_mem_embed": model.directly_add_no_mem_embed,
        "use_high_res_features_in_sam": model.use_high_res_features_in_sam,
        "memory_attention.pos_enc_at_input": model.memory_attention.pos_enc_at_input,
        "memory_attention.batch_first": model.memory_attention.batch_first,
        "not pos_enc_at_attn": not layer.pos_enc_at_attn,
        "pos_enc_at_cross_attn_keys": layer.pos_enc_at_cross_attn_keys,
        "not pos_enc_at_cross_attn_queries": not layer.pos_enc_at_cross_attn_queries,
        "cross_attn rope_k_repeat": layer.cross_attn_image.rope_k_repeat,
        "not non_overlap_masks_for_mem_enc": not model.non_overlap_masks_for_mem_enc,
    }
    missing = [name for name, ok in checks.items() if not ok]
    if missing:
        raise NotImplementedError(f"video export supports SAM2.1-style models only: {missing}")


def video_wrappers() -> tuple[type, type, type]:
    """The torch wrapper modules (defined lazily: their base class needs torch)."""
    torch = _import_torch()
    import torch.nn.functional as F
    from sam2.modeling.sam2_utils import get_1d_sine_pe

    nn = torch.nn

    def rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """``apply_rotary_enc`` in real arithmetic. x: [B, heads, N, D]; cos/sin: [N, D/2]."""
        pairs = x.reshape(x.shape[0], x.shape[1], x.shape[2], -1, 2)
        a, b = pairs[..., 0], pairs[..., 1]
        real = a * cos - b * sin
        imag = a * sin + b * cos
        return torch.stack([real, imag], dim=-1).flatten(3)

    class MemoryAttentionWrapper(nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model
            self.attention = model.memory_attention
            c = model.hidden_dim
            self.register_buffer("no_mem_embed", model.no_mem_embed.detach().reshape(1, 1, c))
            # Constant position encodings, computed by the model's own modules.
            dummy = torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)
            backbone_out = model.forward_image(dummy)
            _, _, pos, _ = model._prepare_backbone_features(backbone_out)
            self.register_buffer("curr_pos", pos[-1].detach().clone())  # [HW, 1, C]
            mem_feat = torch.zeros(1, model.mem_dim, FEAT, FEAT)
            mem_pos = model.memory_encoder.position_encoding(mem_feat)  # [1, 64, H, W]
            self.register_buffer("maskmem_pos", mem_pos.detach().flatten(2).permute(0, 2, 1)[0])
            self.register_buffer(
                "maskmem_tpos_enc", model.maskmem_tpos_enc.detach().reshape(model.num_maskmem, -1)
            )
            tables = []
            for layer in self.attention.layers:
                for attn in (layer.self_attn, layer.cross_attn_image):
                    freqs = attn.compute_cis(end_x=FEAT, end_y=FEAT)
                    tables.append(torch.view_as_real(freqs))
            for table in tables[1:]:
                assert torch.equal(table, tables[0]), "every RoPE layer must share one table"
            self.register_buffer("rope_cos", tables[0][..., 0].contiguous())
            self.register_buffer("rope_sin", tables[0][..., 1].contiguous())
            self.t_diff_dim = c if model.proj_tpos_enc_in_obj_ptrs else model.mem_dim

        def _attend(self, attn: Any, q, k, v, rope_q: bool, k_rope: tuple | None):
            """``RoPEAttention.forward``: k_rope = (rotated part of k, unrotated rest)."""
            q = attn._separate_heads(attn.q_proj(q), attn.num_heads)
            q = rope(q, self.rope_cos, self.rope_sin) if rope_q else q
            if k_rope is None:
                k = attn._separate_heads(attn.k_proj(k), attn.num_heads)
                k = rope(k, self.rope_cos, self.rope_sin)
            else:
                # Project all keys at once and slice (never a zero-length head split: ONNX
                # Runtime cannot reshape an empty pointer part with an inferred dimension).
                k_sp, k_ptr, repeat = k_rope
                num_sp = k_sp.shape[1]
                k = attn._separate_heads(
                    attn.k_proj(torch.cat([k_sp, k_ptr], dim=1)), attn.num_heads
                )
                cos = self.rope_cos.unsqueeze(0).expand(repeat, -1, -1).flatten(0, 1)
                sin = self.rope_sin.unsqueeze(0).expand(repeat, -1, -1).flatten(0, 1)
                k = torch.cat([rope(k[:, :, :num_sp], cos, sin), k[:, :, num_sp:]], dim=2)
            v = attn._separate_heads(attn.v_proj(v), attn.num_heads)
            out = F.scaled_dot_product_attention(q, k, v)
            return attn.out_proj(attn._recombine_heads(out))

        def forward(
            self,
            image_embed: torch.Tensor,
            mask_memory: torch.Tensor,
            mask_memory_tpos: torch.Tensor,
            obj_ptrs: torch.Tensor,
            obj_ptr_tpos: torch.Tensor,
        ) -> torch.Tensor:
            model = self.model
            c, mem_dim = model.hidden_dim, model.mem_dim
            curr = image_embed.flatten(2).permute(2, 0, 1) - self.no_mem_embed  # [HW, 1, C]
            num_t = mask_memory.shape[0]
            # Spatial memories: [T, mem, H, W] -> [1, T*HW, mem] (batch first).
            mem_sp = mask_memory.flatten(2).permute(0, 2, 1)  # [T, HW, mem]
            pos_sp = self.maskmem_pos.unsqueeze(0) + self.maskmem_tpos_enc[
                mask_memory_tpos
            ].unsqueeze(1)
            mem_sp = mem_sp.reshape(1, -1, mem_dim)
            pos_sp = pos_sp.reshape(1, -1, mem_dim)
            # Object pointers: each C-vector becomes C/mem tokens, its temporal encoding repeated.
            split = c // mem_dim
            ptr_pos = get_1d_sine_pe(obj_ptr_tpos, dim=self.t_diff_dim)
            ptr_pos = model.obj_ptr_tpos_proj(ptr_pos)  # [P, mem]
            ptr_pos = ptr_pos.unsqueeze(1).expand(-1, split, -1).reshape(1, -1, mem_dim)
            mem_ptr = obj_ptrs.reshape(1, -1, mem_dim)

            attention = self.attention
            output = curr + 0.1 * self.curr_pos
            output = output.transpose(0, 1)  # [1, HW, C]
            for layer in attention.layers:
                tgt2 = layer.norm1(output)
                output = output + layer.dropout1(
                    self._attend(layer.self_attn, tgt2, tgt2, tgt2, True, None)
                )
                tgt2 = layer.norm2(output)
                k_rope = (mem_sp + pos_sp, mem_ptr + ptr_pos, num_t)
                v = torch.cat([mem_sp, mem_ptr], dim=1)
                output = output + layer.dropout2(
                    self._attend(layer.cross_attn_image, tgt2, None, v, True, k_rope)
                )
                tgt2 = layer.norm3(output)
                tgt2 = layer.linear2(layer.dropout(layer.activation(layer.linear1(tgt2))))
                output = output + layer.dropout3(tgt2)
            normed = attention.norm(output)  # [1, HW, C]
            return normed.permute(0, 2, 1).reshape(1, c, FEAT, FEAT)

    class MemoryEncoderWrapper(nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model
            c = model.hidden_dim
            self.register_buffer("no_mem_embed", model.no_mem_embed.detach().reshape(1, c, 1, 1))

        def forward(
            self,
            image_embed: torch.Tensor,
            mask_logits: torch.Tensor,
            object_score_logits: torch.Tensor,
            binarize: torch.Tensor,
        ) -> torch.Tensor:
            model = self.model
            pix_feat = image_embed - self.no_mem_embed
            high_res = F.interpolate(
                mask_logits, size=(INPUT_SIZE, INPUT_SIZE), mode="bilinear", align_corners=False
            )
            hard = (high_res > 0).float()
            soft = torch.sigmoid(high_res)
            mask_for_mem = torch.where(binarize.reshape(1, 1, 1, 1) > 0.5, hard, soft)
            mask_for_mem = mask_for_mem * model.sigmoid_scale_for_mem_enc
            mask_for_mem = mask_for_mem + model.sigmoid_bias_for_mem_enc
            out = model.memory_encoder(pix_feat, mask_for_mem, skip_mask_sigmoid=True)
            features = out["vision_features"]
            if model.no_obj_embed_spatial is not None:
                is_obj = (object_score_logits > 0).float()
                features = features + (1 - is_obj[..., None, None]) * model.no_obj_embed_spatial[
                    ..., None, None
                ].expand(*features.shape)
            return features

    class TrackDecoderWrapper(nn.Module):
        def __init__(self, model: Any) -> None:
            super().__init__()
            self.model = model
            self.prompt_encoder = model.sam_prompt_encoder
            self.mask_decoder = model.sam_mask_decoder

        def forward(
            self,
            image_embed: torch.Tensor,
            high_res_feats_0: torch.Tensor,
            high_res_feats_1: torch.Tensor,
            point_coords: torch.Tensor,
            point_labels: torch.Tensor,
            mask_input: torch.Tensor,
            has_mask_input: torch.Tensor,
        ) -> tuple[torch.Tensor, ...]:
            model = self.model
            pe = self.prompt_encoder
            sparse, dense = prompt_embeddings(
                pe, point_coords, point_labels, mask_input, has_mask_input
            )
            masks, iou_pred, mask_tokens, object_score_logits = self.mask_decoder.predict_masks(
                image_embeddings=image_embed,
                image_pe=pe.get_dense_pe(),
                sparse_prompt_embeddings=sparse,
                dense_prompt_embeddings=dense,
                repeat_image=False,
                high_res_features=[high_res_feats_0, high_res_feats_1],
            )
            obj_ptr = model.obj_ptr_proj(mask_tokens)  # [1, 4, C]
            appearing = (object_score_logits > 0).float()[:, :, None]  # [1, 1, 1]
            obj_ptr = appearing * obj_ptr
            obj_ptr = obj_ptr + (1 - appearing) * model.no_obj_ptr
            return masks, iou_pred, obj_ptr, object_score_logits

    return MemoryAttentionWrapper, MemoryEncoderWrapper, TrackDecoderWrapper


def set_object_score_bias(model: Any, bias: float) -> None:
    """Set the last bias of ``pred_obj_score_head`` (random-init tests: make objects present)."""
    torch = _import_torch()
    head = model.sam_mask_decoder.pred_obj_score_head
    last = head.layers[-1] if hasattr(head, "layers") else head
    with torch.no_grad():
        last.bias.fill_(float(bias))


def export_video_graphs(
    model: Any, out_dir: Path, exporter_info: dict[str, Any] | None = None
) -> VideoManifest:
    """Write ``video/*.onnx`` and ``video.json`` for ``model`` into ``out_dir``.

    ``out_dir`` should already hold the image graphs (``encoder.onnx``) of the same weights.
    """
    torch = _import_torch()
    _check_supported(model)
    out_dir = Path(out_dir)
    (out_dir / VIDEO_DIR).mkdir(parents=True, exist_ok=True)
    attention_cls, memenc_cls, decoder_cls = video_wrappers()
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"torch\.onnx")
        warnings.filterwarnings("ignore", message=".*legacy TorchScript-based ONNX export.*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        _export_memory_attention(torch, attention_cls(model).eval(), out_dir)
        _export_memory_encoder(torch, memenc_cls(model).eval(), out_dir)
        _export_track_decoder(torch, decoder_cls(model).eval(), out_dir)
    import sam2

    files = {}
    io = {}
    for key, name in (
        ("memory_attention", MEMORY_ATTENTION_FILE),
        ("memory_encoder", MEMORY_ENCODER_FILE),
        ("track_decoder", TRACK_DECODER_FILE),
    ):
        path = out_dir / name
        files[key] = {"file": name, "sha256": sha256_file(path), "bytes": path.stat().st_size}
        io[key] = _io_of(path)
    encoder = out_dir / ENCODER_FILE
    manifest = VideoManifest(
        config=video_config_of(model),
        files=files,
        io=io,
        encoder_sha256=sha256_file(encoder) if encoder.is_file() else "",
        exporter={
            "sam2_annotator": __version__,
            "torch": torch.__version__,
            "sam2": getattr(sam2, "__version__", "unknown"),
            "opset": OPSET,
            **(exporter_info or {}),
        },
    )
    manifest.write(out_dir)
    log.info("exported the video graphs to %s", out_dir / VIDEO_DIR)
    return manifest


def export_video_model(
    config: str,
    out_dir: Path,
    checkpoint: Path | None = None,
    seed: int = 0,
    object_score_bias: float | None = None,
    image_graphs_from: Path | None = None,
) -> VideoManifest:
    """Image graphs (``export_model``, or copied from ``image_graphs_from``) plus video graphs.

    ``object_score_bias`` changes the weights of the video graphs only (the image graphs never
    read the object-score head), and is recorded in ``video.json``.
    """
    out_dir = Path(out_dir)
    if image_graphs_from is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for path in Path(image_graphs_from).iterdir():
            if path.is_file():
                shutil.copy2(path, out_dir / path.name)
    else:
        export_model(config, out_dir, checkpoint=checkpoint, seed=seed)
    model = build_model(resolve_variant(config), checkpoint, seed)
    info: dict[str, Any] = {"seed": None if checkpoint else seed}
    if object_score_bias is not None:
        set_object_score_bias(model, object_score_bias)
        info["object_score_bias"] = object_score_bias
    return export_video_graphs(model, out_dir, info)


def add_video_graphs(
    config: str, out_dir: Path, checkpoint: Path | None = None, seed: int = 0
) -> VideoManifest:
    """Add the video graphs to a folder ``export_model`` wrote (same config/checkpoint/seed).

    The one call ``models export`` needs after ``export_model`` to make its folders trackable.
    """
    model = build_model(resolve_variant(config), checkpoint, seed)
    return export_video_graphs(model, Path(out_dir), {"seed": None if checkpoint else seed})


def _export_memory_attention(torch: Any, wrapper: Any, out_dir: Path) -> None:
    args = (
        torch.randn(1, 256, FEAT, FEAT),
        torch.randn(2, 64, FEAT, FEAT),
        torch.tensor([6, 0], dtype=torch.int64),
        torch.randn(3, 256),
        torch.tensor([0.1, 0.2, -0.3]),
    )
    torch.onnx.export(
        wrapper,
        args,
        str(out_dir / MEMORY_ATTENTION_FILE),
        input_names=list(MEMORY_ATTENTION_INPUTS),
        output_names=list(MEMORY_ATTENTION_OUTPUTS),
        dynamic_axes={
            "mask_memory": {0: "num_memories"},
            "mask_memory_tpos": {0: "num_memories"},
            "obj_ptrs": {0: "num_obj_ptrs"},
            "obj_ptr_tpos": {0: "num_obj_ptrs"},
        },
        opset_version=OPSET,
        dynamo=False,
    )


def _export_memory_encoder(torch: Any, wrapper: Any, out_dir: Path) -> None:
    args = (
        torch.randn(1, 256, FEAT, FEAT),
        torch.randn(1, 1, LOW_RES, LOW_RES),
        torch.tensor([[1.0]]),
        torch.tensor([1.0]),
    )
    torch.onnx.export(
        wrapper,
        args,
        str(out_dir / MEMORY_ENCODER_FILE),
        input_names=list(MEMORY_ENCODER_INPUTS),
        output_names=list(MEMORY_ENCODER_OUTPUTS),
        opset_version=OPSET,
        dynamo=False,
    )


def _export_track_decoder(torch: Any, wrapper: Any, out_dir: Path) -> None:
    embed_dim = 256
    args = (
        torch.randn(1, embed_dim, FEAT, FEAT),
        torch.randn(1, embed_dim // 8, INPUT_SIZE // 4, INPUT_SIZE // 4),
        torch.randn(1, embed_dim // 4, INPUT_SIZE // 8, INPUT_SIZE // 8),
        torch.randint(0, INPUT_SIZE, (1, 3, 2)).float(),
        torch.tensor([[1.0, 0.0, 1.0]]),
        torch.randn(1, 1, LOW_RES, LOW_RES),
        torch.tensor([1.0]),
    )
    torch.onnx.export(
        wrapper,
        args,
        str(out_dir / TRACK_DECODER_FILE),
        input_names=list(TRACK_DECODER_INPUTS),
        output_names=list(TRACK_DECODER_OUTPUTS),
        dynamic_axes={"point_coords": {1: "num_points"}, "point_labels": {1: "num_points"}},
        opset_version=OPSET,
        dynamo=False,
    )
