"""What the GUI and the inference worker exchange (Qt only through the overlay type): request
ids, the engine seam the worker opens models through, and the request/result/event dataclasses.
Re-exported by :mod:`.worker`."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, Protocol

import numpy as np
from PySide6.QtGui import QImage

from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.predictor import CancelToken, Prediction, Sam2Engine
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.engine.types import Embedding, Prompt
from sam2_annotator.gui.overlay import MaskOverlay

EncodeState = Literal["encoding", "ready", "cancelled", "failed"]
ErrorKind = Literal["model", "image", "encode", "prefetch", "decode", "internal"]

_request_ids = itertools.count(1)


def next_request_id() -> int:
    """Increasing ids for decode requests (shared by every worker in the process)."""
    return next(_request_ids)


# --------------------------------------------------------------------------- the engine seam


class EngineFiles(Protocol):
    """What the worker reads from an engine's model files."""

    @property
    def is_random_init(self) -> bool: ...


class Engine(Protocol):
    """What the worker uses of :class:`~sam2_annotator.engine.predictor.Sam2Engine`.

    ``encode`` runs on the encoder lane and must raise
    :class:`~sam2_annotator.errors.OperationCancelled` once ``cancel`` is cancelled; ``decode``
    runs on the control lane, possibly while an encode runs.
    """

    @property
    def files(self) -> EngineFiles: ...

    @property
    def display_name(self) -> str: ...

    @property
    def model_key(self) -> str: ...

    @property
    def provider(self) -> str: ...

    def encode(self, image: np.ndarray, cancel: CancelToken | None = None) -> Embedding: ...

    def decode(
        self,
        embedding: Embedding,
        prompt: Prompt,
        multimask: bool | None = None,
        candidate: int | None = None,
    ) -> Prediction: ...


#: Opens the engine for a model folder; called on the control lane. A
#: :class:`~sam2_annotator.errors.UserError` it raises is reported as a ``"model"`` error.
EngineFactory = Callable[[Path, SessionConfig], Engine]


def open_engine(folder: Path, config: SessionConfig) -> Engine:
    """The default :data:`EngineFactory`: ONNX Runtime sessions for the model in ``folder``,
    the decoder warmed up (off the GUI thread, so a first click gets a warm session)."""
    engine = Sam2Engine(ModelFiles.from_folder(folder), config)
    engine.warm_up()
    return engine


# --------------------------------------------------------------------------- messages


@dataclass(frozen=True)
class ModelInfo:
    """What the status bar shows about the loaded model."""

    folder: Path
    display_name: str
    provider: str
    model_key: str
    random_init: bool
    load_ms: float


@dataclass(frozen=True)
class LoadedImage:
    """The current image, decoded by the worker: its size, content hash and display pyramid."""

    path: str
    width: int
    height: int
    key: str
    pyramid: tuple[QImage, ...]
    load_ms: float


@dataclass(frozen=True)
class EncodeEvent:
    """Progress of the encoder for one image. ``current`` says whether it was the image on
    screen when the event was sent; ``ms`` is the encode time (``None`` when read from cache)."""

    path: str
    state: EncodeState
    current: bool
    ms: float | None = None
    from_cache: bool = False


@dataclass(frozen=True)
class DecodeRequest:
    """Decode ``prompt`` on ``image`` (a path string, the GUI's image key).

    ``multimask``/``candidate`` are passed to :meth:`Sam2Engine.decode`. ``created`` is the
    :func:`time.perf_counter` of the click, for latency figures.
    """

    request_id: int
    image: str
    prompt: Prompt
    multimask: bool | None = None
    candidate: int | None = None
    created: float = field(default_factory=time.perf_counter)


@dataclass(frozen=True)
class DecodeResult:
    request: DecodeRequest
    prediction: Prediction
    overlay: MaskOverlay
    worker_ms: float

    @property
    def request_id(self) -> int:
        return self.request.request_id

    @property
    def image(self) -> str:
        return self.request.image


@dataclass(frozen=True)
class WorkerError:
    """Everything that went wrong in the worker, for the GUI's one error handler.

    ``user_error`` is true for :class:`~sam2_annotator.errors.UserError` (a plain message);
    false for bugs (the traceback is in the log).
    """

    kind: ErrorKind
    message: str
    path: str | None = None
    request_id: int | None = None
    user_error: bool = True
