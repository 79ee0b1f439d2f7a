"""Precision variants of an exported fp32 model folder: int8 (dynamic quantization) and fp16.

* ``int8``: ONNX Runtime's dynamic quantization of the matrix multiplications only (``MatMul``
  with a constant weight, ``Gemm``): weights stored as signed 8-bit per tensor **in the reduced
  7-bit range [-64, 64]** (``reduce_range``), activations quantized on the fly to uint8.
  Convolutions stay fp32 -- quantizing SAM2's convolutions is known to break its masks -- and so
  does everything else (attention's activation-by-activation products, normalisation, softmax).

  Why the reduced range: ONNX Runtime (MLAS) picks its u8 x s8 kernel at run time by cpuid. With
  VNNI (``vpdpbusd``, AVX-512 VNNI or AVX-VNNI) or AMX the products accumulate exactly in 32
  bits. Without it (AVX2, and AVX-512BW before Ice Lake) the kernel uses ``vpmaddubsw``, which
  adds two u8 x s8 products into a *saturating* signed 16-bit lane: 2 * 255 * 127 = 64770
  overflows 32767, and it did on SAM2's activations (embedding correlation int8 vs fp32 0.961 on
  an AVX2 Zen 3, masks IoU min 0.78). With weights in [-64, 64], 2 * 255 * 64 = 32640 fits, so
  no kernel saturates and the integer products are the same on every x86 CPU: one file that is
  correct everywhere (a model folder is copied between machines, so a per-ISA export would be
  wrong on the next one). Measured (docs/BENCHMARKS.md, "int8 schemes"): on a VNNI CPU as fast
  as full-range int8 (1.64x fp32 vs 1.54x, within the noise) with correlation 0.9996 instead of
  0.9998; full-range uint8 weights (U8U8, also exact everywhere) ran at only 1.19x fp32 there.
* ``fp16``: every float weight and operation in half precision with fp32 inputs and outputs
  (``keep_io_types``), so the engine's feeds are unchanged. Meant for GPU providers; ONNX
  Runtime's CPU provider runs it, but slower than fp32.

Both start from an fp32 export and write a new folder with ``encoder.onnx``, ``decoder.onnx`` and
a manifest whose ``precision`` says what was done. onnx and onnxruntime's tools are imported
inside the converters so that importing this module stays cheap.
"""

from __future__ import annotations

import datetime as _dt
import logging
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam2_annotator.engine.manifest import FileEntry, Manifest, sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.errors import ModelError, UserError

log = logging.getLogger(__name__)

ENCODER_FILE = "encoder.onnx"
DECODER_FILE = "decoder.onnx"
#: Operator types int8 quantization touches; everything else (Conv included) stays fp32.
INT8_OP_TYPES: tuple[str, ...] = ("MatMul", "Gemm")


@dataclass(frozen=True)
class Converter:
    """One precision: how to convert a single fp32 ONNX file, and what that means in words."""

    name: str
    method: str
    convert: Callable[[Path, Path], None]


