"""The paper's latency protocol, measured on our engine and on the bare ONNX Runtime sessions.

Phases, in order (each a method of :class:`_Bench`, listed in :data:`PHASES`):

1. first call: create each session (timed on its own), then the engine's first encode and first
   decode on fresh sessions; ``first_ms`` = session creation + first call;
2. encoder, identical input: the engine's full ``encode`` (preprocess + run + parse) and the bare
   ``session.run`` on the same pre-computed tensor, alternately, ``encoder_runs`` times;
3. decoder, identical input: the engine's full ``decode`` (prompt prep + run + candidate choice +
   upsample + threshold) and the bare ``session.run`` on the same pre-built feed, alternately;
4. varying images: every image encoded ``image_runs`` times, round-robin;
5. varying points: ``point_runs`` fresh random prompts per number of points, engine and bare run;
6. PyTorch eager (optional): the same encoder tensor and decoder feed through the torch modules,
   alternated with bare ONNX Runtime runs (``torch_over_ort`` compares those two);
7. another model (optional, e.g. the int8 variant): its bare encoder and decoder runs alternated
   with ours on the same inputs, for a speed ratio measured under identical machine load.

Alternating the engine and the bare run inside one loop puts both under the same machine load,
so their ratio stays meaningful on a busy machine even when absolute numbers drift.

Memory: the peak RSS (before the PyTorch phase, and with it) and the exact size of one embedding.
An embedding's resident footprint cannot be told apart from RSS: its arrays come from ONNX
Runtime's allocator and glibc keeps freed blocks of that size, so RSS neither grows nor shrinks
by exactly one embedding.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from sam2_annotator.bench import memory
from sam2_annotator.bench.environment import load_average, machine_info
from sam2_annotator.bench.stats import latency_stats, ratio
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.predictor import Sam2Engine, prompt_to_model_input
from sam2_annotator.engine.preprocess import preprocess
from sam2_annotator.engine.providers import SessionConfig, create_session
from sam2_annotator.engine.types import LOW_RES, Embedding, Prompt
from sam2_annotator.errors import UserError
from sam2_annotator.models.export_reference import TorchModel, TorchSource

log = logging.getLogger(__name__)

#: Called once per measured step with the phase's name (drives the progress bar).
Progress = Callable[[str], None]

RESULTS_SCHEMA = 1
#: Pause between a PyTorch run and an ONNX Runtime run (untimed): both keep their worker threads
#: spinning for a moment after a run, which would slow the other runtime's next run on a machine
#: with few cores.
RUNTIME_SWITCH_PAUSE_S = 0.2


@dataclass(frozen=True)
class BenchImage:
    name: str
    pixels: np.ndarray  # RGB uint8 (H, W, 3)

    @property
    def size(self) -> tuple[int, int]:
        """``(width, height)``."""
        return int(self.pixels.shape[1]), int(self.pixels.shape[0])


@dataclass(frozen=True)
class BenchPlan:
    """How many runs each phase makes (see the module docstring).

    ``encoder_runs`` defaults to ``runs``; ``point_runs`` to ``min(runs, 100)``;
    ``torch_runs`` (per torch model part) to ``min(encoder_runs, 20)``.
    """

    runs: int = 1000
    encoder_runs: int | None = None
    image_runs: int = 3
    point_runs: int | None = None
    points: tuple[int, ...] = (1, 2, 4, 8)
    torch_runs: int | None = None
    seed: int = 0

    def __post_init__(self) -> None:
        counts = {
            "runs": self.runs,
            "encoder runs": self.encoder_runs,
            "image runs": self.image_runs,
            "point runs": self.point_runs,
            "torch runs": self.torch_runs,
        }
        for what, value in counts.items():
            if value is not None and value < 1:
                raise UserError(f"{what} must be at least 1, got {value}")
        if not self.points or min(self.points) < 1:
            raise UserError(f"point counts must be positive integers, got {list(self.points)}")

    @property
    def encoder_count(self) -> int:
        return self.encoder_runs if self.encoder_runs is not None else self.runs

    @property
    def point_count(self) -> int:
        return self.point_runs if self.point_runs is not None else min(self.runs, 100)

    @property
    def torch_count(self) -> int:
        return self.torch_runs if self.torch_runs is not None else min(self.encoder_count, 20)

    def steps(self, images: int, with_torch: bool, with_compare: bool = False) -> int:
        """How many times :data:`Progress` will be called."""
        total = 2 + self.encoder_count + self.runs + self.image_runs * images
        total += self.point_count * len(self.points)
        if with_torch:
            total += 2 * (self.torch_count + 1)
        if with_compare:
            total += 1 + self.encoder_count + self.point_count
        return total

    def resolved(self) -> dict[str, Any]:
        data = asdict(self)
        data.update(
            encoder_runs=self.encoder_count,
            point_runs=self.point_count,
            torch_runs=self.torch_count,
            points=list(self.points),
        )
        return data


@dataclass
class _Timings:
    """Raw measurements collected by the phases (milliseconds)."""

    encoder_load: float = 0.0
    decoder_load: float = 0.0
    engine_load: float = 0.0
    encoder_first_run: float = 0.0
    decoder_first_run: float = 0.0
    encoder: list[float] = field(default_factory=list)
    encoder_raw: list[float] = field(default_factory=list)
    preprocess: list[float] = field(default_factory=list)
    decoder: list[float] = field(default_factory=list)
    decoder_raw: list[float] = field(default_factory=list)
    by_image: dict[str, list[float]] = field(default_factory=dict)
    by_points: dict[int, list[float]] = field(default_factory=dict)
    raw_by_points: dict[int, list[float]] = field(default_factory=dict)
    #: "encoder"/"decoder" -> PyTorch runs, and the bare ONNX Runtime runs alternated with them.
    torch: dict[str, list[float]] = field(default_factory=lambda: {"encoder": [], "decoder": []})
    torch_ort: dict[str, list[float]] = field(
        default_factory=lambda: {"encoder": [], "decoder": []}
    )
    torch_first: dict[str, float] = field(default_factory=dict)
    memory: dict[str, float | None] = field(default_factory=dict)
    torch_info: dict[str, Any] = field(default_factory=dict)
    #: "encoder"/"decoder" -> (our bare runs, the other model's bare runs), alternated.
    compare: dict[str, tuple[list[float], list[float]]] = field(default_factory=dict)


def _ms(start: float) -> float:
    return (time.perf_counter() - start) * 1000.0


def centre_prompt(width: int, height: int) -> Prompt:
    """One positive point at the image centre: the identical-input decoder prompt."""
    return Prompt(
        points=np.array([[width / 2, height / 2]], np.float32), labels=np.ones(1, np.int64)
    )


def random_prompt(rng: np.random.Generator, count: int, width: int, height: int) -> Prompt:
    """``count`` positive points uniformly inside the image."""
    points = rng.uniform((0.0, 0.0), (width - 1.0, height - 1.0), size=(count, 2))
    return Prompt(points=points.astype(np.float32), labels=np.ones(count, np.int64))


class _Bench:
    """One benchmark run; the phases share the engine, inputs and :class:`_Timings`."""

    def __init__(
        self,
        files: ModelFiles,
        config: SessionConfig,
        images: Sequence[BenchImage],
        plan: BenchPlan,
        torch_source: TorchSource | None,
        compare: ModelFiles | None,
        progress: Progress,
    ) -> None:
        if not images:
            raise UserError("the benchmark needs at least one image")
        self.files, self.config, self.images, self.plan = files, config, list(images), plan
        self.torch_source = torch_source
        self.compare = compare
        self.compare_name: str | None = None
        self.progress = progress
        self.timings = _Timings()
        self.engine: Sam2Engine | None = None
        self.embedding: Embedding | None = None

    # -- helpers --------------------------------------------------------------------------

    @property
    def _engine(self) -> Sam2Engine:
        if self.engine is None:
            raise RuntimeError("the first-call phase creates the engine; it has not run")
        return self.engine

    def _raw_decoder_feed(self, embedding: Embedding, prompt: Prompt) -> dict[str, np.ndarray]:
        coords, labels = prompt_to_model_input(prompt, embedding.orig_hw)
        no_mask = np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
        return self._engine.contract.decoder_feed(embedding, coords, labels, no_mask, False)

    def _decode_pair(
        self, embedding: Embedding, prompt: Prompt, engine_first: bool, feed: dict[str, np.ndarray]
    ) -> tuple[float, float]:
        """(engine ms, bare run ms) for one prompt, in the given order."""

        def engine_call() -> float:
            start = time.perf_counter()
            self._engine.decode(embedding, prompt)
            return _ms(start)

        return _pair(engine_call, _bare_run(self._engine.decoder.session, feed), engine_first)

    # -- phases ---------------------------------------------------------------------------

    def first_call(self) -> None:
        t = self.timings
        start = time.perf_counter()
        probe = create_session(self.files.encoder, self.config)
        t.encoder_load = _ms(start)
        del probe
        start = time.perf_counter()
        probe = create_session(self.files.decoder, self.config)
        t.decoder_load = _ms(start)
        del probe
        start = time.perf_counter()
        self.engine = Sam2Engine(self.files, self.config)
        t.engine_load = _ms(start)
        t.memory["rss_after_load_mb"] = memory.current_rss_mb()
        image = self.images[0]
        start = time.perf_counter()
        self.embedding = self.engine.encode(image.pixels)
        t.encoder_first_run = _ms(start)
        self.progress("first call")
        start = time.perf_counter()
        self.engine.decode(self.embedding, centre_prompt(*image.size))
        t.decoder_first_run = _ms(start)
        self.progress("first call")

    def encoder_steady(self) -> None:
        engine, t = self._engine, self.timings
        pixels = self.images[0].pixels
        feed = {engine.contract.encoder_input_name: preprocess(pixels)}
        raw_call = _bare_run(engine.encoder.session, feed)

        def engine_call() -> float:
            start = time.perf_counter()
            self.embedding = engine.encode(pixels)
            elapsed = _ms(start)
            t.preprocess.append(engine.last_encode_timing.preprocess_ms)
            return elapsed

        for index in range(self.plan.encoder_count):
            engine_ms, raw_ms = _pair(engine_call, raw_call, index % 2 == 0)
            t.encoder.append(engine_ms)
            t.encoder_raw.append(raw_ms)
            self.progress("encoder")
        t.memory["embedding_mb"] = self.embedding.nbytes / memory.MIB if self.embedding else None

    def decoder_steady(self) -> None:
        t = self.timings
        embedding = self._embedding_of_first_image()
        prompt = centre_prompt(*self.images[0].size)
        feed = self._raw_decoder_feed(embedding, prompt)
        for index in range(self.plan.runs):
            engine_ms, raw_ms = self._decode_pair(embedding, prompt, index % 2 == 0, feed)
            t.decoder.append(engine_ms)
            t.decoder_raw.append(raw_ms)
            self.progress("decoder")

    def _embedding_of_first_image(self) -> Embedding:
        if self.embedding is None or self.embedding.orig_hw != self.images[0].pixels.shape[:2]:
            self.embedding = self._engine.encode(self.images[0].pixels)
        return self.embedding

    def by_image(self) -> None:
        t = self.timings
        for _ in range(self.plan.image_runs):
            for image in self.images:
                start = time.perf_counter()
                self._engine.encode(image.pixels)
                t.by_image.setdefault(image.name, []).append(_ms(start))
                self.progress("images")

    def by_points(self) -> None:
        t = self.timings
        embedding = self._embedding_of_first_image()
        width, height = self.images[0].size
        rng = np.random.default_rng(self.plan.seed)
        for count in self.plan.points:
            for index in range(self.plan.point_count):
                prompt = random_prompt(rng, count, width, height)
                feed = self._raw_decoder_feed(embedding, prompt)
                engine_ms, raw_ms = self._decode_pair(embedding, prompt, index % 2 == 0, feed)
                t.by_points.setdefault(count, []).append(engine_ms)
                t.raw_by_points.setdefault(count, []).append(raw_ms)
                self.progress(f"{count} point(s)")

    def torch_eager(self) -> None:
        """PyTorch eager runs alternated with bare ONNX Runtime runs on the same input."""
        t = self.timings
        t.memory["peak_rss_before_torch_mb"] = memory.peak_rss_mb()
        if self.torch_source is None:
            return
        engine = self._engine
        model = TorchModel.load(self.torch_source, threads=self.config.threads)
        t.torch_info = {"available": True, "version": model.version, "threads": model.threads}
        tensor = preprocess(self.images[0].pixels)
        feed = self._raw_decoder_feed(
            self._embedding_of_first_image(), centre_prompt(*self.images[0].size)
        )
        parts = {
            "encoder": (
                model.encode,
                tensor,
                engine.encoder.session,
                {engine.contract.encoder_input_name: tensor},
            ),
            "decoder": (model.decode, feed, engine.decoder.session, feed),
        }
        for part, (torch_fn, torch_input, session, ort_feed) in parts.items():
            ort_call = _bare_run(session, ort_feed)

            def torch_call(fn: Callable[[Any], Any] = torch_fn, x: Any = torch_input) -> float:
                return _timed_call(fn, x)

            t.torch_first[part] = torch_call()
            self.progress("pytorch")
            for index in range(self.plan.torch_count):
                torch_ms, ort_ms = _pair(
                    torch_call, ort_call, index % 2 == 0, settle_s=RUNTIME_SWITCH_PAUSE_S
                )
                t.torch[part].append(torch_ms)
                t.torch_ort[part].append(ort_ms)
                self.progress("pytorch")
        t.memory["peak_rss_with_torch_mb"] = memory.peak_rss_mb()

    def compare_models(self) -> None:
        """Bare runs of our sessions and of ``compare``'s, alternated on the same inputs."""
        if self.compare is None:
            return
        other = Sam2Engine(self.compare, self.config)
        pixels = self.images[0].pixels
        tensor = preprocess(pixels)
        ours_embedding = self._embedding_of_first_image()
        other_embedding = other.encode(pixels)  # also the other encoder's first run
        self.progress("compare")
        prompt = centre_prompt(*self.images[0].size)
        no_mask = np.zeros((1, 1, LOW_RES, LOW_RES), np.float32)
        coords, labels = prompt_to_model_input(prompt, ours_embedding.orig_hw)
        calls = {
            "encoder": [
                _bare_run(e.encoder.session, {e.contract.encoder_input_name: tensor})
                for e in (self._engine, other)
            ],
            "decoder": [
                _bare_run(
                    e.decoder.session, e.contract.decoder_feed(emb, coords, labels, no_mask, False)
                )
                for e, emb in ((self._engine, ours_embedding), (other, other_embedding))
            ],
        }
        counts = {"encoder": self.plan.encoder_count, "decoder": self.plan.point_count}
        for part, (ours, theirs) in calls.items():
            samples: tuple[list[float], list[float]] = ([], [])
            for index in range(counts[part]):
                ours_ms, theirs_ms = _pair(ours, theirs, index % 2 == 0)
                samples[0].append(ours_ms)
                samples[1].append(theirs_ms)
                self.progress(f"compare {part}")
            self.timings.compare[part] = samples
        self.compare_name = other.display_name


