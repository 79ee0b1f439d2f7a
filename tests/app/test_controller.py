"""The Qt-free prompt/edit controller: request ids and stale results, correcting an annotation,
polygon and brush drafts, and what Enter saves."""

from __future__ import annotations

import itertools
from dataclasses import replace

import numpy as np
import pytest

from sam2_annotator.annotations.model import Annotation, PromptRecord, SourceGeometry
from sam2_annotator.app.controller import PromptController
from sam2_annotator.app.tools import Stroke, mask_to_low_res_logits
from sam2_annotator.engine.predictor import Prediction

SHAPE = (60, 80)


def _prediction(mask: np.ndarray, logit: float = 3.0) -> Prediction:
    return Prediction(
        mask=mask,
        low_res_logits=np.full((1, 256, 256), logit, np.float32),
        scores=np.array([0.9]),
        candidate=0,
        multimask=False,
        single_token=True,
        decoder_ms=1.0,
        total_ms=2.0,
    )


@pytest.fixture
def controller() -> PromptController:
    ids = itertools.count(1)
    control = PromptController(lambda: next(ids))
    control.set_image("a.png", SHAPE)
    return control


def _square() -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[10:30, 20:50] = True
    return mask


def test_latest_request_wins_and_stale_results_are_counted(controller) -> None:
    first = controller.click(10, 10, True)
    second = controller.click(20, 20, False)
    assert first is not None and second is not None
    assert second.request_id > first.request_id and controller.awaiting_result
    prediction = _prediction(_square())
    assert not controller.apply_result(
        first.request_id, "a.png", first.order.prompt, prediction, None
    )
    assert not controller.apply_result(
        second.request_id, "b.png", second.order.prompt, prediction, None
    )
    assert controller.stale_results == 2
    assert controller.accept_state() == "wait"
    assert controller.apply_result(
        second.request_id, "a.png", second.order.prompt, prediction, None
    )
    assert controller.accept_state() == "ready" and not controller.awaiting_result
    plan = controller.accept_plan()
    assert plan.annotation_id is None and plan.prompts.labels == (1, 0)
    assert np.array_equal(plan.low_res, prediction.chosen_low_res)
    assert controller.click(500, 500, True) is None  # outside the image


def test_editing_an_annotation_seeds_its_prompt_and_logits(controller) -> None:
    mask = _square()
    record = PromptRecord(points=((30.0, 20.0),), labels=(1,))
    annotation = Annotation.from_mask(7, 1, 1, mask, prompts=record, score=0.8)
    controller.remember_logits(7, np.full((256, 256), 5.0, np.float32))
    controller.begin_edit(annotation)
    assert controller.editing == 7 and controller.accept_state() == "ready"
    outgoing = controller.click(40, 25, True)
    prompt = outgoing.order.prompt
    assert prompt.points.tolist() == [[30.0, 20.0], [40.0, 25.0]]
    assert np.all(prompt.mask_input == 5.0)  # the remembered logits refine
    assert controller.remove_last_point() is None  # back to the seed...
    assert controller.remove_last_point() is None and len(controller.session.steps) == 1  # kept
    # without remembered logits the mask itself is the mask prompt
    controller.forget(7)
    controller.begin_edit(annotation)
    prompt = controller.click(40, 25, False).order.prompt
    assert np.array_equal(prompt.mask_input, mask_to_low_res_logits(mask))
    plan_state = controller.accept_state()
    assert plan_state == "wait"
    controller.clear()
    assert controller.editing is None and controller.accept_plan() is None


def test_mask_to_low_res_logits_matches_the_mask() -> None:
    mask = np.zeros((100, 200), bool)
    mask[:, :100] = True
    logits = mask_to_low_res_logits(mask)
    assert logits.shape == (256, 256) and logits.dtype == np.float32
    assert (logits[:, :127] > 0).all() and (logits[:, 129:] < 0).all()


def test_polygon_plan_and_edit(controller) -> None:
    controller.set_tool("polygon")
    assert controller.accept_state() == "nothing"
    for x, y in ((10, 10), (60, 10), (60, 50)):
        controller.polygon.add(x, y)
    plan = controller.accept_plan()
    assert plan.geometry == SourceGeometry(
        [[10.0, 10.0, 60.0, 10.0, 60.0, 50.0]], "polygon", drawn=True
    )
    assert plan.mask.sum() > 500 and plan.annotation_id is None
    annotation = Annotation.from_mask(3, 1, 1, plan.mask)
    assert not controller.begin_polygon_edit(annotation)  # no polygon geometry: not editable
    assert controller.begin_polygon_edit(replace(annotation, original=plan.geometry))
    assert controller.polygon.annotation_id == 3 and len(controller.polygon.vertices) == 3
    index = controller.polygon.insert_on_edge(35, 10.5, radius=2)
    assert index == 1 and len(controller.polygon.vertices) == 4


def test_brush_strokes_start_from_the_current_mask_or_the_selection(controller) -> None:
    base = _square()
    selected = Annotation.from_mask(9, 1, 1, base)
    draft = controller.stroke(Stroke(((70.0, 50.0),), 3), selected)
    assert draft.annotation_id == 9 and draft.mask[50, 70] and draft.mask[15, 25]
    controller.stroke(Stroke(((25.0, 15.0),), 2, add=False), selected)
    assert not draft.mask[15, 25] and draft.strokes == 2
    plan = controller.accept_plan()
    assert plan.annotation_id == 9 and np.array_equal(plan.mask, draft.mask)
    assert base[15, 25]  # the annotation's own mask was copied, not painted
