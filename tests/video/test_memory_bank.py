"""Reduced (approximate) memory selection and the bank's size (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine.memory_bank import (
    FrameOutput,
    ObjectMemory,
    bank_nbytes,
    select_memories,
)
from sam2_annotator.engine.tracker import TrackerOptions
from sam2_annotator.engine.video_graphs import VideoConfig
from sam2_annotator.errors import UserError


def _out(frame: int) -> FrameOutput:
    return FrameOutput(np.zeros((1, 1), np.float32), np.full(256, frame, np.float32), 1.0)


def _ids(selection: list) -> list[tuple[int, int]]:
    return [(index, int(out.obj_ptr[0])) for index, out in selection]


def _bank() -> ObjectMemory:
    return ObjectMemory(cond={0: _out(0)}, non_cond={t: _out(t) for t in range(1, 10)})


def test_reduced_memory_keeps_the_closest_frames_with_their_encodings() -> None:
    exact, exact_ptrs, _ = select_memories(_bank(), 10, False, VideoConfig(), 12)
    reduced, reduced_ptrs, _ = select_memories(_bank(), 10, False, VideoConfig(), 12, recent=2)
    # the prompted frame, then frames 8 and 9 at the temporal indices they have in SAM2's choice
    assert _ids(reduced) == [(6, 0), (1, 8), (0, 9)]
    assert [e for e in _ids(exact) if e[1] in (0, 8, 9)] == _ids(reduced)
    assert [(d, int(p[0])) for d, p in reduced_ptrs] == [(d, int(p[0])) for d, p in exact_ptrs]


def test_zero_recent_frames_leaves_the_prompted_frames_and_six_is_exact() -> None:
    only_cond, _, _ = select_memories(_bank(), 10, False, VideoConfig(), 12, recent=0)
    assert _ids(only_cond) == [(6, 0)]
    memory = _bank()
    exact, _, _ = select_memories(memory, 10, False, VideoConfig(), 12)
    six, _, _ = select_memories(memory, 10, False, VideoConfig(), 12, recent=6)
    assert _ids(six) == _ids(exact) and len(exact) == 7  # the prompted frame + frames 4-9


def test_options_say_when_the_memory_is_approximate() -> None:
    config = VideoConfig()
    assert not TrackerOptions().is_approximate(config)
    assert not TrackerOptions(memory_frames=6).is_approximate(config)
    assert TrackerOptions(memory_frames=2).is_approximate(config)
    with pytest.raises(UserError, match="0 or more"):
        TrackerOptions(memory_frames=-1)


def test_bank_size_counts_every_stored_frame() -> None:
    memory = _bank()
    one = memory.non_cond[1]
    one.maskmem_bf16 = np.zeros((64, 64, 64), np.uint16)
    per_frame = 4 + 256 * 4  # the 1x1 logits and the pointer
    assert bank_nbytes(memory) == 10 * per_frame + 64**3 * 2
