"""Mask generators and COCO builders shared by the annotation tests."""

from __future__ import annotations

import contextlib
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from pycocotools.coco import COCO

#: pycocotools 2.0.x calls ``np.array(copy=False)`` inside ``decode``; harmless with numpy 2.
PYCOCOTOOLS_NUMPY2_WARNING = "ignore:__array__ implementation doesn't accept:DeprecationWarning"

#: Figures measured by the tests (printed at the end of the run by conftest.py).
MEASURED: dict[str, object] = {}


def blob(rng: np.random.Generator, height: int, width: int, parts: int = 1) -> np.ndarray:
    """Filled random polygons (convex hulls), so no holes unless they overlap oddly."""
    mask = np.zeros((height, width), np.uint8)
    for _ in range(parts):
        cx, cy = rng.uniform(0.2, 0.8) * width, rng.uniform(0.2, 0.8) * height
        radius = rng.uniform(0.15, 0.35) * min(height, width)
        angles = np.sort(rng.uniform(0, 2 * np.pi, rng.integers(5, 12)))
        radii = radius * rng.uniform(0.6, 1.0, len(angles))
        points = np.stack([cx + radii * np.cos(angles), cy + radii * np.sin(angles)], axis=1)
        cv2.fillPoly(mask, [np.round(points).astype(np.int32)], 1)
    return mask.astype(bool)


def ring(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A disc with one or more holes."""
    yy, xx = np.mgrid[:height, :width]
    cy, cx = height / 2 + rng.uniform(-2, 2), width / 2 + rng.uniform(-2, 2)
    outer = min(height, width) * rng.uniform(0.3, 0.45)
    inner = outer * rng.uniform(0.2, 0.6)
    distance = np.hypot(yy - cy, xx - cx)
    mask = (distance <= outer) & (distance > inner)
    if rng.random() < 0.5:  # a second, small hole inside the ring's body
        hy, hx = int(cy), int(cx + (outer + inner) / 2)
        mask[hy - 1 : hy + 1, hx - 1 : hx + 1] = False
    return mask


def separate_parts(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Several disjoint rectangles and discs (a multi-part object)."""
    mask = np.zeros((height, width), bool)
    count = int(rng.integers(2, 5))
    cell = width // count
    for i in range(count):
        x0 = i * cell + 1
        x1 = x0 + max(1, int(rng.integers(1, max(2, cell - 2))))
        y0 = int(rng.integers(0, height // 2))
        y1 = y0 + int(rng.integers(1, height // 2))
        mask[y0:y1, x0:x1] = True
    return mask


def border(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """An object touching (or covering) image borders and corners."""
    mask = np.zeros((height, width), bool)
    choice = int(rng.integers(0, 4))
    if choice == 0:
        mask[:, : int(rng.integers(1, width))] = True  # left edge, full height
    elif choice == 1:
        mask[int(rng.integers(0, height)) :, int(rng.integers(0, width)) :] = True  # corner
    elif choice == 2:
        mask[:] = True  # the whole image
    else:
        mask[0, :] = True  # one-pixel line along the top
        mask[:, -1] = True
    return mask


def single_pixel(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    mask = np.zeros((height, width), bool)
    for _ in range(int(rng.integers(1, 4))):  # one or a few isolated pixels
        mask[rng.integers(0, height), rng.integers(0, width)] = True
    return mask


def noise(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """Salt-and-pepper: many parts, holes and diagonal-only contacts."""
    return rng.random((height, width)) < rng.uniform(0.1, 0.9)


#: Mask family name -> generator.
FAMILIES: dict[str, Callable[[np.random.Generator, int, int], np.ndarray]] = {
    "blob": blob,
    "multi_blob": lambda rng, h, w: blob(rng, h, w, parts=3),
    "holes": ring,
    "parts": separate_parts,
    "border": border,
    "pixel": single_pixel,
    "noise": noise,
}


def random_masks(seed: int, count_per_family: int) -> Iterator[tuple[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    for name, make in FAMILIES.items():
        for _ in range(count_per_family):
            height, width = (int(v) for v in rng.integers(8, 96, 2))
            mask = make(rng, height, width)
            if mask.any():
                yield name, mask


def coco_from_dataset(dataset: dict[str, Any]) -> COCO:
    """A pycocotools COCO object built from a dict (quietly: COCO prints progress)."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = json.loads(json.dumps(dataset))
        coco.createIndex()
    return coco


def coco_from_file(path: Path) -> COCO:
    with contextlib.redirect_stdout(io.StringIO()):
        return COCO(str(path))


def minimal_coco(**overrides: Any) -> dict[str, Any]:
    """A valid COCO dict with one 10x8 image, two categories and two annotations."""
    data: dict[str, Any] = {
        "info": {"description": "test"},
        "licenses": [],
        "images": [{"id": 1, "file_name": "a.png", "width": 10, "height": 8}],
        "categories": [
            {"id": 1, "name": "cat", "supercategory": "animal"},
            {"id": 2, "name": "dog", "supercategory": "animal"},
        ],
        "annotations": [
            {
                "id": 1,
                "image_id": 1,
                "category_id": 1,
                "segmentation": [[1, 1, 5, 1, 5, 4, 1, 4]],
                "area": 12,
                "bbox": [1, 1, 4, 3],
                "iscrowd": 0,
            },
            {
                "id": 2,
                "image_id": 1,
                "category_id": 2,
                "segmentation": {"size": [8, 10], "counts": [20, 5, 3, 5, 47]},
                "area": 10,
                "bbox": [2, 4, 2, 5],
                "iscrowd": 0,
            },
        ],
    }
    data.update(overrides)
    return data


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (to prove nothing was written)."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def write_png(path: Path, width: int, height: int) -> Path:
    """A small real image file (gray) of the given size."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("L", (width, height), 128).save(path)
    return path


def build_store(
    folder: Path,
    *,
    seed: int = 0,
    images: int = 3,
    per_image: int = 6,
    size: tuple[int, int] = (48, 64),
    autosave: bool = False,
):
    """A saved project with real image files and random masks of every family."""
    from sam2_annotator.annotations.model import PromptRecord
    from sam2_annotator.annotations.store import ProjectStore

    rng = np.random.default_rng(seed)
    store = ProjectStore.create(folder / "project.json", autosave=autosave)
    categories = [store.add_category(name) for name in ("cat", "dog", "car")]
    families = list(FAMILIES.values())
    height, width = size
    for index in range(images):
        path = write_png(folder / "images" / f"img{index}.png", width, height)
        image = store.add_image(path, width, height)
        for k in range(per_image):
            mask = families[(index * per_image + k) % len(families)](rng, height, width)
            if not mask.any():
                mask[0, 0] = True
            prompts = PromptRecord(points=((1.5, 2.0), (3.0, 4.0)), labels=(1, 0))
            store.add_annotation(
                image.id,
                categories[k % len(categories)].id,
                mask,
                prompts=prompts,
                score=float(rng.uniform(0.5, 1.0)),
            )
    store.save()
    return store
