"""``bench --video``: what one tracked frame costs, split by graph, next to PyTorch's predictor.

Protocol (one process, one loop):

1. The first K frames of the source are written to a temporary folder as ``00000.jpg``... (JPEG
   files of a frame folder are copied byte for byte, other frames are encoded at quality 95):
   ``SAM2VideoPredictor`` reads only such folders, and both runtimes must see the same pixels.
2. One positive click on frame 0 (``--point``, default the frame's centre) on every side, then
   forward propagation over the K frames, **alternated frame by frame**: ONNX Runtime (exact
   memory), PyTorch's ``SAM2VideoPredictor`` (when torch and sam2 are installed), then ONNX
   Runtime with the reduced memory (when asked), with a short untimed pause before and after
   each PyTorch step so that neither runtime sees the other's spinning threads.
3. Per frame and side: milliseconds of the encoder, memory attention, memory encoder and decoder
   (ONNX Runtime: ``session.run`` of each graph, from the tracker's :class:`FrameTimings`;
   PyTorch: the predictor's ``forward_image``, ``_prepare_memory_conditioned_features``,
   ``_encode_new_memory`` and ``_forward_sam_heads``, timed by wrapping them), the frame's wall
   time (including the masks at the video's size), and ``other`` = wall - the four graphs (frame
   decoding and pre-processing on our side, bookkeeping and up-sampling on both; the predictor
   loads all frames up front in ``init_state``, reported apart).
4. The prompted frame (encoder + decoder on the click, memory encoder in the preflight) is
   reported apart from the propagated frames (p50 and mean of frames 1..K-1).

Memory attention's FLOPs come from the shapes of each frame's memory
(:func:`memory_attention_flops`) and are put against the CPU's fp32 peak
(:mod:`sam2_annotator.bench.peak`).

Reduced memory (``memory_frames`` < 6) is APPROXIMATE: its tracker shares the exact tracker's
frame-feature cache (the encoder's output is the same), so its encoder cost is the exact pass's;
its speed-up and its masks' IoU against the exact masks are measured on the same frames.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sam2_annotator.bench import memory
from sam2_annotator.bench.environment import load_average, machine_info
from sam2_annotator.bench.latency import RUNTIME_SWITCH_PAUSE_S
from sam2_annotator.bench.peak import Fp32Peak, fp32_peak
from sam2_annotator.bench.stats import ratio
from sam2_annotator.engine.memory_bank import select_memories
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.engine.tracker import (
    GRAPH_PARTS,
    StepCost,
    TrackerOptions,
    VideoTracker,
)
from sam2_annotator.engine.video_graphs import VideoConfig, VideoModel
from sam2_annotator.engine.video_io import FolderSource, FrameSource
from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)

VIDEO_RESULTS_SCHEMA = 1
PARTS = GRAPH_PARTS
#: Targets of issue 11.
TARGET_SPEEDUP = 1.3
TARGET_PEAK_SHARE = 0.60
#: SAM2.1's memory attention (the same in every size): layers, MLP width.
MEMORY_ATTENTION_LAYERS = 4
MEMORY_ATTENTION_FFN = 2048
#: Query tokens: the 64 x 64 feature map.
QUERY_TOKENS = 64 * 64
JPEG_QUALITY = 95

Progress = Callable[[str], None]
APPROXIMATE_NOTE = (
    "APPROXIMATE: reduced memory ({n} of SAM2's {exact} recent frames); masks differ from SAM2's"
)


@dataclass(frozen=True)
class VideoBenchPlan:
    """``frames`` K (the prompted frame + K-1 propagated), the click, the reduced memory."""

    frames: int = 8
    point: tuple[float, float] | None = None
    memory_frames: int | None = None

    def __post_init__(self) -> None:
        if self.frames < 2:
            raise UserError(f"--frames must be 2 or more (prompt + tracked frame): {self.frames}")
        if self.memory_frames is not None and self.memory_frames < 0:
            raise UserError(f"--memory-frames must be 0 or more, not {self.memory_frames}")


class Side(Protocol):
    """One runtime driven frame by frame (ONNX Runtime tracker or PyTorch predictor)."""

    name: str
    runtime: str
    first: StepCost | None
    steps: list[StepCost]
    masks: dict[int, np.ndarray]

    def click(self, frame: int, xy: tuple[float, float]) -> None: ...

    def step(self) -> StepCost: ...


@dataclass
class OrtSide:
    """Our tracker: click, then one propagated frame per :meth:`step`."""

    name: str
    tracker: VideoTracker
    runtime: str = "onnxruntime"
    first: StepCost | None = None
    steps: list[StepCost] = field(default_factory=list)
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    _iter: Any = None
    _next: int = 0

    def click(self, frame: int, xy: tuple[float, float]) -> None:
        start = time.perf_counter()
        result = self.tracker.add_points(frame, 1, np.array([xy], np.float32), np.array([1]))
        self.masks[frame] = result.masks()[1]
        wall = (time.perf_counter() - start) * 1000.0
        self.first = StepCost(frame, result.timings, wall)
        self._next = frame

    def step(self) -> StepCost:
        """The next frame of forward propagation (the first call: the prompted frame)."""
        if self.first is None:
            raise RuntimeError("click before stepping")
        if self._iter is None:
            self._iter = self.tracker.propagate()
        frame = self._next
        prompted = frame == self.first.frame
        memory_in = (0, 0) if prompted else self._memory_shape(frame)
        start = time.perf_counter()
        result = next(self._iter)
        mask = result.masks()[1]
        wall = (time.perf_counter() - start) * 1000.0
        assert result.frame_idx == frame, (result.frame_idx, frame)
        self._next += 1
        if prompted:  # its propagation step is the preflight's memory encoder
            self.first.timings.add(result.timings)
            self.first.wall_ms += wall
            return self.first
        self.masks[frame] = mask
        cost = StepCost(frame, result.timings, wall, *memory_in)
        self.steps.append(cost)
        return cost

    def _memory_shape(self, frame: int) -> tuple[int, int]:
        """(T, P) memory attention gets on ``frame`` (forward, one object)."""
        obj = self.tracker.objects[1]
        spatial, pointers, _ = select_memories(
            obj.memory,
            frame,
            False,
            self.tracker.config,
            self.tracker.num_frames,
            self.tracker.options.memory_frames,
        )
        return len(spatial), len(pointers)


def memory_attention_flops(
    spatial: int,
    pointers: int,
    width: int = 256,
    mem_dim: int = 64,
    tokens: int = QUERY_TOKENS,
    layers: int = MEMORY_ATTENTION_LAYERS,
    ffn: int = MEMORY_ATTENTION_FFN,
) -> dict[str, float]:
    """FLOPs of memory attention's matrix products (2 per multiply-add), by kind.

    Per layer, with N = ``tokens`` queries, d = ``width``, memory tokens
    M = T x N + P x (d / mem_dim) (each object pointer is split into d/mem_dim tokens):
    self-attention 4 projections (8 N d^2) + scores and weighted sum (4 N^2 d); cross-attention
    q/out projections (4 N d^2), k/v projections from mem_dim (4 M mem_dim d), scores and
    weighted sum (4 N M d); MLP (4 N d ffn). Softmax, norms, RoPE and additions are not counted.
    """
    n, d = float(tokens), float(width)
    m = spatial * n + pointers * (width // mem_dim)
    per_layer = {
        "self_attention": 8 * n * d * d + 4 * n * n * d,
        "cross_attention_projections": 4 * n * d * d + 4 * m * mem_dim * d,
        "cross_attention_products": 4 * n * m * d,
        "mlp": 4 * n * d * ffn,
    }
    out = {k: v * layers for k, v in per_layer.items()}
    out["total"] = sum(out.values())
    out["memory_tokens"] = m
    return out


FLOPS_FORMULA = (
    "per layer (x4): self-attn 8·N·d² + 4·N²·d; cross-attn 4·N·d² + 4·M·64·d + 4·N·M·d; "
    "MLP 4·N·d·2048; N = 4096 queries, d = 256, M = 4096·T + 4·P memory tokens "
    "(T spatial memories, P object pointers of 256 = 4 tokens of 64); 2 FLOP per multiply-add, "
    "softmax/norms/RoPE not counted"
)


# --------------------------------------------------------------------------- frames


def write_frames(source: FrameSource, count: int, folder: Path) -> str:
    """The first ``count`` frames as ``folder/00000.jpg``...; returns how they were written."""
    import cv2

    copied = isinstance(source, FolderSource) and all(
        p.suffix.lower() in (".jpg", ".jpeg") for p in source.paths[:count]
    )
    for index in range(count):
        target = folder / f"{index:05d}.jpg"
        if copied:
            shutil.copyfile(source.paths[index], target)  # type: ignore[attr-defined]
            continue
        rgb = source.read(index)
        if not cv2.imwrite(str(target), rgb[:, :, ::-1], [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise UserError(f"cannot write frame {target}")
    return "copied (JPEG files)" if copied else f"encoded as JPEG quality {JPEG_QUALITY}"


# --------------------------------------------------------------------------- the run


@dataclass
class VideoBenchInputs:
    """Everything :func:`run_video_benchmark` needs besides the plan."""

    files: ModelFiles
    video_model: VideoModel
    config: SessionConfig
    source: FrameSource
    torch_loader: Callable[[Path], Side] | None = None
    torch_skipped_reason: str = ""
    peak: Fp32Peak | None = None


def run_video_benchmark(
    inputs: VideoBenchInputs, plan: VideoBenchPlan, progress: Progress | None = None
) -> dict[str, Any]:
    """Run the protocol of the module docstring; returns the ``results.json`` document."""
    progress = progress or (lambda phase: None)
    count = min(plan.frames, len(inputs.source))
    if count < 2:
        raise UserError(f"{inputs.source.name} has {len(inputs.source)} frame(s): need 2 or more")
    height, width = inputs.source.frame_hw
    point = plan.point or (width / 2.0, height / 2.0)
    load_before = load_average()
    peak = inputs.peak or fp32_peak()  # before the sessions exist: nothing else of ours runs
    cfg = inputs.video_model.config
    reduced = plan.memory_frames is not None and plan.memory_frames < cfg.num_maskmem - 1
    with tempfile.TemporaryDirectory(prefix="sam2-bench-video-") as tmp:
        folder = Path(tmp)
        written = write_frames(inputs.source, count, folder)
        frames = FolderSource(folder)
        exact = OrtSide(
            "onnxruntime",
            VideoTracker(str(inputs.files.encoder), inputs.video_model, frames, inputs.config),
        )
        sides: list[Side] = [exact]
        torch_side = None
        if inputs.torch_loader is not None:
            torch_side = inputs.torch_loader(folder)
            sides.append(torch_side)
        reduced_side = None
        if reduced:
            options = TrackerOptions(memory_frames=plan.memory_frames)
            tracker = VideoTracker(
                str(inputs.files.encoder),
                inputs.video_model,
                frames,
                inputs.config,
                cache=exact.tracker.cache,
                options=options,
            )
            reduced_side = OrtSide(f"onnxruntime reduced memory ({plan.memory_frames})", tracker)
            sides.append(reduced_side)
        rss_after_load = memory.current_rss_mb()
        for frame_step in range(-1, count):
            for index, side in enumerate(sides):
                if side.runtime == "torch" or (index and sides[index - 1].runtime == "torch"):
                    time.sleep(RUNTIME_SWITCH_PAUSE_S)
                if frame_step < 0:
                    side.click(0, point)
                else:
                    side.step()
                progress(side.name)
    return _results(
        inputs,
        plan,
        cfg,
        exact,
        torch_side,
        reduced_side,
        {
            "count": count,
            "point": point,
            "written": written,
            "load_before": load_before,
            "rss_after_load": rss_after_load,
            "peak": peak,
        },
    )


def steps_per_run(plan: VideoBenchPlan, frames: int, with_torch: bool) -> int:
    """How many times :data:`Progress` is called."""
    sides = 1 + int(with_torch) + int(plan.memory_frames is not None)
    return sides * (min(plan.frames, frames) + 1)


# --------------------------------------------------------------------------- summaries


def _stats(values: list[float]) -> dict[str, float | None]:
    if not values:
        return {"p50_ms": None, "mean_ms": None}
    array = np.asarray(values, np.float64)
    return {"p50_ms": round(float(np.median(array)), 2), "mean_ms": round(float(array.mean()), 2)}


def side_summary(side: Side) -> dict[str, Any]:
    """p50 and mean per graph over the propagated frames; the prompted frame apart."""
    steps = side.steps
    out: dict[str, Any] = {"name": side.name, "runtime": side.runtime}
    out["first_frame"] = None if side.first is None else side.first.to_dict()
    propagated: dict[str, Any] = {"frames": len(steps)}
    for part in PARTS:
        propagated[part] = _stats([getattr(s.timings, part) for s in steps])
    propagated["graphs"] = _stats([s.graphs_ms for s in steps])
    propagated["other"] = _stats([s.wall_ms - s.graphs_ms for s in steps])
    propagated["wall"] = _stats([s.wall_ms for s in steps])
    out["propagated"] = propagated
    out["frames"] = [s.to_dict() for s in steps]
    out["non_empty_masks"] = sum(1 for m in side.masks.values() if m.any())
    out["masks"] = len(side.masks)
    return out


def mask_agreement(a: dict[int, np.ndarray], b: dict[int, np.ndarray]) -> dict[str, Any]:
    """IoU per common frame; frames where both masks are empty are counted, not scored."""
    ious, both_empty = [], 0
    for frame in sorted(set(a) & set(b)):
        union = np.logical_or(a[frame], b[frame]).sum()
        if union == 0:
            both_empty += 1
            continue
        ious.append(float(np.logical_and(a[frame], b[frame]).sum() / union))
    return {
        "frames": len(set(a) & set(b)),
        "frames_both_empty": both_empty,
        "iou_mean": None if not ious else round(float(np.mean(ious)), 6),
        "iou_min": None if not ious else round(float(np.min(ious)), 6),
        "per_frame": [round(v, 6) for v in ious],
    }


def _flops_block(exact: OrtSide, peak: Fp32Peak, cfg: VideoConfig) -> dict[str, Any]:
    rows, total_flops, total_ms = [], 0.0, 0.0
    for step in exact.steps:
        flops = memory_attention_flops(step.spatial, step.pointers, cfg.hidden_dim, cfg.mem_dim)
        ms = step.timings.memory_attention
        gflops = flops["total"] / 1e9
        rows.append(
            {
                "frame": step.frame,
                "memories": step.spatial,
                "pointers": step.pointers,
                "gflop": round(gflops, 2),
                "ms": round(ms, 2),
                "gflops_per_s": round(gflops / (ms / 1000.0), 1) if ms > 0 else None,
            }
        )
        total_flops += flops["total"]
        total_ms += ms
    achieved = None if total_ms <= 0 else total_flops / 1e9 / (total_ms / 1000.0)
    full = [r for r in rows if r["memories"] == max((r["memories"] for r in rows), default=0)]
    full_flops = sum(r["gflop"] for r in full)
    full_ms = sum(r["ms"] for r in full)
    achieved_full = None if full_ms <= 0 else full_flops / (full_ms / 1000.0)
    ref = peak.nominal_gflops
    share = None if achieved_full is None or not ref else achieved_full / ref
    largest = full[-1] if full else None
    return {
        "formula": FLOPS_FORMULA,
        "breakdown_largest_frame": None
        if largest is None
        else {
            k: round(v / 1e9, 2) if k != "memory_tokens" else int(v)
            for k, v in memory_attention_flops(
                largest["memories"], largest["pointers"], cfg.hidden_dim, cfg.mem_dim
            ).items()
        },
        "per_frame": rows,
        "achieved_gflops_all_frames": _round(achieved),
        "achieved_gflops_largest_memory": _round(achieved_full),
        "largest_memory_frames": len(full),
        "peak": peak.to_dict(),
        "share_of_nominal_peak": None if share is None else round(share, 3),
        "share_of_measured_sgemm": None
        if achieved_full is None or not peak.measured_sgemm_gflops
        else round(achieved_full / peak.measured_sgemm_gflops, 3),
        "target_share": TARGET_PEAK_SHARE,
        "met": None if share is None else share >= TARGET_PEAK_SHARE,
    }


def _reduced_block(exact: OrtSide, reduced: OrtSide, cfg: VideoConfig) -> dict[str, Any]:
    """Speed-up and IoU on the frames where the reduced memory differs from the exact one."""
    n = reduced.tracker.options.memory_frames
    assert n is not None
    differs = n + 2  # frame t attends to min(t - 1, N) tracked frames after a click on frame 0
    pairs = [(e, r) for e, r in zip(exact.steps, reduced.steps, strict=True) if e.frame >= differs]
    exact_ma = _stats([e.timings.memory_attention for e, _ in pairs])["p50_ms"]
    reduced_ma = _stats([r.timings.memory_attention for _, r in pairs])["p50_ms"]
    exact_frame = _stats([e.graphs_ms for e, _ in pairs])["p50_ms"]
    # the reduced tracker reused the exact pass's features: add that pass's encoder cost back
    reduced_frame = _stats([r.graphs_ms + e.timings.encoder for e, r in pairs])["p50_ms"]
    compared = {f for f in reduced.masks if f >= differs}
    return {
        "approximate": True,
        "label": APPROXIMATE_NOTE.format(n=n, exact=cfg.num_maskmem - 1),
        "memory_frames": n,
        "exact_memory_frames": cfg.num_maskmem - 1,
        "memory_attention_p50_ms": reduced_ma,
        "exact_memory_attention_p50_ms": exact_ma,
        "memory_attention_speedup": ratio(exact_ma, reduced_ma),
        "frame_graphs_p50_ms": reduced_frame,
        "exact_frame_graphs_p50_ms": exact_frame,
        "frame_speedup": ratio(exact_frame, reduced_frame),
        "differs_from_frame": differs,
        "frames_compared": len(pairs),
        "vs_exact": mask_agreement(
            {f: m for f, m in exact.masks.items() if f in compared},
            {f: m for f, m in reduced.masks.items() if f in compared},
        ),
        "summary": side_summary(reduced),
    }


def _results(
    inputs: VideoBenchInputs,
    plan: VideoBenchPlan,
    cfg: VideoConfig,
    exact: OrtSide,
    torch_side: Side | None,
    reduced_side: OrtSide | None,
    run: dict[str, Any],
) -> dict[str, Any]:
    files = inputs.files
    height, width = inputs.source.frame_hw
    manifest = files.manifest
    ort = side_summary(exact)
    results: dict[str, Any] = {
        "schema": VIDEO_RESULTS_SCHEMA,
        "kind": "video",
        "model": {
            "name": files.display_name,
            "folder": str(files.encoder.parent),
            "weights": manifest.weights if manifest else "unknown",
            "random_init": files.is_random_init,
            "object_score_bias": inputs.video_model.manifest.exporter.get("object_score_bias"),
        },
        "machine": machine_info(),
        "threads": inputs.config.threads,
        "load_average": {"before": run["load_before"], "after": load_average()},
        "source": {
            "path": inputs.source.name,
            "frames_in_source": len(inputs.source),
            "frames_used": run["count"],
            "width": width,
            "height": height,
            "frames_written": run["written"],
        },
        "prompt": {"frame": 0, "object": 1, "point": [round(v, 1) for v in run["point"]]},
        "alternation": _alternation(torch_side is not None, reduced_side is not None),
        "onnxruntime": ort,
        "torch": {"available": False, "reason": inputs.torch_skipped_reason},
        "memory_attention_flops": _flops_block(exact, run["peak"], cfg),
        "reduced_memory": None,
        "memory": {
            "rss_after_load_mb": _round(run["rss_after_load"]),
            "peak_rss_mb": _round(memory.peak_rss_mb()),
            "frame_cache_mb": round(exact.tracker.cache_nbytes / memory.MIB, 1),
        },
    }
    if torch_side is not None:
        torch_block = side_summary(torch_side)
        torch_block.update(getattr(torch_side, "info", {}))
        torch_block["available"] = True
        torch_block["vs_onnxruntime"] = mask_agreement(exact.masks, torch_side.masks)
        results["torch"] = torch_block
        theirs, ours = torch_block["propagated"], ort["propagated"]
        wall = ratio(theirs["wall"]["p50_ms"], ours["wall"]["p50_ms"])
        graphs = ratio(theirs["graphs"]["p50_ms"], ours["graphs"]["p50_ms"])
        results["speedup"] = {
            "torch_over_ort_wall_p50": wall,
            "torch_over_ort_graphs_p50": graphs,
            "by_part_p50": {
                part: ratio(theirs[part]["p50_ms"], ours[part]["p50_ms"]) for part in PARTS
            },
            "target": TARGET_SPEEDUP,
            "met": None if wall is None else wall >= TARGET_SPEEDUP,
        }
    if reduced_side is not None:
        results["reduced_memory"] = _reduced_block(exact, reduced_side, cfg)
    return results


def _alternation(with_torch: bool, with_reduced: bool) -> str:
    order = ["ONNX Runtime (exact memory)"]
    if with_torch:
        order.append("PyTorch SAM2VideoPredictor")
    if with_reduced:
        order.append("ONNX Runtime (reduced memory)")
    text = "per frame: " + ", then ".join(order)
    if with_torch:
        text += f"; an untimed {RUNTIME_SWITCH_PAUSE_S} s pause before and after each PyTorch step"
    return text


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
