"""Read images from disk as the RGB8 arrays the engine and the GUI work on.

Every image becomes a C-contiguous ``uint8`` array of shape ``(H, W, 3)``, already turned upright
by its EXIF orientation, so that pixel coordinates in annotations match what any photo viewer
shows. How other pixel formats are mapped:

* grayscale, 1-bit, palette, CMYK, YCbCr: Pillow's conversion to RGB;
* 16-bit grayscale (``I;16*``; also ``I``, which is how Pillow hands out some 16-bit PNG/TIFF
  files): scaled by 1/257 with rounding, so 65535 -> 255 and 257*k -> k (never clipped at 255);
* 32-bit float (``F``): finite values stretched from their min..max to 0..255;
* anything with transparency (RGBA, LA, PA, palette or RGB with a transparent colour):
  composited onto white. The colour under fully transparent pixels is undefined (often black or
  leftover content); compositing makes the model see what the user sees on the canvas, and it is
  identical to dropping alpha wherever the image is opaque.

CMYK is converted without colour management (ICC profiles are ignored).
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import struct
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from sam2_annotator.errors import ImageLoadError

log = logging.getLogger(__name__)

#: Largest image (width * height) loaded by default: 100 megapixels, ~300 MB as RGB8.
DEFAULT_MAX_PIXELS = 100_000_000

#: Lower-case suffixes :func:`list_images` picks up; all decode with a stock Pillow wheel.
IMAGE_EXTENSIONS: tuple[str, ...] = (
    ".jpg",
    ".jpeg",
    ".jpe",
    ".jfif",
    ".png",
    ".bmp",
    ".tif",
    ".tiff",
    ".webp",
    ".gif",
    ".ppm",
    ".pgm",
    ".pbm",
)

#: What Pillow raises for files it cannot decode (truncated, corrupt, unknown format).
_DECODE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    SyntaxError,
    ValueError,
    EOFError,
    struct.error,
    Image.DecompressionBombError,
)

#: EXIF orientations (5..8) that swap width and height.
_SWAPPING_ORIENTATIONS = frozenset({5, 6, 7, 8})

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_WHITE = 255


# --------------------------------------------------------------------------- public API


def load_image(path: str | os.PathLike[str], max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Decode ``path`` into an upright, C-contiguous RGB ``uint8`` array ``(H, W, 3)``.

    The pixel count is checked from the file header before anything is decoded. Raises
    :class:`ImageLoadError` (one line naming the file) for a missing file, a folder, a file that
    is not a readable image, or an image with more than ``max_pixels`` pixels.
    """
    path = Path(path)
    with _open(path) as image:
        _check_pixel_cap(path, image.size, max_pixels)
        try:
            ImageOps.exif_transpose(image, in_place=True)  # no copy when already upright
            rgb = _to_rgb8(path, image)
        except _DECODE_ERRORS as exc:
            raise _decode_error(path, exc) from exc
    log.debug("loaded %s: %dx%d (mode %s)", path, rgb.shape[1], rgb.shape[0], image.mode)
    return np.ascontiguousarray(rgb)


def read_image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(width, height)`` as :func:`load_image` would return it, without decoding pixels."""
    path = Path(path)
    with _open(path) as image:
        width, height = image.size
        try:
            orientation = _orientation_without_decoding(path, image)
        except _DECODE_ERRORS as exc:
            raise _decode_error(path, exc) from exc
    if orientation in _SWAPPING_ORIENTATIONS:
        return height, width
    return width, height


def list_images(folder: str | os.PathLike[str]) -> list[Path]:
    """Image files directly inside ``folder``, in natural order (``img2`` before ``img10``).

    Suffixes match :data:`IMAGE_EXTENSIONS` case-insensitively. Hidden files are skipped
    (macOS leaves ``._name.jpg`` companions that are not images). Not recursive.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageLoadError(f"image folder not found: {folder}")
    found = [
        entry
        for entry in folder.iterdir()
        if entry.suffix.lower() in IMAGE_EXTENSIONS
        and not entry.name.startswith(".")
        and entry.is_file()
    ]
    return sorted(found, key=lambda p: (natural_key(p.name), p.name))


def natural_key(name: str) -> tuple[str | int, ...]:
    """Sort key that compares digit runs as numbers and text case-insensitively."""
    # re.split with a capturing group alternates text, digits, text, ... so positions line up.
    parts = re.split(r"(\d+)", name)
    return tuple(int(part) if i % 2 else part.casefold() for i, part in enumerate(parts))


def image_hash(image: np.ndarray) -> str:
    """SHA-256 hex digest of the array's shape, dtype and pixel bytes (the embedding-cache key)."""
    digest = hashlib.sha256()
    digest.update(f"{image.shape}|{image.dtype.str}|".encode())
    digest.update(memoryview(np.ascontiguousarray(image)).cast("B"))
    return digest.hexdigest()


# --------------------------------------------------------------------------- opening


