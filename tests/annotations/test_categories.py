"""Category edits (rename, recolour, merge, delete), iscrowd and the labels file.

Every edit is checked in the file on disk after it, after undo and after redo, with exactly one
write per action.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pytest

from sam2_annotator.annotations import store as store_module
from sam2_annotator.annotations.labels import (
    CategoryError,
    LabelsFileError,
    ensure_categories,
    parse_labels,
    read_labels_file,
)
from sam2_annotator.annotations.model import TOOL_KEY, Category, Change, Project
from sam2_annotator.annotations.store import ProjectStore
from sam2_annotator.errors import UserError
from tests.annotations.helpers import PYCOCOTOOLS_NUMPY2_WARNING, write_png

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

SHAPE = (10, 20)


def _square(y: int, x: int, size: int = 3) -> np.ndarray:
    mask = np.zeros(SHAPE, bool)
    mask[y : y + size, x : x + size] = True
    return mask


class WriteCounter:
    """Counts the project file writes (wraps the store's ``write_atomic``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = store_module.write_atomic

        def counting(*args, **kwargs):
            self.count += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(store_module, "write_atomic", counting)

    def take(self) -> int:
        """Writes since the last call."""
        count, self.count = self.count, 0
        return count


@pytest.fixture
def store(tmp_path: Path) -> ProjectStore:
    """Categories cat (1), dog (2), car (3); two images; annotations of cat and dog interleaved
    across both images, so that positions in the file and per image matter."""
    store = ProjectStore.create(tmp_path / "project.json")
    first = store.add_image(write_png(tmp_path / "a.png", 20, 10), 20, 10)
    second = store.add_image(write_png(tmp_path / "b.png", 20, 10), 20, 10)
    for name in ("cat", "dog", "car"):
        store.add_category(name)
    with store.transaction():
        for index, (image, category) in enumerate(
            [(first, 1), (first, 2), (second, 1), (first, 1), (second, 2), (second, 1)]
        ):
            store.add_annotation(image.id, category, _square(index % 7, 2 * index))
    store.history.clear()
    return store


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> WriteCounter:
    return WriteCounter(monkeypatch)


def _disk(store: ProjectStore) -> dict:
    return json.loads(store.path.read_text(encoding="utf-8"))


def _categories(store: ProjectStore) -> list[tuple[int, str, list[int] | None]]:
    return [
        (c["id"], c["name"], c.get(TOOL_KEY, {}).get("color")) for c in _disk(store)["categories"]
    ]


def _labels(store: ProjectStore) -> list[tuple[int, int]]:
    """(annotation id, category id) in file order."""
    return [(a["id"], a["category_id"]) for a in _disk(store)["annotations"]]


def _check_undo_redo(store: ProjectStore, writes: WriteCounter, before: bytes) -> bytes:
    """Undo restores the file byte for byte, redo brings the edit back; one write each."""
    after = store.path.read_bytes()
    assert store.undo()
    assert writes.take() == 1
    assert store.path.read_bytes() == before
    assert store.redo()
    assert writes.take() == 1
    assert store.path.read_bytes() == after
    return after


# --------------------------------------------------------------------------- rename


def test_rename_is_saved_once_and_undone(store: ProjectStore, writes: WriteCounter) -> None:
    before = store.path.read_bytes()
    renamed = store.rename_category(1, "  kitten ")
    assert renamed.name == "kitten"
    assert writes.take() == 1
    assert [name for _id, name, _c in _categories(store)] == ["kitten", "dog", "car"]
    assert store.history.undo_label == "rename category 'cat' to 'kitten'"
    _check_undo_redo(store, writes, before)
    assert ProjectStore.open(store.path).project.category(1).name == "kitten"


def test_rename_refuses_empty_and_taken_names(store: ProjectStore, writes: WriteCounter) -> None:
    before = store.path.read_bytes()
    with pytest.raises(CategoryError, match="needs a name"):
        store.rename_category(1, "   ")
    with pytest.raises(CategoryError, match="'dog' already exists; merge 'cat' into it"):
        store.rename_category(1, " DOG")
    assert issubclass(CategoryError, UserError) and issubclass(CategoryError, ValueError)
    assert writes.take() == 0
    assert store.path.read_bytes() == before
    assert not store.can_undo
    # The same name is nothing to do; another case of its own name is a rename.
    store.rename_category(1, "cat")
    assert writes.take() == 0 and not store.can_undo
    store.rename_category(1, "Cat")
    assert writes.take() == 1
    assert _categories(store)[0][1] == "Cat"


def test_rename_unknown_category_raises(store: ProjectStore) -> None:
    with pytest.raises(KeyError, match="no category with id 9"):
        store.rename_category(9, "bird")


# --------------------------------------------------------------------------- recolour


def test_recolor_is_saved_once_and_undone(store: ProjectStore, writes: WriteCounter) -> None:
    before = store.path.read_bytes()
    old_color = store.project.category(2).color
    store.recolor_category(2, (np.uint8(10), 20, 30))
    assert writes.take() == 1
    assert _categories(store)[1] == (2, "dog", [10, 20, 30])
    _check_undo_redo(store, writes, before)
    store.undo()
    assert store.project.category(2).color == old_color
    assert _categories(store)[1] == (2, "dog", list(old_color))


@pytest.mark.parametrize("color", [(1, 2), (0, 0, 256), (-1, 0, 0), (1.5, 0, 0), "red", None])
def test_recolor_refuses_bad_colours(store: ProjectStore, writes: WriteCounter, color) -> None:
    with pytest.raises(ValueError, match="three integers 0-255"):
        store.recolor_category(1, color)
    assert writes.take() == 0


# --------------------------------------------------------------------------- merge


def test_merge_moves_annotations_and_undo_restores_everything(
    store: ProjectStore, writes: WriteCounter
) -> None:
    before = store.path.read_bytes()
    old_records = dict(store.project.annotations)
    cat = store.project.category(1)
    changes: list[Change] = []
    store.listeners.append(changes.append)

    moved = store.merge_categories(1, 2)
    assert moved == 4
    assert writes.take() == 1
    assert [c[0] for c in _categories(store)] == [2, 3]
    assert _labels(store) == [(1, 2), (2, 2), (3, 2), (4, 2), (5, 2), (6, 2)]
    assert Change("category_removed", 1) in changes
    assert store.history.undo_label == "merge category 'cat' into 'dog'"

    changes.clear()
    assert store.undo()
    assert writes.take() == 1
    assert store.path.read_bytes() == before
    assert Change("category_added", 1) in changes
    assert store.categories_in_order()[0] == cat  # same id, name, colour, first again
    assert dict(store.project.annotations) == old_records  # same records (timestamps too)
    assert store.redo()
    assert writes.take() == 1
    assert _labels(store) == [(i, 2) for i in range(1, 7)]
    assert [c.name for c in ProjectStore.open(store.path).categories] == ["dog", "car"]


def test_merge_refuses_itself_and_unknown_ids(store: ProjectStore, writes: WriteCounter) -> None:
    with pytest.raises(CategoryError, match="into itself"):
        store.merge_categories(2, 2)
    with pytest.raises(KeyError):
        store.merge_categories(1, 42)
    assert writes.take() == 0
    assert not store.can_undo


def test_merge_of_an_unused_category_just_removes_it(
    store: ProjectStore, writes: WriteCounter
) -> None:
    before = store.path.read_bytes()
    assert store.merge_categories(3, 1) == 0
    assert writes.take() == 1
    assert [c[0] for c in _categories(store)] == [1, 2]
    _check_undo_redo(store, writes, before)


# --------------------------------------------------------------------------- delete


def test_delete_with_its_annotations_and_undo_restores_positions(
    store: ProjectStore, writes: WriteCounter
) -> None:
    before = store.path.read_bytes()
    per_image = {i: [a.id for a in store.annotations_for(i)] for i in store.project.images}
    assert store.delete_category(1, annotations="delete") == 4
    assert writes.take() == 1
    assert [c[0] for c in _categories(store)] == [2, 3]
    assert _labels(store) == [(2, 2), (5, 2)]
    assert [a.id for a in store.annotations_for(1)] == [2]

    assert store.undo()
    assert writes.take() == 1
    assert store.path.read_bytes() == before
    assert {i: [a.id for a in store.annotations_for(i)] for i in store.project.images} == per_image
    assert store.redo()
    assert writes.take() == 1
    assert _labels(store) == [(2, 2), (5, 2)]


def test_delete_moving_annotations_to_another_category(
    store: ProjectStore, writes: WriteCounter
) -> None:
    before = store.path.read_bytes()
    assert store.delete_category(2, annotations="move", move_to=3) == 2
    assert writes.take() == 1
    assert [c[0] for c in _categories(store)] == [1, 3]
    assert _labels(store) == [(1, 1), (2, 3), (3, 1), (4, 1), (5, 3), (6, 1)]
    _check_undo_redo(store, writes, before)


def test_delete_must_say_what_happens_to_annotations(
    store: ProjectStore, writes: WriteCounter
) -> None:
    before = store.path.read_bytes()
    with pytest.raises(CategoryError, match="'cat' still has 4 annotations; say whether"):
        store.delete_category(1)
    with pytest.raises(CategoryError, match="which category"):
        store.delete_category(1, annotations="move")
    with pytest.raises(CategoryError, match="to itself"):
        store.delete_category(1, annotations="move", move_to=1)
    with pytest.raises(KeyError):
        store.delete_category(1, annotations="move", move_to=77)
    with pytest.raises(ValueError, match='"delete" or "move"'):
        store.delete_category(1, annotations="keep")  # type: ignore[arg-type]
    assert writes.take() == 0
    assert store.path.read_bytes() == before
    assert not store.can_undo


def test_delete_an_unused_category_needs_no_mode(store: ProjectStore, writes: WriteCounter) -> None:
    before = store.path.read_bytes()
    assert store.delete_category(3) == 0
    assert writes.take() == 1
    assert [c[0] for c in _categories(store)] == [1, 2]
    _check_undo_redo(store, writes, before)


def test_a_new_category_never_takes_a_removed_id(store: ProjectStore) -> None:
    store.delete_category(3)
    bird = store.add_category("bird")
    assert bird.id == 4
    assert store.undo()  # the delete: car comes back with its id
    assert [(c.id, c.name) for c in store.categories_in_order()] == [
        (1, "cat"),
        (2, "dog"),
        (3, "car"),
        (4, "bird"),
    ]


def test_project_refuses_to_remove_a_used_category(store: ProjectStore) -> None:
    with pytest.raises(ValueError, match=r"category 1 \('cat'\) still has 4 annotations"):
        store.project.remove_category(1)
    assert 1 in store.project.categories


def test_project_category_mutations_keep_the_order(tmp_path: Path) -> None:
    project = Project(root=tmp_path)
    for category_id, name in ((5, "a"), (2, "b"), (9, "c")):
        project.add_category(Category(category_id, name))
    removed, position, change = project.remove_category(2)
    assert (removed.name, position, change) == ("b", 1, Change("category_removed", 2))
    assert project.next_category_id() == 10
    assert project.insert_category(removed, position) == Change("category_added", 2)
    assert list(project.categories) == [5, 2, 9]
    with pytest.raises(ValueError, match="already exists"):
        project.insert_category(removed, 0)
    assert project.replace_category(Category(9, "z")) == Change("category_changed", 9)
    assert project.category(9).name == "z"
    with pytest.raises(KeyError):
        project.replace_category(Category(4, "new"))


# --------------------------------------------------------------------------- order and counts


def test_number_keys_follow_the_file_order(store: ProjectStore) -> None:
    assert [c.name for c in store.categories_in_order()] == ["cat", "dog", "car"]
    assert store.project.category_by_number(2).name == "dog"
    assert store.project.category_by_number(0) is None
    assert store.project.category_by_number(4) is None
    store.delete_category(1, annotations="move", move_to=2)
    assert store.project.category_by_number(1).name == "dog"
    store.undo()
    assert store.project.category_by_number(1).name == "cat"
    assert store.project.category_counts() == {1: 4, 2: 2, 3: 0}


def test_category_edits_in_one_transaction_are_one_save(
    store: ProjectStore, writes: WriteCounter
) -> None:
    with store.transaction():
        store.rename_category(3, "truck")
        store.recolor_category(3, (1, 2, 3))
    assert writes.take() == 1
    assert _categories(store)[2] == (3, "truck", [1, 2, 3])


# --------------------------------------------------------------------------- iscrowd


def test_iscrowd_toggle_is_saved_once_and_undone(store: ProjectStore, writes: WriteCounter) -> None:
    before = store.path.read_bytes()
    changed = store.set_iscrowd(3, 1)
    assert changed.iscrowd == 1 and changed.rle == store.annotation(3).rle
    assert writes.take() == 1
    assert [a["iscrowd"] for a in _disk(store)["annotations"]] == [0, 0, 1, 0, 0, 0]
    _check_undo_redo(store, writes, before)
    assert store.set_iscrowd(3, True).iscrowd == 1  # already 1: nothing to do
    assert writes.take() == 0
    store.set_iscrowd(3, 0)
    assert writes.take() == 1
    assert ProjectStore.open(store.path).annotation(3).iscrowd == 0


@pytest.mark.parametrize("value", [2, -1, "1", None])
def test_iscrowd_refuses_other_values(store: ProjectStore, writes: WriteCounter, value) -> None:
    with pytest.raises(ValueError, match="0 or 1"):
        store.set_iscrowd(1, value)
    assert writes.take() == 0


# --------------------------------------------------------------------------- labels file


def test_labels_file_names_comments_bom_and_duplicates(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "labels.txt"
    text = "\ufeffcat\r\n\n  # a comment\ndog  \n\tCat\nbird # not a comment\nDOG\n  \ncat\n"
    path.write_bytes(text.encode("utf-8"))
    with caplog.at_level(logging.WARNING, logger="sam2_annotator.annotations.labels"):
        names = read_labels_file(path)
    assert names == ["cat", "dog", "bird # not a comment"]
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    message = warnings[0].getMessage()
    assert "'Cat' (line 5)" in message and "'DOG' (line 7)" in message
    assert "'cat' (line 9)" in message


def test_labels_without_bom_and_without_duplicates_warn_nothing(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "labels.txt"
    path.write_text("person\nvoiture\nÄpfel", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        assert read_labels_file(path) == ["person", "voiture", "Äpfel"]
    assert not caplog.records
    assert parse_labels("") == ([], [])
    assert parse_labels("# only\n\n") == ([], [])


def test_labels_file_errors_are_one_clear_user_error(tmp_path: Path) -> None:
    with pytest.raises(LabelsFileError, match=r"labels file .*missing\.txt does not exist"):
        read_labels_file(tmp_path / "missing.txt")
    with pytest.raises(LabelsFileError, match="cannot read labels file"):
        read_labels_file(tmp_path)  # a folder
    latin = tmp_path / "latin1.txt"
    latin.write_bytes("cat\nd\xe9j\xe0\n".encode("latin-1"))
    with pytest.raises(LabelsFileError, match=r"not UTF-8 text \(line 2\)"):
        read_labels_file(latin)
    assert issubclass(LabelsFileError, UserError)


def test_ensure_categories_adds_the_missing_in_order_with_one_save(
    store: ProjectStore, writes: WriteCounter
) -> None:
    result = ensure_categories(store, ["bird", "DOG", "fish", "Bird"])
    assert [(c.id, c.name) for c in result] == [(4, "bird"), (2, "dog"), (5, "fish")]
    assert writes.take() == 1
    assert [c[1] for c in _categories(store)] == ["cat", "dog", "car", "bird", "fish"]
    assert ensure_categories(store, ["cat", "car"]) == [store.project.category(i) for i in (1, 3)]
    assert writes.take() == 0


def test_bulk_remove_and_insert_restore_every_position(store: ProjectStore) -> None:
    project = store.project
    order = list(project.annotations)
    per_image = {i: [a.id for a in project.annotations_for(i)] for i in project.images}
    records = dict(project.annotations)
    removed, changes = project.remove_annotations([6, 1, 4])
    assert [(a.id, position) for a, position in removed] == [(1, (0, 0)), (4, (3, 2)), (6, (5, 2))]
    assert [(c.kind, c.id, c.image_id) for c in changes] == [
        ("annotation_removed", 1, 1),
        ("annotation_removed", 4, 1),
        ("annotation_removed", 6, 2),
    ]
    assert list(project.annotations) == [2, 3, 5]
    assert [a.id for a in project.annotations_for(1)] == [2]
    assert [a.id for a in project.annotations_for(2)] == [3, 5]
    with pytest.raises(ValueError, match="already exists"):
        project.insert_annotations([(records[2], (0, 0))])
    added = project.insert_annotations(reversed(removed))
    assert [c.id for c in added] == [1, 4, 6]
    assert list(project.annotations) == order
    assert {i: [a.id for a in project.annotations_for(i)] for i in project.images} == per_image
    assert dict(project.annotations) == records


def test_bulk_remove_checks_every_id_first(store: ProjectStore) -> None:
    before = list(store.project.annotations)
    with pytest.raises(KeyError, match="no annotation with id 99"):
        store.project.remove_annotations([1, 99])
    with pytest.raises(ValueError, match="listed twice"):
        store.project.remove_annotations([1, 1])
    assert list(store.project.annotations) == before
