"""The engine: encode an image once, decode every click.

:class:`Sam2Engine` owns the two ONNX Runtime sessions and the model's contract. It is not
thread-safe by itself: the GUI gives it to one worker thread; :meth:`Sam2Engine.encode` can be
cancelled from any other thread through a :class:`CancelToken`.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from functools import cached_property

import numpy as np
import onnxruntime as ort

from sam2_annotator.engine import postprocess
from sam2_annotator.engine.contracts import ModelContract, detect_contract, signatures_from_sessions
from sam2_annotator.engine.manifest import sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.preprocess import preprocess, transform_coords
from sam2_annotator.engine.providers import LoadedSession, SessionConfig, create_session
from sam2_annotator.engine.types import (
    INPUT_SIZE,
    LABEL_BOX_BOTTOM_RIGHT,
    LABEL_BOX_TOP_LEFT,
    LOW_RES,
    DecoderOutput,
    Embedding,
    Prompt,
)
from sam2_annotator.errors import ModelError, OperationCancelled, PromptError

log = logging.getLogger(__name__)


class CancelToken:
    """Cancels a running :meth:`Sam2Engine.encode` from another thread.

    Wraps ONNX Runtime's ``RunOptions.terminate``: the running ``session.run`` stops at its next
    check and raises, which :meth:`Sam2Engine.encode` turns into :class:`OperationCancelled`.
    """

    def __init__(self) -> None:
        self.run_options = ort.RunOptions()

    def cancel(self) -> None:
        self.run_options.terminate = True

    @property
    def cancelled(self) -> bool:
        return bool(self.run_options.terminate)


@dataclass(frozen=True)
class Prediction:
    """One decode's result.

    ``low_res_logits`` holds every candidate the model returned (``(K, 256, 256)``, clamped to
    +-32 as the reference returns them); ``candidate`` indexes the one chosen, whose
    original-size mask is ``mask``. Feed ``low_res_logits[candidate]`` back as the next
    ``Prompt.mask_input`` to refine.
    """

    mask: np.ndarray
    low_res_logits: np.ndarray
    scores: np.ndarray
    candidate: int
    multimask: bool
    single_token: bool
    decoder_ms: float
    total_ms: float
    multimask_candidates: tuple[int, ...] = field(default=())

    @property
    def score(self) -> float:
        return float(self.scores[self.candidate])

    @property
    def chosen_low_res(self) -> np.ndarray:
        return self.low_res_logits[self.candidate]


@dataclass(frozen=True)
class EncodeTiming:
    preprocess_ms: float
    run_ms: float


#: What ``session.run`` raises when a graph cannot run (bad weights, an unsupported node).
_ORT_RUN_ERRORS = (
    ort.capi.onnxruntime_pybind11_state.Fail,
    ort.capi.onnxruntime_pybind11_state.RuntimeException,
    ort.capi.onnxruntime_pybind11_state.InvalidArgument,
)


class Sam2Engine:
    """ONNX Runtime sessions + contract for one SAM2 model."""

    def __init__(self, files: ModelFiles, config: SessionConfig | None = None) -> None:
        config = config or SessionConfig()
        self.files = files
        self.encoder: LoadedSession = create_session(files.encoder, config)
        self.decoder: LoadedSession = create_session(files.decoder, config)
        self.contract: ModelContract = detect_contract(
            *signatures_from_sessions(self.encoder.session, self.decoder.session)
        )
        self.last_encode_timing = EncodeTiming(0.0, 0.0)
        log.info(
            "loaded %s (%s contract) on %s/%s",
            files.display_name,
            self.contract.name,
            self.encoder.provider,
            self.decoder.provider,
        )

    @property
    def display_name(self) -> str:
        return self.files.display_name

    @cached_property
    def model_key(self) -> str:
        """sha256 of the encoder file: embeddings are only valid for the encoder that made them."""
        manifest = self.files.manifest
        entry = manifest.files.get(self.files.encoder.name) if manifest else None
        return entry.sha256 if entry else sha256_file(self.files.encoder)

    @property
    def provider(self) -> str:
        """The provider the sessions really run on (``encoder/decoder`` when they differ)."""
        enc, dec = self.encoder.provider, self.decoder.provider
        return enc if enc == dec else f"{enc}/{dec}"

    # -- encoder -----------------------------------------------------------------------------

    def encode(self, image: np.ndarray, cancel: CancelToken | None = None) -> Embedding:
        """Embed an RGB uint8 image (H, W, 3). Raises OperationCancelled if cancelled."""
        start = time.perf_counter()
        tensor = preprocess(image)
        prep_done = time.perf_counter()
        if cancel is not None and cancel.cancelled:
            raise OperationCancelled("encoding cancelled")
        outputs = self._run_encoder(tensor, cancel)
        done = time.perf_counter()
        self.last_encode_timing = EncodeTiming(
            (prep_done - start) * 1000.0, (done - prep_done) * 1000.0
        )
        orig_hw = (int(image.shape[0]), int(image.shape[1]))
        return self.contract.parse_encoder(outputs, orig_hw)

    def _run_encoder(self, tensor: np.ndarray, cancel: CancelToken | None) -> dict[str, np.ndarray]:
        session = self.encoder.session
        names = [o.name for o in session.get_outputs()]
        feed = {self.contract.encoder_input_name: tensor}
        try:
            values = session.run(names, feed, cancel.run_options if cancel else None)
        except _ORT_RUN_ERRORS as exc:
            if cancel is not None and cancel.cancelled:
                raise OperationCancelled("encoding cancelled") from exc
            raise ModelError(f"the encoder failed: {exc}") from exc
        return dict(zip(names, values, strict=True))

    # -- decoder -----------------------------------------------------------------------------

    def decode_raw(self, embedding: Embedding, prompt: Prompt) -> DecoderOutput:
        """Run the decoder for ``prompt`` and return every candidate (no selection)."""
        feed = decoder_feed(self.contract, embedding, prompt)
        session = self.decoder.session
        names = [o.name for o in session.get_outputs()]
        values = session.run(names, feed)
        return self.contract.parse_decoder(dict(zip(names, values, strict=True)))

    def warm_up(self) -> float:
        """Run the decoder once on a blank embedding and a one-point prompt; returns its ms.

        A fresh ONNX Runtime session's first run allocates and plans its buffers: measured, the
        first decode after loading took about twice a warm one (78 vs 40 ms on 2 Zen 5 cores),
        which the window would otherwise spend on the user's first click after opening.
        """
        start = time.perf_counter()
        centre = np.full((1, 2), INPUT_SIZE / 2, np.float32)
        try:
            blank = Embedding.zeros((INPUT_SIZE, INPUT_SIZE))
            self.decode_raw(blank, Prompt(centre, np.array([1], np.int64)))
        except _ORT_RUN_ERRORS as exc:  # loads, but cannot run: say so at load time
            raise ModelError(f"the decoder {self.files.decoder.name} cannot run: {exc}") from exc
        return (time.perf_counter() - start) * 1000.0

    def decode(
        self,
        embedding: Embedding,
        prompt: Prompt,
        multimask: bool | None = None,
        candidate: int | None = None,
        max_hole_area: int = 0,
        max_sprinkle_area: int = 0,
    ) -> Prediction:
        """Decode a prompt into a mask at the image's original size.

        ``multimask=None`` follows SAM2's notebooks: exactly one point and no box -> multimask
        (highest predicted IoU); any other prompt -> single-mask output (stability rule).
        ``candidate`` forces a candidate index instead.
        """
        start = time.perf_counter()
        output = self.decode_raw(embedding, prompt)
        decoded = time.perf_counter()
        if multimask is None:
            multimask = default_multimask(prompt)
        chosen = select_candidate(output, multimask, candidate)
        cleanup = max_hole_area > 0 or max_sprinkle_area > 0
        if output.upsampled_logits is not None and not cleanup:
            mask = output.upsampled_logits[chosen] > postprocess.MASK_THRESHOLD
        else:
            logits = output.low_res_logits[chosen]
            if cleanup:
                logits = postprocess.fill_small_regions(logits, max_hole_area, max_sprinkle_area)
            mask = postprocess.logits_to_mask(logits, embedding.orig_hw)
        done = time.perf_counter()
        return Prediction(
            mask=mask,
            low_res_logits=postprocess.clamp_logits(output.low_res_logits),
            scores=np.asarray(output.iou_predictions, np.float32),
            candidate=chosen,
            multimask=multimask,
            single_token=output.single_token,
            decoder_ms=(decoded - start) * 1000.0,
            total_ms=(done - start) * 1000.0,
            multimask_candidates=tuple(postprocess.multimask_indices(output)),
        )


def default_multimask(prompt: Prompt) -> bool:
    """SAM2's notebooks: multimask for a single point without a box (ambiguous), else not."""
    return len(prompt.points) == 1 and prompt.box is None


