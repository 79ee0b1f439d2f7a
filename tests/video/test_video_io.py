"""Frame sources and the video pre-processing (no model needed)."""

from __future__ import annotations

import numpy as np
import pytest

from sam2_annotator.engine.tracker import (
    FrameOutput,
    ObjectMemory,
    from_bfloat16,
    select_closest_cond_frames,
    select_memories,
    to_bfloat16,
)
from sam2_annotator.engine.video_graphs import VideoConfig
from sam2_annotator.engine.video_io import (
    FolderSource,
    VideoFileSource,
    frame_key,
    open_source,
    preprocess_frame,
)
from sam2_annotator.errors import UserError
from tests.video.conftest import VIDEO


@pytest.fixture(scope="module")
def clip_frames():
    import cv2

    capture = cv2.VideoCapture(str(VIDEO))
    frames = []
    for _ in range(4):
        ok, frame = capture.read()
        assert ok
        frames.append(frame[:, :, ::-1].copy())
    capture.release()
    return frames


def test_video_file_source_sequential_and_random_access(clip_frames) -> None:
    source = open_source(VIDEO)
    assert isinstance(source, VideoFileSource)
    assert len(source) == 132
    assert source.frame_hw == (720, 1280)
    for index in (0, 1, 2, 3, 1, 3):
        np.testing.assert_array_equal(source.read(index), clip_frames[index])
    with pytest.raises(UserError, match="does not exist"):
        source.read(132)
    source.close()


def test_folder_source_sorted_by_name(tmp_path, clip_frames) -> None:
    from PIL import Image

    for index, name in ((2, "00002.png"), (0, "00000.png"), (1, "00001.png")):
        Image.fromarray(clip_frames[index]).save(tmp_path / name)
    (tmp_path / "notes.txt").write_text("not a frame")
    source = open_source(tmp_path)
    assert isinstance(source, FolderSource)
    assert len(source) == 3
    for index in range(3):
        np.testing.assert_array_equal(source.read(index), clip_frames[index])
    assert frame_key(source.read(0)) != frame_key(source.read(1))


def test_empty_folder_and_missing_source(tmp_path) -> None:
    with pytest.raises(UserError, match="no frames"):
        open_source(tmp_path)
    with pytest.raises(UserError, match="no video or frame folder"):
        open_source(tmp_path / "missing.mp4")


def test_preprocess_matches_video_predictor_loading(tmp_path, clip_frames) -> None:
    """``SAM2VideoPredictor`` loads JPEG frames with PIL's default resize, not antialiased
    bilinear; our frame pre-processing must give the same tensor."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("sam2")
    from PIL import Image
    from sam2.utils.misc import _load_img_as_tensor

    path = tmp_path / "00000.jpg"
    Image.fromarray(clip_frames[0]).save(path, quality=95)
    reference, height, width = _load_img_as_tensor(str(path), 1024)
    mean = torch.tensor((0.485, 0.456, 0.406))[:, None, None]
    std = torch.tensor((0.229, 0.224, 0.225))[:, None, None]
    reference = (reference.float() - mean) / std
    ours = preprocess_frame(FolderSource(tmp_path).read(0))
    assert (height, width) == (720, 1280)
    np.testing.assert_array_equal(ours[0], reference.numpy())


def test_bfloat16_rounding_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    values = np.random.default_rng(0).normal(0, 3, 10000).astype(np.float32)
    values[:4] = [0.0, -0.0, 1e-40, 65504.0]
    expected = torch.from_numpy(values).to(torch.bfloat16).float().numpy()
    np.testing.assert_array_equal(from_bfloat16(to_bfloat16(values)), expected)


def test_select_closest_cond_frames() -> None:
    cond = {0: "a", 10: "b", 20: "c", 30: "d"}
    assert select_closest_cond_frames(15, cond, -1) == (cond, {})
    selected, unselected = select_closest_cond_frames(15, cond, 3)
    assert sorted(selected) == [0, 10, 20] and sorted(unselected) == [30]


def _out(frame: int) -> FrameOutput:
    return FrameOutput(np.zeros((1, 1), np.float32), np.full(256, frame, np.float32), 1.0)


def test_memory_selection_forward() -> None:
    """Frame 10 after a click on frame 0: the click frame plus the 6 previous frames, pointers of
    the click frame and of frames 9..1, as ``_prepare_memory_conditioned_features`` picks them."""
    memory = ObjectMemory(cond={0: _out(0)}, non_cond={t: _out(t) for t in range(1, 10)})
    spatial, pointers, t_diff_max = select_memories(memory, 10, False, VideoConfig(), 12)
    assert [(index, int(out.obj_ptr[0])) for index, out in spatial] == [
        (6, 0),
        (5, 4),
        (4, 5),
        (3, 6),
        (2, 7),
        (1, 8),
        (0, 9),
    ]
    assert [(d, int(p[0])) for d, p in pointers] == [(10, 0)] + [(d, 10 - d) for d in range(1, 10)]
    assert t_diff_max == 11


def test_memory_selection_reverse_signs_and_cap() -> None:
    memory = ObjectMemory(cond={6: _out(6)}, non_cond={t: _out(t) for t in (4, 5, 7, 8)})
    spatial, pointers, t_diff_max = select_memories(memory, 3, True, VideoConfig(), 40)
    assert [int(out.obj_ptr[0]) for _, out in spatial] == [6, 8, 7, 5, 4]
    assert [(d, int(p[0])) for d, p in pointers] == [(3, 6), (1, 4), (2, 5), (4, 7), (5, 8)]
    assert t_diff_max == 15  # min(num_frames, 16) - 1
