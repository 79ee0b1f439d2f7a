"""A coalescing background saver: the editing thread hands over a snapshot, a thread writes it.

Serialising a large project (2,000 annotations: JSON of every RLE, then fsync) takes tens of
milliseconds, too long for the GUI thread on every accept. :class:`BackgroundSaver` owns one
thread. :meth:`BackgroundSaver.submit` stores the newest :class:`Snapshot` in a single slot and
returns at once; the thread serialises and writes whatever is in the slot when it gets to it, so a
burst of edits costs one write of the latest state, never a queue of stale ones (the same "one
pending slot, latest wins" rule as the inference worker). Each snapshot carries an increasing
generation; :attr:`saved_generation` tells which one is on disk.

Results (success or :class:`~.atomic.ProjectSaveError`) go to ``on_result`` *on the saver
thread*; a Qt front end forwards them through a queued signal. No Qt here.

``writer`` turns a snapshot into a file (default :func:`write_snapshot`, the COCO project); the
sequence mode passes its own, so both kinds of project share one saver.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam2_annotator.annotations.atomic import write_atomic
from sam2_annotator.annotations.coco_io import dumps, project_to_coco
from sam2_annotator.annotations.model import Project
from sam2_annotator.errors import ProjectError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Snapshot:
    """What to write: a :meth:`~.model.Project.snapshot` (never edited afterwards) and where.

    With a custom ``writer`` (see the module docstring), ``project`` is whatever it writes."""

    generation: int
    project: Project | Any
    path: Path


@dataclass(frozen=True)
class SaveResult:
    """The outcome of writing one snapshot (``error`` is ``None`` on success)."""

    generation: int
    path: Path
    error: ProjectError | None
    ms: float

    @property
    def ok(self) -> bool:
        return self.error is None


def write_snapshot(snapshot: Snapshot) -> None:
    """Serialise and write atomically (raises :class:`~.atomic.ProjectSaveError` / ProjectError)."""
    data, _report = project_to_coco(snapshot.project, root=snapshot.path.parent)
    write_atomic(snapshot.path, dumps(data))


class BackgroundSaver:
    """See the module docstring. Call :meth:`close` when done (it writes what is pending)."""

    def __init__(
        self,
        on_result: Callable[[SaveResult], None] | None = None,
        writer: Callable[[Snapshot], None] = write_snapshot,
    ) -> None:
        self.on_result = on_result
        self._writer = writer
        self._lock = threading.Condition()
        self._pending: Snapshot | None = None
        self._writing: Snapshot | None = None
        self._closed = False
        self.saved_generation = 0
        self.last_result: SaveResult | None = None
        self._thread = threading.Thread(target=self._run, name="project-saver", daemon=True)
        self._thread.start()

    # ------------------------------------------------------------------ the editing side

    def submit(self, snapshot: Snapshot) -> None:
        """Queue ``snapshot`` for writing, replacing any older one not yet started."""
        with self._lock:
            if self._closed:
                raise RuntimeError("the saver is closed")
            if self._pending is not None:
                log.debug("save of generation %d superseded", self._pending.generation)
            self._pending = snapshot
            self._lock.notify_all()

    @property
    def busy(self) -> bool:
        """A snapshot is waiting or being written."""
        with self._lock:
            return self._pending is not None or self._writing is not None

    def flush(self, timeout: float | None = None) -> SaveResult | None:
        """Wait until nothing is pending (or ``timeout`` seconds pass); the last result."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._pending is not None or self._writing is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    break
                self._lock.wait(remaining)
            return self.last_result

    def close(self, timeout: float | None = 30.0) -> SaveResult | None:
        """Write what is pending, then stop the thread."""
        result = self.flush(timeout)
        with self._lock:
            self._closed = True
            self._lock.notify_all()
        self._thread.join(timeout)
        return result

    # ------------------------------------------------------------------ the saver thread

    def _run(self) -> None:
        while True:
            with self._lock:
                while self._pending is None and not self._closed:
                    self._lock.wait()
                if self._pending is None:
                    return
                snapshot, self._pending = self._pending, None
                self._writing = snapshot
            result = self._write(snapshot)
            with self._lock:
                self._writing = None
                self.last_result = result
                if result.ok:
                    self.saved_generation = max(self.saved_generation, result.generation)
                self._lock.notify_all()
            if self.on_result is not None:
                try:
                    self.on_result(result)
                except Exception:
                    log.exception("the save-result callback failed")

    def _write(self, snapshot: Snapshot) -> SaveResult:
        start = time.perf_counter()
        error: ProjectError | None = None
        try:
            self._writer(snapshot)
        except ProjectError as exc:
            log.error("saving %s failed: %s", snapshot.path, exc)
            error = exc
        except (OSError, ValueError) as exc:  # anything else from serialising is a save failure
            log.exception("saving %s failed", snapshot.path)
            error = ProjectError(f"cannot save {snapshot.path}: {exc}")
        ms = (time.perf_counter() - start) * 1000.0
        return SaveResult(snapshot.generation, snapshot.path, error, ms)
