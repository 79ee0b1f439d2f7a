"""Tracker behaviour beyond the parity stages (no PyTorch needed)."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from sam2_annotator.engine.tracker import tracker_from_folder
from sam2_annotator.engine.video_io import FolderSource
from sam2_annotator.errors import ModelError, PromptError, UserError
from tests.video.conftest import VIDEO

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def six_frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("six")
    capture = cv2.VideoCapture(str(VIDEO))
    for index in range(6):
        ok, frame = capture.read()
        assert ok
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), frame)
    return folder


def test_backward_from_an_unprompted_frame_without_object_pointers(video_model_dir, six_frames):
    """Frame 4 tracked backward after a click on frame 0 has no object pointer to attend to (the
    reference's memory attention fails there on a dtype mismatch); ours tracks it."""
    tracker = tracker_from_folder(str(video_model_dir), FolderSource(six_frames))
    clicked = tracker.add_points(0, 1, np.array([[640.0, 360.0]]), np.array([1]))
    assert clicked.masks()[1].any()
    results = list(tracker.propagate(start_frame_idx=4, max_frame_num_to_track=1, reverse=True))
    assert [r.frame_idx for r in results] == [4, 3]
    assert all(np.isfinite(r.low_res[1]).all() and r.masks()[1].any() for r in results)
    assert tracker.objects[1].frames_tracked == {4: True, 3: True}
    assert tracker.encoder_runs == 3
    # the bank owns its arrays: a view of the decoder's output would keep all four candidate
    # masks (1 MiB) alive per frame, which bank_nbytes would not see
    memory = tracker.objects[1].memory
    outputs = [*memory.cond.values(), *memory.non_cond.values()]
    assert len(outputs) == 3
    assert all(o.pred_masks.base is None and o.obj_ptr.base is None for o in outputs)


def test_prompt_errors(video_model_dir, six_frames, model_dir):
    tracker = tracker_from_folder(str(video_model_dir), FolderSource(six_frames))
    with pytest.raises(PromptError, match="does not exist"):
        tracker.add_points(6, 1, np.array([[1.0, 1.0]]), np.array([1]))
    with pytest.raises(PromptError, match="labels"):
        tracker.add_points(0, 1, np.array([[1.0, 1.0]]), np.array([2]))
    with pytest.raises(UserError, match="at least one object"):
        next(tracker.propagate())
    with pytest.raises(ModelError, match="no video graphs"):
        tracker_from_folder(str(model_dir), FolderSource(six_frames))
