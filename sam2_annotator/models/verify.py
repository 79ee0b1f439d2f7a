"""Check that a model folder is usable: checksums, both graphs load on CPU, a known contract.

Used by ``models verify`` and by the downloader before it installs anything.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sam2_annotator.engine.manifest import MANIFEST_NAME, Manifest, sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.engine.types import TensorSpec
from sam2_annotator.errors import ModelError

log = logging.getLogger(__name__)

Signature = dict[str, TensorSpec]


@dataclass(frozen=True)
class GraphIO:
    inputs: Signature
    outputs: Signature

    def to_json(self) -> dict[str, list[dict[str, Any]]]:
        """The layout our exporter writes into ``manifest.json``'s ``io``."""
        return {
            kind: [{"name": s.name, "shape": list(s.shape), "dtype": s.dtype} for s in sig.values()]
            for kind, sig in (("inputs", self.inputs), ("outputs", self.outputs))
        }


@dataclass(frozen=True)
class VerifyReport:
    folder: Path
    files: ModelFiles
    contract: str
    encoder: GraphIO
    decoder: GraphIO
    checked_sha256: tuple[str, ...] = field(default_factory=tuple)
    #: True when the manifest was just written from these very files (a download or an import
    #: of files without one): it records them for later checks but proves nothing about them.
    manifest_written: bool = False

    @property
    def manifest(self) -> Manifest | None:
        return self.files.manifest

    def lines(self) -> list[str]:
        """A human-readable summary; random weights are said loudly."""
        m = self.manifest
        out = [
            f"folder:   {self.folder}",
            f"encoder:  {self.files.encoder.name}",
            f"decoder:  {self.files.decoder.name}",
            f"variant:  {m.variant if m else 'unknown (no manifest.json)'}",
            f"weights:  {m.weights if m else 'unknown (no manifest.json)'}",
        ]
        if m is not None and m.is_random_init:
            out.append(
                "WARNING:  RANDOM-INIT WEIGHTS - this is a test model; its masks are meaningless"
            )
        if self.checked_sha256:
            out.append(f"sha256:   ok against manifest.json ({', '.join(self.checked_sha256)})")
        elif self.manifest_written:
            out.append(
                "manifest: written now from these files (`models verify` checks them against it "
                "later; it proves nothing about the files themselves)"
            )
        else:
            out.append("sha256:   not checked (no manifest.json)")
        out.append(f"contract: {self.contract}")
        for label, graph in (("encoder", self.encoder), ("decoder", self.decoder)):
            out.append(f"{label} inputs:  {_describe(graph.inputs)}")
            out.append(f"{label} outputs: {_describe(graph.outputs)}")
        return out


def _describe(sig: Mapping[str, TensorSpec]) -> str:
    return ", ".join(
        f"{s.name} {list(s.shape)} {s.dtype.removeprefix('tensor(').rstrip(')')}"
        for s in sig.values()
    )


def _ort_errors() -> tuple[type[BaseException], ...]:
    """ONNX Runtime's exception classes (they derive from ``Exception`` directly)."""
    from onnxruntime.capi import onnxruntime_pybind11_state as state

    names = (
        "Fail",
        "InvalidArgument",
        "NoSuchFile",
        "NoModel",
        "EngineError",
        "RuntimeException",
        "InvalidProtobuf",
        "ModelLoaded",
        "NotImplemented",
        "InvalidGraph",
        "EPFail",
    )
    found = tuple(getattr(state, n) for n in names if hasattr(state, n))
    return (*found, OSError, RuntimeError)


def load_io(path: Path) -> GraphIO:
    """Load one graph on CPU (no optimisation: we only need it to be loadable) and read its I/O."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.log_severity_level = 3
    try:
        session = ort.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except _ort_errors() as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise ModelError(f"ONNX Runtime cannot load {path}: {first}") from exc
    return GraphIO(_signature(session.get_inputs()), _signature(session.get_outputs()))


def _signature(args: Any) -> Signature:
    return {a.name: TensorSpec(a.name, tuple(a.shape), a.type) for a in args}


def check_manifest_files(folder: Path, manifest: Manifest) -> tuple[str, ...]:
    """Size and sha256 of every file the manifest lists; returns the names checked."""
    checked = []
    for name, entry in sorted(manifest.files.items()):
        path = folder / name
        if not path.is_file():
            raise ModelError(f"{path} is listed in {MANIFEST_NAME} but missing")
        size = path.stat().st_size
        if size != entry.bytes:
            raise ModelError(
                f"{path} has {size} bytes but {MANIFEST_NAME} says {entry.bytes}; "
                "the file is truncated or was replaced"
            )
        digest = sha256_file(path)
        if digest != entry.sha256.lower():
            raise ModelError(
                f"{path} sha256 {digest} does not match {MANIFEST_NAME} ({entry.sha256}); "
                "the file is corrupt or was replaced"
            )
        checked.append(name)
    return tuple(checked)


def verify_folder(folder: str | Path) -> VerifyReport:
    """Verify a model folder or raise :class:`ModelError` with one clear reason."""
    from sam2_annotator.engine.contracts import detect_contract

    folder = Path(folder)
    files = ModelFiles.from_folder(folder)
    checked = check_manifest_files(folder, files.manifest) if files.manifest else ()
    encoder = load_io(files.encoder)
    decoder = load_io(files.decoder)
    contract = detect_contract(encoder.inputs, encoder.outputs, decoder.inputs, decoder.outputs)
    log.info("verified %s: contract %s", folder, contract.name)
    return VerifyReport(
        folder=folder,
        files=files,
        contract=contract.name,
        encoder=encoder,
        decoder=decoder,
        checked_sha256=checked,
    )
