"""Saves killed at random moments (SIGKILL) leave the old or the new file, never a broken one.

A forked child saves a large project over and over, alternating between two versions (an edit
redone and undone, so both versions are byte-for-byte reproducible), and is killed after a random
delay. After each kill the project file must be exactly one of the two versions and parse as a
project; so must the backup. Forking (instead of starting a fresh interpreter per kill) keeps
100 kills within about ten seconds.
"""

from __future__ import annotations

import json
import os
import signal
import time
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.annotations.coco_io import dumps, project_to_coco
from sam2_annotator.annotations.store import ProjectStore
from tests.annotations.helpers import MEASURED, PYCOCOTOOLS_NUMPY2_WARNING, noise, write_png

pytestmark = [
    pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING),
    pytest.mark.skipif(not hasattr(os, "fork"), reason="kills a forked child (POSIX only)"),
]

KILLS = 100


def _large_store(folder: Path) -> ProjectStore:
    """Noise masks make long RLE strings: a file of a few megabytes."""
    rng = np.random.default_rng(11)
    store = ProjectStore.create(folder / "project.json", autosave=False)
    category = store.add_category("thing")
    store.add_category("other")
    for index in range(6):
        image = store.add_image(write_png(folder / f"{index}.png", 300, 200), 300, 200)
        for _ in range(25):
            store.add_annotation(image.id, category.id, noise(rng, 200, 300))
    return store


def _serialised(store: ProjectStore) -> bytes:
    data, _ = project_to_coco(store.project, root=store.path.parent)
    return dumps(data)


def _save_forever(store: ProjectStore) -> None:
    """Child process: alternate the two versions, autosaving each, until killed."""
    try:
        while True:
            store.redo()
            store.undo()
    finally:
        os._exit(1)  # only reached on an unexpected error; never return into pytest


def test_killed_saves_leave_the_old_or_the_new_version(tmp_path: Path) -> None:
    store = _large_store(tmp_path)
    first = next(iter(store.project.annotations))
    store.relabel(first, 2)
    version_b = _serialised(store)
    store.undo()
    version_a = _serialised(store)
    store.save()
    store.save()  # so that a backup exists from the start
    assert version_a != version_b and store.path.read_bytes() == version_a
    store.autosave = True

    started = time.perf_counter()
    store.redo()
    store.undo()
    save_time = (time.perf_counter() - started) / 2
    rng = np.random.default_rng(7)
    mid_write = seen_b = 0
    for trial in range(KILLS):
        pid = os.fork()
        if pid == 0:
            _save_forever(store)
        time.sleep(float(rng.uniform(0.0, 3.0 * save_time)))
        os.kill(pid, signal.SIGKILL)
        _, status = os.waitpid(pid, 0)
        assert os.WIFSIGNALED(status) and os.WTERMSIG(status) == signal.SIGKILL

        current = store.path.read_bytes()
        assert current in (version_a, version_b), f"kill {trial}: a mixed or partial file"
        json.loads(current)
        backup = store.path.with_name("project.json.bak").read_bytes()
        assert backup in (version_a, version_b), f"kill {trial}: a broken backup"
        seen_b += current == version_b
        leftovers = list(tmp_path.glob(".project.json*.tmp"))
        mid_write += bool(leftovers)
        for leftover in leftovers:
            leftover.unlink()
        if trial % 20 == 0:
            reopened = ProjectStore.open(store.path, check_images=False)
            assert len(reopened.project.annotations) == len(store.project.annotations)

    # The kills must really have hit saves in progress, not only the gaps between them.
    assert mid_write >= 8, f"only {mid_write} of {KILLS} kills interrupted a write"
    assert 0 < seen_b < KILLS
    MEASURED["fault injection"] = (
        f"{KILLS} SIGKILLs, {mid_write} mid-write (temp file left), all files old or new "
        f"({len(version_a) / 1e6:.1f} MB, save {save_time * 1000:.0f} ms)"
    )
