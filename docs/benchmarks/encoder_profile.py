"""Where the fp32 encoder's time goes, and what the levers buy (docs/BENCHMARKS.md, "fp32 encoder").

    python docs/benchmarks/encoder_profile.py --rounds 8 --out encoder_profile.json \
        [--baseline OLD/encoder.onnx]

``--baseline``: an encoder exported by an earlier exporter from the same weights (e.g. a
checkout's ``export_cached()`` before a graph rewrite), profiled and timed as one more variant
with the app's session options, so a rewrite's effect comes from the same alternated loop.

1. FLOPs of the encoder (PyTorch's FlopCounterMode on the exporter's own module: matmuls,
   convolutions and SDPA, 2 FLOP per multiply-accumulate) and the CPU's fp32 peak, both
   nominal (cores x FLOP/cycle x clock) and measured (a
   large numpy/OpenBLAS sgemm on all cores: the best dense kernel this machine has).
2. ONNX Runtime's profiler per operator type for each variant of the encoder session.
3. Bare ``session.run`` of every variant and PyTorch eager (the exporter's own modules, same
   weights), alternated in one loop on the pre-processed truck photo, order rotated every round,
   with a short pause between runtimes (neither sees the other's spinning threads).
4. Parity of every ONNX variant against PyTorch (max abs difference of the three outputs).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from sam2_annotator.bench.environment import machine_info  # noqa: E402
from sam2_annotator.bench.op_profile import profile_by_op_type  # noqa: E402
from sam2_annotator.bench.peak import fp32_peak  # noqa: E402
from sam2_annotator.engine.image_io import load_image  # noqa: E402
from sam2_annotator.engine.model_files import ModelFiles  # noqa: E402
from sam2_annotator.engine.preprocess import preprocess  # noqa: E402
from tests.conftest import SHARED_IMAGES, TEST_CONFIG, TEST_SEED, export_cached  # noqa: E402

PAUSE_S = 0.2


def options(**overrides) -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = os.cpu_count() or 1
    opts.enable_mem_pattern = False  # as the app's sessions (engine/providers.py)
    entries = {"session.intra_op.allow_spinning": "0"} | overrides
    for key, value in entries.items():
        opts.add_session_config_entry(key, value)
    return opts


def fused_sam2(src: Path, dst: Path) -> Path:
    """ONNX Runtime's own transformer optimizer for SAM2 (MultiHeadAttention, LayerNorm, Gelu)."""
    from onnxruntime.transformers.optimizer import optimize_model

    model = optimize_model(str(src), model_type="sam2", opt_level=0, use_gpu=False)
    counts = model.get_fused_operator_statistics()
    model.save_model_to_file(str(dst))
    print("sam2 fusion:", {k: v for k, v in counts.items() if v})
    return dst


