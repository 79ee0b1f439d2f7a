"""Choose ONNX Runtime execution providers and open sessions on them.

Users name providers by short names (``cuda``, ``tensorrt``, ``directml``/``dml``, ``coreml``,
``openvino``, ``cpu``) in their order of preference, or ``auto``. Providers the installed
onnxruntime build does not offer are skipped with a warning, CPU is always the last resort, and a
session that cannot be created on an accelerator is retried on CPU. :class:`LoadedSession` says
which provider the session really runs on, because ONNX Runtime may quietly drop an accelerator
(for example when the CUDA libraries are missing).

onnxruntime is imported inside the functions that need it, so that command modules can use the
names and :func:`parse_provider_list` in their argument parsers without slowing down ``--help``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from sam2_annotator.errors import ModelError, UserError

if TYPE_CHECKING:
    import onnxruntime as ort

log = logging.getLogger(__name__)

#: The pseudo-provider that expands to :data:`AUTO_ORDER`.
AUTO = "auto"
#: The provider every onnxruntime build has; always the last resort.
CPU = "cpu"


@dataclass(frozen=True)
class ProviderInfo:
    """One execution provider: our short name, ONNX Runtime's name, accepted aliases."""

    name: str
    ort_name: str
    label: str
    aliases: tuple[str, ...] = ()
    #: Providers added right after this one when available (ONNX Runtime's advice for TensorRT:
    #: CUDA runs the nodes TensorRT cannot, rather than the CPU).
    companions: tuple[str, ...] = ()


#: Every provider we know, in the order help texts list them.
PROVIDERS: tuple[ProviderInfo, ...] = (
    ProviderInfo("cuda", "CUDAExecutionProvider", "NVIDIA CUDA"),
    ProviderInfo("tensorrt", "TensorrtExecutionProvider", "NVIDIA TensorRT", companions=("cuda",)),
    ProviderInfo("directml", "DmlExecutionProvider", "DirectML (Windows GPUs)", ("dml",)),
    ProviderInfo("coreml", "CoreMLExecutionProvider", "Apple Core ML"),
    ProviderInfo("openvino", "OpenVINOExecutionProvider", "Intel OpenVINO"),
    ProviderInfo("cpu", "CPUExecutionProvider", "CPU"),
)

#: What ``auto`` tries, best first. TensorRT only when asked for: building its engine on first
#: use takes minutes, which would look like a hang.
AUTO_ORDER: tuple[str, ...] = ("cuda", "directml", "coreml", "openvino", "cpu")

_BY_NAME: dict[str, ProviderInfo] = {
    key: info for info in PROVIDERS for key in (info.name, *info.aliases)
}
_BY_ORT_NAME: dict[str, ProviderInfo] = {info.ort_name: info for info in PROVIDERS}

#: ONNX Runtime's exception classes that mean "this file is not a usable model" on any provider,
#: by class name, so a retry on CPU would only fail again.
_MODEL_FILE_ERRORS: dict[str, str] = {
    "NoSuchFile": "file not found",
    "InvalidProtobuf": "not a valid ONNX file (corrupt or truncated?)",
    "InvalidGraph": "the ONNX graph is invalid",
    "NoModel": "the file holds no model",
}

#: Other ONNX Runtime failures (provider or runtime problems), by class name. The bindings have no
#: common base class for them; plain RuntimeError/ValueError also come out of the bindings.
_RUNTIME_ERRORS: tuple[str, ...] = (
    "Fail",
    "EPFail",
    "RuntimeException",
    "InvalidArgument",
    "NotImplemented",
    "NotFound",
    "EngineError",
    "DeviceReset",
    "ModelLoadCanceled",
    "ModelRequiresCompilation",
)


