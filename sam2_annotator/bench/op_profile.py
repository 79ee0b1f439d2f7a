"""Where an ONNX Runtime session spends its time, per operator type (ONNX Runtime's profiler).

``profile_by_op_type`` runs a session with profiling on, drops the warm-up runs and sums the
kernel time of every node per operator type (``Conv``, ``MatMul``, ``FusedMatMul``, ...), per
run. The first runs of a session are slower (allocation, thread pools), hence ``warmup``.
"""

from __future__ import annotations

import json
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort


@dataclass(frozen=True)
class OpTypeTime:
    """Kernel time of one operator type, per run."""

    op_type: str
    ms_per_run: float
    nodes: int  # kernels of this type executed per run
    share: float  # of the summed kernel time


@dataclass(frozen=True)
class OpProfile:
    runs: int
    wall_ms: list[float]  # ``model_run`` duration of each profiled run
    ops: list[OpTypeTime]  # largest first

    @property
    def kernel_ms_per_run(self) -> float:
        return sum(op.ms_per_run for op in self.ops)

    def as_dict(self) -> dict:
        return {
            "runs": self.runs,
            "wall_ms": self.wall_ms,
            "kernel_ms_per_run": self.kernel_ms_per_run,
            "ops": [op.__dict__ for op in self.ops],
        }


def profile_by_op_type(
    model_path: str | Path,
    feed: dict[str, np.ndarray],
    runs: int = 3,
    warmup: int = 1,
    options: ort.SessionOptions | None = None,
) -> OpProfile:
    """Run ``model_path`` ``warmup + runs`` times with profiling; per-op-type time of ``runs``."""
    options = options or ort.SessionOptions()
    with tempfile.TemporaryDirectory() as tmp:
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
        for _ in range(warmup + runs):
            session.run(None, feed)
        events = json.loads(Path(session.end_profiling()).read_text())
    return summarize_events(events, warmup)


def summarize_events(events: list[dict], warmup: int) -> OpProfile:
    """Per-op-type kernel time of the runs after the first ``warmup`` ``model_run`` events."""
    run_spans = sorted(
        (e["ts"], e["ts"] + e["dur"]) for e in events if e.get("name") == "model_run"
    )
    kept = run_spans[warmup:]
    if not kept:
        raise ValueError(f"the profile holds {len(run_spans)} runs; nothing after {warmup} warm-up")
    total_us: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    start = kept[0][0]
    for event in events:
        if event.get("cat") != "Node" or not event.get("name", "").endswith("_kernel_time"):
            continue
        if event["ts"] < start:
            continue
        op = event.get("args", {}).get("op_name", "?")
        total_us[op] += event["dur"]
        count[op] += 1
    runs = len(kept)
    summed = sum(total_us.values()) or 1.0
    ops = sorted(
        (
            OpTypeTime(op, us / runs / 1000.0, count[op] // runs, us / summed)
            for op, us in total_us.items()
        ),
        key=lambda o: -o.ms_per_run,
    )
    wall = [(end - begin) / 1000.0 for begin, end in kept]
    return OpProfile(runs, wall, ops)