def _open(path: Path) -> Image.Image:
    """Open lazily (header only), turning every failure into one clear :class:`ImageLoadError`."""
    if not path.exists():
        raise ImageLoadError(f"image not found: {path}")
    if path.is_dir():
        raise ImageLoadError(f"not an image file but a folder: {path}")
    try:
        # Our own cap replaces Pillow's decompression-bomb *warning*; its hard error still
        # applies above 2 * Image.MAX_IMAGE_PIXELS and is converted below. catch_warnings is not
        # thread-safe on Python < 3.14; a race can at worst leave this one category ignored.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            return Image.open(path)
    except PermissionError as exc:
        raise ImageLoadError(f"permission denied reading image: {path}") from exc
    except UnidentifiedImageError as exc:
        raise ImageLoadError(f"not an image or an unsupported format: {path}") from exc
    except _DECODE_ERRORS as exc:
        raise _decode_error(path, exc) from exc


def _decode_error(path: Path, exc: BaseException) -> ImageLoadError:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return ImageLoadError(f"cannot read image {path}: {reason}")


def _check_pixel_cap(path: Path, size: tuple[int, int], max_pixels: int) -> None:
    width, height = size
    if width * height > max_pixels:
        raise ImageLoadError(
            f"image too large: {path} is {width}x{height} = {width * height:,} pixels; "
            f"the limit is {max_pixels:,} pixels"
        )


# --------------------------------------------------------------------------- pixel formats


def _to_rgb8(path: Path, image: Image.Image) -> np.ndarray:
    numeric = _NUMERIC_MODES.get(image.mode)
    if numeric is not None:
        return _gray_to_rgb(numeric(np.asarray(image)))
    if image.has_transparency_data:
        return _composite_on_white(np.asarray(image.convert("RGBA")))
    if image.mode == "RGB":  # convert() would copy the pixels once more
        return np.asarray(image)
    try:
        return np.asarray(image.convert("RGB"))
    except ValueError as exc:
        raise ImageLoadError(f"unsupported image mode {image.mode!r}: {path}") from exc


def _from_16bit(values: np.ndarray) -> np.ndarray:
    """0..65535 -> 0..255 by rounding division by 257 (exact for 257*k, 65535 -> 255)."""
    wide = np.clip(values.astype(np.int64), 0, 65535)
    return ((wide + 128) // 257).astype(np.uint8)


def _from_float(values: np.ndarray) -> np.ndarray:
    """Stretch finite values from their range to 0..255; NaN/inf become 0."""
    finite = np.isfinite(values)
    out = np.zeros(values.shape, np.uint8)
    if not finite.any():
        return out
    low, high = float(values[finite].min()), float(values[finite].max())
    if high > low:
        scaled = (values[finite].astype(np.float64) - low) * (255.0 / (high - low))
        out[finite] = np.rint(scaled).astype(np.uint8)
    return out


#: Single-channel modes that Pillow cannot convert to RGB without losing range.
_NUMERIC_MODES: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "I;16": _from_16bit,
    "I;16L": _from_16bit,
    "I;16B": _from_16bit,
    "I;16N": _from_16bit,
    "I": _from_16bit,
    "F": _from_float,
}


def _gray_to_rgb(gray: np.ndarray) -> np.ndarray:
    return np.repeat(gray[:, :, None], 3, axis=2)


def _composite_on_white(rgba: np.ndarray) -> np.ndarray:
    """``rgb * a + white * (1 - a)`` in integers, rounded; exact where alpha is 0 or 255."""
    rgb = rgba[:, :, :3].astype(np.uint32)
    alpha = rgba[:, :, 3:4].astype(np.uint32)
    blended = rgb * alpha + _WHITE * (255 - alpha)
    return ((blended + 127) // 255).astype(np.uint8)


# --------------------------------------------------------------------------- orientation


def _orientation_without_decoding(path: Path, image: Image.Image) -> int:
    """The EXIF orientation (1..8) from metadata alone.

    Pillow's PNG ``getexif`` decodes the whole image when no ``eXIf`` chunk came before the
    pixel data, because the chunk may follow it. We find such a late chunk by walking the chunk
    headers instead, then let the base-class ``getexif`` (metadata only; it also reads XMP and
    text-profile orientations) do the parsing.
    """
    if image.format == "PNG" and "exif" not in image.info:
        late = _late_png_exif(path)
        if late is not None:
            image.info["exif"] = b"Exif\x00\x00" + late
    exif = Image.Image.getexif(image)
    return int(exif.get(ExifTags.Base.Orientation, 1))


def _late_png_exif(path: Path) -> bytes | None:
    """Payload of the first ``eXIf`` chunk, seeking over (never reading) the other chunks."""
    with path.open("rb") as fp:
        if fp.read(len(_PNG_SIGNATURE)) != _PNG_SIGNATURE:
            return None
        while len(header := fp.read(8)) == 8:
            length, chunk_type = struct.unpack(">I4s", header)
            if chunk_type == b"eXIf":
                return fp.read(length)
            if chunk_type == b"IEND":
                break
            fp.seek(length + 4, os.SEEK_CUR)  # data + CRC
    return None
