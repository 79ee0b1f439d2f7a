"""Image loading: orientation, pixel formats, paths, limits and errors; file lists; hashes."""

from __future__ import annotations

import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
from PIL import ExifTags, Image, ImageFile

from sam2_annotator.engine import image_io
from sam2_annotator.engine.image_io import (
    image_hash,
    list_images,
    load_image,
    read_image_size,
)
from sam2_annotator.errors import ImageLoadError

RNG = np.random.default_rng(1234)


def _random_rgb(height: int, width: int) -> np.ndarray:
    return RNG.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _assert_rgb8(array: np.ndarray, height: int, width: int) -> None:
    assert array.dtype == np.uint8
    assert array.shape == (height, width, 3)
    assert array.flags.c_contiguous


def _exif(orientation: int) -> Image.Exif:
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = orientation
    return exif


def _expected_composite(rgb: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Straight alpha over white, rounded, computed in floating point."""
    a = alpha.astype(np.float64)[..., None] / 255.0
    return np.rint(rgb.astype(np.float64) * a + 255.0 * (1.0 - a)).astype(np.uint8)


@pytest.fixture
def no_decoding(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Make any pixel decoding fail loudly, and record attempts."""
    calls: list[str] = []

    def refuse(self: ImageFile.ImageFile) -> None:
        calls.append(self.format or "?")
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", refuse)
    return calls


# --------------------------------------------------------------------------- orientation


@pytest.mark.parametrize(
    ("orientation", "expected"),
    [
        (1, lambda a: a),
        (3, lambda a: np.rot90(a, 2)),
        (6, lambda a: np.rot90(a, -1)),  # "rotate 90 CW to view"
        (8, lambda a: np.rot90(a, 1)),
    ],
)
def test_exif_orientation_is_applied_pixel_exactly(tmp_path: Path, orientation, expected) -> None:
    stored = _random_rgb(5, 7)
    path = tmp_path / f"o{orientation}.png"
    Image.fromarray(stored).save(path, exif=_exif(orientation))

    loaded = load_image(path)

    want = expected(stored)
    _assert_rgb8(loaded, *want.shape[:2])
    np.testing.assert_array_equal(loaded, want)
    assert read_image_size(path) == (want.shape[1], want.shape[0])


def test_jpeg_orientation_size_is_read_without_decoding(tmp_path: Path, no_decoding) -> None:
    path = tmp_path / "portrait.jpg"
    Image.fromarray(_random_rgb(20, 40)).save(path, exif=_exif(6))

    assert read_image_size(path) == (20, 40)
    assert no_decoding == []


def _move_chunk_after_idat(path: Path, chunk_type: bytes) -> None:
    """Rewrite a PNG so that ``chunk_type`` comes after the pixel data (allowed by the spec)."""
    data = path.read_bytes()
    signature, pos, chunks = data[:8], 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        chunks.append(data[pos : pos + 12 + length])
        pos += 12 + length
    moved = [c for c in chunks if c[4:8] == chunk_type]
    rest = [c for c in chunks if c[4:8] != chunk_type]
    last_idat = max(i for i, c in enumerate(rest) if c[4:8] == b"IDAT")
    reordered = rest[: last_idat + 1] + moved + rest[last_idat + 1 :]
    assert len(moved) == 1
    path.write_bytes(signature + b"".join(reordered))


def test_png_exif_after_pixel_data(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    stored = _random_rgb(3, 8)
    path = tmp_path / "late_exif.png"
    Image.fromarray(stored).save(path, exif=_exif(6))
    _move_chunk_after_idat(path, b"eXIf")
    with Image.open(path) as probe:
        assert "exif" not in probe.info  # the header alone does not reveal the orientation

    np.testing.assert_array_equal(load_image(path), np.rot90(stored, -1))

    calls: list[str] = []
    monkeypatch.setattr(
        ImageFile.ImageFile, "load", lambda self: calls.append("load") or pytest.fail("decoded")
    )
    assert read_image_size(path) == (3, 8)
    assert calls == []


# --------------------------------------------------------------------------- pixel formats


def test_rgb_roundtrip(tmp_path: Path) -> None:
    stored = _random_rgb(4, 6)
    path = tmp_path / "rgb.png"
    Image.fromarray(stored).save(path)
    loaded = load_image(path)
    _assert_rgb8(loaded, 4, 6)
    np.testing.assert_array_equal(loaded, stored)


def test_grayscale(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (5, 3), dtype=np.uint8)
    path = tmp_path / "gray.png"
    Image.fromarray(gray, mode="L").save(path)
    loaded = load_image(path)
    _assert_rgb8(loaded, 5, 3)
    np.testing.assert_array_equal(loaded, np.stack([gray] * 3, axis=-1))


def test_gray_alpha_is_composited_on_white(tmp_path: Path) -> None:
    gray = RNG.integers(0, 256, (2, 3), dtype=np.uint8)
    alpha = np.array([[0, 128, 255], [1, 254, 77]], np.uint8)
    path = tmp_path / "la.png"
    Image.fromarray(np.dstack([gray, alpha]), mode="LA").save(path)
    loaded = load_image(path)
    _assert_rgb8(loaded, 2, 3)
    np.testing.assert_array_equal(loaded, _expected_composite(np.dstack([gray] * 3), alpha))
    assert (loaded[0, 0] == 255).all()  # fully transparent -> white
    np.testing.assert_array_equal(loaded[0, 2], [gray[0, 2]] * 3)  # opaque -> unchanged


def test_rgba_is_composited_on_white(tmp_path: Path) -> None:
    rgb = _random_rgb(3, 4)
    alpha = RNG.integers(0, 256, (3, 4), dtype=np.uint8)
    alpha[0, 0], alpha[0, 1] = 0, 255
    path = tmp_path / "rgba.png"
    Image.fromarray(np.dstack([rgb, alpha]), mode="RGBA").save(path)
    loaded = load_image(path)
    _assert_rgb8(loaded, 3, 4)
    np.testing.assert_array_equal(loaded, _expected_composite(rgb, alpha))
    np.testing.assert_array_equal(loaded[0, 0], [255, 255, 255])
    np.testing.assert_array_equal(loaded[0, 1], rgb[0, 1])


def _palette_image(indices: np.ndarray, colors: list[tuple[int, int, int]]) -> Image.Image:
    image = Image.fromarray(indices, mode="P")
    image.putpalette([v for color in colors for v in color])
    return image


def test_palette(tmp_path: Path) -> None:
    colors = [(10, 20, 30), (200, 0, 50), (0, 255, 0)]
    indices = np.array([[0, 1, 2], [2, 1, 0]], np.uint8)
    path = tmp_path / "p.png"
    _palette_image(indices, colors).save(path)
    loaded = load_image(path)
    _assert_rgb8(loaded, 2, 3)
    np.testing.assert_array_equal(loaded, np.array(colors, np.uint8)[indices])


def test_palette_with_transparent_index(tmp_path: Path) -> None:
    colors = [(10, 20, 30), (200, 0, 50)]
    indices = np.array([[0, 1], [1, 0]], np.uint8)
    path = tmp_path / "p_transparent.png"
    _palette_image(indices, colors).save(path, transparency=1)
    loaded = load_image(path)
    np.testing.assert_array_equal(loaded[0, 0], colors[0])
    np.testing.assert_array_equal(loaded[0, 1], [255, 255, 255])


def test_one_bit(tmp_path: Path) -> None:
    bits = np.array([[True, False, True], [False, False, True]])
    path = tmp_path / "bits.png"
    Image.fromarray(bits).save(path)
    with Image.open(path) as check:
        assert check.mode == "1"
    loaded = load_image(path)
    _assert_rgb8(loaded, 2, 3)
    np.testing.assert_array_equal(loaded, np.where(bits[..., None], 255, 0).repeat(3, axis=2))


@pytest.mark.parametrize("suffix", [".png", ".tif"])
def test_16bit_gray_is_scaled_not_clipped(tmp_path: Path, suffix: str) -> None:
    values = np.array(
        [[0, 257, 257 * 2, 257 * 128], [257 * 254, 65535, 128, 129], [1000, 30000, 65534, 40000]],
        np.uint16,
    )
    path = tmp_path / f"deep{suffix}"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode.startswith("I;16")
    loaded = load_image(path)
    _assert_rgb8(loaded, 3, 4)
    gray = loaded[..., 0]
    assert gray[1, 1] == 255  # 65535
    np.testing.assert_array_equal(gray[0, :4], [0, 1, 2, 128])  # 257*k -> k
    assert gray[1, 0] == 254
    np.testing.assert_array_equal(gray, np.rint(values / 257.0).astype(np.uint8))
    np.testing.assert_array_equal(loaded[..., 1], gray)
    np.testing.assert_array_equal(loaded[..., 2], gray)


def test_32bit_int_is_treated_as_16bit_range(tmp_path: Path) -> None:
    values = np.array([[0, 257 * 3, 65535, 70000, -5]], np.int32)
    path = tmp_path / "int32.tif"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode == "I"
    np.testing.assert_array_equal(load_image(path)[0, :, 0], [0, 3, 255, 255, 0])


def test_float_is_stretched(tmp_path: Path) -> None:
    values = np.array([[-1.0, 0.0, 1.0, np.nan]], np.float32)
    path = tmp_path / "float.tif"
    Image.fromarray(values).save(path)
    with Image.open(path) as check:
        assert check.mode == "F"
    np.testing.assert_array_equal(load_image(path)[0, :, 0], [0, 128, 255, 0])


def test_cmyk_jpeg(tmp_path: Path) -> None:
    cmyk = np.zeros((16, 32, 4), np.uint8)
    cmyk[:, :16] = (0, 255, 255, 0)  # red
    cmyk[:, 16:] = (255, 0, 0, 0)  # cyan
    path = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, mode="CMYK").save(path, quality=95)
    with Image.open(path) as check:
        assert check.mode == "CMYK"
    loaded = load_image(path)
    _assert_rgb8(loaded, 16, 32)
    np.testing.assert_allclose(loaded[8, 4].astype(int), [255, 0, 0], atol=6)
    np.testing.assert_allclose(loaded[8, 28].astype(int), [0, 255, 255], atol=6)


# --------------------------------------------------------------------------- paths and limits


def test_non_ascii_path(tmp_path: Path) -> None:
    folder = tmp_path / "данные"
    folder.mkdir()
    stored = _random_rgb(3, 5)
    path = folder / "фото_画像.png"
    Image.fromarray(stored).save(path)

    np.testing.assert_array_equal(load_image(str(path)), stored)
    assert read_image_size(path) == (5, 3)
    assert list_images(folder) == [path]


def test_pixel_cap_is_checked_before_decoding(tmp_path: Path, no_decoding) -> None:
    path = tmp_path / "big.png"
    Image.fromarray(_random_rgb(4, 5)).save(path)

    with pytest.raises(ImageLoadError) as info:
        load_image(path, max_pixels=19)
    message = str(info.value)
    assert "big.png" in message and "5x4" in message and "the limit is 19 pixels" in message
    assert "\n" not in message
    assert no_decoding == []
    # The guard is real: without the cap, the same call does reach the decoder.
    with pytest.raises(AssertionError, match="pixels were decoded"):
        load_image(path, max_pixels=20)


def test_pixel_cap_boundary_is_inclusive(tmp_path: Path) -> None:
    path = tmp_path / "exact.png"
    Image.fromarray(_random_rgb(4, 5)).save(path)
    assert load_image(path, max_pixels=20).shape == (4, 5, 3)


def test_pillow_bomb_checks_do_not_leak(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "pillow_limit.png"
    Image.fromarray(_random_rgb(4, 5)).save(path)

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 15)  # 20 pixels: Pillow would only warn
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_image(path).shape == (4, 5, 3)

    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 5)  # 20 > 2 * 5: Pillow raises
    with pytest.raises(ImageLoadError, match=r"pillow_limit\.png"):
        load_image(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match=r"image not found: .*nope\.png"):
        load_image(tmp_path / "nope.png")
    with pytest.raises(ImageLoadError, match="image not found"):
        read_image_size(tmp_path / "nope.png")


