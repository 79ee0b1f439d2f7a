"""Masks <-> RLE / polygons, checked against pycocotools as every COCO consumer decodes them."""

from __future__ import annotations

import numpy as np
import pytest
from pycocotools import mask as mask_utils

from sam2_annotator.annotations.masks import (
    SegmentationError,
    as_mask,
    decode_counts_string,
    empty_rle,
    iou,
    mask_to_polygons,
    mask_to_rle,
    polygons_to_mask,
    rle_from_counts,
    rle_from_polygons,
    rle_from_string,
)
from tests.annotations.helpers import (
    MEASURED,
    PYCOCOTOOLS_NUMPY2_WARNING,
    blob,
    coco_from_dataset,
    random_masks,
)

pytestmark = pytest.mark.filterwarnings(PYCOCOTOOLS_NUMPY2_WARNING)

SEED = 20240611


def _dataset(masks: list[np.ndarray], segmentations: list[object]) -> dict:
    images = [
        {"id": i + 1, "file_name": f"{i}.png", "width": m.shape[1], "height": m.shape[0]}
        for i, m in enumerate(masks)
    ]
    annotations = [
        {
            "id": i + 1,
            "image_id": i + 1,
            "category_id": 1,
            "segmentation": seg,
            "iscrowd": 0,
            "area": 0,
            "bbox": [0, 0, 0, 0],
        }
        for i, seg in enumerate(segmentations)
    ]
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "x"}]}


def _column_runs(mask: np.ndarray) -> list[int]:
    """COCO's uncompressed counts, computed independently of pycocotools (column-major)."""
    flat = mask.T.ravel().astype(np.int8)
    changes = np.flatnonzero(np.diff(flat)) + 1
    edges = np.concatenate(([0], changes, [flat.size]))
    runs = np.diff(edges).tolist()
    if flat[0]:
        runs = [0, *runs]
    return runs


def test_rle_round_trip_through_pycocotools_is_exact() -> None:
    samples = list(random_masks(SEED, count_per_family=60))
    masks = [mask for _, mask in samples]
    coco = coco_from_dataset(_dataset(masks, [mask_to_rle(m).to_coco() for m in masks]))
    families: dict[str, int] = {}
    for index, (family, mask) in enumerate(samples):
        decoded = coco.annToMask(coco.anns[index + 1]).astype(bool)
        assert np.array_equal(decoded, mask), f"{family} mask {index} changed"
        families[family] = families.get(family, 0) + 1
    assert set(families) == {"blob", "multi_blob", "holes", "parts", "border", "pixel", "noise"}
    assert len(samples) >= 400
    MEASURED["rle round trips (all exact)"] = f"{len(samples)} masks {families}"


def test_polygons_of_hole_free_masks_reach_iou_099_and_are_exact() -> None:
    rng = np.random.default_rng(SEED)
    masks = []
    for family, mask in random_masks(SEED + 1, count_per_family=60):
        if mask_to_polygons(mask).holes:
            continue
        masks.append((family, mask))
    # Large objects as well, where IoU >= 0.99 is a meaningful bar for any polygon tracer.
    large = (blob(rng, 300, 400, parts=2) for _ in range(40))
    masks += [("large_blob", m) for m in large if not mask_to_polygons(m).holes][:10]
    polygons = [mask_to_polygons(m).parts for _, m in masks]
    coco = coco_from_dataset(_dataset([m for _, m in masks], polygons))
    worst = 1.0
    exact = 0
    for index, (family, mask) in enumerate(masks):
        decoded = coco.annToMask(coco.anns[index + 1]).astype(bool)
        score = iou(decoded, mask)
        worst = min(worst, score)
        assert score >= 0.99, f"{family} mask {index}: IoU {score:.4f}"
        exact += bool(np.array_equal(decoded, mask))
    # Pixel-edge tracing makes hole-free polygons exact, not just close.
    assert exact == len(masks)
    assert len(masks) >= 250
    assert sum(family == "large_blob" for family, _ in masks) == 10
    MEASURED["polygon round trips (hole-free)"] = (
        f"{len(masks)} masks, min IoU {worst:.4f}, {exact} exact"
    )


def test_polygons_report_holes_and_keep_every_part() -> None:
    mask = np.zeros((20, 30), bool)
    mask[2:12, 2:12] = True
    mask[5:8, 5:8] = False  # a hole
    mask[15:18, 20:28] = True  # a second part
    mask[0, 29] = True  # a one-pixel part in the corner
    polygons = mask_to_polygons(mask)
    assert polygons.holes == 1
    assert len(polygons.parts) == 3
    filled = mask.copy()
    filled[5:8, 5:8] = True
    assert np.array_equal(polygons_to_mask(polygons.parts, 20, 30), filled)


