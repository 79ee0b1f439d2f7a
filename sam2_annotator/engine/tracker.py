"""Track objects through a video with ONNX Runtime: ``SAM2VideoPredictor``'s algorithm, exactly.

:class:`VideoTracker` follows ``sam2.sam2_video_predictor.SAM2VideoPredictor`` step by step
(``add_new_points_or_box``, ``propagate_in_video_preflight``, ``propagate_in_video``,
``_run_single_frame_inference``) and ``SAM2Base`` (``_prepare_memory_conditioned_features``,
``_forward_sam_heads``, ``_encode_new_memory``); the numeric work runs in the exported graphs
(see :mod:`sam2_annotator.engine.video_graphs`), the bookkeeping here, in numpy.

The memory bank of an object is :class:`~.memory_bank.ObjectMemory`, a plain dataclass that
mirrors the reference's ``output_dict``: ``cond`` (frames with prompts: always in the memory) and
``non_cond`` (tracked frames: the ``num_maskmem - 1`` most recent relative to the current frame
are used), each frame's :class:`~.memory_bank.FrameOutput` holding its mask memory (bfloat16, as
the reference stores it), object pointer, object score and low-resolution mask logits. Object
pointers of up to ``max_obj_ptrs_in_encoder`` frames enter the attention with their signed frame
distance. ``TrackerOptions.memory_frames`` below SAM2's 6 is an approximate, faster memory.

Objects are independent (the reference runs each object's slice alone); the frame features are
computed once per frame for all of them and kept in an embedding cache (RAM budget, optional
disk level), so re-propagating after a correction runs no encoder. The cache's RAM budget bounds
what the features take (16 MiB a frame); the current frame's features are kept outside it, so
even a budget of 0 encodes each frame once per visit.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from sam2_annotator.engine import postprocess
from sam2_annotator.engine.cache import EmbeddingCache, MemoryCache
from sam2_annotator.engine.memory_bank import (
    FrameOutput,
    ObjectMemory,
    bank_nbytes,
    from_bfloat16,
    select_closest_cond_frames,
    select_memories,
    to_bfloat16,
)
from sam2_annotator.engine.preprocess import transform_coords
from sam2_annotator.engine.providers import SessionConfig, create_session
from sam2_annotator.engine.types import (
    INPUT_SIZE,
    LABEL_BOX_BOTTOM_RIGHT,
    LABEL_BOX_TOP_LEFT,
    LOW_RES,
    DecoderOutput,
    Embedding,
)
from sam2_annotator.engine.video_graphs import VideoConfig, VideoModel
from sam2_annotator.engine.video_io import FrameSource, frame_key, preprocess_frame
from sam2_annotator.errors import PromptError, UserError

__all__ = [
    "FrameOutput",
    "FrameResult",
    "FrameTimings",
    "ObjectMemory",
    "TrackerOptions",
    "VideoTracker",
    "from_bfloat16",
    "select_closest_cond_frames",
    "select_memories",
    "to_bfloat16",
    "tracker_from_folder",
]

log = logging.getLogger(__name__)

#: The logit SAM2 gives every pixel of an absent object (``sam2_base.NO_OBJ_SCORE``).
NO_OBJ_SCORE = -1024.0
#: Default RAM budget for frame features (about 16 MiB a frame).
DEFAULT_CACHE_BYTES = 1 << 30


@dataclass
class PointInputs:
    coords: np.ndarray  # [N, 2] float32, model input space (1024)
    labels: np.ndarray  # [N] int32 (1, 0, 2/3 for box corners)


@dataclass
class TrackedObject:
    obj_id: int
    memory: ObjectMemory = field(default_factory=ObjectMemory)
    temp: ObjectMemory = field(default_factory=ObjectMemory)
    points: dict[int, PointInputs] = field(default_factory=dict)
    #: frame index -> whether it was tracked in reverse
    frames_tracked: dict[int, bool] = field(default_factory=dict)


@dataclass
class FrameTimings:
    """Milliseconds spent per graph on one frame (all objects together)."""

    encoder: float = 0.0
    memory_attention: float = 0.0
    decoder: float = 0.0
    memory_encoder: float = 0.0

    @property
    def total(self) -> float:
        return self.encoder + self.memory_attention + self.decoder + self.memory_encoder

    def add(self, other: FrameTimings) -> None:
        self.encoder += other.encoder
        self.memory_attention += other.memory_attention
        self.decoder += other.decoder
        self.memory_encoder += other.memory_encoder


#: The graphs of a tracked frame, in the order reports list them.
GRAPH_PARTS = ("encoder", "memory_attention", "memory_encoder", "decoder")


@dataclass
class StepCost:
    """One runtime's cost of one frame: per-graph timings and the wall time (benchmarks)."""

    frame: int
    timings: FrameTimings
    wall_ms: float
    #: Memory attention's inputs on this frame: spatial memories T and object pointers P.
    spatial: int = 0
    pointers: int = 0

    @property
    def graphs_ms(self) -> float:
        return self.timings.total

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"frame": self.frame}
        out.update({f"{p}_ms": round(getattr(self.timings, p), 2) for p in GRAPH_PARTS})
        out["graphs_ms"] = round(self.graphs_ms, 2)
        out["wall_ms"] = round(self.wall_ms, 2)
        out["other_ms"] = round(self.wall_ms - self.graphs_ms, 2)
        out["memories"] = self.spatial
        out["pointers"] = self.pointers
        return out


