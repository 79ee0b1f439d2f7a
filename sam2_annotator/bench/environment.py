"""What machine and software a result was measured on (stored with every result file)."""

from __future__ import annotations

import logging
import os
import platform
import sys
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_CPUINFO = Path("/proc/cpuinfo")


def cpuinfo_fields() -> dict[str, str]:
    """``key: value`` pairs of Linux ``/proc/cpuinfo`` (the first occurrence of each key, i.e.
    the first CPU's), or ``{}`` where there is no such file."""
    try:
        text = _CPUINFO.read_text(errors="replace")
    except OSError:  # not Linux
        return {}
    fields: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            fields.setdefault(key.strip(), value.strip())
    return fields


def cpu_model() -> str:
    """The CPU's marketing name (Linux ``/proc/cpuinfo``), else what ``platform`` knows."""
    return cpuinfo_fields().get("model name") or platform.processor() or platform.machine()


def cpu_id() -> dict[str, Any] | None:
    """Vendor, family and model numbers (Linux ``/proc/cpuinfo``), or None.

    VMs often report only "AMD EPYC" as the model name; the family tells Zen 3/4 (25) from
    Zen 5 (26), which differ in how wide their AVX-512 units really are (see ``bench/peak.py``).
    """
    fields = cpuinfo_fields()
    keys = {"vendor_id": "vendor", "cpu family": "family", "model": "model"}
    found = {
        name: int(fields[key]) if fields[key].isdigit() else fields[key]
        for key, name in keys.items()
        if key in fields
    }
    return found or None


#: ``/proc/cpuinfo`` flags that decide which int8 (and fp32) kernels ONNX Runtime's MLAS picks.
ISA_FLAGS: tuple[str, ...] = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


def cpu_flags() -> frozenset[str] | None:
    """The CPU's feature flags (Linux ``/proc/cpuinfo``, else py-cpuinfo if installed), or None."""
    fields = cpuinfo_fields()
    for key in ("flags", "Features"):  # x86 / ARM spelling
        if key in fields:
            return frozenset(fields[key].split())
    return _py_cpuinfo_flags()


def _py_cpuinfo_flags() -> frozenset[str] | None:
    try:
        import cpuinfo  # py-cpuinfo: optional (not a dependency), for macOS / Windows
    except ImportError:
        return None
    try:
        flags = cpuinfo.get_cpu_info().get("flags")
    except Exception:  # it shells out per platform; any failure just means "unknown"
        log.debug("py-cpuinfo failed", exc_info=True)
        return None
    return frozenset(flags) if flags else None


def isa_info(flags: frozenset[str] | None = None) -> dict[str, Any]:
    """Which vector/int8 instruction sets the CPU has (None = unknown on this OS).

    ``int8_dot`` names how ONNX Runtime multiplies u8 x s8 int8 on this CPU: ``vnni`` / ``amx``
    (exact 32-bit accumulation) or ``vpmaddubsw`` (AVX2 / AVX-512BW without VNNI, whose pairwise
    16-bit sums saturate for full-range signed weights; see ``models/precision.py``).
    """
    flags = cpu_flags() if flags is None else flags
    if flags is None:
        return {name: None for name in ISA_FLAGS} | {"amx": None, "int8_dot": None}
    found: dict[str, Any] = {name: name in flags for name in ISA_FLAGS}
    found["amx"] = bool({"amx_tile", "amx_int8"} & flags)
    if found["amx"] and "amx_int8" in flags:
        found["int8_dot"] = "amx"
    elif "avx512_vnni" in flags or "avx_vnni" in flags:
        found["int8_dot"] = "vnni"
    elif "avx2" in flags or "avx512bw" in flags:
        found["int8_dot"] = "vpmaddubsw"
    else:
        found["int8_dot"] = "other"
    return found


def isa_summary(isa: dict[str, Any]) -> str:
    """``"avx2 avx512f avx512_vnni avx_vnni; no amx"``-style line for reports."""
    if isa.get("int8_dot") is None:
        return "ISA flags unknown"
    shown = ("avx2", "avx512f", "avx512_vnni", "avx_vnni", "amx")
    have = [name for name in shown if isa.get(name)]
    lack = [name for name in shown if not isa.get(name)]
    text = " ".join(have) or "none of avx2/avx512/vnni/amx"
    if lack:
        text += "; no " + ", ".join(lack)
    return f"{text} (int8 dot product: {isa['int8_dot']})"


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
        "cpu_id": cpu_id(),
        "cpus": usable_cpus(),
        "isa": isa_info(),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "onnxruntime": ort.__version__,
        "onnxruntime_providers": ort.get_available_providers(),
    }
