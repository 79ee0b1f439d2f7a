"""The sequence window end to end: the random-init model with its video graphs behind it.

Frames are four 640x360 frames of bigbuckbunny.mp4 written as JPEG (an encoder run is 1.5-3 s
here, so every test keeps the number of encoded frames small). The object-score bias of the
test export makes clicked objects present, so the masks compared here are non-empty.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import Qt, QTimer
from PySide6.QtTest import QTest

from sam2_annotator.app.sequence_export import COCO_NAME
from sam2_annotator.app.sequence_io import project_path_for, read_project
from sam2_annotator.engine.providers import SessionConfig
from sam2_annotator.gui.sequence_window import SequenceWindow
from sam2_annotator.gui.settings import AppSettings
from tests.video.conftest import VIDEO, export_video_cached

pytestmark = pytest.mark.slow

#: Generous: a propagated frame takes ~2-4 s on an idle 2-core machine, more when it is busy.
TRACK_MS = 240_000
OPEN_MS = 60_000
FIGURES: dict[str, float] = {}


@pytest.fixture(scope="session")
def video_model() -> Path:
    return export_video_cached()


@pytest.fixture(scope="module")
def clip_frames(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("bunny") / "bunny"
    folder.mkdir()
    capture = cv2.VideoCapture(str(VIDEO))
    for index in range(4):
        ok, frame = capture.read()
        assert ok
        small = cv2.resize(frame, (640, 360), interpolation=cv2.INTER_AREA)
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), small)
    capture.release()
    return folder


@pytest.fixture
def frames(tmp_path: Path, clip_frames: Path) -> Path:
    """A private copy (the project file is written inside the frame folder)."""
    return Path(shutil.copytree(clip_frames, tmp_path / "bunny"))


def open_window(qtbot, source: Path, model_dir: Path | None) -> SequenceWindow:
    window = SequenceWindow(
        source, model_dir, AppSettings(disk_cache=False), SessionConfig(threads=2)
    )
    qtbot.addWidget(window)
    window.resize(1100, 750)
    window.show()
    qtbot.waitExposed(window)
    qtbot.waitUntil(lambda: window.shown is not None, timeout=OPEN_MS)
    if model_dir is not None:
        qtbot.waitUntil(
            lambda: window.tracking_ready or window.tracker_error is not None, timeout=OPEN_MS
        )
    window.activateWindow()  # keys go to the active window (an error box may have taken it)
    qtbot.waitUntil(window.isActiveWindow)
    return window


def click(qtbot, window: SequenceWindow, x: float, y: float, button=Qt.MouseButton.LeftButton):
    """A real mouse click on the canvas, answered by the tracker."""
    with qtbot.waitSignal(window.worker.clicked, timeout=TRACK_MS):
        QTest.mouseClick(window.canvas.viewport(), button, Qt.KeyboardModifier.NoModifier,
                         window.canvas.view_pos(x, y))  # fmt: skip
    qtbot.waitUntil(lambda: window.session.awaiting_clicks == 0, timeout=TRACK_MS)


def propagate(qtbot, window: SequenceWindow, key: str = "P", on_step=None):
    """Press ``key`` and collect the steps until the propagation ends."""
    steps, gaps, last = [], [0.0], [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        gaps.append((now - last[0]) * 1000.0)
        last[0] = now

    def collect(step) -> None:
        steps.append(step)
        if on_step is not None:
            on_step(step)

    timer = QTimer()
    timer.timeout.connect(tick)
    timer.start(20)
    window.worker.propagated.connect(collect)
    with qtbot.waitSignal(window.worker.propagation_ended, timeout=TRACK_MS) as ended:
        QTest.keyClick(window, key)
    timer.stop()
    window.worker.propagated.disconnect(collect)
    qtbot.waitUntil(lambda: not window.session.propagating)
    return steps, ended.args[0], max(gaps)


def test_click_propagate_scrub_correct_save_export_and_reopen(qtbot, frames, video_model):
    window = open_window(qtbot, frames, video_model)
    assert window.tracking_ready, window.tracker_error
    assert "random-init" in window.model_label.text()
    assert "c0392b" in window.model_label.styleSheet()  # said in red, as in the image mode
    assert window.timeline.label.text() == "frame 0 / 4"
    assert "Open" not in window.canvas.hint.text() and not window.canvas.hint.isVisible()

    click(qtbot, window, 320, 200)
    model = window.model
    first = model.masks_on(0)[1]
    assert first.present and first.source == "prompt"
    qtbot.waitUntil(lambda: window.canvas.annotation_ids() == [1])
    assert [b.text for b in window._badges] == ["#1 object"]
    assert window.worker.encoder_runs == 1

    # propagate forward (P); scrub to frame 1 as soon as it is tracked, while frames 2-3 run
    shown_during: list[tuple[int, list[int]]] = []

    def on_frame(view) -> None:
        if window.session.propagating:
            shown_during.append((view.frame, [t for t, _ in view.overlays]))

    window.frame_shown.connect(on_frame)
    steps, end, stall = propagate(
        qtbot, window, "P", lambda s: window.go_to(1) if s.frame == 1 else None
    )
    window.frame_shown.disconnect(on_frame)
    assert [s.frame for s in steps] == [0, 1, 2, 3] and not end.cancelled and end.frames == 4
    assert all(s.masks[1].present for s in steps)
    assert (1, [1]) in shown_during  # the scrubbed frame showed its mask mid-propagation
    assert [model.masks_on(f)[1].source for f in range(4)] == ["prompt"] + ["tracked"] * 3
    assert window.worker.encoder_runs == 4
    FIGURES["propagated frame ms"] = float(np.mean([s.wall_ms for s in steps[1:]]))
    FIGURES["longest GUI stall during propagation ms"] = stall
    assert stall < 500.0, f"the GUI stalled {stall:.0f} ms while propagating"

    # a correction on frame 2 (a negative click), then propagate forward again from there
    QTest.keyClick(window, Qt.Key.Key_Right)
    assert window.frame == 2 and window.timeline.label.text() == "frame 2 / 4"
    before = model.masks_on(3)[1].rle
    click(qtbot, window, 100, 80, Qt.MouseButton.RightButton)
    ((x, y, label),) = model.prompt(2, 1).points  # view pixels -> frame pixels: within 1 px
    assert abs(x - 100) < 1 and abs(y - 80) < 1 and label == 0
    assert model.masks_on(2)[1].source == "prompt"
    steps, end, _ = propagate(qtbot, window, "P")
    assert [s.frame for s in steps] == [2, 3] and not end.cancelled
    assert window.worker.encoder_runs == 4  # the tracker's cache: no frame encoded again
    assert model.masks_on(3)[1].rle != before  # frame 3 now follows the corrected frame 2
    FIGURES["re-propagated frame ms (cached features)"] = steps[-1].wall_ms

    # the project file beside the clip follows every change
    window.saver.flush()
    path = project_path_for(frames)
    assert read_project(path).snapshot() == model.snapshot()

    # export: COCO + frames as JPEG + per-frame id masks, on a background job
    window.export()
    dialog = window.export_dialog
    out = frames.parent / "export"
    dialog.folder_edit.setText(str(out))
    with qtbot.waitSignal(dialog.exported, timeout=TRACK_MS) as exported:
        dialog.start_export()
    assert exported.args[0].frames == 4
    data = json.loads((out / COCO_NAME).read_text())
    assert [im["frame"] for im in data["images"]] == [0, 1, 2, 3]
    assert [a["track_id"] for a in data["annotations"]] == [1, 1, 1, 1]
    assert all(a["area"] > 0 for a in data["annotations"])
    assert sorted(p.name for p in (out / "images").iterdir()) == [f"{i:05d}.jpg" for i in range(4)]
    ids = np.asarray(Image.open(out / "masks" / "00002.png"))  # palette indices = track ids
    assert ids.shape == (360, 640) and set(np.unique(ids)) == {0, 1}
    assert int((ids == 1).sum()) == data["annotations"][2]["area"]
    dialog.close()
    window.close()

    # reopening shows the saved masks and replays the two clicks to a fresh tracker
    again = open_window(qtbot, frames, video_model)
    assert again.model.snapshot() == model.snapshot()
    assert again.tracker.replayed == 2
    assert again.canvas.annotation_ids() == [1]


def test_cancel_stops_the_propagation_and_leaves_a_consistent_state(qtbot, frames, video_model):
    window = open_window(qtbot, frames, video_model)
    click(qtbot, window, 320, 200)

    def cancel_on_first(step) -> None:
        if step.frame == 0:
            QTest.keyClick(window, Qt.Key.Key_Escape)

    steps, end, _ = propagate(qtbot, window, "P", cancel_on_first)
    assert end.cancelled and 1 <= end.frames < 4
    assert [s.frame for s in steps] == list(range(end.frames))
    assert window.model.processed_frames() == list(range(end.frames))
    assert window.actions_by_name["propagate_forward"].isEnabled()
    assert not window.progress.isVisible()
    assert "cancelled after" in window.statusBar().currentMessage()
    # after the cancel the tracker carries on from where it stopped
    window.go_to(end.frames - 1)
    steps, end, _ = propagate(qtbot, window, "P")
    assert steps[-1].frame == 3 and not end.cancelled
    assert window.model.processed_frames() == [0, 1, 2, 3]


def test_a_model_without_video_graphs_says_so_once(qtbot, frames, model_dir):
    window = open_window(qtbot, frames, model_dir)
    assert not window.tracking_ready
    assert "no video graphs" in window.tracker_error
    assert window.error_box.isVisible() and "no video graphs" in window.error_box.text()
    assert not window.actions_by_name["propagate_forward"].isEnabled()
    QTest.mouseClick(window.canvas.viewport(), Qt.MouseButton.LeftButton,
                     Qt.KeyboardModifier.NoModifier, window.canvas.view_pos(100, 100))  # fmt: skip
    assert window.model.objects == {} and "no video graphs" in window.statusBar().currentMessage()
    assert window.canvas.has_image  # the clip can still be viewed
    assert window.info.fps is None  # a frame folder plays at FOLDER_FPS
    QTest.keyClick(window, Qt.Key.Key_End)
    qtbot.waitUntil(lambda: window.shown.frame == 3)
    assert not project_path_for(frames).exists()  # nothing was edited, nothing written


def test_the_main_window_opens_a_video_as_a_sequence(qtbot, tmp_path, video_model):
    from sam2_annotator.gui.main_window import MainWindow

    video = tmp_path / "bunny.mp4"
    shutil.copy(VIDEO, video)
    main = MainWindow(AppSettings(prefetch=0, disk_cache=False, no_ai=True), ask_for_model=False)
    qtbot.addWidget(main)
    assert main.actions_by_name["open_video"].text() == "Open &Video…"
    main.open_path(video)  # as File > Open Video…, a drop or the command line do
    window = main.opening.sequence_window
    assert window is not None
    qtbot.addWidget(window)
    qtbot.waitUntil(lambda: window.shown is not None, timeout=OPEN_MS)
    assert window.timeline.label.text() == "frame 0 / 132"
    assert window.info.fps is not None and 1 < window.info.fps < 100  # plays at its own rate
    assert window.tracker_error is not None and "no model" in window.tracker_error
    QTest.keyClick(window, Qt.Key.Key_Right)
    QTest.keyClick(window, Qt.Key.Key_Period)
    qtbot.waitUntil(lambda: window.shown.frame == 2)
    assert window.timeline.slider.value() == 2
    with qtbot.waitSignal(window.frame_shown, timeout=OPEN_MS):
        window.toggle_play()  # K: plays at the video's own rate
    qtbot.waitUntil(lambda: window.shown.frame >= 6, timeout=OPEN_MS)
    window.toggle_play()
    assert not window.play_timer.isActive()
    assert str(video) in main.settings.recent_projects
    main.open_path(video)  # one sequence at a time: the first window closes (its worker stops)
    second = main.opening.sequence_window
    assert second is not None and second is not window and not window.isVisible()
    assert not window.worker._thread.isRunning()
    qtbot.addWidget(second)
    qtbot.waitUntil(lambda: second.shown is not None, timeout=OPEN_MS)
    second.close()
    assert main.opening.sequence_window is None
    assert not project_path_for(video).exists()


def test_the_action_table_has_unique_shortcuts_and_live_handlers(qtbot, frames) -> None:
    from sam2_annotator.gui.actions import resolve
    from sam2_annotator.gui.sequence_actions import SEQUENCE_ACTIONS

    window = open_window(qtbot, frames, None)
    seen: dict[str, str] = {}
    for spec in SEQUENCE_ACTIONS:
        for shortcut in spec.shortcuts:
            assert shortcut not in seen, f"{shortcut} used by {seen[shortcut]} and {spec.name}"
            seen[shortcut] = spec.name
        assert callable(resolve(window, spec.handler)), spec.handler
    # typing a label types it: letters, digits and arrows are not taken by the shortcuts
    window.objects.label_edit.setFocus()
    QTest.keyClicks(window.objects.label_edit, "Np 2")
    QTest.keyClick(window.objects.label_edit, Qt.Key.Key_Left)
    QTest.keyClick(window.objects.label_edit, Qt.Key.Key_Backspace)
    assert window.objects.label_edit.text() == "Np2" and window.model.objects == {}
    assert window.frame == 0


def test_a_file_that_is_not_a_video_gives_one_clear_message(qtbot, tmp_path) -> None:
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"this is not a video")
    window = SequenceWindow(broken, None, AppSettings(disk_cache=False))
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(window.error_box.isVisible, timeout=OPEN_MS)
    assert "cannot open video" in window.error_box.text()
    assert "cannot be opened" in window.canvas.hint.text()
    assert window.model is None and broken.read_bytes() == b"this is not a video"


def test_objects_are_created_chosen_relabelled_and_deleted(qtbot, frames) -> None:
    window = open_window(qtbot, frames, None)  # objects need no model
    window.objects.label_edit.setText("rabbit")
    window.objects.new_button.click()
    QTest.keyClick(window, Qt.Key.Key_N)  # the next object, with the label typed
    assert [(o.track_id, o.label) for o in window.model.objects.values()] == [
        (1, "rabbit"), (2, "rabbit")]  # fmt: skip
    assert window.session.active_track == 2
    QTest.keyClick(window, Qt.Key.Key_1)
    assert window.session.active_track == 1
    assert window.objects.list.currentItem().text().startswith("#1 rabbit")
    window.objects.label_edit.setText("bird")
    QTest.keyClick(window.objects.label_edit, Qt.Key.Key_Return)
    assert window.model.objects[1].label == "bird"
    assert window.objects.list.item(0).text() == "#1 bird — 0 frames, 0 clicked"
    window.delete_object(confirm=False)
    assert list(window.model.objects) == [2] and window.session.active_track == 2
    assert window.objects.ids() == [2]
    window.saver.flush()
    assert [o.track_id for o in read_project(project_path_for(frames)).objects.values()] == [2]
