"""Exports besides COCO, as a small registry: YOLO segmentation and per-image PNG masks.

Each exporter is one function ``(project, out_dir) -> ExportSummary`` registered in
:data:`EXPORTERS`; the CLI's ``export`` command and the GUI list them from there.

Output files are named after the image file's stem; when two images share a stem (``a/1.jpg`` and
``b/1.jpg``) the image id is appended (``1_7``) so that nothing is overwritten.

The exporters take an optional ``progress(done, total, message)`` callback (called once per image,
``done`` counting from 0 to ``total``) and an optional ``cancelled()`` poll; when it returns true
they stop between images with :class:`~sam2_annotator.errors.OperationCancelled` (files already
written stay: :mod:`.export_jobs` writes into a staging folder and removes it).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from sam2_annotator.annotations.masks import mask_to_polygons
from sam2_annotator.annotations.model import Annotation, Project
from sam2_annotator.errors import OperationCancelled, ProjectError

log = logging.getLogger(__name__)

#: ``progress(done, total, message)``: ``done`` of ``total`` steps finished, ``message`` says what.
ProgressCallback = Callable[[int, int, str], None]
#: Polled between steps; true means stop (with :class:`OperationCancelled`).
CancelledCallback = Callable[[], bool]


@dataclass
class ExportSummary:
    out_dir: Path
    images: int = 0
    annotations: int = 0
    files: int = 0
    warnings: list[str] = field(default_factory=list)

    def warn(self, message: str) -> None:
        log.warning("%s", message)
        self.warnings.append(message)


@dataclass(frozen=True)
class Exporter:
    name: str
    description: str
    run: Callable[[Project, Path], ExportSummary]


def export(name: str, project: Project, out_dir: str | os.PathLike[str]) -> ExportSummary:
    """Run the exporter called ``name`` into ``out_dir`` (created if needed)."""
    try:
        exporter = EXPORTERS[name]
    except KeyError:
        known = ", ".join(EXPORTERS)
        raise ProjectError(f"unknown export format {name!r}; known: {known}") from None
    target = Path(out_dir)
    try:
        target.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ProjectError(f"cannot create {target}: {exc.strerror or exc}") from exc
    try:
        return exporter.run(project, target)
    except OSError as exc:
        raise ProjectError(f"export to {target} failed: {exc.strerror or exc}") from exc


def output_stems(project: Project) -> dict[int, str]:
    """A unique (case-insensitively) output name per image id."""
    counts: dict[str, int] = {}
    for image in project.images.values():
        key = Path(image.file_name).stem.casefold()
        counts[key] = counts.get(key, 0) + 1
    stems: dict[int, str] = {}
    used: set[str] = set()
    for image in project.images.values():
        stem = Path(image.file_name).stem
        name = stem if counts[stem.casefold()] == 1 else f"{stem}_{image.id}"
        while name.casefold() in used:  # "x_1" may itself be another image's name
            name = f"{name}_{image.id}"
        used.add(name.casefold())
        stems[image.id] = name
    return stems


def class_indices(project: Project) -> dict[int, int]:
    """Category id -> contiguous class index 0..N-1 (in category id order)."""
    return {category_id: index for index, category_id in enumerate(sorted(project.categories))}


def step(
    progress: ProgressCallback | None,
    cancelled: CancelledCallback | None,
    done: int,
    total: int,
    message: str,
) -> None:
    """Report ``done``/``total`` and stop with :class:`OperationCancelled` when asked to."""
    if cancelled is not None and cancelled():
        raise OperationCancelled("export cancelled")
    if progress is not None:
        progress(done, total, message)


# =========================================================================== YOLO


def export_yolo(
    project: Project,
    out_dir: Path,
    *,
    progress: ProgressCallback | None = None,
    cancelled: CancelledCallback | None = None,
) -> ExportSummary:
    """Ultralytics segmentation dataset: ``images/``, ``labels/*.txt`` and ``data.yaml``.

    A label line is ``class x1 y1 x2 y2 ...`` with coordinates divided by the image size. YOLO
    has one polygon per object, so the parts of a multi-part mask are joined by zero-width
    bridges (as Ultralytics' own COCO converter does); holes cannot be expressed and are filled,
    with a warning naming the annotation. Crowd annotations are skipped, as Ultralytics does.
    Images are hard-linked (copied where links are not possible) into ``images/``.
    """
    summary = ExportSummary(out_dir)
    classes = class_indices(project)
    stems = output_stems(project)
    (out_dir / "images").mkdir(exist_ok=True)
    (out_dir / "labels").mkdir(exist_ok=True)
    total = len(project.images)
    for done, image in enumerate(project.images.values()):
        step(progress, cancelled, done, total, image.file_name)
        source = project.image_path(image)
        if source.is_file():
            _link_or_copy(source, out_dir / "images" / f"{stems[image.id]}{source.suffix}")
            summary.files += 1
        else:
            summary.warn(f"image {image.id}: {source} not found; only its labels are written")
        lines = []
        for annotation in project.annotations_for(image.id):
            line = _yolo_line(annotation, classes[annotation.category_id], summary)
            if line is not None:
                lines.append(line)
                summary.annotations += 1
        label = out_dir / "labels" / f"{stems[image.id]}.txt"
        label.write_text("".join(f"{line}\n" for line in lines), encoding="utf-8")
        summary.files += 1
        summary.images += 1
    step(progress, cancelled, total, total, "data.yaml")
    write_data_yaml(project, out_dir, classes)
    summary.files += 1
    return summary


def _yolo_line(annotation: Annotation, class_index: int, summary: ExportSummary) -> str | None:
    if annotation.iscrowd:
        summary.warn(f"annotation {annotation.id} is a crowd region; skipped (YOLO has none)")
        return None
    polygons = mask_to_polygons(annotation.mask)
    if not polygons.parts:
        summary.warn(f"annotation {annotation.id} has an empty mask; skipped")
        return None
    if polygons.holes:
        summary.warn(
            f"annotation {annotation.id} (image {annotation.image_id}) has {polygons.holes} "
            "hole(s); YOLO polygons cannot hold holes, so they are filled"
        )
    points = join_parts([np.asarray(p, np.float64).reshape(-1, 2) for p in polygons.parts])
    height, width = annotation.rle.shape
    normalised = points / np.array([width, height], np.float64)
    coords = " ".join(f"{v:.6f}" for v in normalised.ravel())
    return f"{class_index} {coords}"


def join_parts(parts: list[np.ndarray]) -> np.ndarray:
    """One polygon from several: each further part is visited through a zero-width bridge
    between its nearest vertices and the polygon so far (largest part first)."""
    ordered = sorted(parts, key=lambda p: -abs(_shoelace(p)))
    merged = ordered[0]
    for part in ordered[1:]:
        a, b = _nearest_pair(merged, part)
        merged = np.concatenate([merged[: a + 1], part[b:], part[: b + 1], merged[a:]])
    return merged


def _shoelace(points: np.ndarray) -> float:
    x, y = points[:, 0], points[:, 1]
    return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))


def _nearest_pair(a: np.ndarray, b: np.ndarray, chunk: int = 1024) -> tuple[int, int]:
    """Indices of the closest vertices of ``a`` and ``b`` (chunked to bound memory)."""
    best = (np.inf, 0, 0)
    for start in range(0, len(a), chunk):
        block = a[start : start + chunk]
        distances = ((block[:, None, :] - b[None, :, :]) ** 2).sum(axis=-1)
        i, j = np.unravel_index(int(np.argmin(distances)), distances.shape)
        if distances[i, j] < best[0]:
            best = (float(distances[i, j]), start + int(i), int(j))
    return best[1], best[2]


def write_data_yaml(project: Project, out_dir: Path, classes: dict[int, int]) -> None:
    # JSON strings are valid YAML scalars, so json.dumps quotes names and paths safely.
    lines = [
        "# Ultralytics dataset written by sam2-annotator; train and val are the same images.",
        f"path: {json.dumps(str(out_dir.resolve()), ensure_ascii=False)}",
        "train: images",
        "val: images",
        "names:",
    ]
    for category_id, index in classes.items():
        name = project.categories[category_id].name
        lines.append(f"  {index}: {json.dumps(name, ensure_ascii=False)}")
    (out_dir / "data.yaml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists() or target.is_symlink():
        target.unlink()
    try:
        os.link(source, target)
    except OSError as exc:
        log.debug("cannot hard-link %s (%s); copying", source, exc)
        shutil.copy2(source, target)


# =========================================================================== PNG masks


#: The two kinds of PNG :func:`export_masks` writes (its ``layers``), each in a folder of its name.
MASK_LAYERS = ("instances", "semantic")


def export_masks(
    project: Project,
    out_dir: Path,
    *,
    layers: tuple[str, ...] = MASK_LAYERS,
    progress: ProgressCallback | None = None,
    cancelled: CancelledCallback | None = None,
) -> ExportSummary:
    """Per image ``instances/<name>.png`` and ``semantic/<name>.png``, indexed by ``masks.json``.

    Instance PNGs are 16-bit: 0 is background, 1..N the image's objects. Semantic PNGs hold
    0 for background and the class index + 1 per pixel (8-bit, 16-bit beyond 255 classes).
    Where objects overlap, smaller objects are drawn over larger ones so none vanishes entirely
    behind a bigger one. ``masks.json`` maps every value back to annotation and category ids.
    ``layers`` picks which of the two are written (both by default); ``masks.json`` names only
    those, and lists the per-image ``objects`` (instance values) only with ``"instances"``.
    """
    unknown = [layer for layer in layers if layer not in MASK_LAYERS]
    if unknown or not layers:
        raise ValueError(f"layers must be a non-empty subset of {MASK_LAYERS}: {layers!r}")
    summary = ExportSummary(out_dir)
    classes = class_indices(project)
    stems = output_stems(project)
    semantic_dtype = np.uint8 if len(classes) < 256 else np.uint16
    for layer in layers:
        (out_dir / layer).mkdir(exist_ok=True)
    index_images = []
    total = len(project.images)
    for done, image in enumerate(project.images.values()):
        step(progress, cancelled, done, total, image.file_name)
        annotations = project.annotations_for(image.id)
        if len(annotations) > np.iinfo(np.uint16).max:
            raise ProjectError(f"image {image.id} has more objects than a 16-bit PNG can number")
        instances = np.zeros(image.shape, np.uint16)
        semantic = np.zeros(image.shape, semantic_dtype)
        objects = []
        by_area = sorted(annotations, key=lambda a: -a.area)
        for value, annotation in enumerate(by_area, start=1):
            mask = annotation.mask
            instances[mask] = value
            semantic[mask] = classes[annotation.category_id] + 1
            objects.append(
                {
                    "value": value,
                    "annotation_id": annotation.id,
                    "category_id": annotation.category_id,
                }
            )
        names = {kind: f"{kind}/{stems[image.id]}.png" for kind in layers}
        arrays = {"instances": instances, "semantic": semantic}
        for kind, name in names.items():
            _write_png(out_dir / name, arrays[kind])
        summary.files += len(names)
        summary.images += 1
        summary.annotations += len(annotations)
        entry = {"image_id": image.id, "file_name": image.file_name, **names}
        if "instances" in layers:
            entry["objects"] = objects
        index_images.append(entry)
    index = {
        "classes": [
            {
                "value": index + 1,
                "category_id": category_id,
                "name": project.categories[category_id].name,
            }
            for category_id, index in classes.items()
        ],
        "images": index_images,
    }
    step(progress, cancelled, total, total, "masks.json")
    (out_dir / "masks.json").write_text(
        json.dumps(index, ensure_ascii=False, indent=1), encoding="utf-8"
    )
    summary.files += 1
    return summary


def _write_png(path: Path, array: np.ndarray) -> None:
    # imencode + write_bytes instead of imwrite: imwrite cannot open non-ASCII paths on Windows.
    ok, encoded = cv2.imencode(".png", array)
    if not ok:
        raise ProjectError(f"could not encode {path.name} as PNG")
    path.write_bytes(encoded.tobytes())


#: Export format name -> exporter (the CLI's ``export`` choices).
EXPORTERS: dict[str, Exporter] = {
    exporter.name: exporter
    for exporter in (
        Exporter("yolo", "Ultralytics YOLO segmentation (labels/*.txt + data.yaml)", export_yolo),
        Exporter(
            "masks", "per-image PNG masks, instance and semantic (+ masks.json)", export_masks
        ),
    )
}
