"""The window's action table: every command with its menu, shortcuts and handler (Qt only).

Handlers are attribute paths on the window (``"accept_mask"``, ``"canvas.fit_to_window"``), so a
command is one row here and one method where its logic lives; :func:`install_actions` builds the
``QAction`` objects, menus and toolbar from the table.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from dataclasses import dataclass

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QIcon, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QStyle, QToolBar

from sam2_annotator.gui.icons import redo_icon, undo_icon


@dataclass(frozen=True)
class ActionSpec:
    """One entry of the action table: menu text, shortcuts, handler, menu and toolbar icon."""

    name: str
    text: str
    handler: str
    shortcuts: tuple[str, ...] = ()
    menu: str = ""
    icon: QStyle.StandardPixmap | Callable[[], QIcon] | None = None
    tip: str = ""
    checkable: bool = False
    argument: object = None


_SP = QStyle.StandardPixmap

#: Every command of the window. Menus are created in the order they first appear.
ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("open_images", "Open &Images…", "opening.choose_images", ("Ctrl+O",), "File",
               _SP.SP_DialogOpenButton),
    ActionSpec("open_folder", "Open &Folder…", "opening.choose_folder", ("Ctrl+Shift+O",), "File",
               _SP.SP_DirOpenIcon),
    ActionSpec("open_video", "Open &Video…", "opening.choose_video", ("Ctrl+Shift+V",), "File",
               tip="Open a video (mp4, avi, mov, mkv…) to track objects through it"),
    ActionSpec("open_frames", "Open Frame Folder as &Sequence…", "opening.choose_frame_folder",
               (), "File", tip="Open a folder of video frames (sorted by name) to track objects"),
    ActionSpec("open_project", "Open &Project (COCO)…", "opening.choose_project", (), "File"),
    ActionSpec("export", "&Export…", "opening.export", ("Ctrl+E",), "File",
               tip="Export COCO (RLE or polygons), YOLO-seg or PNG masks"),
    ActionSpec("settings", "&Settings…", "opening.edit_settings", ("Ctrl+,",), "File"),
    ActionSpec("setup_model", "Set up a &model…", "models.setup", (), "File"),
    ActionSpec("quit", "&Quit", "close", ("Ctrl+Q",), "File"),
    ActionSpec("undo", "&Undo", "history", ("Ctrl+Z",), "Edit",
               undo_icon, "Undo the last point, or the last edit"),
    ActionSpec("redo", "&Redo", "history", ("Ctrl+Y", "Ctrl+Shift+Z"), "Edit", redo_icon,
               argument="redo"),
    ActionSpec("accept", "&Accept mask…", "accept_mask", ("Return", "Enter"), "Edit",
               _SP.SP_DialogApplyButton, "Accept the mask, polygon or painting and label it "
               "(Enter or Space)"),
    ActionSpec("next_object", "Accept and &next object", "accept", ("N",), "Edit", argument=True,
               tip="Accept with the last label and start the next object"),
    ActionSpec("remove_point", "Remove &last point or vertex", "remove_last_point",
               ("Backspace",), "Edit"),
    ActionSpec("clear", "&Cancel (clear prompt, polygon, painting, edit)", "clear_prompt",
               ("Esc",), "Edit"),
    ActionSpec("cycle", "Next &candidate mask", "cycle_candidate", ("Tab",), "Edit"),
    ActionSpec("edit", "Co&rrect selected annotation", "editing.edit_selected", ("E",), "Edit",
               tip="Refine the selected annotation with clicks, or edit its polygon (also: "
               "double click on it)"),
    ActionSpec("relabel", "Re&label annotation…", "relabel", ("L",), "Edit"),
    ActionSpec("iscrowd", "Toggle is&crowd", "categories.toggle_selected_iscrowd", ("Shift+C",),
               "Edit"),
    ActionSpec("delete", "&Delete annotation", "delete_annotations", ("Delete",), "Edit"),
    ActionSpec("tool_prompt", "&SAM clicks", "editing.set_tool", ("S",), "Tools", checkable=True,
               argument="prompt", tip="Click = point, drag = box (the model segments)"),
    ActionSpec("tool_polygon", "&Polygon", "editing.set_tool", ("P",), "Tools", checkable=True,
               argument="polygon", tip="Click vertices; Enter or double click closes"),
    ActionSpec("tool_brush", "&Brush", "editing.set_tool", ("B",), "Tools", checkable=True,
               argument="brush", tip="Paint onto the current mask or the selected annotation"),
    ActionSpec("tool_eraser", "&Eraser", "editing.set_tool", ("X",), "Tools", checkable=True,
               argument="eraser", tip="Erase from the current mask or the selected annotation"),
    ActionSpec("brush_smaller", "Brush s&maller", "editing.resize_brush", ("[",), "Tools",
               argument=False),
    ActionSpec("brush_bigger", "Brush bi&gger", "editing.resize_brush", ("]",), "Tools",
               argument=True),
    ActionSpec("prev", "&Previous image", "go_by", ("A", "PgUp"), "Go",
               _SP.SP_MediaSeekBackward, argument=-1),
    ActionSpec("next", "&Next image", "go_by", ("D", "PgDown"), "Go",
               _SP.SP_MediaSeekForward, argument=1),
    ActionSpec("flag_done", "Mark image &done", "editing.toggle_flag", ("Ctrl+D",), "Go",
               checkable=True, argument="done"),
    ActionSpec("flag_review", "Mark image needs re&view", "editing.toggle_flag", ("Ctrl+R",), "Go",
               checkable=True, argument="review"),
    ActionSpec("fit", "&Fit to window", "canvas.fit_to_window", ("F",), "View",
               _SP.SP_TitleBarMaxButton),
    ActionSpec("zoom_in", "Zoom &in", "view.zoom_by", ("Ctrl++", "Ctrl+="), "View",
               argument=1.25),
    ActionSpec("zoom_out", "Zoom &out", "view.zoom_by", ("Ctrl+-",), "View", argument=0.8),
    ActionSpec("zoom_100", "&Actual pixels", "canvas.zoom_to", ("Ctrl+1",), "View",
               argument=1.0),
    ActionSpec("show_annotations", "Show &annotations", "view.toggle_annotations", ("H",), "View",
               _SP.SP_FileDialogDetailedView, checkable=True),
    ActionSpec("shortcuts", "&Keyboard shortcuts", "opening.show_shortcuts", ("F1",), "Help"),
    *(
        ActionSpec(f"category_{n}", f"Category &{n}", "categories.choose_number", (str(n),),
                   "Categories", argument=n, tip=f"Give the {n}. category to the current mask "
                   "or the selected annotation")
        for n in range(1, 10)
    ),
)  # fmt: skip

TOOLBAR = ("open_images", "open_folder", None, "prev", "next", None, "fit", None, "undo", "redo",
           None, "accept", None, "tool_prompt", "tool_polygon", "tool_brush", "tool_eraser", None,
           "show_annotations")  # fmt: skip

TOOL_ACTIONS = {"prompt": "tool_prompt", "polygon": "tool_polygon", "brush": "tool_brush",
                "eraser": "tool_eraser"}  # fmt: skip


def resolve(window: object, handler: str) -> Callable[..., object]:
    """``"canvas.fit_to_window"`` -> ``window.canvas.fit_to_window``."""
    return operator.attrgetter(handler)(window)


def _run(window: object, spec: ActionSpec, _checked: bool = False) -> None:
    function = resolve(window, spec.handler)
    if spec.argument is None:
        function()
    else:
        function(spec.argument)


def install_actions(window: QMainWindow) -> tuple[dict[str, QAction], QMenu, QToolBar]:
    """Create every action, the menus and the toolbar; returns the actions by name, the
    "Open Recent" menu and the toolbar."""
    actions: dict[str, QAction] = {}
    menus: dict[str, QMenu] = {}
    recent: QMenu | None = None
    for spec in ACTIONS:
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        if spec.shortcuts:
            action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
            action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        if isinstance(spec.icon, QStyle.StandardPixmap):
            action.setIcon(window.style().standardIcon(spec.icon))
        elif spec.icon is not None:
            action.setIcon(spec.icon())
        tip = spec.tip or spec.text.replace("&", "").rstrip("…")
        if spec.shortcuts:
            tip += f" ({', '.join(spec.shortcuts)})"
        action.setToolTip(tip)
        action.setStatusTip(tip)
        action.setCheckable(spec.checkable)
        action.triggered.connect(functools.partial(_run, window, spec))
        window.addAction(action)
        if spec.menu:
            if spec.menu not in menus:
                menus[spec.menu] = window.menuBar().addMenu(f"&{spec.menu}")
            menus[spec.menu].addAction(action)
            if spec.name == "open_project":
                recent = menus[spec.menu].addMenu("Open &Recent")
                menus[spec.menu].addSeparator()
        actions[spec.name] = action
    toolbar = QToolBar("Tools", window)
    toolbar.setObjectName("toolbar")
    toolbar.setToolButtonStyle(Qt.ToolButtonStyle.ToolButtonIconOnly)
    for name in TOOLBAR:
        if name is None:
            toolbar.addSeparator()
        else:
            toolbar.addAction(actions[name])
    assert recent is not None
    return actions, recent, toolbar


def shortcut_lines() -> list[str]:
    """The keyboard help (F1)."""
    lines = [
        "Left click: positive point — Right click or Shift+click: negative point",
        "Drag: box — Wheel: zoom — Middle drag or Space+drag: pan",
        "Ctrl+click: select the annotation under the cursor — Double click: correct it",
        "Polygon: click vertices, click the first vertex / Enter / double click closes; "
        "drag a vertex to move it; click an edge of a closed polygon to insert one",
    ]
    for spec in ACTIONS:
        if spec.shortcuts and not spec.name.startswith("category_"):
            lines.append(f"{', '.join(spec.shortcuts)}: {spec.text.replace('&', '')}")
    lines.append("1 … 9: give the n-th category to the current mask or the selection")
    lines.append("Space (tap): accept mask")
    return lines
