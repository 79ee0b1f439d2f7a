"""The exported tracking graphs vs the PyTorch modules they come from (same weights).

Each graph gets the inputs the reference builds in ``SAM2Base`` (memories concatenated as in
``_prepare_memory_conditioned_features``, masks as in ``_encode_new_memory``, prompts as in
``_forward_sam_heads``) and must agree to float rounding.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine.postprocess import choose_single
from sam2_annotator.engine.types import DecoderOutput
from sam2_annotator.engine.video_graphs import VideoModel

torch = pytest.importorskip("torch", reason="parity needs the export extra (torch + sam2)")
pytestmark = [pytest.mark.slow, pytest.mark.torch]

FEAT = 64


@pytest.fixture(scope="module")
def sessions(video_model_dir):
    import onnxruntime as ort

    model = VideoModel.from_folder(video_model_dir)
    opts = ort.SessionOptions()
    make = lambda p: ort.InferenceSession(str(p), opts, providers=["CPUExecutionProvider"])  # noqa: E731
    return {
        "attention": make(model.memory_attention),
        "memenc": make(model.memory_encoder),
        "decoder": make(model.track_decoder),
        "config": model.config,
    }


def _bf16(x: torch.Tensor) -> torch.Tensor:
    return x.to(torch.bfloat16).float()


def _raw_feats(ref, seed: int):
    """A current frame: raw stride-16 features [HW, 1, C] and our image_embed (+no_mem_embed)."""
    gen = torch.Generator().manual_seed(seed)
    raw = torch.randn(FEAT * FEAT, 1, ref.hidden_dim, generator=gen)
    with torch.no_grad():
        image_embed = (raw + ref.no_mem_embed).permute(1, 2, 0).reshape(1, -1, FEAT, FEAT)
    return raw, image_embed


def _curr_pos(ref):
    with torch.no_grad():
        out = ref.forward_image(torch.zeros(1, 3, 1024, 1024))
        _, _, pos, _ = ref._prepare_backbone_features(out)
    return pos[-1]


@pytest.mark.parametrize(
    ("tpos", "ptr_pos", "t_diff_max"),
    [([6], [0], 15), ([6, 0], [], 11), ([6, 5, 0, 1, 2, 3, 4], list(range(16)), 15)],
    ids=["1mem-1ptr", "no-pointer", "full-bank"],
)
def test_memory_attention_matches_reference(sessions, reference_video, tpos, ptr_pos, t_diff_max):
    ref = reference_video
    gen = torch.Generator().manual_seed(len(tpos))
    raw, image_embed = _raw_feats(ref, 1)
    mem = _bf16(torch.randn(len(tpos), 1, ref.mem_dim, FEAT, FEAT, generator=gen))
    ptrs = torch.randn(len(ptr_pos), 1, ref.hidden_dim, generator=gen)
    with torch.no_grad():
        maskmem_pos = ref.memory_encoder.position_encoding(mem[0])
        to_cat, to_cat_pos = [], []
        for t, idx in enumerate(tpos):  # as _prepare_memory_conditioned_features
            to_cat.append(mem[t].flatten(2).permute(2, 0, 1))
            enc = maskmem_pos.flatten(2).permute(2, 0, 1) + ref.maskmem_tpos_enc[idx]
            to_cat_pos.append(enc)
        obj_pos = torch.tensor(ptr_pos, dtype=torch.int64) / t_diff_max
        from sam2.modeling.sam2_utils import get_1d_sine_pe

        obj_pos = ref.obj_ptr_tpos_proj(get_1d_sine_pe(obj_pos, dim=ref.hidden_dim))
        obj_pos = obj_pos.unsqueeze(1).expand(-1, 1, ref.mem_dim)
        split = ref.hidden_dim // ref.mem_dim
        obj_ptrs = ptrs.reshape(-1, 1, split, ref.mem_dim).permute(0, 2, 1, 3).flatten(0, 1)
        obj_pos = obj_pos.repeat_interleave(split, dim=0)
        memory = torch.cat([*to_cat, obj_ptrs])
        memory_pos = torch.cat([*to_cat_pos, obj_pos])
        expected = ref.memory_attention(
            curr=[raw],
            curr_pos=[_curr_pos(ref)],
            memory=memory,
            memory_pos=memory_pos,
            num_obj_ptr_tokens=obj_ptrs.shape[0],
        )
        expected = expected.permute(1, 2, 0).reshape(1, -1, FEAT, FEAT).numpy()
    (ours,) = sessions["attention"].run(
        None,
        {
            "image_embed": image_embed.numpy(),
            "mask_memory": mem[:, 0].numpy(),
            "mask_memory_tpos": np.array(tpos, np.int64),
            "obj_ptrs": ptrs[:, 0].numpy(),
            "obj_ptr_tpos": (np.array(ptr_pos, np.float32) / np.float32(t_diff_max)),
        },
    )
    diff = float(np.abs(ours - expected).max())
    assert diff <= 1e-4, f"memory attention differs by {diff} (|ref| max {np.abs(expected).max()})"


@pytest.mark.parametrize(("binarize", "score"), [(1.0, 3.0), (0.0, 3.0), (0.0, -2.0)])
def test_memory_encoder_matches_reference(sessions, reference_video, binarize, score):
    ref = reference_video
    raw, image_embed = _raw_feats(ref, 2)
    gen = torch.Generator().manual_seed(3)
    low = torch.randn(1, 1, 256, 256, generator=gen) * 8
    scores = torch.tensor([[score]])
    with torch.no_grad():
        high = torch.nn.functional.interpolate(
            low, size=(1024, 1024), mode="bilinear", align_corners=False
        )
        expected, _ = ref._encode_new_memory(
            current_vision_feats=[raw],
            feat_sizes=[(FEAT, FEAT)],
            pred_masks_high_res=high,
            object_score_logits=scores,
            is_mask_from_pts=bool(binarize),
        )
    (ours,) = sessions["memenc"].run(
        None,
        {
            "image_embed": image_embed.numpy(),
            "mask_logits": low.numpy(),
            "object_score_logits": scores.numpy(),
            "binarize": np.array([binarize], np.float32),
        },
    )
    diff = float(np.abs(ours - expected.numpy()).max())
    assert diff <= 1e-4, f"memory encoder differs by {diff}"


@pytest.mark.parametrize("prompt", ["one-point", "two-points+mask", "no-prompt"])
def test_track_decoder_matches_reference(sessions, reference_video, prompt):
    ref = reference_video
    gen = torch.Generator().manual_seed(4)
    feats = torch.randn(1, 256, FEAT, FEAT, generator=gen)
    hr0 = torch.randn(1, 32, 256, 256, generator=gen)
    hr1 = torch.randn(1, 64, 128, 128, generator=gen)
    mask_input = None
    if prompt == "one-point":
        coords, labels = torch.tensor([[[400.0, 300.0]]]), torch.tensor([[1]], dtype=torch.int32)
    elif prompt == "two-points+mask":
        coords = torch.tensor([[[400.0, 300.0], [700.0, 650.0]]])
        labels = torch.tensor([[1, 0]], dtype=torch.int32)
        mask_input = torch.randn(1, 1, 256, 256, generator=gen) * 5
    else:  # a propagated frame: SAM2 feeds one padding point
        coords, labels = torch.zeros(1, 1, 2), -torch.ones(1, 1, dtype=torch.int32)
    multimask = prompt != "two-points+mask"
    with torch.no_grad():
        out = ref._forward_sam_heads(
            backbone_features=feats,
            point_inputs={"point_coords": coords, "point_labels": labels},
            mask_inputs=mask_input,
            high_res_features=[hr0, hr1],
            multimask_output=multimask,
        )
    low_multi, _, ious, low_best, _, obj_ptr, score = (t.numpy() for t in out)
    masks, iou, ptrs, our_score = sessions["decoder"].run(
        None,
        {
            "image_embed": feats.numpy(),
            "high_res_feats_0": hr0.numpy(),
            "high_res_feats_1": hr1.numpy(),
            "point_coords": coords.numpy(),
            "point_labels": labels.numpy().astype(np.float32),
            "mask_input": np.zeros((1, 1, 256, 256), np.float32)
            if mask_input is None
            else mask_input.numpy(),
            "has_mask_input": np.array([0.0 if mask_input is None else 1.0], np.float32),
        },
    )
    assert float(score[0, 0]) > 0, "the object-score bias should make the object present"
    np.testing.assert_allclose(our_score, score, atol=1e-4)
    if multimask:
        best = int(np.argmax(iou[0, 1:])) + 1
        pointer = best
        np.testing.assert_allclose(iou[0, 1:], ious[0], atol=1e-5)
        assert np.abs(masks[0, 1:] - low_multi[0]).max() <= 1e-3
    else:  # SAM2's stability rule picks the mask; the pointer is always token 0's
        best = choose_single(DecoderOutput(masks[0], iou[0], single_token=True))
        pointer = 0
    assert np.abs(masks[0, best] - low_best[0, 0]).max() <= 1e-3
    assert np.abs(ptrs[0, pointer] - obj_ptr[0]).max() <= 1e-4


def test_video_graphs_keep_the_image_folder_layout(model_dir, tmp_path) -> None:
    """Adding the video graphs to an exported folder: the image engine still finds exactly one
    encoder/decoder pair (the graphs live in video/), and the folder can track."""
    import shutil

    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.models.export_video import add_video_graphs

    folder = tmp_path / "model"
    shutil.copytree(model_dir, folder)
    manifest = add_video_graphs("sam2.1_hiera_t", folder, seed=0)
    files = ModelFiles.from_folder(folder)
    assert (files.encoder.name, files.decoder.name) == ("encoder.onnx", "decoder.onnx")
    video = VideoModel.from_folder(folder)
    assert video.config.num_maskmem == 7 and video.config.max_obj_ptrs_in_encoder == 16
    assert manifest.encoder_sha256 == files.manifest.files["encoder.onnx"].sha256
    names = {i["name"] for i in manifest.io["memory_attention"]["inputs"]}
    assert names == {"image_embed", "mask_memory", "mask_memory_tpos", "obj_ptrs", "obj_ptr_tpos"}
