"""The editing API: autosave, backup, reopen, undo/redo, change callbacks and save failures."""

from __future__ import annotations

import errno
import json
import logging
import os
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.annotations import atomic
from sam2_annotator.annotations.atomic import ProjectSaveError
from sam2_annotator.annotations.model import Change, Project, PromptRecord
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.engine.types import Prompt
from sam2_annotator.errors import ProjectError
from tests.annotations.helpers import (
    PYCOCOTOOLS_NUMPY2_WARNING,
    blob,
    build_store,
    snapshot,
    write_png,
)

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)


def _content(project: Project) -> tuple:
    """Everything a project holds, comparable with ==."""
    return (
        project.images,
        project.categories,
        list(project.annotations.items()),
        {i: [a.id for a in project.annotations_for(i)] for i in project.images},
        project.info,
        project.licenses,
        project.extra,
    )


def _square(shape: tuple[int, int], y: int, x: int, size: int = 3) -> np.ndarray:
    mask = np.zeros(shape, bool)
    mask[y : y + size, x : x + size] = True
    return mask


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    store = ProjectStore.create(tmp_path / "project.json")
    store.add_image(write_png(tmp_path / "a.png", 20, 10), 20, 10)
    store.add_category("cat", supercategory="animal")
    store.add_category("dog", supercategory="animal")
    return store


def _saved(store: ProjectStore) -> dict:
    return json.loads(store.path.read_text(encoding="utf-8"))


def test_create_refuses_to_overwrite(tmp_path: Path) -> None:
    ProjectStore.create(tmp_path / "p.json")
    with pytest.raises(ProjectError, match="already exists"):
        ProjectStore.create(tmp_path / "p.json")


def test_every_edit_is_saved_and_the_previous_version_kept(store: ProjectStore) -> None:
    first = store.add_annotation(1, 1, _square((10, 20), 1, 1))
    after_first = store.path.read_bytes()
    assert [a["id"] for a in _saved(store)["annotations"]] == [first.id]
    second = store.add_annotation(1, 2, _square((10, 20), 5, 10))
    assert [a["id"] for a in _saved(store)["annotations"]] == [first.id, second.id]
    assert (store.path.parent / "project.json.bak").read_bytes() == after_first
    store.relabel(first.id, 2)
    assert _saved(store)["annotations"][0]["category_id"] == 2
    assert not store.dirty
    leftovers = [p.name for p in store.path.parent.iterdir() if p.suffix == ".tmp"]
    assert leftovers == []


def test_reopening_restores_everything(tmp_path: Path) -> None:
    store = build_store(tmp_path, images=2, per_image=5)
    store.project.info["note"] = "kept"
    store.save()
    reopened = ProjectStore.open(store.path)
    assert _content(reopened.project) == _content(store.project)
    assert reopened.project.next_annotation_id == store.project.next_annotation_id
    assert reopened.report is not None and reopened.report.ok
    annotation = next(iter(reopened.project.annotations.values()))
    assert annotation.prompts == PromptRecord(points=((1.5, 2.0), (3.0, 4.0)), labels=(1, 0))
    assert annotation.score is not None and annotation.created == annotation.edited
    assert reopened.categories[0].color == store.categories[0].color


def test_add_annotation_takes_engine_prompts_and_checks_masks(store: ProjectStore) -> None:
    prompt = Prompt(
        points=np.array([[3.0, 4.0]], np.float32),
        labels=np.array([1]),
        box=np.array([1, 1, 8, 8], np.float32),
    )
    annotation = store.add_annotation(
        1, 1, _square((10, 20), 2, 2), prompts=PromptRecord.from_prompt(prompt), score=0.9
    )
    assert annotation.prompts is not None and annotation.prompts.box == (1.0, 1.0, 8.0, 8.0)
    assert np.array_equal(annotation.prompts.to_prompt().points, prompt.points)
    with pytest.raises(ValueError, match="does not match"):
        store.add_annotation(1, 1, np.ones((10, 21), bool))
    with pytest.raises(ValueError, match="does not match"):
        store.replace_mask(annotation.id, np.ones((11, 20), bool))
    with pytest.raises(KeyError, match="no category"):
        store.relabel(annotation.id, 42)
    assert len(store.annotations_for(1)) == 1 and store.history.undo_label == (
        f"add annotation {annotation.id}"
    )


