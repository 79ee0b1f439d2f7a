"""ONNX engine vs the PyTorch ``SAM2ImagePredictor``, end to end (pre- and post-processing).

Random-init SAM2.1 hiera-tiny (same seed for both sides), the three shared photos, and the
prompt kinds a user makes: one point, positive + negative points, a box, box + point, and a
second click that refines with the previous low-res logits as ``mask_input``.
"""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine.image_io import load_image
from sam2_annotator.engine.types import Prompt
from sam2_annotator.models.parity import PromptCase, iou, prompt_cases

torch = pytest.importorskip("torch", reason="parity needs the export extra (torch + sam2)")

MAX_LOGIT_DIFF = 1e-3
MIN_IOU = 0.995


@pytest.fixture(scope="module")
def reference():
    from tests.conftest import TEST_CONFIG, TEST_SEED
    from tests.reference import reference_predictor

    return reference_predictor(TEST_CONFIG, TEST_SEED)


def _reference_predict(predictor, case: PromptCase, multimask: bool, mask_input=None):
    kwargs = {}
    if case.points:
        kwargs["point_coords"] = np.array(case.points, np.float32)
        kwargs["point_labels"] = np.array(case.labels, np.int32)
    if case.box is not None:
        kwargs["box"] = np.array(case.box, np.float32)
    with torch.no_grad():
        logits, scores, low_res = predictor.predict(
            multimask_output=multimask, return_logits=True, mask_input=mask_input, **kwargs
        )
    return logits > 0, scores, low_res


#: (case, max |logit diff|, IoU, max |reference logit|) of every case; printed by the summary hook.
RESULTS: list[tuple[str, float, float, float]] = []


@pytest.mark.parametrize("image_name", ["truck", "groceries", "cars"])
def test_engine_matches_reference(image_name, shared_images, engine, reference) -> None:
    image = load_image(shared_images[image_name])
    height, width = image.shape[:2]
    reference.set_image(image)
    embedding = engine.encode(image)

    for case in prompt_cases(width, height):
        prompt = Prompt(
            points=np.array(case.points, np.float32).reshape(-1, 2),
            labels=np.array(case.labels, np.int64),
            box=None if case.box is None else np.array(case.box, np.float32),
        )
        ours = engine.decode(embedding, prompt)
        multimask = ours.multimask
        ref_masks, ref_scores, ref_low = _reference_predict(reference, case, multimask)
        if multimask:
            our_low = ours.low_res_logits[list(ours.multimask_candidates)]
            best = int(np.argmax(ref_scores))
            ref_mask = ref_masks[best]
            assert ours.candidate == ours.multimask_candidates[best]
        else:
            our_low = ours.chosen_low_res[None]
            ref_mask = ref_masks[0]
        diff = float(np.abs(our_low - ref_low).max())
        overlap = iou(ours.mask, ref_mask)
        RESULTS.append((f"{image_name}/{case.name}", diff, overlap, float(np.abs(ref_low).max())))
        assert diff <= MAX_LOGIT_DIFF, f"{case.name}: logits differ by {diff}"
        assert overlap >= MIN_IOU, f"{case.name}: mask IoU {overlap}"
        np.testing.assert_allclose(
            ours.scores[list(ours.multimask_candidates)] if multimask else [ours.score],
            ref_scores,
            atol=1e-4,
        )

        # Second click: a new positive point, refined with the previous low-res logits
        # (each side feeds back its own, as a user's session would).
        refine = case.refined(width, height)
        ref_prev = ref_low[int(np.argmax(ref_scores))][None] if multimask else ref_low
        prompt2 = Prompt(
            points=np.array(refine.points, np.float32).reshape(-1, 2),
            labels=np.array(refine.labels, np.int64),
            box=prompt.box,
            mask_input=ours.chosen_low_res,
        )
        ours2 = engine.decode(embedding, prompt2)
        ref_masks2, _, ref_low2 = _reference_predict(reference, refine, False, ref_prev)
        diff2 = float(np.abs(ours2.chosen_low_res - ref_low2[0]).max())
        overlap2 = iou(ours2.mask, ref_masks2[0])
        RESULTS.append(
            (f"{image_name}/{refine.name}", diff2, overlap2, float(np.abs(ref_low2).max()))
        )
        assert diff2 <= MAX_LOGIT_DIFF, f"{refine.name}: logits differ by {diff2}"
        assert overlap2 >= MIN_IOU, f"{refine.name}: mask IoU {overlap2}"
