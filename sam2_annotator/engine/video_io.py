"""Frames of a video, decoded on demand, and SAM2VideoPredictor's frame pre-processing.

A :class:`FrameSource` is a video file (``cv2.VideoCapture``) or a folder of images (sorted by
name); frames are read one at a time, never the whole clip into RAM.

Pre-processing differs from the image predictor's: ``SAM2VideoPredictor`` loads a frame with
PIL, ``Image.resize((1024, 1024))`` with PIL's default filter (bicubic, with PIL's own
antialiasing when shrinking), divides the uint8 values by 255 in float64, stores them as float32
and normalises with the ImageNet mean/std in float32. :func:`preprocess_frame` does exactly that.
Folder frames are decoded with PIL without EXIF rotation, as the reference does. (For video files
the reference decodes with ``decord``, which resizes with its own filter; we decode with OpenCV
and resize with PIL as for folders.)
"""

from __future__ import annotations

import hashlib
import logging
import threading
from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np
from PIL import Image

from sam2_annotator.engine.preprocess import IMAGENET_MEAN, IMAGENET_STD
from sam2_annotator.engine.types import INPUT_SIZE
from sam2_annotator.errors import ImageLoadError, UserError

log = logging.getLogger(__name__)

FRAME_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg")
#: Tag mixed into frame keys: these embeddings come from the video pre-processing.
_KEY_TAG = b"sam2-annotator video frame v1 (PIL bicubic)"


def preprocess_frame(rgb: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """RGB uint8 (H, W, 3) -> [1, 3, size, size] float32, as ``SAM2VideoPredictor`` loads it."""
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"expected an RGB uint8 frame (H, W, 3), got {rgb.dtype} {rgb.shape}")
    resized = np.asarray(Image.fromarray(rgb, "RGB").resize((size, size)))
    scaled = (resized / 255.0).astype(np.float32)  # float64 division, then float32, as torch
    normalised = (scaled - IMAGENET_MEAN) / IMAGENET_STD
    return np.ascontiguousarray(normalised.transpose(2, 0, 1)[None])


def frame_key(rgb: np.ndarray) -> str:
    """Embedding-cache key of a frame: a hash of its pixels and of the video pre-processing."""
    digest = hashlib.sha256(_KEY_TAG)
    digest.update(str(rgb.shape).encode())
    digest.update(np.ascontiguousarray(rgb).data)
    return digest.hexdigest()


class FrameSource(ABC):
    """Random access to the frames of one clip, as RGB uint8 arrays."""

    name: str

    @abstractmethod
    def __len__(self) -> int: ...

    @abstractmethod
    def read(self, index: int) -> np.ndarray: ...

    @property
    @abstractmethod
    def frame_hw(self) -> tuple[int, int]: ...

    def _check(self, index: int) -> None:
        if not 0 <= index < len(self):
            raise UserError(f"frame {index} does not exist: {self.name} has {len(self)} frames")

    def close(self) -> None:  # noqa: B027 - optional for subclasses
        """Release the decoder (file sources)."""

    @property
    def fps(self) -> float | None:
        """Frames per second when the container says (``None`` for a folder of frames)."""
        return None


class FolderSource(FrameSource):
    """A folder of images, sorted by file name."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.name = str(self.folder)
        self.paths = sorted(
            p for p in self.folder.iterdir() if p.suffix.lower() in FRAME_EXTENSIONS
        )
        if not self.paths:
            raise UserError(f"no frames ({', '.join(FRAME_EXTENSIONS)}) in {self.folder}")
        with Image.open(self.paths[0]) as first:
            width, height = first.size
        self._hw = (height, width)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def frame_hw(self) -> tuple[int, int]:
        return self._hw

    def read(self, index: int) -> np.ndarray:
        self._check(index)
        path = self.paths[index]
        try:
            with Image.open(path) as image:
                rgb = np.asarray(image.convert("RGB"))
        except OSError as exc:
            raise ImageLoadError(f"cannot read frame {path}: {exc}") from exc
        if rgb.shape[:2] != self._hw:
            raise ImageLoadError(
                f"frame {path.name} is {rgb.shape[1]}x{rgb.shape[0]}, the first frame is "
                f"{self._hw[1]}x{self._hw[0]}: all frames of a sequence must have one size"
            )
        return np.ascontiguousarray(rgb)


class VideoFileSource(FrameSource):
    """A video file decoded with OpenCV; sequential reads never seek."""

    def __init__(self, path: str | Path) -> None:
        import cv2

        self.path = Path(path)
        self.name = str(self.path)
        if not self.path.is_file():
            raise UserError(f"video not found: {self.path}")
        self._cv2 = cv2
        self._capture = cv2.VideoCapture(str(self.path))
        if not self._capture.isOpened():
            raise UserError(f"cannot open video {self.path} (unsupported codec or not a video)")
        self._lock = threading.Lock()
        self._next = 0
        count = int(self._capture.get(cv2.CAP_PROP_FRAME_COUNT))
        ok, frame = self._capture.read()
        if not ok:
            raise UserError(f"{self.path} has no readable frame")
        self._next = 1
        self._hw = (int(frame.shape[0]), int(frame.shape[1]))
        self._last = (0, frame)
        self._count = count if count > 0 else self._count_frames()
        rate = float(self._capture.get(cv2.CAP_PROP_FPS) or 0.0)
        self._fps = rate if 0.0 < rate < 1000.0 else None

    def _count_frames(self) -> int:
        capture = self._cv2.VideoCapture(str(self.path))
        count = 0
        while capture.grab():
            count += 1
        capture.release()
        return count

    def __len__(self) -> int:
        return self._count

    @property
    def fps(self) -> float | None:
        return self._fps

    @property
    def frame_hw(self) -> tuple[int, int]:
        return self._hw

    def read(self, index: int) -> np.ndarray:
        self._check(index)
        with self._lock:
            if self._last[0] == index:
                frame = self._last[1]
            else:
                if index != self._next:
                    self._capture.set(self._cv2.CAP_PROP_POS_FRAMES, index)
                ok, frame = self._capture.read()
                if not ok:
                    raise ImageLoadError(f"cannot decode frame {index} of {self.path}")
                self._next = index + 1
                self._last = (index, frame)
        return np.ascontiguousarray(frame[:, :, ::-1])

    def close(self) -> None:
        self._capture.release()


def open_source(path: str | Path) -> FrameSource:
    """A folder of frames, or a video file."""
    path = Path(path)
    if path.is_dir():
        return FolderSource(path)
    if path.is_file():
        return VideoFileSource(path)
    raise UserError(f"no video or frame folder at {path}")
