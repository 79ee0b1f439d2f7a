"""Speed and fidelity of ONNX Runtime dynamic-quantization schemes for the encoder.

Reproduces the "int8 schemes" table of docs/BENCHMARKS.md on the machine it runs on:

    python docs/benchmarks/int8_schemes.py --rounds 6 --out int8_schemes.json

Speed: bare encoder ``session.run`` on the pre-processed truck photo, every scheme's session
alternated in one loop (order reversed every round), intra-op spinning off, wall and CPU time.
Fidelity: the engine end to end (int8 encoder + decoder vs fp32) on the three shared photos,
six prompts each: embedding correlation and mask IoU.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sam2_annotator.annotations.masks import iou  # noqa: E402
from sam2_annotator.bench.environment import machine_info  # noqa: E402
from sam2_annotator.engine.image_io import load_image  # noqa: E402
from sam2_annotator.engine.model_files import ModelFiles  # noqa: E402
from sam2_annotator.engine.predictor import Sam2Engine  # noqa: E402
from sam2_annotator.engine.preprocess import preprocess  # noqa: E402
from sam2_annotator.engine.types import Prompt  # noqa: E402
from sam2_annotator.models import precision  # noqa: E402
from tests.conftest import SHARED_IMAGES, export_cached  # noqa: E402

SCHEMES = {
    "s8": dict(weight_type=QuantType.QInt8, per_channel=False, reduce_range=False),
    "s8_reduce_range": dict(weight_type=QuantType.QInt8, per_channel=False, reduce_range=True),
    "s8_per_channel": dict(weight_type=QuantType.QInt8, per_channel=True, reduce_range=False),
    "s8_per_channel_rr": dict(weight_type=QuantType.QInt8, per_channel=True, reduce_range=True),
    "u8u8": dict(weight_type=QuantType.QUInt8, per_channel=False, reduce_range=False),
}


def make_variants(src: Path, base: Path) -> dict[str, Path]:
    folders = {"fp32": src}
    for name, options in SCHEMES.items():

        def convert(s: Path, d: Path, options: dict = options) -> None:
            quantize_dynamic(
                s,
                d,
                op_types_to_quantize=list(precision.INT8_OP_TYPES),
                extra_options={"MatMulConstBOnly": True},
                **options,
            )

        precision.CONVERTERS["int8"] = precision.Converter("int8", f"scheme {name}", convert)
        precision.convert_precision(src, base / name, "int8")
        folders[name] = base / name
    return folders


def speed(folders: dict[str, Path], rounds: int) -> dict:
    x = preprocess(load_image(SHARED_IMAGES / "truck.jpg"))
    sessions = {}
    for name, folder in folders.items():
        options = ort.SessionOptions()
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        sessions[name] = ort.InferenceSession(
            str(folder / "encoder.onnx"), options, providers=["CPUExecutionProvider"]
        )
    feed_name = sessions["fp32"].get_inputs()[0].name
    for session in sessions.values():
        session.run(None, {feed_name: x})
    wall: dict[str, list[float]] = {n: [] for n in sessions}
    cpu: dict[str, list[float]] = {n: [] for n in sessions}
    for r in range(rounds):
        for name in list(sessions) if r % 2 == 0 else list(sessions)[::-1]:
            c, t = time.process_time(), time.perf_counter()
            sessions[name].run(None, {feed_name: x})
            wall[name].append((time.perf_counter() - t) * 1e3)
            cpu[name].append((time.process_time() - c) * 1e3)
        print("round", r, {n: round(v[-1]) for n, v in wall.items()}, os.getloadavg(), flush=True)
    return {"wall_ms": wall, "cpu_ms": cpu}


def prompts(h: int, w: int) -> list[Prompt]:
    def pts(points, labels=None) -> Prompt:
        xy = np.array([(fx * w, fy * h) for fx, fy in points], np.float32)
        return Prompt(points=xy, labels=np.array(labels or [1] * len(points), np.int64))

    box = Prompt(box=np.array([0.25 * w, 0.25 * h, 0.75 * w, 0.75 * h], np.float32))
    return [
        pts([(0.5, 0.5)]),
        pts([(0.3, 0.6)]),
        pts([(0.7, 0.4)]),
        pts([(0.45, 0.55), (0.55, 0.45)]),
        pts([(0.4, 0.5), (0.6, 0.5), (0.5, 0.3)], [1, 1, 0]),
        box,
    ]


def fidelity(folders: dict[str, Path]) -> dict:
    photos = {n: load_image(SHARED_IMAGES / f"{n}.jpg") for n in ("truck", "groceries", "cars")}
    reference = Sam2Engine(ModelFiles.from_folder(folders["fp32"]))
    refs = {}
    for n, image in photos.items():
        embedding = reference.encode(image)
        masks = [reference.decode(embedding, p).mask for p in prompts(*image.shape[:2])]
        refs[n] = (embedding, masks)
    found = {}
    for name, folder in folders.items():
        if name == "fp32":
            continue
        engine = Sam2Engine(ModelFiles.from_folder(folder))
        corr, ious = [], []
        for n, image in photos.items():
            embedding = engine.encode(image)
            ref_embedding, ref_masks = refs[n]
            a, b = embedding.image_embed.ravel(), ref_embedding.image_embed.ravel()
            corr.append(float(np.corrcoef(a, b)[0, 1]))
            for p, m in zip(prompts(*image.shape[:2]), ref_masks, strict=True):
                ious.append(iou(engine.decode(embedding, p).mask, m))
        found[name] = {"corr_image_embed": corr, "mask_iou": ious}
        print(name, min(corr), np.mean(ious), min(ious), flush=True)
    return found


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("int8_schemes.json"))
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folders = make_variants(export_cached(), Path(tmp))
        result = {
            "machine": machine_info(),
            "speed": speed(folders, args.rounds),
            "fidelity": fidelity(folders),
        }
    args.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
