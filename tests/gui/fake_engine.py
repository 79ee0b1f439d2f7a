"""An event-gated engine for the worker's scheduling tests (``InferenceWorker(engine_factory=)``).

Every encode blocks on a :class:`threading.Event` of its image until the test calls
:meth:`FakeEngine.release`; while blocked it honours the :class:`CancelToken` as the real engine
does (raises :class:`OperationCancelled`). Decodes pass a shared gate (open unless the test holds
it) and return :func:`fake_mask` of the prompt. Every call is recorded, so a test can say what ran
and in which order instead of sleeping and hoping.

Two modes:

* ``FakeEngine()`` - no model at all: a tiny embedding, a disc mask. Fast, no ONNX files needed.
* ``FakeEngine(opener=open_engine)`` - wraps the real engine the factory opens: encode runs the
  real encoder and then waits on the gate, decode is the real decoder's. For tests that need the
  real model's masks (and its CPU load) but a deterministic order.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from sam2_annotator.engine.image_io import image_hash, load_image
from sam2_annotator.engine.predictor import (
    CancelToken,
    Prediction,
    default_multimask,
)
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.engine.types import LOW_RES, Embedding, Prompt
from sam2_annotator.errors import ModelError, OperationCancelled

#: Radius of the disc :func:`fake_mask` draws around the last point (candidate 0).
RADIUS = 40
#: A gate nobody opens fails the call after this long instead of hanging the test run.
GATE_TIMEOUT_S = 60.0
_POLL_S = 0.01  # how soon a held encode notices its cancel token


def fake_mask(prompt: Prompt, hw: tuple[int, int], candidate: int = 0) -> np.ndarray:
    """The fake decoder's answer: a disc around the last point (radius grows with the candidate),
    together with the box when there is one."""
    height, width = hw
    mask = np.zeros((height, width), bool)
    if len(prompt.points):
        x, y = (float(v) for v in np.asarray(prompt.points)[-1])
        radius = RADIUS + 10 * candidate
        yy, xx = np.ogrid[:height, :width]
        mask |= (xx - x) ** 2 + (yy - y) ** 2 <= radius**2
    if prompt.box is not None:
        x0, y0, x1, y1 = (round(float(v)) for v in prompt.box)
        mask[max(0, y0) : max(0, y1) + 1, max(0, x0) : max(0, x1) + 1] = True
    return mask


@dataclass(frozen=True)
class FakeFiles:
    is_random_init: bool = True


@dataclass(frozen=True)
class FakeEmbedding(Embedding):
    """An embedding that remembers which image it came from (by name)."""

    image: str = ""


@dataclass(frozen=True)
class DecodeCall:
    image: str
    prompt: Prompt
    multimask: bool | None
    candidate: int | None


class FakeEngine:
    """See the module docstring. Pass :meth:`factory` as the worker's ``engine_factory``.

    Images are named by path once the test mentions them (:meth:`watch`, :meth:`release`), else
    by their content hash. Records (read them from the test thread):

    * ``loads`` - the folders the factory was called with;
    * ``encodes`` / ``cancelled`` / ``encoded`` - images whose encode started / was cancelled /
      returned, in order;
    * ``decodes`` - every :class:`DecodeCall`, recorded when the decode starts (before its gate);
    * ``log`` - all of these (and ``"failed"``, see :meth:`fail`) as ``(kind, image)`` in the
      order they happened, across both lanes.
    """

    def __init__(
        self,
        opener: Callable[[Path, SessionConfig], Any] | None = None,
        *,
        provider: str = "fake",
    ) -> None:
        self._opener = opener
        self.inner: Any = None
        self._provider = provider
        self._lock = threading.Lock()
        self._names: dict[str, str] = {}  # image hash -> path
        self._hashes: dict[str, str] = {}  # path -> image hash
        self._gates: dict[str, threading.Event] = {}
        self._embedded: dict[int, str] = {}  # id of a wrapped engine's embedding -> image
        self._decode_gate = threading.Event()
        self._decode_gate.set()
        self._open_all = False
        self._failing: set[str] = set()  # image hashes whose encode raises ModelError
        self.loads: list[Path] = []
        self.encodes: list[str] = []
        self.cancelled: list[str] = []
        self.encoded: list[str] = []
        self.decodes: list[DecodeCall] = []
        self.log: list[tuple[str, str]] = []  # (encode|cancelled|encoded|failed|decode, image)

    # ------------------------------------------------------------------ the engine factory

    def factory(self, folder: Path, config: SessionConfig) -> FakeEngine:
        with self._lock:
            self.loads.append(Path(folder))
        if self._opener is not None:
            self.inner = self._opener(folder, config)
        return self

    # ------------------------------------------------------------------ what the worker reads

    @property
    def files(self):
        return self.inner.files if self.inner is not None else FakeFiles()

    @property
    def display_name(self) -> str:
        return self.inner.display_name if self.inner is not None else "fake engine [random-init]"

    @property
    def model_key(self) -> str:
        return self.inner.model_key if self.inner is not None else "fake-model"

    @property
    def provider(self) -> str:
        return self.inner.provider if self.inner is not None else self._provider

    # ------------------------------------------------------------------ gates (test thread)

    def watch(self, *paths: str | Path) -> None:
        """Name these images in the records (their encode gates start closed)."""
        for path in paths:
            self._gate_of(path)

    def release(self, *paths: str | Path) -> None:
        """Let the encodes of these images finish (now and any later one)."""
        for path in paths:
            self._gate_of(path).set()

    def release_all(self) -> None:
        """Open every gate, present and future (teardown)."""
        with self._lock:
            self._open_all = True
            for gate in self._gates.values():
                gate.set()
        self._decode_gate.set()

    def fail(self, path: str | Path, failing: bool = True) -> None:
        """Make the encodes of ``path`` raise :class:`ModelError` (a user error) once released."""
        self._gate_of(path)
        with self._lock:
            key = self._hashes[str(path)]
            if failing:
                self._failing.add(key)
            else:
                self._failing.discard(key)

    def hold_decodes(self) -> None:
        """Decodes started from now on wait until :meth:`release_decodes`."""
        self._decode_gate.clear()

    def release_decodes(self) -> None:
        self._decode_gate.set()

    def encode_count(self, path: str | Path) -> int:
        with self._lock:
            return self.encodes.count(str(path))

    def decoded_images(self) -> list[str]:
        with self._lock:
            return [call.image for call in self.decodes]

    def _gate_of(self, path: str | Path) -> threading.Event:
        path = str(path)
        with self._lock:
            key = self._hashes.get(path)
        if key is None:
            key = image_hash(load_image(path))
        with self._lock:
            self._hashes[path] = key
            self._names[key] = path
            return self._gate_locked(key)

    def _gate_locked(self, key: str) -> threading.Event:
        gate = self._gates.get(key)
        if gate is None:
            gate = self._gates[key] = threading.Event()
            if self._open_all:
                gate.set()
        return gate

    # ------------------------------------------------------------------ engine calls (workers)

    def encode(self, image: np.ndarray, cancel: CancelToken | None = None) -> Embedding:
        key = image_hash(image)
        with self._lock:
            name = self._names.get(key, key)
            gate = self._gate_locked(key)
            self.encodes.append(name)
            self.log.append(("encode", name))
        try:
            real = self.inner.encode(image, cancel) if self.inner is not None else None
            self._wait(gate, cancel)
        except OperationCancelled:
            with self._lock:
                self.cancelled.append(name)
                self.log.append(("cancelled", name))
            raise
        with self._lock:
            if key in self._failing:
                self.log.append(("failed", name))
                raise ModelError(f"the fake encoder fails on {Path(name).name}")
            self.encoded.append(name)
            self.log.append(("encoded", name))
            if real is not None:
                self._embedded[id(real)] = name  # the cache keeps it alive: the id stays unique
        if real is not None:
            return real
        tiny = np.zeros((1, 1, 1, 1), np.float32)
        hw = (int(image.shape[0]), int(image.shape[1]))
        return FakeEmbedding(tiny, tiny, tiny, hw, image=name)

    def decode(
        self,
        embedding: Embedding,
        prompt: Prompt,
        multimask: bool | None = None,
        candidate: int | None = None,
    ) -> Prediction:
        with self._lock:
            if isinstance(embedding, FakeEmbedding):
                name = embedding.image
            else:
                name = self._embedded.get(id(embedding), "?")
            self.decodes.append(DecodeCall(name, prompt, multimask, candidate))
            self.log.append(("decode", name))
        if not self._decode_gate.wait(GATE_TIMEOUT_S):
            raise RuntimeError("a fake decode was held and never released")
        if self.inner is not None:
            return self.inner.decode(embedding, prompt, multimask=multimask, candidate=candidate)
        if multimask is None:
            multimask = default_multimask(prompt)
        if candidate is None:
            candidate = 1 if multimask else 0
        return Prediction(
            mask=fake_mask(prompt, embedding.orig_hw, candidate),
            low_res_logits=np.full((4, LOW_RES, LOW_RES), float(len(prompt.points)), np.float32),
            scores=np.array([0.5, 0.9, 0.8, 0.7], np.float32),
            candidate=candidate,
            multimask=multimask,
            single_token=True,
            decoder_ms=0.0,
            total_ms=0.0,
            multimask_candidates=(1, 2, 3),
        )

    @staticmethod
    def _wait(gate: threading.Event, cancel: CancelToken | None) -> None:
        """Block until ``gate`` opens; raise OperationCancelled as soon as ``cancel`` is set."""
        deadline = time.monotonic() + GATE_TIMEOUT_S
        while True:
            if cancel is not None and cancel.cancelled:
                raise OperationCancelled("encoding cancelled")
            if gate.wait(_POLL_S):
                return
            if time.monotonic() > deadline:
                raise RuntimeError("a fake encode was never released")
