"""The inference worker: the model runs here, never on the GUI thread.

One :class:`InferenceWorker` (a QObject whose loop runs on its own QThread) owns the engine (the
ONNX Runtime sessions) and the embedding cache. The GUI talks to it through a few thread-safe
methods that only store a request under a lock and wake the worker, so they return at once even
while an encode runs:

* :meth:`~InferenceWorker.load_model` - (re)load a model folder;
* :meth:`~InferenceWorker.set_focus` - the image on screen and the next ones to prefetch;
* :meth:`~InferenceWorker.submit_decode` - decode a prompt. There is ONE pending slot: a newer
  request replaces the pending one (latest click wins; nothing is ever refused).

Results come back as Qt signals (queued into the GUI thread): :attr:`~InferenceWorker.decoded`
carries the request id and image, so the GUI can drop stale results;
:attr:`~InferenceWorker.failed` is the one error signal.

Two lanes. Work is pulled by two small loops that share one lock and condition variable:

* the *control lane* (the QThread) loads models, loads the current image's pixels for display
  and decodes;
* the *encoder lane* (a helper thread owned by the worker) encodes: the current image first,
  then the next ``prefetch`` images, within the memory cache's byte budget.

Decoding runs beside a prefetch instead of behind it: a click on an image that is already encoded
is answered in tens of milliseconds even while the next image takes seconds to encode. ONNX
Runtime sessions may run concurrently (encoder and decoder are separate sessions). An encode is
cancelled through :class:`~sam2_annotator.engine.predictor.CancelToken` when the user jumps to an
image that is not encoded yet, or to one that is not among the images worth prefetching.

Why pull loops rather than queued slots: an encode blocks the thread that runs it for seconds, so
a worker driven by queued signals could neither see a newer request nor a cancellation until it
finished. Here the GUI thread writes into shared slots and calls ``CancelToken.cancel()``
directly, both of which work while the encoder is busy.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, QThread, Signal

from sam2_annotator.app.preload import PreloadSlot
from sam2_annotator.app.worker_state import (
    DEFAULT_MEMORY_BYTES,
    EMBEDDING_BYTES,
    FIRST_CLICK_GRACE_S,
    ActiveEncode,
    Current,
)
from sam2_annotator.engine.cache import DiskCache, EmbeddingCache, MemoryCache, cache_key
from sam2_annotator.engine.cache_sources import FileSignature, SourceIndex
from sam2_annotator.engine.image_io import image_hash, load_image
from sam2_annotator.engine.predictor import CancelToken
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.engine.types import Embedding
from sam2_annotator.errors import OperationCancelled, UserError
from sam2_annotator.gui.overlay import make_overlay
from sam2_annotator.gui.pyramid import build_pyramid
from sam2_annotator.gui.worker_messages import (  # noqa: F401 - re-exported
    DecodeRequest,
    DecodeResult,
    EncodeEvent,
    Engine,
    EngineFactory,
    LoadedImage,
    ModelInfo,
    WorkerError,
    next_request_id,
    open_engine,
)

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelRequest:
    folder: Path
    config: SessionConfig


@dataclass(frozen=True)
class LoadedModel:
    engine: Engine
    cache: EmbeddingCache
    info: ModelInfo


Job = Callable[[], None]


class _WorkerThread(QThread):
    """Runs the worker's control loop; it has no Qt event loop (the loop pulls its work)."""

    def __init__(self, worker: InferenceWorker) -> None:
        super().__init__()
        self._worker = worker
        self.setObjectName("sam2-inference")

    def run(self) -> None:
        self._worker._control_loop()


# --------------------------------------------------------------------------- the worker


