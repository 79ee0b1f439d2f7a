"""The prompt loop's state machine (no Qt, no model)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.app.prompt import PromptSession, candidate_cycle
from sam2_annotator.engine.predictor import Prediction

SHAPE = (100, 150)


def fake_prediction(seed: int, candidate: int = 1, count: int = 4) -> Prediction:
    rng = np.random.default_rng(seed)
    return Prediction(
        mask=rng.random(SHAPE) > 0.5,
        low_res_logits=rng.normal(size=(count, 256, 256)).astype(np.float32),
        scores=rng.random(count).astype(np.float32),
        candidate=candidate,
        multimask=True,
        single_token=count == 4,
        decoder_ms=1.0,
        total_ms=2.0,
        multimask_candidates=(1, 2, 3) if count == 4 else tuple(range(count)),
    )


def decode(session: PromptSession, order, seed: int, candidate: int = 1) -> Prediction:
    prediction = fake_prediction(seed, candidate)
    assert session.apply(order.prompt, prediction, object())
    return prediction


def test_each_click_refines_the_last_mask() -> None:
    session = PromptSession(SHAPE)
    first = session.add_point(10, 20, positive=True)
    assert first.prompt.mask_input is None
    assert first.prompt.points.tolist() == [[10, 20]] and first.prompt.labels.tolist() == [1]
    p1 = decode(session, first, seed=1)
    second = session.add_point(30, 40, positive=False)
    assert second.prompt.labels.tolist() == [1, 0]
    assert np.array_equal(second.prompt.mask_input, p1.chosen_low_res)


def test_mask_input_comes_from_the_newest_decoded_step() -> None:
    """Clicks faster than the decoder: the undecoded steps are skipped for mask_input."""
    session = PromptSession(SHAPE)
    p1 = decode(session, session.add_point(1, 1, True), seed=1)
    session.add_point(2, 2, True)  # its result is never applied (replaced by the next click)
    third = session.add_point(3, 3, True)
    assert np.array_equal(third.prompt.mask_input, p1.chosen_low_res)
    assert len(third.prompt.points) == 3


def test_undo_restores_the_previous_mask_without_a_decode() -> None:
    session = PromptSession(SHAPE)
    p1 = decode(session, session.add_point(1, 1, True), seed=1)
    decode(session, session.add_point(2, 2, False), seed=2)
    assert session.undo() is None
    assert session.prediction is p1
    assert session.undo() is None and session.empty
    assert session.undo() is None


def test_undo_to_an_undecoded_step_asks_for_a_decode() -> None:
    session = PromptSession(SHAPE)
    p1 = decode(session, session.add_point(1, 1, True), seed=1)
    session.add_point(2, 2, True)
    session.add_point(3, 3, True)
    order = session.undo()
    assert order is not None
    assert order.prompt.points.tolist() == [[1, 1], [2, 2]]
    assert np.array_equal(order.prompt.mask_input, p1.chosen_low_res)


def test_a_stale_result_is_not_attached_to_another_prompt() -> None:
    session = PromptSession(SHAPE)
    first = session.add_point(1, 1, True)
    session.add_point(2, 2, True)
    prediction = fake_prediction(3)
    assert not session.apply(first.prompt, prediction, object())
    assert session.prediction is None


def test_box_is_clamped_ordered_and_replaced() -> None:
    session = PromptSession(SHAPE)
    session.add_point(5, 5, True)
    order = session.set_box(120, 90, -10, 10)
    assert order.prompt.box.tolist() == [0, 10, 120, 90]
    order = session.set_box(10, 10, 200, 300)
    assert order.prompt.box.tolist() == [10, 10, 150, 100]
    assert len(order.prompt.points) == 1  # the point stays
    back = session.undo()  # the previous box was never decoded: decode it again
    assert back is not None and back.prompt.box.tolist() == [0, 10, 120, 90]


def test_tab_cycles_the_multimask_candidates() -> None:
    session = PromptSession(SHAPE)
    first = session.add_point(1, 1, True)
    decode(session, first, seed=1, candidate=2)
    for expected in (3, 1, 2):
        order = session.cycle_candidate()
        assert order is not None and order.candidate == expected
        assert order.prompt is session.top.sent  # the same prompt, another candidate
        decode(session, order, seed=5, candidate=expected)


def test_cycle_includes_the_single_mask_token_when_shown() -> None:
    prediction = fake_prediction(1, candidate=0)
    assert candidate_cycle(prediction) == [0, 1, 2, 3]
    assert candidate_cycle(fake_prediction(1, candidate=2)) == [1, 2, 3]


def test_nothing_to_cycle_without_a_mask() -> None:
    session = PromptSession(SHAPE)
    assert session.cycle_candidate() is None
    session.add_point(1, 1, True)
    assert session.cycle_candidate() is None


@pytest.mark.parametrize(("x", "y", "inside"), [(0, 0, True), (150, 100, True), (151, 5, False)])
def test_contains(x: float, y: float, inside: bool) -> None:
    assert PromptSession(SHAPE).contains(x, y) is inside
