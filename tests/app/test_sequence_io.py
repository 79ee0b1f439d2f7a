"""The sequence project file, its saver, and the export (COCO + frames, per-frame PNG masks)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from sam2_annotator.annotations.masks import mask_to_rle, rle_from_string
from sam2_annotator.app.sequence import FrameMask, SequenceModel, SequenceSession
from sam2_annotator.app.sequence_export import (
    COCO_NAME,
    SequenceExportOptions,
    export_sequence,
    index_mask,
)
from sam2_annotator.app.sequence_io import (
    SEQUENCE_SUFFIX,
    SequenceSaver,
    open_model,
    project_path_for,
    read_project,
    snapshot_to_json,
    source_for_project,
)
from sam2_annotator.engine.video_io import FolderSource
from sam2_annotator.errors import OperationCancelled, ProjectError, UserError

HW = (24, 32)


@pytest.fixture
def frames(tmp_path: Path) -> Path:
    """Four distinct frames as PNG (exact pixels)."""
    folder = tmp_path / "shots"
    folder.mkdir()
    for i in range(4):
        rgb = np.full((*HW, 3), 40 * i, np.uint8)
        rgb[:, :, 1] = 7
        Image.fromarray(rgb).save(folder / f"{i:03d}.png")
    return folder


def box_mask(x0: int, x1: int, y0: int = 4, y1: int = 12) -> np.ndarray:
    m = np.zeros(HW, bool)
    m[y0:y1, x0:x1] = True
    return m


def tracked_session(frames: Path) -> SequenceSession:
    session = SequenceSession(SequenceModel(frames.name, 4, HW))
    order = session.click(5, 6, True)
    session.apply_click(order, FrameMask(mask_to_rle(box_mask(2, 10)), 3.5, "prompt"))
    car = session.new_object("car")
    session.box(15, 2, 30, 20)
    session.model.record(0, {car.track_id: FrameMask(mask_to_rle(box_mask(8, 20)), 1.0, "prompt")})
    prop = session.propagate(reverse=False)
    present = FrameMask(mask_to_rle(box_mask(3, 11)), 2.0, "tracked")
    absent = FrameMask(mask_to_rle(box_mask(0, 0)), -2.0, "tracked")
    session.apply_step(prop, 1, {1: present, 2: absent})
    session.finish(prop)
    return session


def test_project_paths(tmp_path: Path, frames: Path) -> None:
    video = tmp_path / "clip.mp4"
    video.write_bytes(b"")
    assert project_path_for(video) == tmp_path / f"clip{SEQUENCE_SUFFIX}"
    assert project_path_for(frames) == frames / f"shots{SEQUENCE_SUFFIX}"


def test_saver_writes_atomically_from_the_first_edit_and_reloads(frames: Path) -> None:
    path = project_path_for(frames)
    model = open_model(path, frames.name, 4, HW)
    saver = SequenceSaver(model, path)
    assert not path.exists()  # opening writes nothing
    session = SequenceSession(model)
    order = session.click(5, 6, True)
    first = saver.flush()
    assert first is not None and first.ok and path.is_file()
    session.apply_click(order, FrameMask(mask_to_rle(box_mask(2, 10)), 3.5, "prompt"))
    session.model.set_label(1, "rabbit")
    result = saver.flush()
    assert result is not None and result.ok and saver.saved_generation == model.generation
    saver.close()
    again = read_project(path)
    assert again.snapshot() == model.snapshot()
    assert Path(str(path) + ".bak").is_file()  # the previous version is kept
    assert source_for_project(path) == frames
    # the same clip reopens; another length or size is refused (masks would be misplaced)
    assert open_model(path, frames.name, 4, HW).objects[1].label == "rabbit"
    with pytest.raises(ProjectError, match="made for 4 frames of 32x24"):
        open_model(path, frames.name, 5, HW)


def test_a_damaged_project_is_refused_with_its_reason(tmp_path: Path, frames: Path) -> None:
    data = snapshot_to_json(tracked_session(frames).model.snapshot())
    path = tmp_path / f"x{SEQUENCE_SUFFIX}"
    broken = json.loads(json.dumps(data))
    broken["masks"][0]["counts"] = "!!"
    path.write_text(json.dumps(broken))
    with pytest.raises(ProjectError, match=r"damaged.*invalid character"):
        read_project(path)
    broken = json.loads(json.dumps(data))
    broken["masks"][0]["track_id"] = 9
    path.write_text(json.dumps(broken))
    with pytest.raises(ProjectError, match="object 9 is not listed"):
        read_project(path)
    path.write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ProjectError, match="not a sam2-annotator sequence"):
        read_project(path)
    path.write_text("{")
    with pytest.raises(ProjectError, match="cannot read"):
        read_project(path)


def test_export_writes_coco_frames_and_id_masks(tmp_path: Path, frames: Path) -> None:
    session = tracked_session(frames)
    out = tmp_path / "export"
    reports: list[tuple[int, int, str]] = []
    summary = export_sequence(
        session.model.snapshot(), FolderSource(frames), frames, SequenceExportOptions(out),
        progress=lambda d, t, m: reports.append((d, t, m)),
    )  # fmt: skip
    assert (summary.frames, summary.annotations, summary.masks_written) == (2, 3, 2)
    assert reports[-1][0] == reports[-1][1]
    data = json.loads((out / COCO_NAME).read_text())
    assert [(im["frame"], im["file_name"]) for im in data["images"]] == [
        (0, "images/00000.jpg"), (1, "images/00001.jpg")]  # fmt: skip
    assert [c["name"] for c in data["categories"]] == ["object", "car"]
    by_key = {(a["image_id"] - 1, a["track_id"]): a for a in data["annotations"]}
    assert set(by_key) == {(0, 1), (0, 2), (1, 1)}  # object 2 absent on frame 1: no annotation
    assert by_key[(0, 2)]["category_id"] == 2 and by_key[(0, 1)]["category_id"] == 1
    rle = by_key[(1, 1)]["segmentation"]
    assert np.array_equal(rle_from_string(rle["counts"], *rle["size"]).decode(), box_mask(3, 11))
    image = cv2.imread(str(out / "images" / "00001.jpg"))
    assert image.shape == (*HW, 3) and abs(int(image[..., 2].mean()) - 40) <= 2
    ids = np.asarray(Image.open(out / "masks" / "00000.png"))
    assert Image.open(out / "masks" / "00000.png").mode == "P"
    expected = index_mask({1: box_mask(2, 10), 2: box_mask(8, 20)}, HW)
    assert np.array_equal(ids, expected) and set(np.unique(ids)) == {0, 1, 2}
    assert ids[6, 9] == 2  # the higher track id is drawn over the lower one
    assert sorted(p.name for p in frames.iterdir()) == ["000.png", "001.png", "002.png", "003.png"]


def test_export_refuses_the_clip_folder_and_can_be_cancelled(tmp_path: Path, frames: Path):
    snap = tracked_session(frames).model.snapshot()
    source = FolderSource(frames)
    # a target whose images/ folder is the clip's own frames is refused
    images_parent = tmp_path / "clip"
    (images_parent / "images").mkdir(parents=True)
    for p in frames.iterdir():
        (images_parent / "images" / p.name).write_bytes(p.read_bytes())
    own = FolderSource(images_parent / "images")
    with pytest.raises(UserError, match="own frame folder"):
        export_sequence(snap, own, images_parent / "images", SequenceExportOptions(images_parent))
    with pytest.raises(UserError, match="at least one"):
        export_sequence(snap, source, frames,
                        SequenceExportOptions(tmp_path / "o", coco=False, masks=False))  # fmt: skip
    calls = iter([False, True])
    with pytest.raises(OperationCancelled, match="after 1 of 2"):
        export_sequence(snap, source, frames, SequenceExportOptions(tmp_path / "o"),
                        cancelled=lambda: next(calls))  # fmt: skip
    assert not (tmp_path / "o" / COCO_NAME).exists()
    empty = SequenceModel(frames.name, 4, HW).snapshot()
    with pytest.raises(UserError, match="nothing to export"):
        export_sequence(empty, source, frames, SequenceExportOptions(tmp_path / "o"))


def test_index_mask_widens_for_large_track_ids() -> None:
    ids = index_mask({300: box_mask(0, 4)}, HW)
    assert ids.dtype == np.uint16 and ids.max() == 300
