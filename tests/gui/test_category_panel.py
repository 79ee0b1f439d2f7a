"""The categories panel on its own: rows shown, and each action emits the right request.

Dialogs are answered by monkeypatching (QInputDialog, QColorDialog and the panel's ask_*
functions), so nothing modal opens.
"""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QColorDialog, QDialog, QInputDialog, QMessageBox

from sam2_annotator.annotations.model import Category
from sam2_annotator.gui import category_panel
from sam2_annotator.gui.category_panel import (
    CategoryPanel,
    CategoryRow,
    DeleteCategoryDialog,
    category_rows,
)

ROWS = [
    CategoryRow(1, "cat", (200, 10, 10), 4),
    CategoryRow(2, "dog", (10, 200, 10), 0),
    CategoryRow(5, "car", (10, 10, 200), 2),
]


class Recorder:
    """Every signal the panel emits, as (name, args)."""

    def __init__(self, panel: CategoryPanel) -> None:
        self.calls: list[tuple] = []
        for name in (
            "add_requested",
            "rename_requested",
            "recolor_requested",
            "merge_requested",
            "delete_requested",
            "chosen",
        ):
            getattr(panel, name).connect(lambda *args, n=name: self.calls.append((n, *args)))


@pytest.fixture
def panel(qtbot) -> CategoryPanel:
    widget = CategoryPanel()
    qtbot.addWidget(widget)
    widget.set_categories(ROWS)
    widget.resize(320, 240)
    return widget


@pytest.fixture
def calls(panel: CategoryPanel) -> list[tuple]:
    return Recorder(panel).calls


def _texts(panel: CategoryPanel) -> list[list[str]]:
    tree = panel.tree
    return [
        [tree.topLevelItem(i).text(c) for c in range(3)] for i in range(tree.topLevelItemCount())
    ]


def _answer_text(monkeypatch: pytest.MonkeyPatch, text: str, ok: bool = True) -> list[tuple]:
    asked: list[tuple] = []

    def get_text(*args, **kwargs):
        asked.append((args, kwargs))
        return text, ok

    monkeypatch.setattr(QInputDialog, "getText", staticmethod(get_text))
    return asked


def test_rows_show_key_name_count_and_colour(panel: CategoryPanel) -> None:
    assert _texts(panel) == [["1", "cat", "4"], ["2", "dog", "0"], ["3", "car", "2"]]
    item = panel.tree.topLevelItem(0)
    image = item.icon(1).pixmap(12, 12).toImage()
    assert QColor(image.pixel(5, 5)).getRgb()[:3] == (200, 10, 10)
    assert "key 1" in item.toolTip(1)
    assert panel.rows() == tuple(ROWS)


def test_only_the_first_nine_have_number_keys(panel: CategoryPanel) -> None:
    rows = [CategoryRow(i, f"c{i}", (i, i, i), i) for i in range(1, 12)]
    panel.set_categories(rows)
    assert [row[0] for row in _texts(panel)] == [str(i) for i in range(1, 10)] + ["", ""]


def test_rows_from_store_categories() -> None:
    categories = [Category(3, "b", color=(1, 2, 3)), Category(1, "a")]
    rows = category_rows(categories, {3: 7})
    assert rows[0] == CategoryRow(3, "b", (1, 2, 3), 7)
    assert rows[1].id == 1 and rows[1].count == 0 and len(rows[1].color) == 3


def test_set_categories_keeps_the_selection_and_emits_nothing(
    panel: CategoryPanel, calls: list[tuple]
) -> None:
    assert panel.current_id() is None
    assert not panel.rename_action.isEnabled() and not panel.delete_action.isEnabled()
    panel.select(5)
    assert panel.current_id() == 5 and panel.rename_action.isEnabled()
    panel.set_categories([ROWS[2], ROWS[0]])
    assert panel.current_id() == 5
    panel.set_categories(ROWS[:2])
    assert panel.current_id() is None
    assert calls == []


def test_merge_needs_another_category(panel: CategoryPanel) -> None:
    panel.select(1)
    assert panel.merge_action.isEnabled()
    panel.set_categories(ROWS[:1])
    assert not panel.merge_action.isEnabled()


