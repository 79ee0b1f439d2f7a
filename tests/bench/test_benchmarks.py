"""pytest-benchmark cases for the hot paths (run once as plain tests under --benchmark-disable).

Time them with ``pytest tests/bench/test_benchmarks.py --benchmark-enable``. No timing is
asserted; the assertions check that each benchmarked call did its work.
"""

from __future__ import annotations

import numpy as np

from sam2_annotator.engine.predictor import prompt_to_model_input
from sam2_annotator.engine.preprocess import preprocess
from sam2_annotator.engine.types import LOW_RES, Prompt


def _prompt() -> Prompt:
    return Prompt(points=np.array([[400.0, 260.0]], np.float32), labels=np.ones(1, np.int64))


def test_decoder_engine_path(benchmark, engine, groceries_embedding):
    """Prompt preparation + session.run + candidate choice + upsample + threshold."""
    result = benchmark(engine.decode, groceries_embedding, _prompt())
    assert result.mask.shape == groceries_embedding.orig_hw
    assert result.mask.dtype == bool


def test_decoder_bare_session_run(benchmark, engine, groceries_embedding):
    """The decoder's session.run alone, on a pre-built feed (the engine's lower bound)."""
    coords, labels = prompt_to_model_input(_prompt(), groceries_embedding.orig_hw)
    no_mask = np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
    feed = engine.contract.decoder_feed(groceries_embedding, coords, labels, no_mask, False)
    session = engine.decoder.session
    names = [o.name for o in session.get_outputs()]
    masks, scores = benchmark(session.run, names, feed)
    assert masks.shape[-2:] == (LOW_RES, LOW_RES) and scores.shape[-1] == masks.shape[1]


def test_encoder_preprocess(benchmark, groceries):
    """Antialiased resize to 1024x1024 + normalisation of an 800x534 photo."""
    tensor = benchmark(preprocess, groceries)
    assert tensor.shape == (1, 3, 1024, 1024) and tensor.dtype == np.float32
    assert np.isfinite(tensor).all()
