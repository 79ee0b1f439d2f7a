"""Two encoder exports profiled per operator type in alternation (docs/BENCHMARKS.md).

    python docs/benchmarks/profile_ab.py OLD/encoder.onnx --rounds 6 --out profile_ab.json

Compares this checkout's ``export_cached()`` encoder ("new") with an earlier export of the same
weights ("old"). Each round profiles both sessions with ONNX Runtime's profiler (2 warm-up runs
dropped, 2 profiled; the app's session options, intra-op spinning on), order swapped every
round, so a slow spell of a noisy host falls on both. ``encoder_profile.py`` profiles each
variant once (3 runs), which on such a host cannot tell a 5 % change in one op type from noise.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from encoder_profile import options  # noqa: E402

from sam2_annotator.bench.environment import machine_info  # noqa: E402
from sam2_annotator.bench.op_profile import profile_by_op_type  # noqa: E402
from sam2_annotator.engine.image_io import load_image  # noqa: E402
from sam2_annotator.engine.preprocess import preprocess  # noqa: E402
from tests.conftest import SHARED_IMAGES, export_cached  # noqa: E402

OP_TYPES = ("Gemm", "MatMul", "FusedMatMul", "Transpose", "Split", "Softmax")


def op_ms(profile: dict, op_type: str) -> float:
    return sum(op["ms_per_run"] for op in profile["ops"] if op["op_type"] == op_type)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("baseline", type=Path, help="an earlier export's encoder.onnx")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--out", type=Path, default=Path("profile_ab.json"))
    args = parser.parse_args()

    models = {"new": export_cached() / "encoder.onnx", "old": args.baseline}
    feed = {"image": preprocess(load_image(SHARED_IMAGES / "truck.jpg"))}
    spinning = {"session.intra_op.allow_spinning": "1"}
    profiles: dict[str, list[dict]] = {name: [] for name in models}
    for round_no in range(args.rounds):
        order = list(models) if round_no % 2 == 0 else list(models)[::-1]
        for name in order:
            prof = profile_by_op_type(
                models[name], feed, runs=2, warmup=2, options=options(**spinning)
            )
            profiles[name].append(prof.as_dict())
            print(f"round {round_no} {name}: kernel {prof.kernel_ms_per_run:.0f} ms", flush=True)

    medians = {
        name: {"kernel_total": statistics.median(p["kernel_ms_per_run"] for p in runs)}
        | {t: statistics.median(op_ms(p, t) for p in runs) for t in OP_TYPES}
        for name, runs in profiles.items()
    }
    for name, row in medians.items():
        print(name, {k: round(v, 1) for k, v in row.items()})
    result = {"machine": machine_info(), "medians_ms": medians, "profiles": profiles}
    args.out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
