"""The prompt loop's state: the clicks and box of the object being drawn, step by step.

Each click or box adds a :class:`Step` holding the whole prompt after it. The prompt sent to the
decoder carries the previous step's low-resolution logits as ``mask_input`` (SAM's refinement:
each click corrects the last mask instead of starting over). Keeping every step means that
removing the last point goes back to the exact mask and logits of the step before, without a
decode and without the removed point's influence lingering in ``mask_input``.

No Qt here: the window sends :meth:`PromptSession.request` prompts to the worker and hands results
back through :meth:`PromptSession.apply`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from sam2_annotator.engine.predictor import Prediction
from sam2_annotator.engine.types import Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Step:
    """The prompt after one user action; ``prediction``/``overlay`` once it was decoded.

    ``sent`` is the prompt as last sent (with ``mask_input``), reused to cycle candidates.
    """

    points: np.ndarray
    labels: np.ndarray
    box: np.ndarray | None
    sent: Prompt | None = None
    prediction: Prediction | None = None
    #: What the front end draws for the mask (the GUI's ``MaskOverlay``; opaque here).
    overlay: Any = None

    @property
    def prompt(self) -> Prompt:
        return Prompt(points=self.points, labels=self.labels, box=self.box)


@dataclass(frozen=True)
class DecodeOrder:
    """What to ask the worker for: the prompt and the candidate to force (``None``: default)."""

    prompt: Prompt
    candidate: int | None = None


class PromptSession:
    """Steps of the current object on one image (``shape`` ``(H, W)`` bounds the clicks)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.shape = shape
        self.steps: list[Step] = []

    # ------------------------------------------------------------------ reading

    @property
    def top(self) -> Step | None:
        return self.steps[-1] if self.steps else None

    @property
    def empty(self) -> bool:
        return not self.steps

    @property
    def prediction(self) -> Prediction | None:
        """The prediction shown for the current prompt (``None`` while it is decoding)."""
        top = self.top
        return top.prediction if top is not None else None

    def contains(self, x: float, y: float) -> bool:
        height, width = self.shape
        return 0 <= x <= width and 0 <= y <= height

    # ------------------------------------------------------------------ edits

    def add_point(self, x: float, y: float, positive: bool) -> DecodeOrder:
        base = self._base()
        points = np.concatenate([base.points, np.array([[x, y]], np.float32)])
        labels = np.concatenate([base.labels, np.array([1 if positive else 0], np.int64)])
        return self._push(Step(points, labels, base.box))

    def set_box(self, x0: float, y0: float, x1: float, y1: float) -> DecodeOrder:
        """One box per object: a new box replaces the previous one."""
        height, width = self.shape
        left, right = sorted((min(max(x0, 0.0), width), min(max(x1, 0.0), width)))
        top, bottom = sorted((min(max(y0, 0.0), height), min(max(y1, 0.0), height)))
        base = self._base()
        box = np.array([left, top, right, bottom], np.float32)
        return self._push(Step(base.points, base.labels, box))

    def undo(self) -> DecodeOrder | None:
        """Remove the last step. Returns a decode order if the step now on top has no mask yet
        (its result was dropped while the user kept clicking); ``None`` otherwise."""
        if not self.steps:
            return None
        self.steps.pop()
        top = self.top
        if top is None or top.prediction is not None:
            return None
        return self._order_for(len(self.steps) - 1)

    def clear(self) -> None:
        self.steps.clear()

    def seed(
        self,
        points: np.ndarray,
        labels: np.ndarray,
        box: np.ndarray | None,
        prediction: Prediction,
        overlay: Any = None,
    ) -> None:
        """Start from a known result (an accepted annotation being corrected): the next click
        refines ``prediction`` (its low-res logits become the ``mask_input``)."""
        self.steps = [Step(points, labels, box, prediction=prediction, overlay=overlay)]

    def cycle_candidate(self) -> DecodeOrder | None:
        """The next of the decoder's candidate masks for the current prompt, or ``None`` when
        there is nothing to cycle (no mask yet, or a model with a single candidate)."""
        top = self.top
        if top is None or top.prediction is None or top.sent is None:
            return None
        candidates = candidate_cycle(top.prediction)
        if len(candidates) < 2:
            return None
        current = top.prediction.candidate
        position = candidates.index(current) if current in candidates else -1
        following = candidates[(position + 1) % len(candidates)]
        return DecodeOrder(top.sent, candidate=following)

    def apply(self, prompt: Prompt, prediction: Prediction, overlay: Any) -> bool:
        """Attach a decode result to the top step if it was made for that step's points and box.

        The window only passes results whose request id is the latest; this check also guards
        against a result for a prompt that an undo has since removed.
        """
        top = self.top
        if top is None or not _same_prompt(top, prompt):
            return False
        self.steps[-1] = replace(top, sent=prompt, prediction=prediction, overlay=overlay)
        return True

    # ------------------------------------------------------------------ internal

    def _base(self) -> Step:
        if self.steps:
            return self.steps[-1]
        return Step(np.zeros((0, 2), np.float32), np.zeros((0,), np.int64), None)

    def _push(self, step: Step) -> DecodeOrder:
        self.steps.append(step)
        return self._order_for(len(self.steps) - 1)

    def _order_for(self, index: int) -> DecodeOrder:
        """The prompt of step ``index`` refined by the newest mask below it."""
        step = self.steps[index]
        mask_input = None
        for earlier in reversed(self.steps[:index]):
            if earlier.prediction is not None:
                mask_input = earlier.prediction.chosen_low_res
                break
        prompt = Prompt(step.points, step.labels, step.box, mask_input)
        self.steps[index] = replace(step, sent=prompt)
        return DecodeOrder(prompt)


def candidate_cycle(prediction: Prediction) -> list[int]:
    """The candidates Tab cycles through: the multimask ones (plus the single-mask token when
    that is the one shown), in index order."""
    candidates = list(prediction.multimask_candidates) or list(range(len(prediction.scores)))
    if prediction.candidate not in candidates:
        candidates.insert(0, prediction.candidate)
    return candidates


def _same_prompt(step: Step, prompt: Prompt) -> bool:
    if not np.array_equal(step.points, prompt.points):
        return False
    if not np.array_equal(step.labels, prompt.labels):
        return False
    if (step.box is None) != (prompt.box is None):
        return False
    return step.box is None or np.array_equal(step.box, prompt.box)
