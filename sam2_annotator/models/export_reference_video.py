"""The PyTorch side of ``bench --video``: ``SAM2VideoPredictor`` timed per graph, frame by frame.

The predictor is built from the same config and weights as the model folder's ONNX files (random
init with the manifest's seed, or the checkpoint the manifest's hash names), plus the
object-score bias ``video.json`` records when the export set one (tests do, so that random-init
objects are present). ``fill_hole_area`` is 0: the hole filling needs sam2's CUDA extension, and
our tracker does not do it either.

Timing: the predictor's ``forward_image`` (encoder), ``_prepare_memory_conditioned_features``
(memory attention, with the memory concatenation), ``_encode_new_memory`` (memory encoder, with
the mask up-sampling) and ``_forward_sam_heads`` (prompt encoder + mask decoder + object pointer)
are wrapped on the instance; nothing else changes. torch and sam2 are imported inside the
functions here, never at module level.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from sam2_annotator.engine.tracker import FrameTimings, StepCost
from sam2_annotator.errors import ModelError, UserError
from sam2_annotator.models.export_reference import TorchSource

log = logging.getLogger(__name__)

#: Predictor method -> the graph it stands for.
TIMED_METHODS = {
    "forward_image": "encoder",
    "_prepare_memory_conditioned_features": "memory_attention",
    "_encode_new_memory": "memory_encoder",
    "_forward_sam_heads": "decoder",
}


def build_video_predictor(source: TorchSource, object_score_bias: float | None) -> Any:
    """``SAM2VideoPredictor`` on CPU with the weights of ``source`` (and the bias, if any)."""
    import torch
    from sam2.build_sam import build_sam2_video_predictor

    from sam2_annotator.models.export import resolve_variant
    from sam2_annotator.models.export_video import set_object_score_bias

    variant = resolve_variant(source.variant)
    torch.manual_seed(source.seed)  # the same draw as the exporter's build_model
    try:
        predictor = build_sam2_video_predictor(
            variant.config,
            str(source.checkpoint) if source.checkpoint else None,
            device="cpu",
        )
    except (RuntimeError, KeyError) as exc:
        raise ModelError(f"cannot build SAM2VideoPredictor for {variant.name}: {exc}") from exc
    if object_score_bias is not None:
        set_object_score_bias(predictor, object_score_bias)
    predictor.fill_hole_area = 0
    return predictor


@contextlib.contextmanager
def quiet_progress_bars() -> Iterator[None]:
    """sam2 draws tqdm bars for frame loading and propagation: silence them meanwhile."""
    import sam2.sam2_video_predictor as predictor_module
    import sam2.utils.misc as misc_module
    from tqdm import tqdm

    quiet = functools.partial(tqdm, disable=True)
    saved = [(m, m.tqdm) for m in (predictor_module, misc_module) if hasattr(m, "tqdm")]
    for module, _ in saved:
        module.tqdm = quiet
    try:
        yield
    finally:
        for module, original in saved:
            module.tqdm = original


@dataclass
class TorchVideoSide:
    """The predictor on the bench's frame folder; one propagated frame per :meth:`step`."""

    predictor: Any
    torch: Any
    name: str = "pytorch"
    runtime: str = "torch"
    first: StepCost | None = None
    steps: list[StepCost] = field(default_factory=list)
    masks: dict[int, np.ndarray] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)
    _state: Any = None
    _iter: Any = None
    #: ``init_state``'s graph runs (the predictor encodes frame 0 there as a warm-up).
    init_timings: FrameTimings = field(default_factory=FrameTimings)
    _current: FrameTimings = field(default_factory=FrameTimings)

    @classmethod
    def load(
        cls,
        source: TorchSource,
        frames_dir: Path,
        object_score_bias: float | None = None,
        threads: int = 0,
    ) -> TorchVideoSide:
        """Build the predictor and run ``init_state`` on ``frames_dir`` (timed)."""
        import torch

        if threads > 0:
            torch.set_num_threads(threads)
        start = time.perf_counter()
        predictor = build_video_predictor(source, object_score_bias)
        build_ms = (time.perf_counter() - start) * 1000.0
        side = cls(predictor, torch)
        side._instrument()
        start = time.perf_counter()
        with torch.inference_mode(), quiet_progress_bars():
            side._state = predictor.init_state(str(frames_dir))
        init_ms = (time.perf_counter() - start) * 1000.0
        side.init_timings = side._take()
        side.info = {
            "version": str(torch.__version__),
            "threads": int(torch.get_num_threads()),
            "variant": source.variant,
            "weights": "checkpoint" if source.checkpoint else f"random-init seed {source.seed}",
            "object_score_bias": object_score_bias,
            "build_ms": round(build_ms, 1),
            # init_state loads every frame (JPEG decode + resize) and encodes frame 0
            "init_state_ms": round(init_ms, 1),
            "init_state_encoder_ms": round(side.init_timings.encoder, 1),
        }
        log.info("PyTorch %s video predictor, %d threads", torch.__version__, side.info["threads"])
        return side

    def _instrument(self) -> None:
        for method, part in TIMED_METHODS.items():
            original = getattr(self.predictor, method)

            def timed(*args: Any, _original: Any = original, _part: str = part, **kwargs: Any):
                start = time.perf_counter()
                try:
                    return _original(*args, **kwargs)
                finally:
                    elapsed = (time.perf_counter() - start) * 1000.0
                    setattr(self._current, _part, getattr(self._current, _part) + elapsed)

            setattr(self.predictor, method, timed)

    def _take(self) -> FrameTimings:
        taken, self._current = self._current, FrameTimings()
        return taken

    def click(self, frame: int, xy: tuple[float, float]) -> None:
        self._take()
        start = time.perf_counter()
        with self.torch.inference_mode():
            _, obj_ids, masks = self.predictor.add_new_points_or_box(
                self._state,
                frame_idx=frame,
                obj_id=1,
                points=np.array([xy], np.float32),
                labels=np.array([1], np.int32),
            )
            self.masks[frame] = (masks[obj_ids.index(1), 0] > 0).numpy()
        wall = (time.perf_counter() - start) * 1000.0
        timings = self._take()
        # init_state encoded the frame already (the predictor's warm-up): count it here
        timings.encoder += self.init_timings.encoder
        self.first = StepCost(frame, timings, wall + self.init_timings.encoder)

    def step(self) -> StepCost:
        if self.first is None:
            raise UserError("click before stepping")
        if self._iter is None:
            self._iter = self._propagate()
        self._take()
        with quiet_progress_bars():  # the bar is made on the first step
            start = time.perf_counter()
            frame, mask = next(self._iter)
            wall = (time.perf_counter() - start) * 1000.0
        timings = self._take()
        if frame == self.first.frame:  # the preflight's memory encoder
            self.first.timings.add(timings)
            self.first.wall_ms += wall
            return self.first
        self.masks[frame] = mask
        cost = StepCost(frame, timings, wall)
        self.steps.append(cost)
        return cost

    def _propagate(self) -> Iterator[tuple[int, np.ndarray]]:
        # (propagate_in_video runs in inference mode: sam2 decorates it)
        for frame, obj_ids, masks in self.predictor.propagate_in_video(self._state):
            yield frame, (masks[obj_ids.index(1), 0] > 0).numpy()
