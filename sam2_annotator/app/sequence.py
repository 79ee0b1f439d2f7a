"""Sequence mode without Qt: the objects tracked through one clip, their clicks and their masks.

A *sequence* is a video file or a folder of frames (:mod:`sam2_annotator.engine.video_io`).
:class:`SequenceModel` is what the user made of it:

* objects (:class:`TrackObject`): a track id and a label (the COCO category on export);
* clicks per object and frame (:class:`FramePrompt`, frame pixels): what the tracker was told;
* masks per frame and object (:class:`FrameMask`: compressed RLE, the object score, and whether
  it came from clicks on that frame or from propagation). Every mask the tracker returns is kept:
  tracking results *are* the annotations, as in CVAT's tracks; a frame processed with the object
  absent keeps an empty mask, which the export turns into an image without that annotation.

Views subscribe to :attr:`SequenceModel.listeners` (one :class:`SequenceChange` per edit); the
window redraws and the saver writes from those. :class:`SequenceSession` is the prompt loop: the
frame on screen, which object clicks go to, request ids (a click result is applied only while it
is the latest for its frame and object; older ones are stale) and the running propagation.

Why every click sends the object's *whole* prompt on that frame (``clear_old_points``): the worker
keeps one pending request per frame and object, and a newer click replaces a pending one (latest
click wins). Were clicks sent one by one, a replaced click would be lost to the tracker while the
markers still showed it.

The project file (:mod:`.sequence_io`) is written beside the clip; the clip is never modified.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

from sam2_annotator.annotations.masks import Rle
from sam2_annotator.annotations.model import default_color
from sam2_annotator.errors import PromptError

log = logging.getLogger(__name__)

MaskSource = Literal["prompt", "tracked"]
ChangeKind = Literal["objects", "prompt", "masks"]
RGB = tuple[int, int, int]
#: The label a new object gets when none is given.
DEFAULT_LABEL = "object"


@dataclass(frozen=True)
class TrackObject:
    """One tracked object: its track id (the tracker's object id) and its label."""

    track_id: int
    label: str = DEFAULT_LABEL

    @property
    def color(self) -> RGB:
        return default_color(self.track_id)


@dataclass(frozen=True)
class FramePrompt:
    """The clicks (x, y, 1 = positive / 0 = negative) and box of one object on one frame."""

    points: tuple[tuple[float, float, int], ...] = ()
    box: tuple[float, float, float, float] | None = None

    @property
    def empty(self) -> bool:
        return not self.points and self.box is None

    def with_point(self, x: float, y: float, positive: bool) -> FramePrompt:
        return replace(self, points=(*self.points, (float(x), float(y), 1 if positive else 0)))

    def with_box(self, box: tuple[float, float, float, float]) -> FramePrompt:
        x0, y0, x1, y1 = (float(v) for v in box)
        return replace(self, box=(x0, y0, x1, y1))

    def without_last(self) -> FramePrompt:
        """The last click removed (the box once no click is left)."""
        if self.points:
            return replace(self, points=self.points[:-1])
        return replace(self, box=None)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """Points ``[N, 2]`` float32, labels ``[N]`` int32 and the box (or ``None``)."""
        points = np.array([p[:2] for p in self.points], np.float32).reshape(-1, 2)
        labels = np.array([p[2] for p in self.points], np.int32)
        box = None if self.box is None else np.array(self.box, np.float32)
        return points, labels, box


@dataclass(frozen=True)
class FrameMask:
    """One object's mask on one frame (``score``: the tracker's object-score logit)."""

    rle: Rle
    score: float
    source: MaskSource

    @property
    def present(self) -> bool:
        return self.rle.area > 0


@dataclass(frozen=True)
class SequenceChange:
    """What changed: objects (added, removed, relabelled), a prompt, or masks of a frame."""

    kind: ChangeKind
    frame: int | None = None
    track_id: int | None = None


@dataclass(frozen=True)
class SequenceSnapshot:
    """A frozen copy of the model for the saver thread (records are immutable; dicts copied)."""

    source_name: str
    num_frames: int
    frame_hw: tuple[int, int]
    objects: tuple[TrackObject, ...]
    prompts: tuple[tuple[int, int, FramePrompt], ...]
    masks: tuple[tuple[int, tuple[tuple[int, FrameMask], ...]], ...]
    next_track_id: int


Listener = Callable[[SequenceChange], None]


class SequenceModel:
    """See the module docstring. ``source_name`` is the clip's file or folder name."""

    def __init__(self, source_name: str, num_frames: int, frame_hw: tuple[int, int]) -> None:
        self.source_name = source_name
        self.num_frames = int(num_frames)
        self.frame_hw = (int(frame_hw[0]), int(frame_hw[1]))
        self.objects: dict[int, TrackObject] = {}
        self.prompts: dict[tuple[int, int], FramePrompt] = {}
        self.masks: dict[int, dict[int, FrameMask]] = {}
        self.next_track_id = 1
        self.listeners: list[Listener] = []
        #: Increases with every change (the saver writes the newest).
        self.generation = 0

    # ------------------------------------------------------------------ objects

    def new_object(self, label: str = DEFAULT_LABEL) -> TrackObject:
        obj = TrackObject(self.next_track_id, label.strip() or DEFAULT_LABEL)
        self.objects[obj.track_id] = obj
        self.next_track_id += 1
        self._changed(SequenceChange("objects", track_id=obj.track_id))
        return obj

    def set_label(self, track_id: int, label: str) -> None:
        obj = self._object(track_id)
        label = label.strip()
        if not label:
            raise PromptError("a label cannot be empty")
        if label != obj.label:
            self.objects[track_id] = replace(obj, label=label)
            self._changed(SequenceChange("objects", track_id=track_id))

    def remove_object(self, track_id: int) -> None:
        """The object, its clicks and its masks on every frame."""
        self._object(track_id)
        del self.objects[track_id]
        for key in [k for k in self.prompts if k[1] == track_id]:
            del self.prompts[key]
        for frame in list(self.masks):
            self.masks[frame].pop(track_id, None)
            if not self.masks[frame]:
                del self.masks[frame]
        self._changed(SequenceChange("objects", track_id=track_id))

    def _object(self, track_id: int) -> TrackObject:
        obj = self.objects.get(track_id)
        if obj is None:
            raise PromptError(f"there is no object {track_id}")
        return obj

    # ------------------------------------------------------------------ clicks

    def prompt(self, frame: int, track_id: int) -> FramePrompt:
        return self.prompts.get((frame, track_id), FramePrompt())

    def set_prompt(self, frame: int, track_id: int, prompt: FramePrompt) -> None:
        self._object(track_id)
        self._check_frame(frame)
        if prompt.empty:
            self.prompts.pop((frame, track_id), None)
        else:
            self.prompts[(frame, track_id)] = prompt
        self._changed(SequenceChange("prompt", frame, track_id))

    def prompted_frames(self, track_id: int | None = None) -> list[int]:
        return sorted({f for f, t in self.prompts if track_id is None or t == track_id})

    def _check_frame(self, frame: int) -> None:
        if not 0 <= frame < self.num_frames:
            raise PromptError(f"frame {frame} does not exist ({self.num_frames} frames)")

    # ------------------------------------------------------------------ masks

    def record(self, frame: int, masks: Mapping[int, FrameMask]) -> None:
        """The tracker's masks on ``frame`` (objects removed meanwhile are ignored)."""
        self._check_frame(frame)
        kept = {t: m for t, m in masks.items() if t in self.objects}
        if not kept:
            return
        self.masks.setdefault(frame, {}).update(kept)
        self._changed(SequenceChange("masks", frame))

    def masks_on(self, frame: int) -> dict[int, FrameMask]:
        return dict(self.masks.get(frame, {}))

    def processed_frames(self) -> list[int]:
        """Frames with a mask record of any object (present or absent)."""
        return sorted(self.masks)

    def frames_with(self, track_id: int) -> int:
        """On how many frames ``track_id`` is present."""
        return sum(1 for m in self.masks.values() if track_id in m and m[track_id].present)

    def iter_masks(self) -> Iterator[tuple[int, int, FrameMask]]:
        for frame in sorted(self.masks):
            for track_id, mask in sorted(self.masks[frame].items()):
                yield frame, track_id, mask

    # ------------------------------------------------------------------ change notification

    def _changed(self, change: SequenceChange) -> None:
        self.generation += 1
        for listener in list(self.listeners):
            listener(change)

    def snapshot(self) -> SequenceSnapshot:
        return SequenceSnapshot(
            self.source_name,
            self.num_frames,
            self.frame_hw,
            tuple(self.objects[t] for t in sorted(self.objects)),
            tuple((f, t, p) for (f, t), p in sorted(self.prompts.items())),
            tuple((f, tuple(sorted(m.items()))) for f, m in sorted(self.masks.items())),
            self.next_track_id,
        )

    @classmethod
    def from_snapshot(cls, snap: SequenceSnapshot) -> SequenceModel:
        model = cls(snap.source_name, snap.num_frames, snap.frame_hw)
        model.objects = {o.track_id: o for o in snap.objects}
        model.prompts = {(f, t): p for f, t, p in snap.prompts}
        model.masks = {f: dict(m) for f, m in snap.masks}
        known = max(model.objects, default=0)
        model.next_track_id = max(snap.next_track_id, known + 1)
        return model


# --------------------------------------------------------------------------- the prompt loop


@dataclass(frozen=True)
class ClickOrder:
    """Tell the tracker ``prompt`` (the object's whole prompt on ``frame``)."""

    request_id: int
    frame: int
    track_id: int
    prompt: FramePrompt


@dataclass(frozen=True)
class PropagateOrder:
    """Propagate from ``start`` (forward, or backward with ``reverse``) over at most
    ``max_frames`` frames after it (``None``: to the end of the clip)."""

    request_id: int
    start: int
    reverse: bool
    max_frames: int | None = None

    def frame_count(self, num_frames: int) -> int:
        """How many frames this propagation processes (the start frame included)."""
        if self.reverse and self.start == 0:
            return 0  # the tracker has nothing before frame 0
        remaining = self.start + 1 if self.reverse else num_frames - self.start
        limit = remaining if self.max_frames is None else self.max_frames + 1
        return max(0, min(remaining, limit))


@dataclass
class Propagation:
    """The running propagation and its progress."""

    order: PropagateOrder
    total: int
    done: int = 0
    cancel_requested: bool = False
    frame_ms: list[float] = field(default_factory=list)


class SequenceSession:
    """See the module docstring. ``new_id`` hands out increasing request ids."""

    def __init__(self, model: SequenceModel, new_id: Callable[[], int] | None = None) -> None:
        self.model = model
        self._new_id = new_id or itertools.count(1).__next__
        self.frame = 0
        self.active_track: int | None = min(model.objects, default=None)
        #: (frame, track id) -> the latest click's request id, and those still unanswered
        self._latest_click: dict[tuple[int, int], int] = {}
        self._unanswered: set[int] = set()
        self.propagation: Propagation | None = None
        self.stale_results = 0

    # ------------------------------------------------------------------ navigation and objects

    def go_to(self, frame: int) -> bool:
        """Show ``frame`` (clamped to the clip); whether it changed."""
        frame = min(max(int(frame), 0), self.model.num_frames - 1)
        if frame == self.frame:
            return False
        self.frame = frame
        return True

    def new_object(self, label: str = DEFAULT_LABEL) -> TrackObject:
        obj = self.model.new_object(label)
        self.active_track = obj.track_id
        return obj

    def choose(self, track_id: int) -> None:
        self.model._object(track_id)
        self.active_track = track_id

    def remove_object(self, track_id: int) -> None:
        self.model.remove_object(track_id)
        for key in [k for k in self._latest_click if k[1] == track_id]:
            self._unanswered.discard(self._latest_click.pop(key))
        if self.active_track == track_id:
            self.active_track = max(self.model.objects, default=None)

    # ------------------------------------------------------------------ clicks

    @property
    def prompt(self) -> FramePrompt:
        """The active object's prompt on the frame on screen."""
        if self.active_track is None:
            return FramePrompt()
        return self.model.prompt(self.frame, self.active_track)

    def click(self, x: float, y: float, positive: bool) -> ClickOrder:
        """A click on the frame on screen for the active object (a new object if none)."""
        return self._send(self._target().with_point(x, y, positive))

    def box(self, x0: float, y0: float, x1: float, y1: float) -> ClickOrder:
        return self._send(self._target().with_box((x0, y0, x1, y1)))

    def undo_click(self) -> ClickOrder | None:
        """Remove the last click of the active object on this frame; ``None`` if that would
        leave it without any (the tracker cannot un-prompt a frame: delete the object instead)."""
        prompt = self.prompt
        if prompt.empty:
            return None
        fewer = prompt.without_last()
        if fewer.empty:
            raise PromptError(
                "this is the object's only click on this frame; Delete removes the object"
            )
        return self._send(fewer)

    def _target(self) -> FramePrompt:
        if self.active_track is None or self.active_track not in self.model.objects:
            self.new_object()
        return self.prompt

    def _send(self, prompt: FramePrompt) -> ClickOrder:
        assert self.active_track is not None
        track_id = self.active_track
        self.model.set_prompt(self.frame, track_id, prompt)
        order = ClickOrder(self._new_id(), self.frame, track_id, prompt)
        key = (self.frame, track_id)
        self._unanswered.discard(self._latest_click.get(key, -1))
        self._latest_click[key] = order.request_id
        self._unanswered.add(order.request_id)
        return order

    @property
    def awaiting_clicks(self) -> int:
        """Clicks sent whose answer has not come back yet (replaced ones not counted)."""
        return len(self._unanswered)

    def apply_click(self, order: ClickOrder, mask: FrameMask | None) -> bool:
        """The tracker's answer to ``order`` (``mask`` ``None``: it failed). Applied only while
        ``order`` is the latest click for its frame and object; older answers are stale."""
        key = (order.frame, order.track_id)
        if self._latest_click.get(key) != order.request_id:
            self.stale_results += 1
            return False
        self._unanswered.discard(order.request_id)
        if mask is not None:
            self.model.record(order.frame, {order.track_id: mask})
        return True

    # ------------------------------------------------------------------ propagation

    @property
    def propagating(self) -> bool:
        return self.propagation is not None

    def propagate(self, reverse: bool, max_frames: int | None = None) -> PropagateOrder:
        """From the frame on screen; raises :class:`PromptError` when there is nothing to track
        or a propagation is already running."""
        if self.propagation is not None:
            raise PromptError("a propagation is already running (Esc cancels it)")
        if not self.model.prompts:
            raise PromptError("click on an object first, then propagate")
        if reverse and self.frame == 0:
            raise PromptError("this is the first frame: nothing to propagate backward to")
        order = PropagateOrder(self._new_id(), self.frame, reverse, max_frames)
        self.propagation = Propagation(order, order.frame_count(self.model.num_frames))
        return order

    def apply_step(self, order: PropagateOrder, frame: int, masks: Mapping[int, FrameMask]):
        """One propagated frame. Always recorded: whichever run produced it, it is the tracker's
        current answer for that frame (a cancelled run's last frames included)."""
        tracked = {
            t: m if (frame, t) not in self.model.prompts else replace(m, source="prompt")
            for t, m in masks.items()
        }
        self.model.record(frame, tracked)
        running = self.propagation
        if running is not None and running.order.request_id == order.request_id:
            running.done += 1

    def cancel(self) -> bool:
        """Ask the running propagation to stop (the worker stops after the frame in progress)."""
        if self.propagation is None:
            return False
        self.propagation.cancel_requested = True
        return True

    def finish(self, order: PropagateOrder) -> Propagation | None:
        """The propagation ``order`` ended (done, cancelled or failed)."""
        running = self.propagation
        if running is None or running.order.request_id != order.request_id:
            return None
        self.propagation = None
        return running


def objects_without_prompts(model: SequenceModel) -> list[int]:
    """Objects that have no click on any frame (the tracker does not know them yet)."""
    return [t for t in sorted(model.objects) if not model.prompted_frames(t)]
