"""Make ``smoke_gt_shared_photos.json``: a SYNTHETIC COCO file for the three shared photos.

Not ground truth in any real sense: each mask is OpenCV GrabCut's foreground for a hand-placed
box around a visible object (computed on a crop around the box, at most 800 px, scaled back).
It gives ``sam2-annotator eval`` object-shaped regions to sample click points from, so that the
fidelity between two models (int8 vs fp32, ONNX vs PyTorch) is measured on realistic prompts.
IoU against these masks says nothing about segmentation quality. Half the annotations are
written as polygons, half as RLE, and ids start at 0, to exercise both reader paths.

Run from the repository root: ``python docs/benchmarks/make_smoke_gt.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from sam2_annotator.annotations.masks import mask_to_polygons, mask_to_rle
from sam2_annotator.engine.image_io import load_image

ROOT = Path(__file__).resolve().parents[2]
IMAGES = ROOT.parent / "shared" / "data" / "images"
OUT = Path(__file__).with_name("smoke_gt_shared_photos.json")
WORK_SIDE = 800
ITERATIONS = 5

#: image -> (name, box x0, y0, x1, y1 in original pixels), placed by eye.
BOXES: dict[str, list[tuple[str, tuple[int, int, int, int]]]] = {
    "truck.jpg": [
        ("truck", (120, 280, 1710, 850)),
        ("wheel", (1400, 500, 1625, 780)),
        ("wheel", (410, 570, 680, 850)),
        ("window", (655, 300, 865, 440)),
        ("window", (945, 300, 1250, 445)),
    ],
    "groceries.jpg": [
        ("bag", (367, 195, 446, 340)),
        ("bag", (440, 178, 508, 340)),
        ("bag", (507, 173, 584, 340)),
        ("bag", (580, 169, 642, 340)),
        ("tail light", (49, 0, 151, 227)),
        ("tail light", (618, 0, 724, 224)),
    ],
    "cars.jpg": [
        ("car", (262, 512, 1362, 1050)),
        ("headlight", (295, 675, 387, 780)),
        ("car", (1325, 287, 2250, 1350)),
        ("headlight", (1387, 512, 1575, 712)),
        ("building", (0, 0, 725, 650)),
    ],
}


def grabcut(image: np.ndarray, box: tuple[int, int, int, int]) -> np.ndarray:
    """GrabCut on a crop around ``box`` (box plus half its size each side) at <= 800 px."""
    height, width = image.shape[:2]
    x0, y0, x1, y1 = box
    mx, my = (x1 - x0) // 2, (y1 - y0) // 2
    cx0, cy0 = max(0, x0 - mx), max(0, y0 - my)
    cx1, cy1 = min(width, x1 + mx), min(height, y1 + my)
    crop = image[cy0:cy1, cx0:cx1]
    scale = min(1.0, WORK_SIDE / max(crop.shape[:2]))
    size = (round(crop.shape[1] * scale), round(crop.shape[0] * scale))
    small = cv2.cvtColor(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), cv2.COLOR_RGB2BGR)
    rect = (
        round((x0 - cx0) * scale),
        round((y0 - cy0) * scale),
        max(round((x1 - x0) * scale), 2),
        max(round((y1 - y0) * scale), 2),
    )
    mask = np.zeros(small.shape[:2], np.uint8)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(small, mask, rect, background, foreground, ITERATIONS, cv2.GC_INIT_WITH_RECT)
    fg = np.isin(mask, (cv2.GC_FGD, cv2.GC_PR_FGD)).astype(np.uint8)
    full = np.zeros((height, width), bool)
    full[cy0:cy1, cx0:cx1] = cv2.resize(
        fg, (cx1 - cx0, cy1 - cy0), interpolation=cv2.INTER_NEAREST
    ).astype(bool)
    return full


def main() -> None:
    names = sorted({name for boxes in BOXES.values() for name, _ in boxes})
    categories = [{"id": i, "name": n, "supercategory": "object"} for i, n in enumerate(names)]
    images, annotations = [], []
    for image_id, (file_name, boxes) in enumerate(BOXES.items()):
        pixels = load_image(IMAGES / file_name)
        height, width = pixels.shape[:2]
        images.append({"id": image_id, "file_name": file_name, "width": width, "height": height})
        for name, box in boxes:
            mask = grabcut(pixels, box)
            ann_id = len(annotations)
            rle = mask_to_rle(mask)
            polygon = ann_id % 2 == 0
            segmentation = mask_to_polygons(mask).parts if polygon else rle.to_coco()
            annotations.append(
                {
                    "id": ann_id,
                    "image_id": image_id,
                    "category_id": names.index(name),
                    "segmentation": segmentation,
                    "area": rle.area,
                    "bbox": list(rle.bbox),
                    "iscrowd": 0,
                }
            )
    info = {
        "description": "SYNTHETIC smoke-test ground truth for the shared photos: OpenCV GrabCut "
        "masks from hand-placed boxes, NOT human annotations (see make_smoke_gt.py)",
    }
    coco = {"info": info, "images": images, "annotations": annotations, "categories": categories}
    OUT.write_text(json.dumps(coco) + "\n", encoding="utf-8")
    print(f"{len(annotations)} annotations -> {OUT}")


if __name__ == "__main__":
    main()