@dataclass(frozen=True)
class SessionConfig:
    """How to create sessions: provider preference (short names or ``auto``) and CPU threads.

    ``threads`` sets ONNX Runtime's intra-op thread count; 0 leaves ONNX Runtime's default (one
    per physical core).
    """

    providers: tuple[str, ...] = (AUTO,)
    threads: int = 0

    def __post_init__(self) -> None:
        names = self.providers
        if isinstance(names, str):  # "cuda,cpu" from a config file or environment variable
            names = parse_provider_list(names)
        object.__setattr__(self, "providers", tuple(_normalise(names)))
        if self.threads < 0:
            raise UserError(f"thread count must be 0 (automatic) or positive, not {self.threads}")


@dataclass(frozen=True)
class LoadedSession:
    """An open session and the provider it really runs on.

    ``requested`` is the user's preference as configured (may hold ``auto``); ``attempted`` the
    available providers first handed to ONNX Runtime, best first, ending with ``cpu``;
    ``provider`` the one the session really runs on (``session.get_providers()[0]``). All are
    short names.
    """

    session: ort.InferenceSession
    provider: str
    requested: tuple[str, ...]
    attempted: tuple[str, ...]
    path: Path

    @property
    def fell_back(self) -> bool:
        """True when the session does not run on the best provider that was attempted."""
        return self.provider != self.attempted[0]


# --------------------------------------------------------------------------- names


def provider_names() -> list[str]:
    """All short names we accept, aliases included, plus ``auto``."""
    return [AUTO, *_BY_NAME]


def available_providers() -> list[str]:
    """Short names of the providers the installed onnxruntime build offers, best first."""
    import onnxruntime as ort

    offered = set(ort.get_available_providers())
    return [info.name for info in PROVIDERS if info.ort_name in offered]


def parse_provider_list(text: str) -> list[str]:
    """``"cuda, cpu"`` -> ``["cuda", "cpu"]``; aliases resolved, duplicates dropped.

    Unknown names raise :class:`UserError` listing the valid ones. Call it in a command's ``run``
    rather than as an argparse ``type``: argparse only turns ValueError/TypeError into usage
    errors, so a UserError there would escape ``main``'s handler as a traceback.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise UserError(f"no execution provider given; choose from {', '.join(provider_names())}")
    return _normalise(names)


def _normalise(names: Iterable[str]) -> list[str]:
    out: list[str] = []
    for raw in names:
        key = raw.strip().lower()
        if key != AUTO and key not in _BY_NAME:
            raise UserError(
                f"unknown execution provider {raw!r}; choose from {', '.join(provider_names())}"
            )
        name = key if key == AUTO else _BY_NAME[key].name
        if name not in out:
            out.append(name)
    if not out:
        raise UserError("no execution provider given")
    return out


def short_name(ort_name: str) -> str:
    """``CUDAExecutionProvider`` -> ``cuda``; names we do not know are returned unchanged."""
    info = _BY_ORT_NAME.get(ort_name)
    return info.name if info is not None else ort_name


def describe_providers() -> str:
    """A few lines for ``--help`` and status texts: known names, what this build offers."""
    known = ", ".join(
        info.name + (f" (alias {', '.join(info.aliases)})" if info.aliases else "")
        for info in PROVIDERS
    )
    return (
        f"execution providers: {known}; 'auto' tries {' > '.join(AUTO_ORDER)}.\n"
        f"available in this onnxruntime build: {', '.join(available_providers())}"
    )


# --------------------------------------------------------------------------- resolution


def resolve_providers(requested: Sequence[str], available: Sequence[str]) -> list[str]:
    """The providers to hand to ONNX Runtime, in order, always ending with ``cpu``.

    ``auto`` expands in place to the available part of :data:`AUTO_ORDER`; a provider's
    companions follow it when available. Explicitly requested providers that are not available
    are skipped with a warning naming them.
    """
    chosen: list[str] = []
    missing: list[str] = []
    for name in requested:
        candidates = [p for p in AUTO_ORDER if p in available] if name == AUTO else [name]
        for candidate in candidates:
            if candidate not in available:
                missing.append(candidate)
                continue
            for provider in (candidate, *_BY_NAME[candidate].companions):
                if provider in available and provider not in chosen:
                    chosen.append(provider)
    if missing:
        log.warning(
            "execution provider(s) %s not available in this onnxruntime build (it offers %s); "
            "skipping them",
            ", ".join(missing),
            ", ".join(available) or "none",
        )
    if CPU in chosen:
        chosen.remove(CPU)
    return [*chosen, CPU]


def _ort_error_classes() -> tuple[tuple[type[Exception], ...], tuple[type[Exception], ...]]:
    """(model-file error classes, all ONNX Runtime error classes) present in this build."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    def classes(names: Iterable[str]) -> tuple[type[Exception], ...]:
        return tuple(getattr(state, n) for n in names if isinstance(getattr(state, n, None), type))

    model_errors = classes(_MODEL_FILE_ERRORS)
    return model_errors, (*model_errors, *classes(_RUNTIME_ERRORS), RuntimeError, ValueError)