@dataclass(frozen=True)
class FrameResult:
    """One frame's low-resolution logits per object id (``NO_OBJ_SCORE`` everywhere if absent)."""

    frame_idx: int
    low_res: dict[int, np.ndarray]
    object_scores: dict[int, float]
    frame_hw: tuple[int, int]
    timings: FrameTimings
    wall_ms: float

    def masks(self) -> dict[int, np.ndarray]:
        """Boolean masks at the frame's size (bilinear upsample of the logits, > 0)."""
        return {
            obj_id: postprocess.logits_to_mask(low, self.frame_hw)
            for obj_id, low in self.low_res.items()
        }


@dataclass(frozen=True)
class TrackerOptions:
    """``SAM2VideoPredictor`` constructor options (same defaults)."""

    #: A click on an already tracked frame makes it a conditioning frame (the reference's default
    #: is False: the click then only changes that frame until the next propagation overwrites it).
    add_all_frames_to_correct_as_cond: bool = False
    #: Tracked (non-conditioning) frames in the memory: None = SAM2's ``num_maskmem - 1`` (6),
    #: exact. Fewer is faster and APPROXIMATE (masks differ from SAM2's).
    memory_frames: int | None = None

    def __post_init__(self) -> None:
        if self.memory_frames is not None and self.memory_frames < 0:
            raise UserError(f"memory frames must be 0 or more, got {self.memory_frames}")

    def is_approximate(self, config: VideoConfig) -> bool:
        """Whether these options depart from SAM2's memory (reduced memory)."""
        return self.memory_frames is not None and self.memory_frames < config.num_maskmem - 1