class InferenceWorker(QObject):
    """See the module docstring. Create it in the GUI thread, then :meth:`start` it.

    The object itself stays in the GUI thread on purpose (it is not moved to its QThread): its
    signals are emitted from the two worker threads, and because the emitting object lives in
    the GUI thread, every connection - to a slot or to a plain Python callable, whose context is
    the sender - is queued into the GUI thread. Were it moved to the QThread, callables would
    run in the worker (emitted from the control lane) or never (from the encoder lane, as that
    QThread has no event loop). The engine and cache are only ever touched by the two lanes.

    ``engine_factory`` opens the engine for a model folder (default :func:`open_engine`, the
    ONNX Runtime one); tests pass a fake whose encode and decode they gate with events.
    """

    model_loaded = Signal(object)  # ModelInfo
    image_loaded = Signal(object)  # LoadedImage
    encode_event = Signal(object)  # EncodeEvent
    decoded = Signal(object)  # DecodeResult
    failed = Signal(object)  # WorkerError

    def __init__(
        self,
        *,
        memory_bytes: int = DEFAULT_MEMORY_BYTES,
        disk_cache_dir: Path | None = None,
        prefetch: int = 2,
        engine_factory: EngineFactory | None = None,
        first_click_grace_s: float = FIRST_CLICK_GRACE_S,
    ) -> None:
        super().__init__()
        self._engine_factory: EngineFactory = engine_factory or open_engine
        self._memory_bytes = memory_bytes
        self._disk_cache_dir = disk_cache_dir
        self._sources = SourceIndex(disk_cache_dir) if disk_cache_dir is not None else None
        self._cond = threading.Condition()
        self._stopping = False
        self._model_request: ModelRequest | None = None
        self._model: LoadedModel | None = None
        self._loading_model = False
        self._current: Current | None = None
        self._upcoming: tuple[str, ...] = ()
        self._preload = PreloadSlot()
        self._prefetch = max(0, prefetch)
        self._first_click_grace_s = first_click_grace_s
        self._wake_at: float | None = None
        self._pending: DecodeRequest | None = None
        self._keys: dict[str, str] = {}
        self._failed: set[str] = set()
        self._active: ActiveEncode | None = None
        self._thread: _WorkerThread | None = None
        self._encoder_thread: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle (GUI thread)

    def start(self) -> None:
        if self._thread is not None:
            raise RuntimeError("the worker is already started")
        self._thread = _WorkerThread(self)
        self._thread.start()

    def shutdown(self, timeout_s: float = 30.0) -> bool:
        """Stop both lanes (cancelling a running encode) and wait for them. True if stopped."""
        with self._cond:
            self._stopping = True
            if self._active is not None:
                self._active.token.cancel()
            self._cond.notify_all()
        thread = self._thread
        if thread is None:
            return True
        stopped = thread.wait(int(timeout_s * 1000))
        if not stopped:
            log.error("the inference worker did not stop within %.0f s", timeout_s)
        return bool(stopped)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.isRunning()

    # ------------------------------------------------------------------ requests (any thread)

    def load_model(self, folder: str | Path, config: SessionConfig | None = None) -> None:
        """Load the model in ``folder``; a running encode is cancelled. Answered by
        :attr:`model_loaded` or :attr:`failed` (kind ``"model"``)."""
        with self._cond:
            self._model_request = ModelRequest(Path(folder), config or SessionConfig())
            if self._active is not None:
                self._active.token.cancel()
            self._cond.notify_all()

    def set_focus(self, current: str | None, upcoming: Sequence[str] = ()) -> None:
        """The image on screen (``None``: none) and the images to prefetch, in order."""
        with self._cond:
            if self._current is None or self._current.path != current:
                self._current = Current(current) if current is not None else None
                if self._pending is not None and self._pending.image != current:
                    self._pending = None
                if current is not None:
                    self._failed.discard(current)  # revisiting a failed image retries it
            self._upcoming = tuple(p for p in upcoming if p != current)
            self._cancel_unwanted_encode()
            self._cond.notify_all()

    def submit_decode(self, request: DecodeRequest) -> None:
        """Queue ``request``, replacing any request not started yet (latest click wins)."""
        with self._cond:
            if self._pending is not None:
                log.debug("decode %d replaced by %d", self._pending.request_id, request.request_id)
            self._pending = request
            self._cond.notify_all()

    def set_prefetch(self, count: int) -> None:
        with self._cond:
            self._prefetch = max(0, count)
            self._cond.notify_all()

    def is_encoded(self, path: str) -> bool:
        """Whether ``path``'s embedding is known to be in the cache (memory or disk)."""
        with self._cond:
            key = self._keys.get(path)
            model = self._model
            return key is not None and model is not None and key in model.cache

    @property
    def model_info(self) -> ModelInfo | None:
        with self._cond:
            return self._model.info if self._model is not None else None

    # ------------------------------------------------------------------ scheduling (under lock)

    def _cancel_unwanted_encode(self) -> None:
        """Cancel the running encode unless it is for the current image, or the current image is
        already encoded and the running one is still wanted as a prefetch."""
        active = self._active
        current = self._current
        if active is None or active.token.cancelled:
            return
        if current is not None and active.path == current.path:
            return
        if current is not None and not self._known_encoded(current.path):
            log.debug("cancelling the encode of %s for %s", active.path, current.path)
            active.token.cancel()
        elif active.path not in self._upcoming[: self._prefetch_window()]:
            log.debug("cancelling the encode of %s: no longer wanted", active.path)
            active.token.cancel()

    def _known_encoded(self, path: str) -> bool:
        key = self._keys.get(path)
        return key is not None and self._model is not None and key in self._model.cache.memory

    def _prefetch_window(self) -> int:
        """How many upcoming images to prefetch: the setting, capped by the memory budget (the
        current image's embedding must stay in memory too)."""
        if self._model is None:
            return 0
        budget = self._model.cache.memory.max_bytes
        fits = max(0, budget // EMBEDDING_BYTES - 1)
        return min(self._prefetch, fits)

    def _wait_for_job(self, pick: Callable[[], Job | None], timed: bool = False) -> Job | None:
        with self._cond:
            while True:
                if self._stopping:
                    return None
                job = pick()
                if job is not None:
                    return job
                wake = self._wake_at if timed else None
                self._cond.wait(None if wake is None else max(0.0, wake - time.monotonic()))

    def _pick_control_job(self) -> Job | None:
        if self._model_request is not None:
            request, self._model_request = self._model_request, None
            self._loading_model = True  # from now: the encoder lane must not start an encode
            return lambda: self._load_model(request)
        current = self._current
        if current is not None and current.rgb is None and not current.load_failed:
            path = current.path
            return lambda: self._load_current(path)
        pending = self._pending
        if pending is None or self._loading_model:
            return None
        if current is None or pending.image != current.path:
            log.debug(
                "dropping decode %d for %s: not the current image",
                pending.request_id,
                pending.image,
            )
            self._pending = None
            return None
        model = self._model
        embedding = current.embedding
        if model is None or embedding is None:
            return None  # decoded as soon as the embedding is ready
        self._pending = None
        return lambda: self._decode(pending, embedding, model)

    def _pick_encoder_job(self) -> Job | None:
        self._wake_at = None
        model = self._model
        busy = self._loading_model or self._model_request is not None or self._active is not None
        if model is None or busy:
            return None  # a model change is coming: an encode now would only be cancelled
        current = self._current
        if current is not None and not current.load_failed:
            if current.rgb is None:
                if current.hint_tried or self._sources is None:
                    return None  # current image first: wait until its pixels are loaded
                current.hint_tried = True
                active = self._begin_encode(current.path, for_current=True)
                return lambda: self._read_hinted(active, model)
            if current.embedding is None and current.path not in self._failed:
                rgb, key = current.rgb, current.key
                active = self._begin_encode(current.path, for_current=True)
                assert key is not None
                return lambda: self._encode_current(active, rgb, key, model)
        left = self._first_click_grace_s - (time.monotonic() - current.arrived) if current else 0
        if current is not None and current.first_click_pending and left > 0:
            # An image reached already encoded (the prefetch did its work): its first click
            # runs without the next prefetch beside it, at the decoder's own speed.
            self._wake_at = time.monotonic() + left
            return None
        for path in self._upcoming[: self._prefetch_window()]:
            if path in self._failed:
                continue
            key = self._keys.get(path)
            if key is not None and key in model.cache:
                continue
            active = self._begin_encode(path, for_current=False)
            return lambda: self._prefetch_one(active, model)
        return None

    def _begin_encode(self, path: str, for_current: bool) -> ActiveEncode:
        self._active = ActiveEncode(path, CancelToken(), for_current)
        return self._active

    def _end_encode(self, active: ActiveEncode) -> None:
        with self._cond:
            if self._active is active:
                self._active = None
            self._cond.notify_all()

    # ------------------------------------------------------------------ loops (worker threads)

    def _control_loop(self) -> None:
        encoder = threading.Thread(target=self._encoder_loop, name="sam2-encoder", daemon=True)
        self._encoder_thread = encoder
        encoder.start()
        try:
            while (job := self._wait_for_job(self._pick_control_job)) is not None:
                self._run_job(job)
        finally:
            with self._cond:
                self._stopping = True
                self._cond.notify_all()
            encoder.join()
            log.debug("inference worker stopped")

    def _encoder_loop(self) -> None:
        while (job := self._wait_for_job(self._pick_encoder_job, timed=True)) is not None:
            self._run_job(job)

    def _run_job(self, job: Job) -> None:
        """Run one job; a bug is logged and reported, and the loop goes on."""
        try:
            job()
        except Exception as exc:  # the top of a worker loop: report, never let the thread die
            log.exception("inference worker job failed")
            self.failed.emit(WorkerError("internal", f"internal error: {exc}", user_error=False))

    # ------------------------------------------------------------------ jobs

    def _load_model(self, request: ModelRequest) -> None:
        with self._cond:
            self._loading_model = True
            self._model = None
            if self._active is not None:
                self._active.token.cancel()
            while self._active is not None and not self._stopping:
                self._cond.wait()
            if self._current is not None:
                self._current.embedding = None  # belongs to the previous model
        try:
            model = self._open_model(request)
        except UserError as exc:
            log.warning("could not load the model in %s: %s", request.folder, exc)
            self.failed.emit(WorkerError("model", str(exc), path=str(request.folder)))
            return
        finally:
            with self._cond:
                self._loading_model = False
                self._cond.notify_all()
        with self._cond:
            self._model = model
            current = self._current
            if current is not None and current.key is not None:
                current.embedding = model.cache.memory.get(current.key)
            self._cond.notify_all()
        self.model_loaded.emit(model.info)

    def _open_model(self, request: ModelRequest) -> LoadedModel:
        start = time.perf_counter()
        engine = self._engine_factory(request.folder, request.config)
        disk = None
        if self._disk_cache_dir is not None:
            disk = DiskCache(self._disk_cache_dir, engine.model_key)
        cache = EmbeddingCache(MemoryCache(self._memory_bytes), disk)
        info = ModelInfo(
            folder=request.folder,
            display_name=engine.display_name,
            provider=engine.provider,
            model_key=engine.model_key,
            random_init=engine.files.is_random_init,
            load_ms=(time.perf_counter() - start) * 1000.0,
        )
        log.info("model ready: %s on %s (%.0f ms)", info.display_name, info.provider, info.load_ms)
        return LoadedModel(engine, cache, info)

    def _load_current(self, path: str) -> None:
        start = time.perf_counter()
        try:
            signature = None
            preloaded = self._preload.take(path)  # the prefetch decoded it moments ago
            if preloaded is not None:
                rgb, key, pyramid = preloaded
            else:
                signature = FileSignature.of(path)
                rgb = load_image(path)
                key = cache_key(image_hash(rgb))
                pyramid = build_pyramid(rgb)
        except UserError as exc:
            with self._cond:
                if self._current is not None and self._current.path == path:
                    self._current.load_failed = True
                self._failed.add(path)
            self.failed.emit(WorkerError("image", str(exc), path=path))
            self.encode_event.emit(EncodeEvent(path, "failed", current=True))
            return
        height, width = (int(n) for n in rgb.shape[:2])
        ms = (time.perf_counter() - start) * 1000.0
        loaded = LoadedImage(path, width, height, key, pyramid, load_ms=ms)
        with self._cond:
            current = self._current
            if current is None or current.path != path:
                log.debug("dropping the pixels of %s: no longer the current image", path)
                return
            current.rgb, current.key = rgb, key
            self._keys[path] = key
            if self._model is not None:
                current.embedding = self._model.cache.memory.get(key)
            from_memory = current.first_click_pending = current.embedding is not None
            self._cond.notify_all()
        self.image_loaded.emit(loaded)
        if from_memory:
            self.encode_event.emit(EncodeEvent(path, "ready", current=True, from_cache=True))
        self._remember(signature, key)

    def _remember(self, signature: FileSignature | None, key: str) -> None:
        if self._sources is not None:
            self._sources.remember(signature, key)

    def _read_hinted(self, active: ActiveEncode, model: LoadedModel) -> None:
        """Read the current image's embedding by its file's key hint while its pixels decode
        (a reopened folder: the disk read no longer waits behind the JPEG decode). What it finds
        goes to memory, where :meth:`_load_current` takes it if the pixels hash to that key."""
        ready = False
        try:
            hints = self._sources
            key = hints.key_for(active.path) if hints and not active.token.cancelled else None
            found = model.cache.get(key) if key is not None and not active.token.cancelled else None
            with self._cond:  # the pixels were hashed first: take it here
                current = self._current
                ready = found is not None and current is not None and self._model is model
                ready = ready and current.awaits(active.path, key)
                if ready:
                    current.embedding, current.first_click_pending = found, True
        finally:
            self._end_encode(active)
        if ready:
            self.encode_event.emit(EncodeEvent(active.path, "ready", current=True, from_cache=True))

    def _encode_current(
        self, active: ActiveEncode, rgb: np.ndarray, key: str, model: LoadedModel
    ) -> None:
        try:
            result = self._embed(active, rgb, key, model)
        finally:
            self._end_encode(active)
        if result is None:
            return
        embedding, ms = result
        with self._cond:
            current = self._current
            if self._model is model and current is not None and current.key == key:
                current.embedding = embedding
                # Read from the disk cache (a reopened folder): like one found in memory, its
                # first click runs before the prefetch starts reading and decoding the next ones.
                current.first_click_pending = ms is None
            self._cond.notify_all()
        self.encode_event.emit(
            EncodeEvent(active.path, "ready", current=True, ms=ms, from_cache=ms is None)
        )

    def _prefetch_one(self, active: ActiveEncode, model: LoadedModel) -> None:
        path = active.path
        try:
            signature = FileSignature.of(path)
            try:
                rgb = load_image(path)
            except UserError as exc:
                with self._cond:
                    self._failed.add(path)
                self.failed.emit(WorkerError("prefetch", str(exc), path=path))
                self.encode_event.emit(EncodeEvent(path, "failed", current=False))
                return
            key = cache_key(image_hash(rgb))
            self._remember(signature, key)
            with self._cond:
                self._keys[path] = key
                is_next = self._upcoming[:1] == (path,)
            if is_next:
                self._preload.offer(path, signature, (rgb, key, build_pyramid(rgb)))
            result = self._embed(active, rgb, key, model)
        finally:
            self._end_encode(active)
        if result is None:
            return
        embedding, ms = result
        with self._cond:
            current = self._current
            is_current = current is not None and current.path == path
            if is_current and current.key == key and self._model is model:
                current.embedding = embedding  # the user got here while it was prefetching
            self._cond.notify_all()
        self.encode_event.emit(
            EncodeEvent(path, "ready", current=is_current, ms=ms, from_cache=ms is None)
        )

    def _embed(
        self, active: ActiveEncode, rgb: np.ndarray, key: str, model: LoadedModel
    ) -> tuple[Embedding, float | None] | None:
        """The embedding from the cache or the encoder, with its encode ms (``None``: cached).

        ``None`` when cancelled or failed (both reported through signals).
        """
        cached = model.cache.get(key)
        if cached is not None:
            return cached, None
        if active.token.cancelled:
            self.encode_event.emit(EncodeEvent(active.path, "cancelled", active.for_current))
            return None
        self.encode_event.emit(EncodeEvent(active.path, "encoding", active.for_current))
        start = time.perf_counter()
        try:
            embedding = model.engine.encode(rgb, active.token)
        except OperationCancelled:
            log.debug("encode of %s cancelled", active.path)
            self.encode_event.emit(EncodeEvent(active.path, "cancelled", active.for_current))
            return None
        except UserError as exc:
            with self._cond:
                self._failed.add(active.path)
            self.failed.emit(WorkerError("encode", str(exc), path=active.path))
            self.encode_event.emit(EncodeEvent(active.path, "failed", active.for_current))
            return None
        ms = (time.perf_counter() - start) * 1000.0
        model.cache.put(key, embedding)
        log.info("encoded %s in %.0f ms", Path(active.path).name, ms)
        return embedding, ms

    def _decode(self, request: DecodeRequest, embedding: Embedding, model: LoadedModel) -> None:
        start = time.perf_counter()
        try:
            prediction = model.engine.decode(
                embedding, request.prompt, multimask=request.multimask, candidate=request.candidate
            )
        except UserError as exc:
            self.failed.emit(
                WorkerError("decode", str(exc), path=request.image, request_id=request.request_id)
            )
            return
        overlay = make_overlay(prediction.mask)
        worker_ms = (time.perf_counter() - start) * 1000.0
        self.decoded.emit(DecodeResult(request, prediction, overlay, worker_ms))
        with self._cond:
            if self._current is not None and self._current.path == request.image:
                self._current.first_click_pending = False
                self._cond.notify_all()
