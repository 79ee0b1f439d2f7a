"""The background-job primitive: results, ordered progress, errors, cooperative cancel."""

from __future__ import annotations

import threading

import pytest

from sam2_annotator.errors import OperationCancelled
from sam2_annotator.gui.jobs import Job, running_jobs, shutdown_jobs, start_job


def _collect(job: Job) -> dict[str, list]:
    seen: dict[str, list] = {"progress": [], "returned": [], "errored": [], "order": []}
    job.progress.connect(lambda *args: (seen["progress"].append(args), seen["order"].append("p")))
    job.returned.connect(lambda value: (seen["returned"].append(value), seen["order"].append("r")))
    job.errored.connect(lambda exc: (seen["errored"].append(exc), seen["order"].append("e")))
    job.finished.connect(lambda: seen["order"].append("f"))
    return seen


def test_returned_value_and_progress_in_order(qtbot) -> None:
    main = threading.get_ident()
    threads: list[int] = []

    def work(progress, cancelled):
        threads.append(threading.get_ident())
        for i in range(50):
            progress(i, 50, f"item {i}")
        progress(50, 50, "done")
        return {"answer": 42}

    job = start_job(work, progress_interval_s=0.0)
    seen = _collect(job)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        pass
    assert threads and threads[0] != main
    assert seen["returned"] == [{"answer": 42}] and seen["errored"] == []
    assert seen["progress"] == [(i, 50, f"item {i}") for i in range(50)] + [(50, 50, "done")]
    assert seen["order"][-2:] == ["r", "f"] and seen["order"].count("f") == 1
    assert not job.is_running() and job not in running_jobs()


def test_progress_is_thinned_but_keeps_first_and_last(qtbot) -> None:
    def work(progress, cancelled):
        for i in range(1001):
            progress(i, 1000, "")

    job = start_job(work, progress_interval_s=3600)
    seen = _collect(job)
    with qtbot.waitSignal(job.finished, timeout=10_000):
        pass
    assert [p[0] for p in seen["progress"]] == [0, 1000]


def test_error_is_delivered_as_the_exception(qtbot) -> None:
    class Boom(RuntimeError):
        pass

    def work(progress, cancelled):
        progress(0, 1, "start")
        raise Boom("broken")

    job = start_job(work)
    seen = _collect(job)
    with qtbot.waitSignal(job.errored, timeout=10_000) as blocker:
        pass
    qtbot.waitUntil(lambda: not job.is_running(), timeout=10_000)
    assert isinstance(blocker.args[0], Boom) and str(blocker.args[0]) == "broken"
    assert seen["returned"] == [] and seen["order"] == ["p", "e", "f"]


def test_cancel_stops_a_cooperative_loop(qtbot) -> None:
    started = threading.Event()
    release = threading.Event()
    steps: list[int] = []

    def work(progress, cancelled):
        i = 0
        while True:
            if cancelled():
                raise OperationCancelled(f"stopped after {i}")
            steps.append(i)
            if i == 3:
                started.set()
                release.wait(10)  # hold here until the test has asked to cancel
            i += 1

    job = start_job(work)
    assert started.wait(10)
    job.cancel()
    assert job.is_cancelled()
    release.set()
    with qtbot.waitSignal(job.errored, timeout=10_000) as blocker:
        pass
    assert isinstance(blocker.args[0], OperationCancelled)
    assert steps == [0, 1, 2, 3]


def test_a_job_outlives_its_deleted_owner(qtbot) -> None:
    from PySide6.QtWidgets import QWidget

    owner = QWidget()
    release = threading.Event()
    ended = threading.Event()

    def work(progress, cancelled):
        release.wait(10)
        ended.set()
        return 1

    job = start_job(work, parent=owner)
    assert job in running_jobs()
    owner.deleteLater()
    qtbot.waitUntil(lambda: not _alive(owner), timeout=10_000)
    release.set()
    assert ended.wait(10)
    qtbot.waitUntil(lambda: not running_jobs(), timeout=10_000)


def _alive(obj) -> bool:
    from shiboken6 import isValid

    return isValid(obj)


def test_shutdown_cancels_and_waits(qtbot) -> None:
    entered = threading.Event()

    def work(progress, cancelled):
        entered.set()
        while not cancelled():
            threading.Event().wait(0.001)
        return "stopped"

    job = start_job(work)
    assert entered.wait(10)
    with qtbot.waitSignal(job.returned, timeout=10_000) as blocker:
        assert shutdown_jobs(10_000)
    assert blocker.args == ["stopped"]


@pytest.fixture(autouse=True)
def _no_leftover_jobs(qtbot):
    yield
    shutdown_jobs(10_000)
    qtbot.waitUntil(lambda: not running_jobs(), timeout=10_000)