def test_one_pixel_object_becomes_a_unit_square() -> None:
    mask = np.zeros((5, 5), bool)
    mask[4, 0] = True
    parts = mask_to_polygons(mask).parts
    assert len(parts) == 1
    corners = sorted(zip(parts[0][::2], parts[0][1::2], strict=True))
    assert corners == [(0, 4), (0, 5), (1, 4), (1, 5)]


def test_diagonal_contacts_rasterise_back_exactly() -> None:
    mask = np.eye(6, dtype=bool) | np.eye(6, dtype=bool)[::-1]
    polygons = mask_to_polygons(mask)
    assert polygons.holes == 0  # 4-connected background around an 8-connected X
    assert np.array_equal(polygons_to_mask(polygons.parts, 6, 6), mask)


def test_compressed_counts_decoder_matches_pycocotools() -> None:
    for _, mask in random_masks(SEED + 2, count_per_family=15):
        rle = mask_to_rle(mask)
        runs = decode_counts_string(rle.counts.decode())
        assert runs.tolist() == _column_runs(mask)


def test_uncompressed_and_compressed_rle_are_read_exactly() -> None:
    for _, mask in random_masks(SEED + 3, count_per_family=5):
        height, width = mask.shape
        from_counts = rle_from_counts(_column_runs(mask), height, width)
        assert np.array_equal(from_counts.decode(), mask)
        from_string = rle_from_string(mask_to_rle(mask).counts.decode(), height, width)
        assert np.array_equal(from_string.decode(), mask)


@pytest.mark.parametrize(
    ("counts", "message"),
    [
        ("", "cover 0 pixels"),
        ("0~", "invalid character"),
        ("a", "truncated"),  # 'a' = 49 | 0x20 continuation flag: the run never ends
        ("3", "cover 3 pixels"),  # one run of 3 for a 2x2 mask
        ("@", "negative"),  # '@' = 64 -> 16: the sign bit of a one-group run, so -16
        ("05é", "non-ASCII"),
        ("o" * 8 + "0", "too long"),
    ],
)
def test_bad_counts_strings_are_refused_before_decoding(counts: str, message: str) -> None:
    with pytest.raises(SegmentationError, match=message):
        rle_from_string(counts, 2, 2)


def test_uncompressed_counts_must_cover_the_image() -> None:
    with pytest.raises(SegmentationError, match="cover 5 pixels"):
        rle_from_counts([2, 3], 2, 3)
    with pytest.raises(SegmentationError, match="negative"):
        rle_from_counts([8, -2], 2, 3)


def test_short_polygons_are_refused_not_read_as_boxes() -> None:
    # pycocotools would read a first part of four numbers as a box.
    with pytest.raises(SegmentationError, match="even number >= 6"):
        rle_from_polygons([[1, 1, 5, 5]], 10, 10)
    with pytest.raises(SegmentationError, match="even number >= 6"):
        rle_from_polygons([[1, 1, 5, 1, 5, 5, 1]], 10, 10)


def test_area_and_bbox_come_from_pycocotools() -> None:
    mask = np.zeros((10, 12), bool)
    mask[2:5, 3:9] = True
    rle = mask_to_rle(mask)
    assert rle.area == 18 == int(mask_utils.area(rle.as_pycocotools()))
    assert rle.bbox == (3.0, 2.0, 6.0, 3.0)
    assert empty_rle(4, 5).area == 0
    assert not empty_rle(4, 5).decode().any()


def test_as_mask_checks_shape_and_values() -> None:
    assert as_mask(np.array([[0, 1]], np.uint8)).dtype == bool
    with pytest.raises(ValueError, match="2-D"):
        as_mask(np.zeros((2, 2, 1), bool))
    with pytest.raises(ValueError, match="does not match"):
        as_mask(np.zeros((2, 2), bool), (3, 2))
    with pytest.raises(ValueError, match="only 0 and 1"):
        as_mask(np.array([[0, 2]]))


def test_polygons_far_outside_the_image_are_clipped_without_changing_the_mask() -> None:
    parts = [[-50, -40, 30.5, -40, 30.5, 25.25, 12, 70, -50, 25.25], [5, 5, 200, 5, 5, 9]]
    unclipped = mask_utils.decode(mask_utils.merge(mask_utils.frPyObjects(parts, 20, 24)))
    assert np.array_equal(polygons_to_mask(parts, 20, 24), unclipped.astype(bool))
    # pycocotools alone would rasterise every edge of this at 5x: terabytes.
    huge = polygons_to_mask([[0, 0, 1e20, 0, 1e20, 1e20, 0, 1e20]], 20, 24)
    assert huge.all()
    assert not polygons_to_mask([[-9e9, -9e9, -8e9, -9e9, -8e9, -8e9]], 20, 24).any()


def test_boxes_are_clipped_to_the_image() -> None:
    from sam2_annotator.annotations.masks import rle_from_bbox

    assert rle_from_bbox([2, 3, 1e30, 1e30], 10, 12).bbox == (2.0, 3.0, 10.0, 7.0)
    assert rle_from_bbox([-5, -5, 3, 3], 10, 12).area == 0
