"""``sam2-annotator --self-test``: prove an installation works, frozen or not.

Loads the given (or bundled, or installed) model, encodes and decodes the bundled sample image
(and round-trips the mask through COCO RLE), reads every frame of the bundled sample video (H.264
in MP4, as a phone or camera writes it: the bundle's OpenCV must decode it), checks that the
system libraries Qt needs on a Linux X11 desktop are installed and that Qt starts offscreen,
prints provider and timings, and returns 0 — or 1 with a clear message saying what is missing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)

#: Frames in resources/sample.mp4.
SAMPLE_VIDEO_FRAMES = 12


@dataclass(frozen=True)
class SelfTestResult:
    model: str
    provider: str
    load_ms: float
    encoder_ms: float
    decoder_ms: float
    mask_pixels: int
    image_hw: tuple[int, int]

    def lines(self) -> list[str]:
        height, width = self.image_hw
        return [
            f"model     {self.model}",
            f"provider  {self.provider}",
            f"timing    session load {self.load_ms:.0f} ms, encoder {self.encoder_ms:.0f} ms, "
            f"decoder {self.decoder_ms:.1f} ms",
            f"sample    {width}x{height}, mask {self.mask_pixels} px (COCO RLE round trip OK)",
        ]


def run_model_check(model: Path | None) -> SelfTestResult:
    """Encode + decode the bundled sample image with ``model`` (or the default model)."""
    import numpy as np

    from sam2_annotator.engine.image_io import load_image
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.engine.predictor import Sam2Engine
    from sam2_annotator.engine.types import Prompt
    from sam2_annotator.models.locate import default_model
    from sam2_annotator.resources import SAMPLE_IMAGE, resource_path

    folder = model or default_model()
    if folder is None:
        raise UserError(
            "no model to test: none is bundled or installed; pass --model DIR or run "
            "`sam2-annotator models download sam2.1_hiera_tiny`"
        )
    sample = resource_path(SAMPLE_IMAGE)
    if not sample.is_file():
        raise UserError(f"the bundled sample image is missing: {sample}")
    image = load_image(sample)
    start = time.perf_counter()
    engine = Sam2Engine(ModelFiles.from_folder(folder))
    load_ms = (time.perf_counter() - start) * 1000.0
    embedding = engine.encode(image)
    timing = engine.last_encode_timing
    height, width = image.shape[:2]
    prompt = Prompt(points=np.array([[width / 2, height / 2]], np.float32), labels=np.ones(1))
    result = engine.decode(embedding, prompt)
    if result.mask.shape != (height, width):
        raise UserError(f"decoder returned a {result.mask.shape} mask for a {width}x{height} image")
    from sam2_annotator.annotations.masks import mask_to_rle

    rle = mask_to_rle(result.mask)  # what saving it to COCO does (pycocotools)
    if not np.array_equal(rle.decode(), result.mask) or rle.area != int(result.mask.sum()):
        raise UserError("the mask does not survive COCO RLE encoding (pycocotools is broken)")
    return SelfTestResult(
        model=engine.display_name,
        provider=engine.provider,
        load_ms=load_ms,
        encoder_ms=timing.preprocess_ms + timing.run_ms,
        decoder_ms=result.total_ms,
        mask_pixels=int(result.mask.sum()),
        image_hw=(height, width),
    )


def video_check() -> str:
    """Decode every frame of the bundled H.264 sample; one line, or :class:`UserError`."""
    from sam2_annotator.engine.video_io import VideoFileSource
    from sam2_annotator.resources import SAMPLE_VIDEO, resource_path

    try:
        import cv2  # noqa: F401 - what reads video; a broken bundle fails here
    except ImportError as exc:
        raise UserError(f"OpenCV cannot be loaded: {exc}") from exc
    source = VideoFileSource(resource_path(SAMPLE_VIDEO))
    try:
        frames = [source.read(i) for i in range(len(source))]
    finally:
        source.close()
    height, width = source.frame_hw
    if len(frames) != SAMPLE_VIDEO_FRAMES:
        raise UserError(
            f"read {len(frames)} frames of the sample video, expected {SAMPLE_VIDEO_FRAMES}"
        )
    return f"{len(frames)} frames {width}x{height} (H.264/MP4) decoded"


def run_self_test(
    model: Path | None,
    gui_check: Callable[[], str] | None,
    echo: Callable[[str], None] = print,
    *,
    desktop_check: Callable[[], str] | None = None,
) -> int:
    """The whole self-test; ``gui_check`` and ``desktop_check`` (the system libraries Qt needs on
    an X11 desktop, :func:`sam2_annotator.platform_check.self_test_line`) return a one-line
    description or raise :class:`UserError`."""
    try:
        result = run_model_check(model)
        for line in result.lines():
            echo(line)
        echo(f"video     {video_check()}")
        if desktop_check is not None:
            echo(f"desktop   {desktop_check()}")
        if gui_check is not None:
            echo(f"gui       {gui_check()}")
    except UserError as exc:
        echo(f"self-test FAILED: {exc}")
        return 1
    echo("self-test OK")
    return 0