def select_candidate(output: DecoderOutput, multimask: bool, candidate: int | None) -> int:
    count = len(output.iou_predictions)
    if candidate is not None:
        if not 0 <= candidate < count:
            raise PromptError(
                f"candidate {candidate} does not exist; this model returns {count}"
                f" candidates (0..{count - 1})"
            )
        return candidate
    return postprocess.best_multimask(output) if multimask else postprocess.choose_single(output)


def validate_prompt(prompt: Prompt, orig_hw: tuple[int, int]) -> None:
    """Raise :class:`PromptError` for prompts that cannot belong to this image."""
    height, width = orig_hw
    if prompt.is_empty:
        raise PromptError("add at least one point or a box")
    points = np.asarray(prompt.points, np.float64).reshape(-1, 2)
    labels = np.asarray(prompt.labels).reshape(-1)
    if len(points) != len(labels):
        raise PromptError(f"{len(points)} points but {len(labels)} labels")
    if not np.isin(labels, (0, 1)).all():
        raise PromptError("point labels must be 1 (positive) or 0 (negative)")
    if not np.isfinite(points).all():
        raise PromptError("point coordinates must be finite numbers")
    outside = (
        (points[:, 0] < 0) | (points[:, 0] > width) | (points[:, 1] < 0) | (points[:, 1] > height)
    )
    if outside.any():
        x, y = points[np.flatnonzero(outside)[0]]
        raise PromptError(f"point ({x:g}, {y:g}) is outside the {width}x{height} image")
    if prompt.box is not None:
        _validate_box(np.asarray(prompt.box, np.float64).reshape(-1), width, height)