@contextlib.contextmanager
def count_sdpa():
    """FlopCounterMode does not see CPU SDPA (flash-attention for CPU): count Q.K^T and P.V
    (2 x 2 x Lq x Lk x head_dim per head) from the shapes Hiera passes to it."""
    import torch.nn.functional as F

    original = F.scaled_dot_product_attention
    total = {"flops": 0.0}

    def counting(q, k, v, *args, **kwargs):
        batch = math.prod(q.shape[:-2])
        total["flops"] += 4.0 * batch * q.shape[-2] * k.shape[-2] * q.shape[-1]
        return original(q, k, v, *args, **kwargs)

    F.scaled_dot_product_attention = counting
    try:
        yield total
    finally:
        F.scaled_dot_product_attention = original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--profile-runs", type=int, default=3)
    parser.add_argument("--no-torch", action="store_true")
    parser.add_argument("--flops-only", action="store_true")
    parser.add_argument("--out", type=Path, default=Path("encoder_profile.json"))
    parser.add_argument("--baseline", type=Path, help="an earlier export's encoder.onnx")
    args = parser.parse_args()

    folder = export_cached()
    files = ModelFiles.from_folder(folder)
    tensor = preprocess(load_image(SHARED_IMAGES / "truck.jpg"))
    feed = {"image": tensor}
    cores = os.cpu_count() or 1
    result: dict = {"machine": machine_info(), "load_before": list(os.getloadavg())}

    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from sam2_annotator.models.export_reference import TorchModel, TorchSource

    model = TorchModel.load(TorchSource(TEST_CONFIG, None, TEST_SEED), threads=cores)
    with FlopCounterMode(display=False) as counter, count_sdpa() as sdpa:
        model.encode(tensor)
    flops = {str(k): float(v) for k, v in counter.get_flop_counts()["Global"].items()}
    flops["scaled_dot_product_attention"] = sdpa["flops"]
    total_gflop = sum(flops.values()) / 1e9
    peak = fp32_peak()
    nominal = peak.nominal_gflops or float("nan")
    measured = peak.measured_sgemm_gflops or float("nan")
    result["flops"] = {k: v / 1e9 for k, v in flops.items()} | {"total_gflop": total_gflop}
    result["peak"] = peak.to_dict()
    print(f"encoder: {total_gflop:.1f} GFLOP; peak nominal {nominal:.0f}, sgemm {measured:.0f}")
    print({k: round(v / 1e9, 1) for k, v in flops.items()})
    if args.flops_only:
        return 0

    with tempfile.TemporaryDirectory() as tmp:
        variants = {
            "exported": (files.encoder, options()),
            "sam2_fused": (fused_sam2(files.encoder, Path(tmp) / "fused.onnx"), options()),
            "spinning": (files.encoder, options(**{"session.intra_op.allow_spinning": "1"})),
        }
        if args.baseline:
            spinning = {"session.intra_op.allow_spinning": "1"}
            variants["baseline_spinning"] = (args.baseline, options(**spinning))
        result["profiles"] = {}
        for name, (path, opts) in variants.items():
            prof = profile_by_op_type(path, feed, runs=args.profile_runs, warmup=2, options=opts)
            result["profiles"][name] = prof.as_dict()
            print(f"\n{name}: kernel {prof.kernel_ms_per_run:.0f} ms/run, wall {prof.wall_ms}")
            for op in prof.ops[:14]:
                print(f"  {op.op_type:28s} {op.ms_per_run:8.1f} ms {op.share:6.1%} x{op.nodes}")

        sessions = {
            name: ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
            for name, (path, opts) in variants.items()
        }
        calls = {name: (lambda s=s: s.run(None, feed)) for name, s in sessions.items()}
        outputs = {name: call() for name, call in calls.items()}
        if not args.no_torch:
            calls["pytorch"] = lambda: model.encode(tensor)
            reference = model.encode(tensor)
            result["torch"] = {"version": torch.__version__, "threads": torch.get_num_threads()}
            result["parity_max_abs"] = {
                name: max(
                    float(np.abs(out - reference[o.name]).max())
                    for out, o in zip(outs, sessions[name].get_outputs(), strict=True)
                )
                for name, outs in outputs.items()
            }
            print("parity vs torch:", result["parity_max_abs"])
        for call in calls.values():
            call()
        times: dict[str, list[float]] = {name: [] for name in calls}
        names = list(calls)
        for round_ in range(args.rounds):
            order = names[round_ % len(names) :] + names[: round_ % len(names)]
            for name in order:
                start = time.perf_counter()
                calls[name]()
                times[name].append((time.perf_counter() - start) * 1000.0)
                time.sleep(PAUSE_S)
    p50 = {name: float(np.median(v)) for name, v in times.items()}
    result["alternated_ms"] = times
    result["p50_ms"] = p50
    result["gflops_achieved"] = {name: total_gflop / (ms / 1000.0) for name, ms in p50.items()}
    result["load_after"] = list(os.getloadavg())
    print("\np50 ms:", {k: round(v, 1) for k, v in p50.items()})
    if "pytorch" in p50:
        for name in variants:
            print(f"pytorch / {name}: {p50['pytorch'] / p50[name]:.3f}")
    for name, g in result["gflops_achieved"].items():
        print(f"{name}: {g:.0f} GFLOP/s = {g / nominal:.0%} nominal, {g / measured:.0%} sgemm")
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
