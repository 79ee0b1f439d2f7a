"""Work around a PySide6 6.12.0 reference-count bug on Python < 3.12.

PySide6/shiboken6 6.12.0 (abi3 wheels) return ``None`` from every void method without taking a
reference to it. On Python 3.12+ ``None`` is immortal and nothing happens; on 3.10/3.11 each call
(``label.setText``, ``painter.drawImage``, ``path.lineTo``...) lowers ``None``'s reference count
by one, and after a few tens of thousands of calls the interpreter aborts with "Fatal Python error:
none_dealloc". 6.11.2 does not have the bug. The real fix is a dependency pin; until then
:func:`guard_none_refcount` detects the bug at start-up and gives ``None`` a reference count
that cannot run out (``None`` is never freed anyway, so extra references cost nothing).
"""

from __future__ import annotations

import ctypes
import logging
import sys

log = logging.getLogger(__name__)

#: References added to ``None`` when the bug is present (about 10**12 void calls).
HEADROOM = 1 << 40
_PROBE_CALLS = 64


def has_none_refcount_bug() -> bool:
    """Whether void PySide6 calls steal references to ``None`` in this process."""
    if sys.version_info >= (3, 12):
        return False  # None is immortal
    from PySide6.QtCore import QPointF

    point = QPointF()
    before = sys.getrefcount(None)
    for _ in range(_PROBE_CALLS):
        point.setX(1.0)
    return sys.getrefcount(None) - before <= -_PROBE_CALLS // 2


def guard_none_refcount() -> bool:
    """Apply the work-around if the bug is present; True if it was applied."""
    if not has_none_refcount_bug():
        return False
    if hasattr(sys, "gettotalrefcount"):  # debug build: the object header has extra fields
        log.error("PySide6 leaks references to None and this debug Python cannot be patched")
        return False
    import PySide6

    refcount = ctypes.c_ssize_t.from_address(id(None))
    refcount.value += HEADROOM
    log.info(
        "PySide6 %s on Python %d.%d loses a reference to None on every void call; "
        "applied a work-around (use PySide6 6.11 or Python 3.12+ to avoid it)",
        PySide6.__version__,
        *sys.version_info[:2],
    )
    return True