def _validate_box(box: np.ndarray, width: int, height: int) -> None:
    if box.shape != (4,) or not np.isfinite(box).all():
        raise PromptError("a box is four numbers x0,y0,x1,y1")
    x0, y0, x1, y1 = box
    if x1 <= x0 or y1 <= y0:
        raise PromptError(f"box ({x0:g},{y0:g},{x1:g},{y1:g}) must have x0 < x1 and y0 < y1")
    if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
        raise PromptError(
            f"box ({x0:g},{y0:g},{x1:g},{y1:g}) is outside the {width}x{height} image"
        )


def prompt_to_model_input(
    prompt: Prompt, orig_hw: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray]:
    """Coordinates (1, N, 2) in the model's input space and float labels (1, N).

    Box corners come first (labels 2 and 3), then the points, as the reference concatenates
    them. No padding point: the contract adds it where its graph does not.
    """
    validate_prompt(prompt, orig_hw)
    coords = [np.asarray(prompt.points, np.float32).reshape(-1, 2)]
    labels = [np.asarray(prompt.labels, np.float32).reshape(-1)]
    if prompt.box is not None:
        coords.insert(0, np.asarray(prompt.box, np.float32).reshape(2, 2))
        labels.insert(0, np.array([LABEL_BOX_TOP_LEFT, LABEL_BOX_BOTTOM_RIGHT], np.float32))
    all_coords = transform_coords(np.concatenate(coords), orig_hw, INPUT_SIZE)
    return all_coords[None], np.concatenate(labels)[None]


def decoder_feed(
    contract: ModelContract, embedding: Embedding, prompt: Prompt
) -> dict[str, np.ndarray]:
    """The decoder's inputs for ``prompt`` (also what the PyTorch reference is fed, so that a
    comparison differs in the runtime only)."""
    coords, labels = prompt_to_model_input(prompt, embedding.orig_hw)
    mask_input, has_mask = _mask_input(prompt.mask_input)
    return contract.decoder_feed(embedding, coords, labels, mask_input, has_mask)


def _mask_input(mask_input: np.ndarray | None) -> tuple[np.ndarray, bool]:
    if mask_input is None:
        return np.zeros((1, 1, LOW_RES, LOW_RES), np.float32), False
    array = np.asarray(mask_input, np.float32)
    if array.size != LOW_RES * LOW_RES:
        raise PromptError(
            f"mask input must be the previous {LOW_RES}x{LOW_RES} low-resolution logits, "
            f"got shape {array.shape}"
        )
    if not np.isfinite(array).all():
        raise PromptError("mask input contains NaN or infinite values")
    return array.reshape(1, 1, LOW_RES, LOW_RES), True