def test_add_requests_the_stripped_name(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer_text(monkeypatch, "  bird ")
    panel.add_action.trigger()
    assert calls == [("add_requested", "bird")]


@pytest.mark.parametrize(("text", "ok"), [("bird", False), ("   ", True), ("", True)])
def test_add_cancelled_or_empty_requests_nothing(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch, text, ok
) -> None:
    _answer_text(monkeypatch, text, ok)
    panel.add_action.trigger()
    assert calls == []


def test_add_of_an_existing_name_selects_it(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer_text(monkeypatch, "DOG")
    panel.add_action.trigger()
    assert calls == []
    assert panel.current_id() == 2


def test_rename_requests_the_new_name(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _answer_text(monkeypatch, " kitten")
    panel.select(1)
    panel.rename_action.trigger()
    assert calls == [("rename_requested", 1, "kitten")]
    assert asked[0][1]["text"] == "cat"  # the dialog starts with the current name


def test_rename_to_an_existing_name_asks_to_merge(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    _answer_text(monkeypatch, "Car")
    answers = iter([False, True])
    asked: list[tuple] = []

    def ask(parent, name, other):
        asked.append((name, other))
        return next(answers)

    monkeypatch.setattr(category_panel, "ask_merge_instead", ask)
    panel.select(1)
    panel.rename_action.trigger()
    assert calls == []  # the user said no
    panel.rename_action.trigger()
    assert calls == [("merge_requested", 1, 5)]
    assert asked == [("cat", "car"), ("cat", "car")]


def test_rename_to_the_same_name_or_another_case_of_it(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(category_panel, "ask_merge_instead", pytest.fail)
    panel.select(1)
    _answer_text(monkeypatch, "cat")
    panel.rename_action.trigger()
    assert calls == []
    _answer_text(monkeypatch, "Cat")
    panel.rename_action.trigger()
    assert calls == [("rename_requested", 1, "Cat")]


def test_f2_renames_and_delete_key_deletes(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch, qtbot
) -> None:
    _answer_text(monkeypatch, "puppy")
    panel.select(2)
    qtbot.keyClick(panel.tree, Qt.Key.Key_F2)
    qtbot.keyClick(panel.tree, Qt.Key.Key_Delete)
    assert calls == [("rename_requested", 2, "puppy"), ("delete_requested", 2, "delete", None)]


def test_recolour_requests_the_chosen_colour(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    offered: list[QColor] = []

    def get_color(initial, parent, title):
        offered.append(QColor(initial))
        return QColor(1, 2, 3)

    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(get_color))
    panel.select(5)
    panel.recolor_action.trigger()
    assert calls == [("recolor_requested", 5, (1, 2, 3))]
    assert offered[0].getRgb()[:3] == (10, 10, 200)


def test_recolour_cancelled_or_unchanged_requests_nothing(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    answers = iter([QColor(), QColor(10, 10, 200)])  # cancelled (invalid), then the same colour
    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(lambda *a: next(answers)))
    panel.select(5)
    panel.recolor_action.trigger()
    panel.recolor_action.trigger()
    assert calls == []


def test_merge_asks_for_a_target_among_the_others(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    asked: list[tuple] = []

    def ask(parent, name, others):
        asked.append((name, [row.id for row in others]))
        return 2

    monkeypatch.setattr(category_panel, "ask_merge_target", ask)
    panel.select(1)
    panel.merge_action.trigger()
    assert asked == [("cat", [2, 5])]
    assert calls == [("merge_requested", 1, 2)]
    monkeypatch.setattr(category_panel, "ask_merge_target", lambda *a: None)
    panel.merge_action.trigger()
    assert calls == [("merge_requested", 1, 2)]


def test_default_merge_question_maps_the_choice_to_an_id(
    panel: CategoryPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        QInputDialog, "getItem", staticmethod(lambda parent, t, label, items, *a: (items[1], True))
    )
    assert category_panel.ask_merge_target(panel, "cat", ROWS[1:]) == 5
    monkeypatch.setattr(
        QInputDialog, "getItem", staticmethod(lambda parent, t, label, items, *a: (items[0], False))
    )
    assert category_panel.ask_merge_target(panel, "cat", ROWS[1:]) is None
    assert category_panel.ask_merge_target(panel, "cat", []) is None


def test_default_merge_instead_question(
    panel: CategoryPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Yes)
    assert category_panel.ask_merge_instead(panel, "cat", "car")
    monkeypatch.setattr(QMessageBox, "question", lambda *a: QMessageBox.StandardButton.Cancel)
    assert not category_panel.ask_merge_instead(panel, "cat", "car")


def test_delete_of_an_unused_category_asks_nothing(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(category_panel, "ask_delete_mode", pytest.fail)
    panel.select(2)
    panel.delete_action.trigger()
    assert calls == [("delete_requested", 2, "delete", None)]


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (("delete", None), [("delete_requested", 1, "delete", None)]),
        (("move", 5), [("delete_requested", 1, "move", 5)]),
        (None, []),
        (("move", None), []),
    ],
)
def test_delete_asks_what_happens_to_the_annotations(
    panel: CategoryPanel,
    calls: list[tuple],
    monkeypatch: pytest.MonkeyPatch,
    answer,
    expected,
) -> None:
    asked: list[tuple] = []

    def ask(parent, name, count, others):
        asked.append((name, count, [row.id for row in others]))
        return answer

    monkeypatch.setattr(category_panel, "ask_delete_mode", ask)
    panel.select(1)
    panel.delete_action.trigger()
    assert asked == [("cat", 4, [2, 5])]
    assert calls == expected


def test_delete_dialog_choices(qtbot) -> None:
    dialog = DeleteCategoryDialog(None, "cat", 4, ROWS[1:])
    qtbot.addWidget(dialog)
    assert dialog.choice() == ("delete", None)
    assert "Delete the 4 annotations" in dialog.delete_button.text()
    assert not dialog.target.isEnabled()
    dialog.move_button.setChecked(True)
    assert dialog.target.isEnabled()
    dialog.target.setCurrentIndex(1)
    assert dialog.choice() == ("move", 5)
    alone = DeleteCategoryDialog(None, "cat", 1, [])
    qtbot.addWidget(alone)
    assert not alone.move_button.isEnabled()
    assert alone.choice() == ("delete", None)


def test_default_delete_question_uses_the_dialog(
    panel: CategoryPanel, monkeypatch: pytest.MonkeyPatch
) -> None:
    def accept_moving(self):
        self.move_button.setChecked(True)
        return QDialog.DialogCode.Accepted

    monkeypatch.setattr(DeleteCategoryDialog, "exec", accept_moving)
    assert category_panel.ask_delete_mode(panel, "cat", 4, ROWS[1:]) == ("move", 2)
    monkeypatch.setattr(DeleteCategoryDialog, "exec", lambda self: QDialog.DialogCode.Rejected)
    assert category_panel.ask_delete_mode(panel, "cat", 4, ROWS[1:]) is None


def test_double_click_chooses_the_category(panel: CategoryPanel, calls: list[tuple], qtbot) -> None:
    panel.show()
    qtbot.waitExposed(panel)
    item = panel.tree.topLevelItem(2)
    centre = panel.tree.visualItemRect(item).center()
    qtbot.mouseClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    qtbot.mouseDClick(panel.tree.viewport(), Qt.MouseButton.LeftButton, pos=centre)
    assert calls == [("chosen", 5)]
    assert panel.current_id() == 5
    panel.select(1)
    panel.tree.setCurrentItem(panel.tree.topLevelItem(0))
    qtbot.keyClick(panel.tree, Qt.Key.Key_Return)
    assert calls == [("chosen", 5), ("chosen", 1)]


def test_context_menu_offers_every_action(panel: CategoryPanel) -> None:
    menu = panel.context_menu()
    assert [a.text() for a in menu.actions()] == [
        "Add…",
        "Rename…",
        "Colour…",
        "Merge into…",
        "Delete…",
    ]


def test_actions_without_a_selection_do_nothing(
    panel: CategoryPanel, calls: list[tuple], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(QInputDialog, "getText", pytest.fail)
    for action in (panel.rename, panel.recolor, panel.merge, panel.delete):
        action()
    assert calls == []