def _model_error(path: Path, exc: Exception) -> ModelError:
    reason = _MODEL_FILE_ERRORS.get(type(exc).__name__)
    if reason is None:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ModelError(f"cannot load ONNX model {path}: {reason}")


# --------------------------------------------------------------------------- sessions


def session_options(config: SessionConfig) -> ort.SessionOptions:
    """Full graph optimisation; the configured intra-op thread count when set."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    # ORT's own warnings (e.g. "Error merging shape info" on exported SAM2 graphs) are noise to a
    # user; real failures still raise. Our own logging says what matters.
    options.log_severity_level = 3
    # No memory pattern: with it ONNX Runtime plans one block for all of a run's activations and
    # keeps it, which made the SAM2 encoder's peak RSS ~550 MB higher (docs/BENCHMARKS.md,
    # "Memory") for no measurable speed-up on CPU.
    options.enable_mem_pattern = False
    if config.threads > 0:
        options.intra_op_num_threads = config.threads
    return options


def create_session(
    path: str | os.PathLike[str], config: SessionConfig | None = None
) -> LoadedSession:
    """Open ``path`` on the best provider ``config`` allows; fall back to CPU if that fails.

    Raises :class:`ModelError` naming the file when it is missing, a folder, or not a model
    ONNX Runtime can load even on CPU.
    """
    config = config or SessionConfig()
    path = Path(path)
    if not path.exists():
        raise ModelError(f"model file not found: {path}")
    if path.is_dir():
        raise ModelError(f"not an ONNX file but a folder: {path}")

    attempted = resolve_providers(config.providers, available_providers())
    model_errors, ort_errors = _ort_error_classes()
    retried = False
    try:
        session = _open(path, attempted, config)
    except model_errors as exc:
        raise _model_error(path, exc) from exc
    except ort_errors as exc:
        if attempted == [CPU]:
            raise _model_error(path, exc) from exc
        log.warning(
            "could not create a session for %s on %s (%s); retrying on CPU",
            path.name,
            ", ".join(attempted[:-1]),
            _first_line(exc),
        )
        try:
            session = _open(path, [CPU], config)
        except ort_errors as cpu_exc:
            raise _model_error(path, cpu_exc) from cpu_exc
        retried = True

    loaded = LoadedSession(
        session=session,
        provider=short_name(session.get_providers()[0]),
        requested=config.providers,
        attempted=tuple(attempted),
        path=path,
    )
    if loaded.fell_back and not retried:
        # ONNX Runtime dropped the provider on its own, e.g. when its libraries are missing.
        log.warning(
            "%s: asked for %s but ONNX Runtime runs it on %s",
            path.name,
            loaded.attempted[0],
            loaded.provider,
        )
    log.info("%s runs on %s", path.name, loaded.provider)
    return loaded


def _open(path: Path, providers: Sequence[str], config: SessionConfig) -> ort.InferenceSession:
    import onnxruntime as ort

    return ort.InferenceSession(
        os.fspath(path),
        sess_options=session_options(config),
        providers=[_BY_NAME[name].ort_name for name in providers],
        # We fall back ourselves, with logging; ONNX Runtime's own fallback prints to stdout.
        enable_fallback=0,
    )


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