def test_undo_redo_of_each_edit(store: ProjectStore) -> None:
    shape = (10, 20)
    a = store.add_annotation(1, 1, _square(shape, 0, 0))
    b = store.add_annotation(1, 1, _square(shape, 4, 4))
    c = store.add_annotation(1, 2, _square(shape, 6, 12))
    states = [_content(store.project)]

    store.relabel(b.id, 2)
    states.append(_content(store.project))
    store.replace_mask(a.id, _square(shape, 1, 1, 5), score=0.5)
    states.append(_content(store.project))
    store.delete_annotation(b.id)  # from the middle: undo must put it back in place
    states.append(_content(store.project))

    assert store.annotation(a.id).area == 25 and store.annotation(a.id).score == 0.5
    for expected in reversed(states[:-1]):
        assert store.undo()
        assert _content(store.project) == expected
        assert [x["id"] for x in _saved(store)["annotations"]] == list(store.project.annotations)
    assert [x.id for x in store.annotations_for(1)] == [a.id, b.id, c.id]
    for expected in states[1:]:
        assert store.redo()
        assert _content(store.project) == expected
    assert not store.redo() and store.can_undo
    reopened = ProjectStore.open(store.path)
    assert _content(reopened.project) == states[-1]


def test_random_edit_sequences_undo_and_redo_exactly(store: ProjectStore) -> None:
    store.autosave = False
    rng = np.random.default_rng(3)
    states = [_content(store.project)]
    position = 0
    for _ in range(300):
        ids = list(store.project.annotations)
        action = rng.choice(["add", "delete", "relabel", "mask", "undo", "redo"])
        if action == "undo":
            if store.undo():
                position -= 1
        elif action == "redo":
            if store.redo():
                position += 1
        else:
            if action == "add" or not ids:
                mask = blob(rng, 10, 20)
                mask[0, 0] = True
                store.add_annotation(1, int(rng.integers(1, 3)), mask)
            elif action == "delete":
                store.delete_annotation(int(rng.choice(ids)))
            elif action == "relabel":
                target = int(rng.choice(ids))
                store.relabel(target, 3 - store.annotation(target).category_id)
            else:
                store.replace_mask(
                    int(rng.choice(ids)), blob(rng, 10, 20) | _square((10, 20), 0, 0)
                )
            del states[position + 1 :]
            states.append(_content(store.project))
            position += 1
        assert _content(store.project) == states[position]
    while store.undo():
        position -= 1
    assert position == 0 and _content(store.project) == states[0]


def test_relabel_to_the_same_category_is_no_undo_step(store: ProjectStore) -> None:
    a = store.add_annotation(1, 1, _square((10, 20), 0, 0))
    assert store.relabel(a.id, 1) == a
    assert store.history.undo_label == f"add annotation {a.id}"


def test_annotation_ids_are_never_reused(store: ProjectStore) -> None:
    a = store.add_annotation(1, 1, _square((10, 20), 0, 0))
    b = store.add_annotation(1, 1, _square((10, 20), 3, 3))
    store.delete_annotation(b.id)
    c = store.add_annotation(1, 1, _square((10, 20), 5, 5))
    assert a.id >= 1 and c.id > b.id
    store.delete_annotation(c.id)  # the highest id is gone; it must still not come back
    d = ProjectStore.open(store.path).add_annotation(1, 1, _square((10, 20), 5, 5))
    assert d.id > c.id


def test_batch_delete_is_one_undo_step(store: ProjectStore) -> None:
    ids = [store.add_annotation(1, 1, _square((10, 20), 0, 2 * k, 2)).id for k in range(4)]
    store.delete_annotations([ids[2], ids[0]])
    assert [a.id for a in store.annotations_for(1)] == [ids[1], ids[3]]
    store.undo()
    assert [a.id for a in store.annotations_for(1)] == ids


def test_listeners_see_every_change_and_a_failing_one_is_contained(
    store: ProjectStore, caplog: pytest.LogCaptureFixture
) -> None:
    seen: list[Change] = []

    def broken(change: Change) -> None:
        raise RuntimeError("listener bug")

    store.listeners += [broken, seen.append]
    with caplog.at_level(logging.ERROR):
        a = store.add_annotation(1, 1, _square((10, 20), 0, 0))
    store.relabel(a.id, 2)
    store.undo()
    store.delete_annotation(a.id)
    kinds = [c.kind for c in seen if c.kind != "saved"]
    assert kinds == [
        "annotation_added",
        "annotation_changed",
        "annotation_changed",
        "annotation_removed",
    ]
    assert all(c.id == a.id and c.image_id == 1 for c in seen if c.kind != "saved")
    assert sum(c.kind == "saved" for c in seen) == 4
    assert "listener bug" in caplog.text