def test_directory(tmp_path: Path) -> None:
    folder = tmp_path / "looks_like.png"
    folder.mkdir()
    with pytest.raises(ImageLoadError, match=r"folder.*looks_like\.png"):
        load_image(folder)


def test_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.jpg"
    path.write_text("just text", encoding="utf-8")
    with pytest.raises(ImageLoadError, match=r"not an image.*notes\.jpg"):
        load_image(path)
    with pytest.raises(ImageLoadError, match="not an image"):
        read_image_size(path)


def test_truncated_image(tmp_path: Path) -> None:
    path = tmp_path / "cut.png"
    Image.fromarray(_random_rgb(64, 64)).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageLoadError) as info:
        load_image(path)
    assert "cut.png" in str(info.value)
    assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- folders and hashes


def test_list_images_natural_case_insensitive_flat(tmp_path: Path) -> None:
    names = ["img10.png", "img2.PNG", "img1.jpg", "Img3.jpeg", "img2b.tif", "scan.TIFF"]
    for name in names:
        (tmp_path / name).write_bytes(b"")
    for name in ["notes.txt", ".hidden.png", "img0.png.bak"]:
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "dir.png").mkdir()
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "img0.png").write_bytes(b"")

    found = [p.name for p in list_images(tmp_path)]

    assert found == ["img1.jpg", "img2.PNG", "img2b.tif", "Img3.jpeg", "img10.png", "scan.TIFF"]


