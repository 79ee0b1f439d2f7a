"""An object's memory bank and what SAM2 attends to on a frame (no ONNX Runtime here).

:class:`ObjectMemory` mirrors one object's ``output_dict`` of ``SAM2VideoPredictor``: ``cond``
(frames with prompts, always in the memory) and ``non_cond`` (tracked frames), each frame's
:class:`FrameOutput` holding its mask memory (bfloat16, as the reference stores it), object
pointer, object score and low-resolution mask logits. :func:`select_memories` is the selection of
``SAM2Base._prepare_memory_conditioned_features``.

Like the reference's ``output_dict``, the bank keeps every processed frame (about 0.75 MiB per
frame and object: 512 KiB of bfloat16 mask memory and 256 KiB of float32 logits): a correction on
any frame later re-uses the memories of the frames before it, so none can be dropped without
departing from SAM2. :func:`bank_nbytes` measures it.

Reduced memory (``recent`` < ``num_maskmem - 1`` in :func:`select_memories`) is *approximate*:
it attends to the conditioning frames and only the ``recent`` closest tracked frames (each keeps
the temporal encoding it has in SAM2's selection); masks then differ from SAM2's.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from sam2_annotator.engine.video_graphs import VideoConfig


def to_bfloat16(x: np.ndarray) -> np.ndarray:
    """float32 -> bfloat16 bits (uint16), nearest-even rounding as ``tensor.to(torch.bfloat16)``."""
    bits = np.ascontiguousarray(x, np.float32).view(np.uint32)
    rounded = bits + (np.uint32(0x7FFF) + ((bits >> np.uint32(16)) & np.uint32(1)))
    out = (rounded >> np.uint32(16)).astype(np.uint16)
    nan = np.isnan(x)
    if nan.any():
        out[nan] = np.uint16(0x7FC0)
    return out


def from_bfloat16(bits: np.ndarray) -> np.ndarray:
    return (bits.astype(np.uint32) << np.uint32(16)).view(np.float32)


@dataclass
class FrameOutput:
    """One object's result on one frame (the reference's compact ``current_out``)."""

    pred_masks: np.ndarray  # [256, 256] float32 low-res logits (NO_OBJ_SCORE when absent)
    obj_ptr: np.ndarray  # [256] float32
    object_score: float
    maskmem_bf16: np.ndarray | None = None  # [64, 64, 64] uint16 bfloat16 bits

    @property
    def maskmem_features(self) -> np.ndarray | None:
        return None if self.maskmem_bf16 is None else from_bfloat16(self.maskmem_bf16)


@dataclass
class ObjectMemory:
    """An object's memory bank: ``output_dict`` of the reference (frame index -> output)."""

    cond: dict[int, FrameOutput] = field(default_factory=dict)
    non_cond: dict[int, FrameOutput] = field(default_factory=dict)


def select_memories(
    memory: ObjectMemory,
    frame_idx: int,
    reverse: bool,
    cfg: VideoConfig,
    num_frames: int,
    recent: int | None = None,
) -> tuple[list[tuple[int, FrameOutput]], list[tuple[int, np.ndarray]], int]:
    """What ``_prepare_memory_conditioned_features`` attends to on ``frame_idx``.

    Returns (tpos index, output) of the spatial memories in the reference's order, (signed
    frame distance, pointer) of the object pointers, and ``t_diff_max``. ``recent`` (None =
    SAM2's ``num_maskmem - 1``) limits the tracked frames to the closest ones: approximate.
    """
    selected, unselected = select_closest_cond_frames(
        frame_idx, memory.cond, cfg.max_cond_frames_in_attn
    )
    t_pos_and_prevs: list[tuple[int, FrameOutput | None]] = [(0, out) for out in selected.values()]
    stride = cfg.memory_temporal_stride_for_eval
    first = 1 if recent is None else max(1, cfg.num_maskmem - recent)
    for t_pos in range(first, cfg.num_maskmem):
        t_rel = cfg.num_maskmem - t_pos
        if t_rel == 1:
            prev = frame_idx + t_rel if reverse else frame_idx - t_rel
        elif not reverse:
            prev = ((frame_idx - 2) // stride) * stride - (t_rel - 2) * stride
        else:
            prev = -(-(frame_idx + 2) // stride) * stride + (t_rel - 2) * stride
        out = memory.non_cond.get(prev)
        if out is None:
            out = unselected.get(prev)
        t_pos_and_prevs.append((t_pos, out))
    spatial = [
        (cfg.num_maskmem - t_pos - 1, prev) for t_pos, prev in t_pos_and_prevs if prev is not None
    ]

    max_ptrs = min(num_frames, cfg.max_obj_ptrs_in_encoder)
    sign = -1 if reverse else 1
    if cfg.only_obj_ptrs_in_the_past_for_eval:
        ptr_cond = {
            t: out for t, out in selected.items() if (t >= frame_idx if reverse else t <= frame_idx)
        }
    else:
        ptr_cond = selected
    pointers = [
        (
            (frame_idx - t) * sign if cfg.use_signed_tpos_enc_to_obj_ptrs else abs(frame_idx - t),
            out.obj_ptr,
        )
        for t, out in ptr_cond.items()
    ]
    for t_diff in range(1, max_ptrs):
        t = frame_idx + t_diff if reverse else frame_idx - t_diff
        if t < 0 or t >= num_frames:
            break
        out = memory.non_cond.get(t, unselected.get(t))
        if out is not None:
            pointers.append((t_diff, out.obj_ptr))
    return spatial, pointers, max_ptrs - 1


def select_closest_cond_frames(
    frame_idx: int, cond_outputs: dict[int, FrameOutput], max_cond_frame_num: int
) -> tuple[dict[int, FrameOutput], dict[int, FrameOutput]]:
    """``sam2_utils.select_closest_cond_frames``, for plain dicts."""
    if max_cond_frame_num == -1 or len(cond_outputs) <= max_cond_frame_num:
        return cond_outputs, {}
    if max_cond_frame_num < 2:
        raise ValueError("max_cond_frames_in_attn must allow 2+ conditioning frames")
    selected: dict[int, FrameOutput] = {}
    before = max((t for t in cond_outputs if t < frame_idx), default=None)
    if before is not None:
        selected[before] = cond_outputs[before]
    after = min((t for t in cond_outputs if t >= frame_idx), default=None)
    if after is not None:
        selected[after] = cond_outputs[after]
    remain = max_cond_frame_num - len(selected)
    rest = sorted((t for t in cond_outputs if t not in selected), key=lambda x: abs(x - frame_idx))
    selected.update((t, cond_outputs[t]) for t in rest[:remain])
    unselected = {t: v for t, v in cond_outputs.items() if t not in selected}
    return selected, unselected


def bank_nbytes(memory: ObjectMemory) -> int:
    """Bytes of the arrays one object's memory bank holds (mask memories, logits, pointers)."""
    total = 0
    for out in (*memory.cond.values(), *memory.non_cond.values()):
        total += out.pred_masks.nbytes + out.obj_ptr.nbytes
        if out.maskmem_bf16 is not None:
            total += out.maskmem_bf16.nbytes
    return total