def test_images_are_stored_relative_and_added_once(store: ProjectStore, tmp_path: Path) -> None:
    path = write_png(tmp_path / "sub" / "b.png", 4, 4)
    first = store.add_image(path, 4, 4)
    again = store.add_image(tmp_path / "sub" / ".." / "sub" / "b.png", 4, 4)
    assert first == again and first.file_name == "sub/b.png"
    assert store.image_path(first) == path
    assert [i["file_name"] for i in _saved(store)["images"]] == ["a.png", "sub/b.png"]


def test_save_as_rebases_image_paths(store: ProjectStore, tmp_path: Path) -> None:
    (tmp_path / "elsewhere").mkdir()
    store.save_as(tmp_path / "elsewhere" / "copy.json")
    assert _saved(store)["images"][0]["file_name"] == "../a.png"
    reopened = ProjectStore.open(tmp_path / "elsewhere" / "copy.json")
    assert reopened.report is not None and reopened.report.ok  # the image is found


# --------------------------------------------------------------------------- save failures


class _FullDisk:
    def __init__(self, real) -> None:
        self.real = real

    def __call__(self, fd: int, *args, **kwargs):
        handle = self.real(fd, *args, **kwargs)

        class Writer:
            def __enter__(self):
                return self

            def __exit__(self, *exc) -> None:
                handle.close()

            def write(self, data: bytes) -> int:
                raise OSError(errno.ENOSPC, "No space left on device")

        return Writer()


def _raise(code: int):
    def fail(*args, **kwargs):
        raise OSError(code, os.strerror(code))

    return fail


FAILURES = {
    "disk full while writing": (os, "fdopen", None, "the disk is full"),
    "fsync fails": (os, "fsync", errno.EIO, "Input/output error"),
    "no permission to create": (tempfile, "mkstemp", errno.EACCES, "permission denied"),
    "rename refused": (os, "replace", errno.EPERM, "operation not permitted"),
    "read-only file system": (os, "replace", errno.EROFS, "read-only"),
}


@pytest.mark.parametrize("failure", FAILURES, ids=list(FAILURES))
def test_a_failed_save_is_reported_and_leaves_the_file_intact(
    store: ProjectStore, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    module, name, code, reason = FAILURES[failure]
    kept = store.add_annotation(1, 1, _square((10, 20), 0, 0))
    before = snapshot(store.path.parent)
    replacement = _FullDisk(os.fdopen) if code is None else _raise(code)
    with monkeypatch.context() as patch:
        patch.setattr(module, name, replacement)
        with pytest.raises(ProjectSaveError, match=reason) as caught:
            store.add_annotation(1, 2, _square((10, 20), 4, 4))
    assert isinstance(caught.value, ProjectError) and "\n" not in str(caught.value)
    assert snapshot(store.path.parent) == before  # old file, old backup, no temp file
    assert store.dirty and len(store.annotations_for(1)) == 2  # the work is still in memory
    store.save()
    assert [a["id"] for a in _saved(store)["annotations"]] == [kept.id, kept.id + 1]
    assert not store.dirty


def test_save_keeps_file_permissions(store: ProjectStore) -> None:
    os.chmod(store.path, 0o640)
    store.add_annotation(1, 1, _square((10, 20), 0, 0))
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o640


def test_backup_falls_back_to_copy_without_hard_links(
    store: ProjectStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    previous = store.path.read_bytes()
    monkeypatch.setattr(atomic.os, "link", _raise(errno.EPERM))
    store.add_annotation(1, 1, _square((10, 20), 0, 0))
    assert (store.path.parent / "project.json.bak").read_bytes() == previous


def test_new_project_files_get_the_usual_permissions(tmp_path: Path) -> None:
    umask = os.umask(0o022)
    os.umask(umask)
    store = ProjectStore.create(tmp_path / "new.json")
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o666 & ~umask  # not mkstemp's 0o600