def test_list_images_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(ImageLoadError, match="folder not found"):
        list_images(tmp_path / "missing")


def test_natural_key_orders_numbers_numerically() -> None:
    names = ["a100", "a20", "a3", "B1", "a3x"]
    assert sorted(names, key=image_io.natural_key) == ["a3", "a3x", "a20", "a100", "B1"]


def test_image_hash_is_stable_and_sensitive() -> None:
    image = _random_rgb(6, 8)
    digest = image_hash(image)

    assert len(digest) == 64 and int(digest, 16) >= 0
    assert image_hash(image.copy()) == digest
    changed = image.copy()
    changed[5, 7, 2] ^= 1
    assert image_hash(changed) != digest
    # Same bytes, different shape: a different image.
    assert image_hash(image.reshape(8, 6, 3)) != digest
    # A strided view hashes like its contiguous copy.
    view = image[:, ::2]
    assert image_hash(view) == image_hash(np.ascontiguousarray(view))


def test_loaded_hash_matches_between_formats(tmp_path: Path) -> None:
    stored = _random_rgb(4, 4)
    Image.fromarray(stored).save(tmp_path / "a.png")
    Image.fromarray(stored).save(tmp_path / "a.bmp")
    assert image_hash(load_image(tmp_path / "a.png")) == image_hash(load_image(tmp_path / "a.bmp"))
