"""The sequence window's command table and its menus and toolbar (Qt only).

Rows are the main window's :class:`~.actions.ActionSpec`; handlers are attribute paths on the
:class:`~.sequence_window.SequenceWindow`.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QMainWindow, QMenu, QStyle, QToolBar

from sam2_annotator.gui.actions import ActionSpec, resolve

#: The window's commands (the main window's :class:`~.actions.ActionSpec` rows).
SEQUENCE_ACTIONS: tuple[ActionSpec, ...] = (
    ActionSpec("export", "&Export COCO + PNG masks…", "export", ("Ctrl+E",), "File"),
    ActionSpec("close", "&Close sequence", "close", ("Ctrl+W",), "File"),
    ActionSpec("prev_frame", "&Previous frame", "step", ("Left", ","), "Frame", argument=-1),
    ActionSpec("next_frame", "&Next frame", "step", ("Right", "."), "Frame", argument=1),
    ActionSpec("back_10", "Back 10 frames", "step", ("Shift+Left",), "Frame", argument=-10),
    ActionSpec("ahead_10", "Ahead 10 frames", "step", ("Shift+Right",), "Frame", argument=10),
    ActionSpec("first_frame", "&First frame", "go_to", ("Home",), "Frame", argument=0),
    ActionSpec("last_frame", "&Last frame", "go_to_last", ("End",), "Frame"),
    ActionSpec("play", "&Play / pause", "toggle_play", ("K",), "Frame",
               tip="Play or pause (also: tap Space on the frame)"),
    ActionSpec("propagate_forward", "Propagate &forward", "propagate", ("P", "Ctrl+Right"),
               "Track", tip="Track every object from this frame to the end", argument=False),
    ActionSpec("propagate_backward", "Propagate &backward", "propagate",
               ("Shift+P", "Ctrl+Left"), "Track",
               tip="Track every object from this frame back to the first", argument=True),
    ActionSpec("cancel", "&Cancel propagation", "cancel", ("Esc",), "Track"),
    ActionSpec("new_object", "&New object", "new_object", ("N",), "Track",
               tip="Start a new object (next track id); clicks go to it"),
    ActionSpec("undo_click", "&Remove last click", "undo_click", ("Backspace", "Ctrl+Z"),
               "Track"),
    ActionSpec("delete_object", "&Delete object", "delete_object", ("Delete",), "Track"),
    ActionSpec("fit", "&Fit to window", "canvas.fit_to_window", ("F",), "View"),
    *(
        ActionSpec(f"object_{n}", f"Object &{n}", "choose_nth", (str(n),), "Track",
                   argument=n)
        for n in range(1, 10)
    ),
)  # fmt: skip
TOOLBAR = ("play", None, "propagate_backward", "propagate_forward", "cancel", None,
           "new_object", "delete_object", None, "export")  # fmt: skip


def install_sequence_actions(window: QMainWindow) -> dict[str, QAction]:
    """Create the actions of :data:`SEQUENCE_ACTIONS`, their menus and the toolbar."""
    icons = {
        "propagate_forward": QStyle.StandardPixmap.SP_MediaSeekForward,
        "propagate_backward": QStyle.StandardPixmap.SP_MediaSeekBackward,
        "cancel": QStyle.StandardPixmap.SP_BrowserStop,
        "play": QStyle.StandardPixmap.SP_MediaPlay,
        "export": QStyle.StandardPixmap.SP_DialogSaveButton,
        "new_object": QStyle.StandardPixmap.SP_FileDialogNewFolder,
        "delete_object": QStyle.StandardPixmap.SP_TrashIcon,
    }
    actions: dict[str, QAction] = {}
    menus: dict[str, QMenu] = {}
    for spec in SEQUENCE_ACTIONS:
        action = QAction(spec.text, window)
        action.setObjectName(spec.name)
        action.setShortcuts([QKeySequence(s) for s in spec.shortcuts])
        action.setShortcutContext(Qt.ShortcutContext.WindowShortcut)
        tip = (spec.tip or spec.text.replace("&", "").rstrip("…")) + (
            f" ({', '.join(spec.shortcuts)})" if spec.shortcuts else ""
        )
        action.setToolTip(tip)
        if spec.name in icons:
            action.setIcon(window.style().standardIcon(icons[spec.name]))
        handler, argument = resolve(window, spec.handler), spec.argument
        if argument is None:
            action.triggered.connect(lambda _=False, h=handler: h())
        else:
            action.triggered.connect(lambda _=False, h=handler, a=argument: h(a))
        window.addAction(action)
        if spec.menu not in menus:
            menus[spec.menu] = window.menuBar().addMenu(f"&{spec.menu}")
        menus[spec.menu].addAction(action)
        actions[spec.name] = action
    toolbar = QToolBar("Sequence", window)
    toolbar.setObjectName("sequenceToolbar")
    for name in TOOLBAR:
        if name is None:
            toolbar.addSeparator()
        else:
            toolbar.addAction(actions[name])
    window.addToolBar(toolbar)
    return actions