def _pair(
    engine_call: Callable[[], float],
    raw_call: Callable[[], float],
    engine_first: bool,
    settle_s: float = 0.0,
) -> tuple[float, float]:
    """(first call's ms, second call's ms); ``engine_first`` says which runs first.

    Callers alternate the order from one iteration to the next so that neither call always runs
    right after the other (caches, thread pools waking up).
    """
    if engine_first:
        engine_ms = engine_call()
        time.sleep(settle_s)
        return engine_ms, raw_call()
    raw_ms = raw_call()
    time.sleep(settle_s)
    return engine_call(), raw_ms


def _timed_call(fn: Callable[[Any], Any], arg: Any) -> float:
    start = time.perf_counter()
    fn(arg)
    return _ms(start)


def _bare_run(session: Any, feed: dict[str, np.ndarray]) -> Callable[[], float]:
    """A timed ``session.run`` of every output on a fixed feed, returning milliseconds."""
    names = [o.name for o in session.get_outputs()]

    def call() -> float:
        start = time.perf_counter()
        session.run(names, feed)
        return _ms(start)

    return call


#: The phases in the order they run.
PHASES: tuple[Callable[[_Bench], None], ...] = (
    _Bench.first_call,
    _Bench.encoder_steady,
    _Bench.decoder_steady,
    _Bench.by_image,
    _Bench.by_points,
    _Bench.torch_eager,
    _Bench.compare_models,
)


