"""One user action = one save; the background saver writes off the editing thread, coalesces and
reports failures."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.annotations import saver as saver_module
from sam2_annotator.annotations import store as store_module
from sam2_annotator.annotations.atomic import ProjectSaveError, write_atomic
from sam2_annotator.annotations.coco_io import dumps, project_to_coco
from sam2_annotator.annotations.saver import SaveResult
from sam2_annotator.annotations.store import ProjectStore
from tests.annotations.helpers import PYCOCOTOOLS_NUMPY2_WARNING, write_png

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)


class Writes:
    """Counts calls of ``write_atomic`` and the threads they ran on; can hold the writer."""

    def __init__(self) -> None:
        self.threads: list[str] = []
        self.gate: threading.Event | None = None
        self.started = threading.Event()
        self.fail: Exception | None = None

    def __call__(self, path, data, **kwargs) -> None:
        self.threads.append(threading.current_thread().name)
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        if self.fail is not None:
            raise self.fail
        write_atomic(path, data, **kwargs)


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Writes:
    counter = Writes()
    monkeypatch.setattr(store_module, "write_atomic", counter)
    monkeypatch.setattr(saver_module, "write_atomic", counter)
    return counter


def _square(y: int, x: int) -> np.ndarray:
    mask = np.zeros((10, 20), bool)
    mask[y : y + 3, x : x + 3] = True
    return mask


def _accept(store: ProjectStore, image: Path, name: str, y: int) -> None:
    """What the window does on Enter: category + image record + annotation."""
    with store.transaction():
        category = store.add_category(name)
        record = store.add_image(image, 20, 10)
        store.add_annotation(record.id, category.id, _square(y, 1))


def test_a_transaction_is_one_save(tmp_path: Path, writes: Writes) -> None:
    image = write_png(tmp_path / "a.png", 20, 10)
    store = ProjectStore.create(tmp_path / "p.json", write=False)
    assert store.dirty and not store.path.exists()
    _accept(store, image, "cat", 1)
    assert len(writes.threads) == 1
    saved = json.loads(store.path.read_text())
    assert [c["name"] for c in saved["categories"]] == ["cat"]
    assert len(saved["annotations"]) == 1 and not store.dirty
    # without a transaction each of the three edits is saved on its own
    category = store.add_category("dog")
    store.add_annotation(1, category.id, _square(5, 5))
    assert len(writes.threads) == 3
    with store.transaction(), store.transaction():  # nested: still one save, at the outer end
        store.add_annotation(1, category.id, _square(2, 10))
        store.undo()
        store.redo()
    assert len(writes.threads) == 4


def test_background_saver_writes_off_the_calling_thread(tmp_path: Path, writes: Writes) -> None:
    image = write_png(tmp_path / "a.png", 20, 10)
    store = ProjectStore.create(tmp_path / "p.json", write=False)
    results: list[SaveResult] = []
    store.use_background_saver(results.append)
    _accept(store, image, "cat", 1)
    store.flush(10)
    assert writes.threads == ["project-saver"]
    assert results and results[-1].ok and not store.dirty
    expected = dumps(project_to_coco(store.project, root=store.path.parent)[0])
    assert store.path.read_bytes() == expected
    store.close()


def test_background_saver_coalesces_a_burst_into_the_latest_state(
    tmp_path: Path, writes: Writes
) -> None:
    image = write_png(tmp_path / "a.png", 20, 10)
    store = ProjectStore.create(tmp_path / "p.json")
    record = store.add_image(image, 20, 10)
    category = store.add_category("cat")
    writes.threads.clear()
    writes.started.clear()
    store.use_background_saver()
    writes.gate = threading.Event()
    store.add_annotation(record.id, category.id, _square(0, 0))
    assert writes.started.wait(10)  # the first save is now held inside the writer
    for x in range(1, 11):
        store.add_annotation(record.id, category.id, _square(4, x))
    assert store.dirty
    writes.gate.set()
    store.flush(10)
    assert len(writes.threads) == 2  # the held one, then one write of the latest snapshot
    assert len(json.loads(store.path.read_text())["annotations"]) == 11
    assert not store.dirty
    store.close()


def test_a_failed_background_save_is_reported_and_the_next_one_repairs(
    tmp_path: Path, writes: Writes
) -> None:
    image = write_png(tmp_path / "a.png", 20, 10)
    store = ProjectStore.create(tmp_path / "p.json")
    before = store.path.read_bytes()
    results: list[SaveResult] = []
    store.use_background_saver(results.append)
    writes.fail = ProjectSaveError("cannot save p.json: no space left on device")
    _accept(store, image, "cat", 1)
    result = store.flush(10)
    assert result is not None and not result.ok and "no space" in str(result.error)
    assert results == [result]
    assert store.dirty and store.path.read_bytes() == before  # work in memory, file intact
    with pytest.raises(ProjectSaveError):
        store.save()
    writes.fail = None
    store.save()
    assert not store.dirty
    assert len(json.loads(store.path.read_text())["annotations"]) == 1
    store.close()


def test_snapshot_is_independent_of_later_edits(tmp_path: Path) -> None:
    image = write_png(tmp_path / "a.png", 20, 10)
    store = ProjectStore.create(tmp_path / "p.json")
    _accept(store, image, "cat", 1)
    frozen = store.project.snapshot()
    store.add_annotation(1, 1, _square(5, 5))
    store.add_category("dog")
    assert len(frozen.annotations) == 1 and len(frozen.categories) == 1
    assert len(store.project.annotations) == 2
