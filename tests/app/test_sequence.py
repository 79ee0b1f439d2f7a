"""The sequence model and prompt loop without Qt: objects, clicks, request ids, propagation."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.annotations.masks import mask_to_rle
from sam2_annotator.app.sequence import (
    FrameMask,
    FramePrompt,
    PropagateOrder,
    SequenceChange,
    SequenceModel,
    SequenceSession,
    objects_without_prompts,
)
from sam2_annotator.errors import PromptError

HW = (12, 16)


def mask(x0: int, x1: int, source: str = "tracked", score: float = 2.0) -> FrameMask:
    m = np.zeros(HW, bool)
    m[2:8, x0:x1] = True
    return FrameMask(mask_to_rle(m), score, source)  # type: ignore[arg-type]


def empty_mask() -> FrameMask:
    return FrameMask(mask_to_rle(np.zeros(HW, bool)), -3.0, "tracked")


@pytest.fixture
def session() -> SequenceSession:
    return SequenceSession(SequenceModel("clip.mp4", 10, HW))


def test_first_click_starts_object_one_and_each_click_sends_the_whole_prompt(session) -> None:
    changes: list[SequenceChange] = []
    session.model.listeners.append(changes.append)
    first = session.click(3, 4, True)
    assert (first.frame, first.track_id) == (0, 1)
    assert first.prompt.points == ((3.0, 4.0, 1),)
    second = session.click(5, 6, False)
    assert second.request_id > first.request_id
    assert second.prompt.points == ((3.0, 4.0, 1), (5.0, 6.0, 0))
    assert session.model.prompt(0, 1) == second.prompt
    assert [c.kind for c in changes] == ["objects", "prompt", "prompt"]
    points, labels, box = second.prompt.arrays()
    assert points.shape == (2, 2) and labels.tolist() == [1, 0] and box is None


def test_only_the_latest_click_per_frame_and_object_is_applied(session) -> None:
    old = session.click(3, 4, True)
    new = session.click(5, 6, True)
    assert session.awaiting_clicks == 1  # the replaced one is not waited for
    assert not session.apply_click(old, mask(0, 4))
    assert session.stale_results == 1 and session.model.masks == {}
    assert session.apply_click(new, mask(0, 6, "prompt"))
    assert session.awaiting_clicks == 0
    assert session.model.masks_on(0)[1].rle.area == 6 * 6


def test_clicks_on_other_frames_and_objects_are_independent(session) -> None:
    a = session.click(1, 1, True)
    session.go_to(4)
    b = session.click(2, 2, True)
    obj2 = session.new_object("car")
    c = session.click(3, 3, True)
    assert (b.frame, b.track_id) == (4, 1) and (c.frame, c.track_id) == (4, obj2.track_id)
    assert session.awaiting_clicks == 3
    for order in (a, b, c):
        assert session.apply_click(order, mask(0, 4, "prompt"))
    assert session.model.processed_frames() == [0, 4]
    assert session.model.prompted_frames(1) == [0, 4]
    assert session.model.objects[2].label == "car"


def test_box_then_clicks_and_undo(session) -> None:
    session.box(1, 2, 9, 10)
    order = session.click(4, 5, True)
    assert order.prompt.box == (1.0, 2.0, 9.0, 10.0) and len(order.prompt.points) == 1
    fewer = session.undo_click()
    assert fewer is not None and fewer.prompt == FramePrompt((), (1.0, 2.0, 9.0, 10.0))
    with pytest.raises(PromptError, match="only click"):
        session.undo_click()
    session.go_to(3)
    assert session.undo_click() is None  # nothing on this frame


def test_remove_object_drops_its_clicks_masks_and_pending_answers(session) -> None:
    order = session.click(3, 4, True)
    session.model.record(5, {1: mask(0, 4)})
    other = session.new_object()
    session.model.record(5, {other.track_id: mask(4, 8)})
    session.remove_object(1)
    assert 1 not in session.model.objects and session.model.prompts == {}
    assert set(session.model.masks_on(5)) == {other.track_id}
    assert not session.apply_click(order, mask(0, 4))
    assert session.active_track == other.track_id
    session.model.record(6, {1: mask(0, 4)})  # a late result for the removed object
    assert 6 not in session.model.masks


def test_labels(session) -> None:
    obj = session.new_object("  rabbit ")
    assert obj.label == "rabbit"
    session.model.set_label(obj.track_id, "bird")
    assert session.model.objects[obj.track_id].label == "bird"
    with pytest.raises(PromptError, match="empty"):
        session.model.set_label(obj.track_id, " ")
    with pytest.raises(PromptError, match="no object 9"):
        session.model.set_label(9, "x")
    assert obj.color != session.new_object().color


def test_propagation_bookkeeping(session) -> None:
    with pytest.raises(PromptError, match="click on an object first"):
        session.propagate(reverse=False)
    click = session.click(3, 4, True)
    session.apply_click(click, mask(0, 4, "prompt"))
    with pytest.raises(PromptError, match="first frame"):
        session.propagate(reverse=True)
    session.new_object("unclicked")
    assert objects_without_prompts(session.model) == [2]
    session.go_to(2)
    order = session.propagate(reverse=False)
    assert order.start == 2 and session.propagation.total == 8
    with pytest.raises(PromptError, match="already running"):
        session.propagate(reverse=True)
    session.apply_step(order, 2, {1: mask(0, 5)})
    session.apply_step(order, 3, {1: empty_mask()})
    assert session.propagation.done == 2
    assert session.model.masks_on(3)[1].present is False
    assert session.model.frames_with(1) == 2  # frames 0 and 2
    assert session.cancel() and session.propagation.cancel_requested
    ended = session.finish(order)
    assert ended is not None and ended.done == 2 and not session.propagating
    assert not session.cancel()
    # a step of a cancelled run arriving late is still the tracker's answer: recorded
    session.apply_step(order, 4, {1: mask(2, 6)})
    assert session.model.masks_on(4)[1].present


def test_a_propagated_frame_with_clicks_is_marked_as_prompted(session) -> None:
    click = session.click(3, 4, True)
    session.apply_click(click, mask(0, 4, "prompt"))
    order = session.propagate(reverse=False)
    session.apply_step(order, 0, {1: mask(0, 4)})
    session.apply_step(order, 1, {1: mask(0, 4)})
    assert session.model.masks_on(0)[1].source == "prompt"
    assert session.model.masks_on(1)[1].source == "tracked"


@pytest.mark.parametrize(
    ("start", "reverse", "max_frames", "count"),
    [(0, False, None, 10), (4, False, None, 6), (4, True, None, 5), (4, False, 2, 3),
     (1, True, 5, 2), (9, False, None, 1), (0, True, None, 0)],
)  # fmt: skip
def test_frame_count_matches_the_tracker_range(start, reverse, max_frames, count) -> None:
    order = PropagateOrder(1, start, reverse, max_frames)
    assert order.frame_count(10) == count


def test_snapshot_round_trip_and_navigation(session) -> None:
    session.click(3, 4, True)
    session.model.record(0, {1: mask(0, 4, "prompt")})
    snap = session.model.snapshot()
    copy = SequenceModel.from_snapshot(snap)
    assert copy.snapshot() == snap
    assert copy.new_object().track_id == 2
    assert session.go_to(99) and session.frame == 9
    assert not session.go_to(12) and session.go_to(-1) and session.frame == 0
