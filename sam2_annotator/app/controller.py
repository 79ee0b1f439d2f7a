"""The prompt/edit loop without Qt: what is being drawn on the image on screen, and with which tool.

:class:`PromptController` holds the state the window used to keep in its own attributes:

* the :class:`~.prompt.PromptSession` of the object being segmented, the id of the latest decode
  request and of the last one applied (results for older ids, or for another image, are stale and
  dropped), and whether Enter is waiting for a pending decode;
* which accepted annotation is being corrected (:meth:`begin_edit`): its stored prompts and its
  low-res logits (remembered for annotations accepted in this session; otherwise its mask as
  SAM2's mask prompt, see :func:`~.tools.mask_to_low_res_logits`) seed the session, further
  clicks refine it, and accepting replaces its mask;
* the active tool, the polygon being drawn and the brush draft (a mask being painted).

The window turns :class:`Outgoing` orders into worker requests and gives results back through
:meth:`apply_result`; :meth:`accept_plan` says what Enter would save.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from sam2_annotator.annotations.model import Annotation, PromptRecord, SourceGeometry
from sam2_annotator.app.prompt import DecodeOrder, PromptSession, Step
from sam2_annotator.app.tools import (
    PolygonDraft,
    Stroke,
    ToolName,
    apply_stroke,
    mask_to_low_res_logits,
    polygon_vertices,
)
from sam2_annotator.engine.predictor import Prediction
from sam2_annotator.engine.types import Prompt

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outgoing:
    """A decode to send: the request id to tag it with and the prompt."""

    request_id: int
    order: DecodeOrder


@dataclass
class MaskDraft:
    """A mask being painted with the brush/eraser (``annotation_id``: the one it replaces)."""

    mask: np.ndarray
    annotation_id: int | None = None
    prompts: PromptRecord | None = None
    score: float | None = None
    strokes: int = 0


@dataclass(frozen=True)
class AcceptPlan:
    """What Enter saves: a new annotation (``annotation_id`` None: asks for a label) or a new
    mask for ``annotation_id``."""

    mask: np.ndarray
    annotation_id: int | None
    prompts: PromptRecord | None
    score: float | None
    geometry: SourceGeometry | None = None
    low_res: np.ndarray | None = None


AcceptState = Literal["nothing", "wait", "ready"]


class PromptController:
    """See the module docstring. ``new_id`` hands out increasing request ids."""

    def __init__(self, new_id: Callable[[], int]) -> None:
        self._new_id = new_id
        self.image: str | None = None
        self.shape: tuple[int, int] | None = None
        self.session: PromptSession | None = None
        self.latest_request = 0
        self.applied_request = 0
        self.accept_when_ready = False
        self.stale_results = 0
        self.editing: int | None = None
        self.tool: ToolName = "prompt"
        self.polygon: PolygonDraft | None = None
        self.draft: MaskDraft | None = None
        #: Low-res logits of annotations accepted in this session (their refinement state).
        self._logits: dict[int, np.ndarray] = {}

    # ------------------------------------------------------------------ image

    def set_image(self, image: str | None, shape: tuple[int, int] | None) -> None:
        """A new image on screen (``shape`` ``(H, W)`` once its pixels are loaded)."""
        self.clear()
        self.image = image
        self.shape = shape
        self.session = PromptSession(shape) if shape is not None else None

    # ------------------------------------------------------------------ the prompt loop

    def click(self, x: float, y: float, positive: bool) -> Outgoing | None:
        if self.session is None or not self.session.contains(x, y):
            return None
        return self._outgoing(self.session.add_point(x, y, positive))

    def box(self, x0: float, y0: float, x1: float, y1: float) -> Outgoing | None:
        if self.session is None:
            return None
        return self._outgoing(self.session.set_box(x0, y0, x1, y1))

    def remove_last_point(self) -> Outgoing | None:
        """Backspace / Ctrl+Z while drawing. The seed of an edit is not removed (Esc leaves)."""
        session = self.session
        if session is None or session.empty:
            return None
        if self.editing is not None and len(session.steps) == 1:
            return None
        order = session.undo()
        if order is not None:
            return self._outgoing(order)
        self.invalidate()
        return None

    def cycle_candidate(self) -> Outgoing | None:
        if self.session is None:
            return None
        order = self.session.cycle_candidate()
        return self._outgoing(order) if order is not None else None

    def resend(self) -> Outgoing | None:
        """The current prompt again (after a model change)."""
        top = self.session.top if self.session is not None else None
        if top is None or (not len(top.points) and top.box is None):
            return None
        return self._outgoing(DecodeOrder(top.sent or top.prompt))

    def clear(self) -> None:
        """Esc: drop the prompt, the edit, the polygon and the brush draft."""
        if self.session is not None:
            self.session.clear()
        self.editing = None
        self.polygon = None
        self.draft = None
        self.invalidate()

    def invalidate(self) -> None:
        """Results of requests sent so far are no longer wanted."""
        self.latest_request = self._new_id()
        self.applied_request = self.latest_request
        self.accept_when_ready = False

    @property
    def drawing(self) -> bool:
        """Something unsaved is on the canvas: a prompt, an edit, polygon vertices, a painting."""
        if self.draft is not None or self.editing is not None:
            return True
        if self.polygon is not None and self.polygon.vertices:
            return True
        return self.session is not None and not self.session.empty

    @property
    def awaiting_result(self) -> bool:
        return self.latest_request != self.applied_request

    @property
    def top(self) -> Step | None:
        return self.session.top if self.session is not None else None

    def apply_result(
        self, request_id: int, image: str, prompt: Prompt, prediction: Prediction, overlay: Any
    ) -> bool:
        """Attach a decode result if it is still wanted; count it as stale otherwise."""
        if request_id != self.latest_request or image != self.image or self.session is None:
            self.stale_results += 1
            return False
        if not self.session.apply(prompt, prediction, overlay):
            self.stale_results += 1
            return False
        self.applied_request = request_id
        return True

    def _outgoing(self, order: DecodeOrder) -> Outgoing:
        request_id = self._new_id()
        self.latest_request = request_id
        return Outgoing(request_id, order)

    # ------------------------------------------------------------------ correcting an annotation

    def begin_edit(self, annotation: Annotation, overlay: Any = None) -> None:
        """Put ``annotation`` back into the prompt loop (its prompts, its logits or its mask)."""
        if self.shape is None:
            return
        self.clear()
        self.session = PromptSession(self.shape)
        mask = annotation.mask
        logits = self._logits.get(annotation.id)
        if logits is None:
            logits = mask_to_low_res_logits(mask)
        prompts = annotation.prompts or PromptRecord()
        prompt = prompts.to_prompt()
        seed = Prediction(
            mask=mask,
            low_res_logits=logits[None].astype(np.float32),
            scores=np.array([annotation.score if annotation.score is not None else 1.0]),
            candidate=0,
            multimask=False,
            single_token=True,
            decoder_ms=0.0,
            total_ms=0.0,
        )
        self.session.seed(prompt.points, prompt.labels, prompt.box, seed, overlay)
        self.editing = annotation.id

    def remember_logits(self, annotation_id: int, logits: np.ndarray) -> None:
        self._logits[annotation_id] = np.asarray(logits, np.float32)

    def forget(self, annotation_id: int) -> None:
        self._logits.pop(annotation_id, None)

    # ------------------------------------------------------------------ tools

    def set_tool(self, tool: ToolName) -> None:
        self.tool = tool
        if tool == "polygon" and self.polygon is None and self.shape is not None:
            self.polygon = PolygonDraft(self.shape)

    def begin_polygon_edit(self, annotation: Annotation) -> bool:
        """Edit the vertices of a one-part polygon annotation; False if it is not one."""
        geometry = annotation.original
        vertices = polygon_vertices(geometry.segmentation) if geometry is not None else None
        if vertices is None or self.shape is None:
            return False
        self.clear()
        self.tool = "polygon"
        self.polygon = PolygonDraft(self.shape, vertices, annotation_id=annotation.id)
        return True

    def stroke(self, stroke: Stroke, selected: Annotation | None) -> MaskDraft | None:
        """Apply a brush/eraser stroke to the draft, starting one from the current mask, else
        from the selected annotation, else from an empty mask."""
        if self.shape is None:
            return None
        if self.draft is None:
            self.draft = self._start_draft(selected)
        apply_stroke(self.draft.mask, stroke)
        self.draft.strokes += 1
        return self.draft

    def _start_draft(self, selected: Annotation | None) -> MaskDraft:
        assert self.shape is not None
        top = self.top
        if top is not None and top.prediction is not None:
            draft = MaskDraft(
                top.prediction.mask.copy(),
                annotation_id=self.editing,
                prompts=PromptRecord.from_prompt(top.prompt) if len(top.points) else None,
                score=None,
            )
        elif selected is not None:
            draft = MaskDraft(selected.mask.copy(), annotation_id=selected.id)
        else:
            draft = MaskDraft(np.zeros(self.shape, bool))
        if self.session is not None:
            self.session.clear()
        self.editing = None
        self.invalidate()
        return draft

    # ------------------------------------------------------------------ accepting

    def accept_state(self) -> AcceptState:
        if self.polygon is not None and self.tool == "polygon":
            return "ready" if self.polygon.closable else "nothing"
        if self.draft is not None:
            return "ready"
        if self.session is None or self.session.empty:
            return "nothing"
        if self.awaiting_result or self.session.prediction is None:
            return "wait"
        return "ready"

    def accept_plan(self) -> AcceptPlan | None:
        """What Enter would save now (``None`` unless :meth:`accept_state` is ``"ready"``)."""
        if self.accept_state() != "ready":
            return None
        if self.polygon is not None and self.tool == "polygon":
            geometry = SourceGeometry(self.polygon.segmentation(), "polygon", drawn=True)
            return AcceptPlan(self.polygon.mask(), self.polygon.annotation_id, None, None, geometry)
        if self.draft is not None:
            draft = self.draft
            return AcceptPlan(draft.mask.copy(), draft.annotation_id, draft.prompts, draft.score)
        top = self.top
        assert top is not None and top.prediction is not None
        prompts = (
            PromptRecord.from_prompt(top.prompt) if len(top.points) or top.box is not None else None
        )
        return AcceptPlan(
            top.prediction.mask,
            self.editing,
            prompts,
            top.prediction.score,
            low_res=top.prediction.chosen_low_res,
        )

    def accepted(self, plan: AcceptPlan, annotation_id: int) -> None:
        """After the window saved ``plan`` as ``annotation_id``: remember its logits, reset."""
        if plan.low_res is not None:
            self.remember_logits(annotation_id, plan.low_res)
        else:
            self.forget(annotation_id)
        tool = self.tool
        self.clear()
        self.set_tool(tool)
