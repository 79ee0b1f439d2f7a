"""The engine on the real (random-init) SAM2.1 hiera-tiny export."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from sam2_annotator.engine.predictor import (
    CancelToken,
    default_multimask,
    prompt_to_model_input,
    validate_prompt,
)
from sam2_annotator.engine.types import Prompt
from sam2_annotator.errors import OperationCancelled, PromptError


def _prompt(points=(), labels=(), box=None, mask_input=None) -> Prompt:
    return Prompt(
        points=np.array(points, np.float32).reshape(-1, 2),
        labels=np.array(labels, np.int64),
        box=None if box is None else np.array(box, np.float32),
        mask_input=mask_input,
    )


@pytest.fixture(scope="module")
def embedding(engine, small_image):
    return engine.encode(small_image)


@pytest.fixture(scope="module")
def small_image() -> np.ndarray:
    rng = np.random.default_rng(7)
    return rng.integers(0, 256, (90, 160, 3), dtype=np.uint8)


def test_embedding_has_the_contract_shapes(embedding, engine) -> None:
    assert embedding.image_embed.shape == (1, 256, 64, 64)
    assert embedding.high_res_feats_0.shape == (1, 32, 256, 256)
    assert embedding.high_res_feats_1.shape == (1, 64, 128, 128)
    assert embedding.orig_hw == (90, 160)
    timing = engine.last_encode_timing
    assert timing.run_ms > 0 and timing.preprocess_ms > 0


def test_one_point_gives_best_of_three(engine, embedding) -> None:
    result = engine.decode(embedding, _prompt([[80, 45]], [1]))
    assert result.multimask and result.single_token
    assert result.low_res_logits.shape == (4, 256, 256)
    assert result.multimask_candidates == (1, 2, 3)
    assert result.candidate == 1 + int(np.argmax(result.scores[1:]))
    assert result.mask.shape == (90, 160) and result.mask.dtype == bool
    assert np.abs(result.low_res_logits).max() <= 32.0


def test_forced_candidate_and_single_mask(engine, embedding) -> None:
    prompt = _prompt([[80, 45]], [1])
    raw = engine.decode_raw(embedding, prompt)
    for index in range(4):
        forced = engine.decode(embedding, prompt, candidate=index)
        assert forced.candidate == index
        expected = np.clip(raw.low_res_logits[index], -32, 32)
        np.testing.assert_allclose(forced.chosen_low_res, expected, atol=1e-5)
    single = engine.decode(embedding, prompt, multimask=False)
    assert not single.multimask
    with pytest.raises(PromptError, match="candidate 7 does not exist"):
        engine.decode(embedding, prompt, candidate=7)


def test_refinement_changes_the_decoder_input(engine, embedding) -> None:
    first = engine.decode(embedding, _prompt([[80, 45]], [1]))
    prompt = _prompt([[80, 45], [20, 20]], [1, 0])
    without = engine.decode_raw(embedding, prompt)
    with_mask = engine.decode_raw(
        embedding, _prompt([[80, 45], [20, 20]], [1, 0], mask_input=first.chosen_low_res)
    )
    assert not np.allclose(without.low_res_logits, with_mask.low_res_logits)


def test_box_is_two_corner_points_first() -> None:
    coords, labels = prompt_to_model_input(
        _prompt([[50, 50]], [0], box=[10, 20, 100, 80]), (100, 200)
    )
    assert labels.tolist() == [[2, 3, 0]]
    np.testing.assert_allclose(coords[0, 0], [10 / 200 * 1024, 20 / 100 * 1024])
    np.testing.assert_allclose(coords[0, 2], [50 / 200 * 1024, 50 / 100 * 1024])


@pytest.mark.parametrize(
    ("prompt", "message"),
    [
        (_prompt(), "at least one point or a box"),
        (_prompt([[10, 10]], [2]), "must be 1 .positive. or 0"),
        (_prompt([[170, 10]], [1]), r"outside the 160x90 image"),
        (_prompt([[-1, 10]], [1]), "outside"),
        (_prompt([[np.nan, 10]], [1]), "finite"),
        (_prompt(box=[50, 10, 40, 20]), "x0 < x1"),
        (_prompt(box=[0, 0, 161, 20]), "outside"),
        (Prompt(points=np.zeros((2, 2), np.float32), labels=np.ones(1)), "2 points but 1 labels"),
    ],
)
def test_invalid_prompts_are_user_errors(prompt, message) -> None:
    with pytest.raises(PromptError, match=message):
        validate_prompt(prompt, (90, 160))


def test_bad_mask_input_is_a_user_error(engine, embedding) -> None:
    with pytest.raises(PromptError, match="256x256"):
        engine.decode(embedding, _prompt([[5, 5]], [1], mask_input=np.zeros((64, 64))))


def test_default_multimask_rule() -> None:
    assert default_multimask(_prompt([[1, 1]], [1]))
    assert not default_multimask(_prompt([[1, 1], [2, 2]], [1, 0]))
    assert not default_multimask(_prompt([[1, 1]], [1], box=[0, 0, 5, 5]))
    assert not default_multimask(_prompt(box=[0, 0, 5, 5]))


def test_encode_can_be_cancelled_from_another_thread(engine, small_image, monkeypatch) -> None:
    token = CancelToken()
    outcome: list[BaseException | None] = []
    session = engine.encoder.session
    entered = threading.Event()
    real_run = session.run

    def run(*args, **kwargs):
        entered.set()  # the encoder's session.run has started
        return real_run(*args, **kwargs)

    monkeypatch.setattr(session, "run", run)

    def work() -> None:
        try:
            engine.encode(small_image, cancel=token)
            outcome.append(None)
        except OperationCancelled as exc:
            outcome.append(exc)

    thread = threading.Thread(target=work)
    thread.start()
    assert entered.wait(60)  # cancel while the encoder runs, whatever the machine's speed
    token.cancel()
    thread.join(timeout=30)
    assert not thread.is_alive()
    assert isinstance(outcome[0], OperationCancelled)
    # The engine stays usable after a cancellation.
    assert engine.encode(small_image).image_embed.shape == (1, 256, 64, 64)


def test_display_name_says_random_init(engine) -> None:
    assert "random-init" in engine.display_name
    assert engine.provider == "cpu"
    assert len(engine.model_key) == 64


def test_warm_up_runs_the_decoder_once(engine) -> None:
    assert engine.warm_up() > 0.0


def test_a_decoder_that_loads_but_cannot_run_fails_the_warm_up_with_a_model_error(
    engine, monkeypatch
) -> None:
    """The window warms the decoder up when it loads a model: a graph that cannot run is then
    reported as a model error (one clear message), not as an internal error on the first click."""
    import onnxruntime as ort

    from sam2_annotator.errors import ModelError

    def broken(*_args, **_kwargs):
        raise ort.capi.onnxruntime_pybind11_state.Fail("Non-zero status code: bad node")

    monkeypatch.setattr(engine, "decode_raw", broken)
    with pytest.raises(ModelError, match=r"the decoder decoder\.onnx cannot run: .*bad node"):
        engine.warm_up()
