"""One background-job primitive for everything that is not the inference worker.

The shape of superqt's ``create_worker``/``thread_worker``, as one small module of ours: a plain
Python callable runs on its own QThread and talks to the GUI only through queued Qt signals::

    def work(progress, cancelled):
        for i, item in enumerate(items):
            if cancelled():
                raise OperationCancelled("stopped")
            progress(i, len(items), str(item))
            ...
        return result

    job = start_job(work, parent=dialog)
    job.progress.connect(bar_update)      # (done, total, message), in the order reported
    job.returned.connect(show_result)     # work's return value
    job.errored.connect(show_error)       # the exception work raised (never escapes the thread)
    job.finished.connect(cleanup)         # always last, once the thread has ended
    job.cancel()                          # cancelled() now returns True

Cancellation is cooperative: :meth:`Job.cancel` only makes ``cancelled()`` return true; the
callable decides where to stop and what to return or raise (by convention
:class:`~sam2_annotator.errors.OperationCancelled`, delivered through ``errored``).

Lifetime: the thread and its result relay are kept alive by this module until the thread ends,
whatever happens to the :class:`Job` (a dialog closed while its job still runs deletes the Job
with it; the thread then finishes quietly and its signals go nowhere). :func:`shutdown_jobs`
cancels and waits for every job, for the application's exit.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)

ProgressFn = Callable[[int, int, str], None]
CancelledFn = Callable[[], bool]
JobFn = Callable[[ProgressFn, CancelledFn], Any]

#: Default minimum time between two progress signals (the first and the last always go out).
PROGRESS_INTERVAL_S = 0.05


class Job(QObject):
    """A callable running on a QThread; see the module docstring. Create with :func:`start_job`."""

    progress = Signal(int, int, str)
    returned = Signal(object)
    errored = Signal(object)
    finished = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._cancel = threading.Event()
        self._thread: _JobThread | None = None
        self._done = False

    def cancel(self) -> None:
        """Ask the callable to stop (its ``cancelled()`` returns True from now on)."""
        self._cancel.set()

    def is_cancelled(self) -> bool:
        return self._cancel.is_set()

    def is_running(self) -> bool:
        """True until :attr:`finished` has been emitted."""
        return not self._done

    def wait(self, timeout_ms: int = 30_000) -> bool:
        """Block until the thread has ended (not for the GUI thread in normal use: the queued
        signals are only delivered once control returns to the event loop)."""
        thread = self._thread
        return True if thread is None else thread.wait(timeout_ms)

    def _mark_finished(self) -> None:
        self._thread = None  # deleted later by its own slot
        self._done = True
        self.finished.emit()


class _JobThread(QThread):
    """Runs the callable; its signals are emitted from the job's thread and queued to the Job
    (which lives in the GUI thread)."""

    progress_ = Signal(int, int, str)
    returned_ = Signal(object)
    errored_ = Signal(object)

    def __init__(self, fn: JobFn, cancel: threading.Event, interval_s: float) -> None:
        super().__init__()
        self._fn = fn
        self._cancel = cancel
        self._interval_s = interval_s
        self._last_progress = -float("inf")

    def run(self) -> None:
        try:
            result = self._fn(self._report, self._cancel.is_set)
        except BaseException as exc:  # nothing may escape the thread
            if isinstance(exc, UserError):
                log.info("job %s stopped: %s", _name(self._fn), exc)
            else:
                log.error("job %s failed", _name(self._fn), exc_info=exc)
            self.errored_.emit(exc)
        else:
            self.returned_.emit(result)

    @Slot()
    def _on_finished(self) -> None:
        # A slot of this QThread object, which lives in the GUI thread: queued there, after
        # everything run() emitted.
        self.wait()
        job = _RUNNING.pop(self, None)
        if job is not None:
            try:
                job._mark_finished()
            except RuntimeError:  # the Job's C++ object was deleted with its parent
                log.debug("job %s finished after its owner was deleted", _name(self._fn))
        self.deleteLater()

    def _report(self, done: int, total: int, message: str = "") -> None:
        now = time.monotonic()
        if done <= 0 or done >= total or now - self._last_progress >= self._interval_s:
            self._last_progress = now
            self.progress_.emit(int(done), int(total), str(message))


#: Threads that have not ended yet, with their Job (kept alive until then).
_RUNNING: dict[_JobThread, Job] = {}


def start_job(
    fn: JobFn,
    parent: QObject | None = None,
    *,
    progress_interval_s: float = PROGRESS_INTERVAL_S,
) -> Job:
    """Start ``fn(progress, cancelled)`` on a new thread and return its :class:`Job`.

    Connect to the Job's signals right after this call: they are queued, so nothing is delivered
    before control returns to the event loop. Progress reports closer together than
    ``progress_interval_s`` are dropped (never the first or the last, ``done >= total``).
    """
    job = Job(parent)
    thread = _JobThread(fn, job._cancel, progress_interval_s)
    thread.progress_.connect(job.progress)
    thread.returned_.connect(job.returned)
    thread.errored_.connect(job.errored)
    thread.finished.connect(thread._on_finished)
    job._thread = thread
    _RUNNING[thread] = job
    thread.start()
    return job


def running_jobs() -> list[Job]:
    return list(_RUNNING.values())


def shutdown_jobs(timeout_ms: int = 5_000) -> bool:
    """Cancel every job and wait for its thread; True if all ended in time (application exit)."""
    threads = list(_RUNNING)
    for thread in threads:
        thread._cancel.set()
    deadline = time.monotonic() + timeout_ms / 1000
    ended = True
    for thread in threads:
        remaining = max(0, int((deadline - time.monotonic()) * 1000))
        ended = thread.wait(remaining) and ended
    return ended


def _name(fn: Callable[..., Any]) -> str:
    return getattr(fn, "__qualname__", None) or repr(fn)
