"""Process memory without psutil: peak RSS from ``resource``, current RSS from ``/proc``.

``resource.getrusage(RUSAGE_SELF).ru_maxrss`` is the high-water mark of the whole process (it never
goes down), in KiB on Linux and in bytes on macOS. Windows has no ``resource`` module; there both
functions return None (the Win32 ``GetProcessMemoryInfo`` call would give ``PeakWorkingSetSize``,
not wired up here) and the reports say "not measured".
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

log = logging.getLogger(__name__)

MIB = 1024 * 1024
_STATM = Path("/proc/self/statm")


def peak_rss_mb() -> float | None:
    """The process's peak resident set size so far in MiB, or None where unsupported."""
    try:
        import resource
    except ImportError:
        log.info("peak RSS not available on %s (no resource module)", sys.platform)
        return None
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    unit = 1 if sys.platform == "darwin" else 1024
    return peak * unit / MIB


def current_rss_mb() -> float | None:
    """The resident set size right now in MiB (Linux ``/proc/self/statm``), else None."""
    try:
        fields = _STATM.read_text().split()
    except OSError:
        return None
    return int(fields[1]) * os.sysconf("SC_PAGE_SIZE") / MIB