def run_benchmark(
    files: ModelFiles,
    config: SessionConfig,
    images: Sequence[BenchImage],
    plan: BenchPlan,
    *,
    torch_source: TorchSource | None = None,
    torch_skipped_reason: str | None = None,
    compare: ModelFiles | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Run every phase and return the ``results.json`` document (see :func:`build_results`)."""
    tick = progress or (lambda _phase: None)
    bench = _Bench(files, config, images, plan, torch_source, compare, tick)
    load_before = load_average()
    for phase in PHASES:
        log.info("benchmark phase: %s", phase.__name__)
        phase(bench)
    if torch_source is None:
        bench.timings.torch_info = {"available": False, "reason": torch_skipped_reason}
    return build_results(bench, load_before)


def build_results(bench: _Bench, load_before: list[float] | None) -> dict[str, Any]:
    """The ``results.json`` document: ``p50_ms`` etc. are the engine's full calls, ``raw_*`` the
    bare ``session.run``; ``traces`` hold every identical-input run in order (Fig. 3)."""
    t = bench.timings
    machine = machine_info()
    engine = bench._engine
    manifest = bench.files.manifest
    encoder = _part(t.encoder, t.encoder_raw, t.encoder_load, t.encoder_first_run)
    encoder.update(_torch_figures(t.torch["encoder"], t.torch_ort["encoder"]))
    encoder["preprocess_p50_ms"] = _p50(t.preprocess)
    encoder["by_image"] = {name: _p50(v) for name, v in t.by_image.items()}
    encoder["torch_first_run_ms"] = _round(t.torch_first.get("encoder"))
    decoder = _part(t.decoder, t.decoder_raw, t.decoder_load, t.decoder_first_run)
    decoder.update(_torch_figures(t.torch["decoder"], t.torch_ort["decoder"]))
    decoder["torch_first_run_ms"] = _round(t.torch_first.get("decoder"))
    decoder["by_points"] = {str(n): _p50(v) for n, v in t.by_points.items()}
    decoder["raw_by_points"] = {str(n): _p50(v) for n, v in t.raw_by_points.items()}
    peak = t.memory.get("peak_rss_before_torch_mb")
    return {
        "schema": RESULTS_SCHEMA,
        "machine": machine,
        "load_average": {"before": load_before, "after": load_average()},
        "onnxruntime": machine["onnxruntime"],
        "provider": engine.provider,
        "model": {
            "name": engine.display_name,
            "variant": manifest.variant if manifest else None,
            "precision": manifest.precision if manifest else None,
            "weights": manifest.weights if manifest else "unknown",
            "encoder": str(bench.files.encoder),
            "decoder": str(bench.files.decoder),
            "contract": engine.contract.name,
        },
        "plan": bench.plan.resolved(),
        "threads": bench.config.threads,
        "images": [{"name": i.name, "width": i.size[0], "height": i.size[1]} for i in bench.images],
        "engine_load_ms": _round(t.engine_load),
        "encoder": encoder,
        "decoder": decoder,
        "peak_rss_mb": _round(peak),
        "memory": {key: _round(value) for key, value in t.memory.items()},
        "torch": t.torch_info,
        "compare": _compare_block(bench),
        "traces": {
            "encoder_ms": _rounded(t.encoder),
            "encoder_raw_ms": _rounded(t.encoder_raw),
            "decoder_ms": _rounded(t.decoder),
            "decoder_raw_ms": _rounded(t.decoder_raw),
        },
    }


def _torch_figures(torch: list[float], ort: list[float]) -> dict[str, Any]:
    """PyTorch p50/p95 and its ratio to the bare ONNX Runtime runs alternated with it."""
    torch_p50, ort_p50 = _p50(torch), _p50(ort)
    return {
        "torch_p50_ms": torch_p50,
        "torch_p95_ms": _round(latency_stats(torch).p95_ms) if torch else None,
        "torch_runs": len(torch),
        "torch_alternated_ort_p50_ms": ort_p50,
        "torch_over_ort": ratio(torch_p50, ort_p50),
    }


def _part(engine: list[float], raw: list[float], load: float, first_run: float) -> dict[str, Any]:
    """One model part's figures: ``p50_ms`` etc. for the engine, ``raw_*`` for session.run."""
    stats = latency_stats(engine).to_dict()
    raw_stats = latency_stats(raw)
    return {
        "load_ms": _round(load),
        "first_run_ms": _round(first_run),
        "first_ms": _round(load + first_run),
        **{k: v for k, v in stats.items() if k != "count"},
        "runs": stats["count"],
        "raw_p50_ms": _round(raw_stats.p50_ms),
        "raw_p95_ms": _round(raw_stats.p95_ms),
        "raw_max_ms": _round(raw_stats.max_ms),
        "overhead_ratio": ratio(stats["p50_ms"], raw_stats.p50_ms),
    }


def _compare_block(bench: _Bench) -> dict[str, Any] | None:
    """Bare-run p50s of both models and ``speedup`` = ours / theirs (> 1: theirs is faster)."""
    if not bench.timings.compare:
        return None
    block: dict[str, Any] = {"model": bench.compare_name}
    for part, (ours, theirs) in bench.timings.compare.items():
        ours_p50, theirs_p50 = _p50(ours), _p50(theirs)
        block[part] = {
            "runs": len(ours),
            "raw_p50_ms": ours_p50,
            "other_raw_p50_ms": theirs_p50,
            "speedup": ratio(ours_p50, theirs_p50),
        }
    return block


def _p50(values: Sequence[float]) -> float | None:
    return _round(float(np.median(values))) if len(values) else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(float(value), 3)


def _rounded(values: Sequence[float]) -> list[float]:
    return [round(v, 3) for v in values]
