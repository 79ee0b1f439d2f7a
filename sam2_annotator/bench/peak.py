"""The CPU's fp32 peak, nominal and measured, to put achieved GFLOP/s in proportion.

*Nominal*: cores x FLOP per cycle x clock. The FLOP per cycle per core is an assumption from the
ISA flags: two fused multiply-add pipes of the widest vector unit (AVX-512: 2 x 16 lanes x 2 =
64; AVX2 + FMA: 32; otherwise 8). AMD Zen 4 runs AVX-512 on two 256-bit pipes and is counted at
32 (``HALF_WIDTH_AVX512``); other CPUs with one 512-bit pipe (many Xeon Silver) are not
recognised, so the nominal figure is an upper bound there. The
clock is ``/proc/cpuinfo``'s ``cpu MHz`` (the base clock in most VMs; turbo can exceed it).

*Measured*: the best of a few large float32 matrix products through numpy's BLAS on all cores,
the fastest dense kernel the machine has at hand; on a shared machine it also carries that load.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from sam2_annotator.bench.environment import cpu_flags, cpu_id, cpuinfo_fields, usable_cpus

log = logging.getLogger(__name__)

#: (vendor, family) of CPUs whose AVX-512 runs on 256-bit FMA pipes: each 512-bit instruction
#: is split into two halves, so they have the FLOP per cycle of AVX2. AMD family 25 is Zen 3
#: (no AVX-512) and Zen 4 (AVX-512 on two 256-bit FMA pipes).
HALF_WIDTH_AVX512: frozenset[tuple[str, int]] = frozenset({("AuthenticAMD", 25)})


def flop_per_cycle(
    flags: frozenset[str] | None, cpu: dict[str, Any] | None = None
) -> tuple[float, str]:
    """fp32 FLOP per cycle per core assumed from the ISA flags (and the CPU family, for the
    AVX-512 CPUs known to split 512-bit work on 256-bit pipes), and the assumption in words."""
    if flags is None:
        return 8.0, "ISA unknown: 2 x 128-bit FMA assumed"
    family = (cpu or {}).get("vendor"), (cpu or {}).get("family")
    if "avx512f" in flags and family in HALF_WIDTH_AVX512:
        return 32.0, (
            f"AVX-512 split on 2 x 256-bit FMA pipes ({family[0]} family {family[1]}, Zen 4: "
            "8 lanes x 2 FLOP x 2)"
        )
    if "avx512f" in flags:
        return 64.0, "AVX-512: 2 x 512-bit FMA pipes assumed (16 lanes x 2 FLOP x 2)"
    if "avx2" in flags and "fma" in flags:
        return 32.0, "AVX2 + FMA: 2 x 256-bit FMA pipes assumed (8 lanes x 2 FLOP x 2)"
    return 8.0, "no AVX2/FMA: 2 x 128-bit pipes assumed"


def cpu_ghz() -> float | None:
    """The clock ``/proc/cpuinfo`` reports (GHz), or None."""
    mhz = cpuinfo_fields().get("cpu MHz")
    try:
        return None if mhz is None else float(mhz) / 1000.0
    except ValueError:
        return None


def measured_sgemm_gflops(n: int = 2048, reps: int = 5) -> float:
    """Best-of-``reps`` GFLOP/s of an ``n x n x n`` float32 matrix product (numpy's BLAS)."""
    rng = np.random.default_rng(0)
    a = rng.standard_normal((n, n), dtype=np.float32)
    b = rng.standard_normal((n, n), dtype=np.float32)
    a @ b  # warm-up: thread pool start, page faults
    best = float("inf")
    for _ in range(reps):
        start = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - start)
    return 2.0 * n**3 / best / 1e9


@dataclass(frozen=True)
class Fp32Peak:
    cores: int
    ghz: float | None
    flop_per_cycle: float
    assumption: str
    nominal_gflops: float | None
    measured_sgemm_gflops: float | None

    @property
    def formula(self) -> str:
        ghz = "?" if self.ghz is None else f"{self.ghz:.3f}"
        return f"{self.cores} cores x {self.flop_per_cycle:g} FLOP/cycle x {ghz} GHz"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "formula": self.formula}


def fp32_peak(measure: bool = True) -> Fp32Peak:
    """The nominal peak of the CPUs this process may use, and (``measure``) an sgemm ceiling."""
    cores = usable_cpus()
    per_cycle, assumption = flop_per_cycle(cpu_flags(), cpu_id())
    ghz = cpu_ghz()
    nominal = None if ghz is None else cores * per_cycle * ghz
    measured = round(measured_sgemm_gflops(), 1) if measure else None
    log.info("fp32 peak: nominal %s GFLOP/s, sgemm %s GFLOP/s", nominal, measured)
    return Fp32Peak(
        cores,
        ghz,
        per_cycle,
        assumption,
        None if nominal is None else round(nominal, 1),
        measured,
    )
