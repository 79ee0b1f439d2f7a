"""What machine and software a result was measured on (stored with every result file)."""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path
from typing import Any

_CPUINFO = Path("/proc/cpuinfo")


def cpu_model() -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    try:
        text = _CPUINFO.read_text(errors="replace")
    except OSError:  # not Linux
        text = ""
    for line in text.splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def usable_cpus() -> int:
    """CPUs this process may run on (affinity where the OS reports it)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def load_average() -> list[float] | None:
    """1/5/15-minute load averages: other work on the machine skews timings."""
    if not hasattr(os, "getloadavg"):
        return None
    return [round(v, 2) for v in os.getloadavg()]


def machine_info() -> dict[str, Any]:
    import numpy as np
    import onnxruntime as ort

    return {
        "cpu": cpu_model(),
        "cpus": usable_cpus(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
    }