def _to_int8(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet_preprocessing_advice():
        quantize_dynamic(
            src,
            dst,
            op_types_to_quantize=list(INT8_OP_TYPES),
            per_channel=False,
            weight_type=QuantType.QInt8,
            # 7-bit weights: no saturation in AVX2's vpmaddubsw kernel (see the module docstring).
            reduce_range=True,
            # Only products with a constant weight: attention's activation x activation
            # products would need both sides quantized on the fly for little gain.
            extra_options={"MatMulConstBOnly": True},
        )


def _to_fp16(src: Path, dst: Path) -> None:
    import onnx
    from onnxruntime.transformers.float16 import convert_float_to_float16

    model = convert_float_to_float16(onnx.load(str(src)), keep_io_types=True)
    onnx.save(model, str(dst))


#: Precisions we can convert an fp32 folder to.
CONVERTERS: dict[str, Converter] = {
    "int8": Converter(
        "int8",
        "onnxruntime.quantization.quantize_dynamic: MatMul (constant weight) and Gemm, "
        "QInt8 weights per tensor, reduce_range (7-bit, no vpmaddubsw saturation on AVX2); "
        "Conv and all other ops fp32",
        _to_int8,
    ),
    "fp16": Converter(
        "fp16",
        "onnxruntime.transformers.float16.convert_float_to_float16, keep_io_types=True",
        _to_fp16,
    ),
}
PRECISIONS: tuple[str, ...] = ("fp32", *CONVERTERS)


class _DropMessage(logging.Filter):
    def __init__(self, fragment: str) -> None:
        super().__init__()
        self.fragment = fragment

    def filter(self, record: logging.LogRecord) -> bool:
        return self.fragment not in record.getMessage()


@contextmanager
def _quiet_preprocessing_advice() -> Iterator[None]:
    """Hide the quantizer's "run pre-processing first" warning (it goes to the root logger).

    Its pre-processing (symbolic shape inference) fails on SAM2's encoder graph, and the
    fusions it would enable are the ones ONNX Runtime applies at session creation anyway.
    """
    log.debug("quantizing without onnxruntime's shape pre-processing (it fails on SAM2 graphs)")
    root = logging.getLogger()
    drop = _DropMessage("consider to run pre-processing before quantization")
    handlers = list(root.handlers)
    root.addFilter(drop)
    for handler in handlers:
        handler.addFilter(drop)
    try:
        yield
    finally:
        root.removeFilter(drop)
        for handler in handlers:
            handler.removeFilter(drop)


def convert_precision(src_dir: Path, out_dir: Path, precision: str) -> Manifest:
    """Write the ``precision`` variant of the fp32 model in ``src_dir`` into ``out_dir``.

    The new manifest keeps the source's variant, weights, seed and checkpoint, sets
    ``precision``, records fresh sha256 sums and, under ``exporter.converted_from``, the source
    files' sums. Raises :class:`UserError` / :class:`ModelError` for an unknown precision, a
    source that is not fp32, or ``out_dir`` being the source folder.
    """
    converter = CONVERTERS.get(precision)
    if converter is None:
        raise UserError(f"unknown precision {precision!r}; choose one of: {', '.join(CONVERTERS)}")
    src_dir, out_dir = Path(src_dir), Path(out_dir)
    files = ModelFiles.from_folder(src_dir)
    source = files.manifest
    if source is not None and source.precision != "fp32":
        raise ModelError(
            f"{src_dir} is already {source.precision}; convert from the fp32 export instead"
        )
    if out_dir.resolve() == src_dir.resolve():
        raise UserError("write the converted model to a new folder, not over its source")
    out_dir.mkdir(parents=True, exist_ok=True)
    _check_no_other_models(out_dir)
    for part, src in ((ENCODER_FILE, files.encoder), (DECODER_FILE, files.decoder)):
        log.info("converting %s to %s", src, precision)
        tmp = out_dir / f".{part}.{os.getpid()}.tmp"
        try:
            converter.convert(src, tmp)
            _restore_io_declarations(src, tmp)
            os.replace(tmp, out_dir / part)
        finally:
            tmp.unlink(missing_ok=True)
    manifest = _manifest(files, source, out_dir, converter)
    manifest.write(out_dir)
    log.info("wrote %s to %s", manifest.display_name, out_dir)
    return manifest


def _restore_io_declarations(source: Path, converted: Path) -> None:
    """Give the converted graph the source's input/output declarations back.

    The quantizer re-runs shape inference and leaves symbolic dimensions on outputs that the
    source declares as fixed; the I/O declarations of a precision variant must be the fp32 ones.
    """
    import onnx

    declared = onnx.load(str(source), load_external_data=False).graph
    types = {v.name: v.type for v in (*declared.input, *declared.output)}
    model = onnx.load(str(converted))
    for value in (*model.graph.input, *model.graph.output):
        if value.name in types:
            value.type.CopyFrom(types[value.name])
    onnx.save(model, str(converted))


def _check_no_other_models(out_dir: Path) -> None:
    """``ModelFiles.from_folder`` needs exactly one encoder and one decoder in the folder."""
    ours = {ENCODER_FILE, DECODER_FILE}
    others = sorted(
        p.name
        for p in out_dir.glob("*.onnx")
        if p.name not in ours and ("encoder" in p.name or "decoder" in p.name)
    )
    if others:
        raise UserError(
            f"{out_dir} already holds other model files ({', '.join(others)}); "
            "choose an empty folder"
        )


def _manifest(
    files: ModelFiles, source: Manifest | None, out_dir: Path, converter: Converter
) -> Manifest:
    import onnxruntime as ort

    entries = {}
    for name in (ENCODER_FILE, DECODER_FILE):
        path = out_dir / name
        entries[name] = FileEntry(sha256=sha256_file(path), bytes=path.stat().st_size)
    converted_from = {
        "precision": "fp32",
        ENCODER_FILE: _sha_of(source, files.encoder),
        DECODER_FILE: _sha_of(source, files.decoder),
    }
    exporter: dict[str, Any] = dict(source.exporter) if source is not None else {}
    exporter.update(
        converted_from=converted_from,
        converter={"method": converter.method, "onnxruntime": ort.__version__},
    )
    return Manifest(
        variant=source.variant if source is not None else files.encoder.parent.name,
        weights=source.weights if source is not None else "unknown",
        files=entries,
        contract=source.contract if source is not None else "unknown",
        precision=converter.name,
        input_size=source.input_size if source is not None else 1024,
        seed=source.seed if source is not None else None,
        io={
            "encoder": graph_io(out_dir / ENCODER_FILE),
            "decoder": graph_io(out_dir / DECODER_FILE),
        },
        source_checkpoint=source.source_checkpoint if source is not None else None,
        exporter=exporter,
        created=_dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    )


def _sha_of(source: Manifest | None, path: Path) -> str:
    entry = source.files.get(path.name) if source is not None else None
    return entry.sha256 if entry is not None else sha256_file(path)


def graph_io(path: Path) -> dict[str, list[dict[str, Any]]]:
    """Inputs and outputs as ONNX Runtime reports them (as the exporter's manifest has them)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return {
        kind: [{"name": a.name, "shape": list(a.shape), "dtype": a.type} for a in args]
        for kind, args in (("inputs", session.get_inputs()), ("outputs", session.get_outputs()))
    }