class VideoTracker:
    """Track several objects through ``source`` with the graphs of one model folder."""

    def __init__(
        self,
        encoder_path: str,
        video_model: VideoModel,
        source: FrameSource,
        session_config: SessionConfig | None = None,
        cache: MemoryCache | EmbeddingCache | None = None,
        options: TrackerOptions | None = None,
    ) -> None:
        config = session_config or SessionConfig()
        self.model = video_model
        self.config: VideoConfig = video_model.config
        self.options = options or TrackerOptions()
        self.source = source
        self.num_frames = len(source)
        self.frame_hw = source.frame_hw
        self.encoder = create_session(encoder_path, config).session
        self.memory_attention = create_session(video_model.memory_attention, config).session
        self.memory_encoder = create_session(video_model.memory_encoder, config).session
        self.decoder = create_session(video_model.track_decoder, config).session
        self.cache = cache if cache is not None else MemoryCache(DEFAULT_CACHE_BYTES)
        self.objects: dict[int, TrackedObject] = {}
        self._frame_keys: dict[int, str] = {}
        #: The last frame's features, outside the cache budget (its decoder and memory encoder
        #: both need them, whatever the budget).
        self._current: tuple[int, Embedding] | None = None
        self._timings = FrameTimings()
        self.encoder_runs = 0

    @property
    def cache_nbytes(self) -> int:
        """Bytes of frame features the cache holds in RAM (bounded by its budget)."""
        level = self.cache.memory if isinstance(self.cache, EmbeddingCache) else self.cache
        return level.nbytes

    @property
    def bank_nbytes(self) -> int:
        """Bytes the objects' memory banks hold (grows with the tracked frames, as SAM2's)."""
        return sum(bank_nbytes(o.memory) + bank_nbytes(o.temp) for o in self.objects.values())

    # -- frame features ----------------------------------------------------------------------

    def features(self, frame_idx: int) -> Embedding:
        """The frame's image features (from the cache when possible)."""
        if self._current is not None and self._current[0] == frame_idx:
            return self._current[1]
        key = self._frame_keys.get(frame_idx)
        emb = None if key is None else self.cache.get(key)
        if emb is None:
            emb = self._encode(frame_idx)
        self._current = (frame_idx, emb)
        return emb

    def _encode(self, frame_idx: int) -> Embedding:
        """Decode the frame; its features from the cache by content, else an encoder run."""
        rgb = self.source.read(frame_idx)
        key = frame_key(rgb)
        self._frame_keys[frame_idx] = key
        emb = self.cache.get(key)
        if emb is not None:
            return emb
        start = time.perf_counter()
        names = ["high_res_feats_0", "high_res_feats_1", "image_embed"]
        hr0, hr1, embed = self.encoder.run(names, {"image": preprocess_frame(rgb)})
        self._timings.encoder += (time.perf_counter() - start) * 1000.0
        self.encoder_runs += 1
        emb = Embedding(embed, hr0, hr1, (int(rgb.shape[0]), int(rgb.shape[1])))
        self.cache.put(key, emb)
        return emb

    # -- prompts -----------------------------------------------------------------------------

    def _object(self, obj_id: int) -> TrackedObject:
        obj = self.objects.get(obj_id)
        if obj is None:
            obj = self.objects[obj_id] = TrackedObject(obj_id)
        return obj

    def add_points(
        self,
        frame_idx: int,
        obj_id: int,
        points: np.ndarray | None = None,
        labels: np.ndarray | None = None,
        box: np.ndarray | None = None,
        clear_old_points: bool = True,
    ) -> FrameResult:
        """``add_new_points_or_box``: clicks (frame pixels) for one object on one frame.

        Returns every object's logits on that frame, as the reference's consolidated output.
        """
        if not 0 <= frame_idx < self.num_frames:
            raise PromptError(f"frame {frame_idx} does not exist ({self.num_frames} frames)")
        points_arr = np.zeros((0, 2), np.float32) if points is None else np.asarray(points)
        labels_arr = np.zeros((0,), np.int32) if labels is None else np.asarray(labels)
        points_arr = points_arr.astype(np.float32).reshape(-1, 2)
        labels_arr = labels_arr.astype(np.int32).reshape(-1)
        if len(points_arr) != len(labels_arr):
            raise PromptError(f"{len(points_arr)} points but {len(labels_arr)} labels")
        if len(points_arr) == 0 and box is None:
            raise PromptError("add at least one point or a box")
        if not np.isin(labels_arr, (0, 1)).all():
            raise PromptError("point labels must be 1 (positive) or 0 (negative)")
        if box is not None:
            if not clear_old_points:
                raise PromptError("a box must come first: add it with clear_old_points=True")
            box_pts = np.asarray(box, np.float32).reshape(2, 2)
            points_arr = np.concatenate([box_pts, points_arr])
            box_labels = np.array([LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT], np.int32)
            labels_arr = np.concatenate([box_labels, labels_arr])
        coords = transform_coords(points_arr, self.frame_hw, INPUT_SIZE)

        start = time.perf_counter()
        self._timings = FrameTimings()
        obj = self._object(obj_id)
        old = None if clear_old_points else obj.points.get(frame_idx)
        if old is not None:
            coords = np.concatenate([old.coords, coords])
            labels_arr = np.concatenate([old.labels, labels_arr])
        point_inputs = PointInputs(coords, labels_arr)
        obj.points[frame_idx] = point_inputs

        is_init_cond_frame = frame_idx not in obj.frames_tracked
        reverse = False if is_init_cond_frame else obj.frames_tracked[frame_idx]
        is_cond = is_init_cond_frame or self.options.add_all_frames_to_correct_as_cond
        temp_store = obj.temp.cond if is_cond else obj.temp.non_cond

        prev_out = temp_store.get(frame_idx)
        if prev_out is None:
            prev_out = obj.memory.cond.get(frame_idx)
            if prev_out is None:
                prev_out = obj.memory.non_cond.get(frame_idx)
        prev_logits = None
        if prev_out is not None:
            prev_logits = np.clip(prev_out.pred_masks, -32.0, 32.0)
        current = self._run_single_frame(
            obj.memory,
            frame_idx,
            is_init_cond_frame,
            point_inputs,
            reverse,
            run_mem_encoder=False,
            prev_logits=prev_logits,
        )
        temp_store[frame_idx] = current
        return self._consolidated(frame_idx, is_cond, start)

    def _consolidated(self, frame_idx: int, is_cond: bool, start: float) -> FrameResult:
        low_res, scores = {}, {}
        for obj_id, obj in self.objects.items():
            temp_store = obj.temp.cond if is_cond else obj.temp.non_cond
            out = temp_store.get(frame_idx)
            if out is None:
                out = obj.memory.cond.get(frame_idx)
            if out is None:
                out = obj.memory.non_cond.get(frame_idx)
            if out is None:
                low_res[obj_id] = np.full((LOW_RES, LOW_RES), NO_OBJ_SCORE, np.float32)
                scores[obj_id] = float("-inf")
            else:
                low_res[obj_id] = out.pred_masks
                scores[obj_id] = out.object_score
        wall = (time.perf_counter() - start) * 1000.0
        return FrameResult(frame_idx, low_res, scores, self.frame_hw, self._timings, wall)

    # -- propagation -------------------------------------------------------------------------

    def preflight(self) -> None:
        """``propagate_in_video_preflight``: encode the memories of the prompted frames."""
        if not self.objects:
            raise UserError("add points or a box for at least one object first")
        for obj in self.objects.values():
            for temp_store, store in (
                (obj.temp.non_cond, obj.memory.non_cond),
                (obj.temp.cond, obj.memory.cond),
            ):
                for frame_idx, out in temp_store.items():
                    if out.maskmem_bf16 is None:
                        out.maskmem_bf16 = self._encode_memory(
                            frame_idx, out.pred_masks, out.object_score, from_points=True
                        )
                    store[frame_idx] = out
                temp_store.clear()
            if not obj.memory.cond:
                raise UserError(f"object {obj.obj_id} has no prompt on any frame")
            for frame_idx in obj.memory.cond:
                obj.memory.non_cond.pop(frame_idx, None)

    def propagate(
        self,
        start_frame_idx: int | None = None,
        max_frame_num_to_track: int | None = None,
        reverse: bool = False,
        cancelled: Callable[[], bool] | None = None,
    ) -> Iterator[FrameResult]:
        """``propagate_in_video``: yield every processed frame's logits, in processing order.

        The first frame's timings include the preflight (the prompted frames' memory encoder).
        """
        start = time.perf_counter()
        self._timings = FrameTimings()
        self.preflight()  # its memory encoder runs count towards the first frame
        if start_frame_idx is None:
            start_frame_idx = min(t for obj in self.objects.values() for t in obj.memory.cond)
        if max_frame_num_to_track is None:
            max_frame_num_to_track = self.num_frames
        if reverse:
            end = max(start_frame_idx - max_frame_num_to_track, 0)
            order = range(start_frame_idx, end - 1, -1) if start_frame_idx > 0 else range(0)
        else:
            end = min(start_frame_idx + max_frame_num_to_track, self.num_frames - 1)
            order = range(start_frame_idx, end + 1)
        for frame_idx in order:
            if cancelled is not None and cancelled():
                return
            if frame_idx != order[0]:
                start = time.perf_counter()
                self._timings = FrameTimings()
            low_res, scores = {}, {}
            for obj_id, obj in self.objects.items():
                if frame_idx in obj.memory.cond:
                    out = obj.memory.cond[frame_idx]
                else:
                    out = self._run_single_frame(
                        obj.memory,
                        frame_idx,
                        is_init_cond_frame=False,
                        point_inputs=None,
                        reverse=reverse,
                        run_mem_encoder=True,
                    )
                    obj.memory.non_cond[frame_idx] = out
                obj.frames_tracked[frame_idx] = reverse
                low_res[obj_id] = out.pred_masks
                scores[obj_id] = out.object_score
            wall = (time.perf_counter() - start) * 1000.0
            yield FrameResult(frame_idx, low_res, scores, self.frame_hw, self._timings, wall)

    # -- one frame, one object ---------------------------------------------------------------

    def _use_multimask(self, is_init_cond_frame: bool, point_inputs: PointInputs | None) -> bool:
        cfg = self.config
        num_pts = 0 if point_inputs is None else len(point_inputs.labels)
        return (
            cfg.multimask_output_in_sam
            and (is_init_cond_frame or cfg.multimask_output_for_tracking)
            and cfg.multimask_min_pt_num <= num_pts <= cfg.multimask_max_pt_num
        )

    def _run_single_frame(
        self,
        memory: ObjectMemory,
        frame_idx: int,
        is_init_cond_frame: bool,
        point_inputs: PointInputs | None,
        reverse: bool,
        run_mem_encoder: bool,
        prev_logits: np.ndarray | None = None,
    ) -> FrameOutput:
        emb = self.features(frame_idx)
        if is_init_cond_frame:
            pix_feat = emb.image_embed  # the encoder already added no_mem_embed
        else:
            pix_feat = self._memory_conditioned(memory, frame_idx, emb, reverse)
        multimask = self._use_multimask(is_init_cond_frame, point_inputs)
        if point_inputs is None:
            coords = np.zeros((1, 1, 2), np.float32)
            labels = -np.ones((1, 1), np.float32)
        else:
            coords = point_inputs.coords[None].astype(np.float32)
            labels = point_inputs.labels[None].astype(np.float32)
        if prev_logits is None:
            mask_input = np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
            has_mask = np.zeros(1, np.float32)
        else:
            mask_input = prev_logits.reshape(1, 1, LOW_RES, LOW_RES).astype(np.float32)
            has_mask = np.ones(1, np.float32)
        start = time.perf_counter()
        masks, ious, ptrs, score = self.decoder.run(
            None,
            {
                "image_embed": pix_feat,
                "high_res_feats_0": emb.high_res_feats_0,
                "high_res_feats_1": emb.high_res_feats_1,
                "point_coords": coords,
                "point_labels": labels,
                "mask_input": mask_input,
                "has_mask_input": has_mask,
            },
        )
        self._timings.decoder += (time.perf_counter() - start) * 1000.0
        object_score = float(score.reshape(-1)[0])
        if multimask:
            best = int(np.argmax(ious[0, 1:])) + 1
            pointer = best
        else:
            best = postprocess.choose_single(DecoderOutput(masks[0], ious[0], single_token=True))
            pointer = 0
        if object_score > 0:
            # copies: a view would keep the decoder's whole [1, 4, 256, 256] output (1 MiB)
            # alive in the memory bank for every frame
            low = masks[0, best].astype(np.float32, copy=True)
        else:
            low = np.full((LOW_RES, LOW_RES), NO_OBJ_SCORE, np.float32)
        out = FrameOutput(low, ptrs[0, pointer].astype(np.float32, copy=True), object_score)
        if run_mem_encoder:
            out.maskmem_bf16 = self._encode_memory(
                frame_idx, low, object_score, from_points=point_inputs is not None
            )
        return out

    def _encode_memory(
        self, frame_idx: int, low: np.ndarray, object_score: float, from_points: bool
    ) -> np.ndarray:
        emb = self.features(frame_idx)
        binarize = self.config.binarize_mask_from_pts_for_mem_enc and from_points
        start = time.perf_counter()
        (features,) = self.memory_encoder.run(
            None,
            {
                "image_embed": emb.image_embed,
                "mask_logits": low.reshape(1, 1, LOW_RES, LOW_RES),
                "object_score_logits": np.array([[object_score]], np.float32),
                "binarize": np.array([1.0 if binarize else 0.0], np.float32),
            },
        )
        self._timings.memory_encoder += (time.perf_counter() - start) * 1000.0
        return to_bfloat16(features[0])

    def _memory_conditioned(
        self, memory: ObjectMemory, frame_idx: int, emb: Embedding, reverse: bool
    ) -> np.ndarray:
        spatial, pointers, t_diff_max = select_memories(
            memory, frame_idx, reverse, self.config, self.num_frames, self.options.memory_frames
        )
        if not spatial:
            raise UserError(f"no memory to track frame {frame_idx} from")
        mask_memory = np.stack([out.maskmem_features for _, out in spatial])
        tpos = np.array([index for index, _ in spatial], np.int64)
        if pointers:
            obj_ptrs = np.stack([ptr for _, ptr in pointers]).astype(np.float32)
            distances = np.array([d for d, _ in pointers], np.float32)
            obj_ptr_tpos = distances / np.float32(t_diff_max)
        else:
            obj_ptrs = np.zeros((0, self.config.hidden_dim), np.float32)
            obj_ptr_tpos = np.zeros((0,), np.float32)
        start = time.perf_counter()
        (pix_feat,) = self.memory_attention.run(
            None,
            {
                "image_embed": emb.image_embed,
                "mask_memory": mask_memory,
                "mask_memory_tpos": tpos,
                "obj_ptrs": obj_ptrs,
                "obj_ptr_tpos": obj_ptr_tpos,
            },
        )
        self._timings.memory_attention += (time.perf_counter() - start) * 1000.0
        return pix_feat


def tracker_from_folder(
    model_dir: str,
    source: FrameSource,
    session_config: SessionConfig | None = None,
    cache: MemoryCache | EmbeddingCache | None = None,
    options: TrackerOptions | None = None,
) -> VideoTracker:
    """A tracker for a model folder with video graphs (``video.json``); clear error otherwise."""
    from sam2_annotator.engine.model_files import ModelFiles

    video_model = VideoModel.from_folder(model_dir)
    files = ModelFiles.from_folder(model_dir)
    return VideoTracker(str(files.encoder), video_model, source, session_config, cache, options)
