"""Every export the GUI offers, as one call with progress and cancellation (no Qt).

:func:`export_project` runs one of :data:`EXPORT_KINDS` - COCO with RLE masks, COCO with polygons,
YOLO segmentation, instance PNGs, semantic PNGs - through :func:`~.coco_io.write_coco` and the
exporters of :mod:`.exporters`, so the files are the ones the CLI writes. It is meant to run on a
background thread (``sam2_annotator.gui.jobs``): it reports ``progress(done, total, message)``,
polls ``cancelled()`` between steps and then stops with
:class:`~sam2_annotator.errors.OperationCancelled`, leaving nothing behind:

* COCO files are written atomically (a temporary file moved in place), only once the whole JSON
  is built, so a cancel or an error leaves no file and an existing file unchanged;
* folder exports are written into a hidden staging folder beside the target and moved into it
  only when complete (files of the same name are replaced, other files in the folder are kept,
  as with ``sam2-annotator export``); a cancel or an error removes the staging folder.

A COCO polygon export never mixes RLE in silently: :func:`holes_report` lists the annotations
whose masks have holes (COCO polygons cannot express them), and the caller chooses
``ExportOptions(holes="rle")`` (those stay RLE, exact) or ``holes="fill"`` (polygons with the
holes filled).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal, NamedTuple

from sam2_annotator.annotations import exporters
from sam2_annotator.annotations.coco_io import ExportReport, keeps_original, write_coco
from sam2_annotator.annotations.exporters import (
    CancelledCallback,
    ProgressCallback,
    class_indices,
    step,
)
from sam2_annotator.annotations.masks import mask_to_polygons
from sam2_annotator.annotations.model import Annotation, Project
from sam2_annotator.errors import ProjectError

ExportKind = Literal["coco_rle", "coco_polygon", "yolo_seg", "png_instance", "png_semantic"]
HolesChoice = Literal["rle", "fill"]


@dataclass(frozen=True)
class ExportOptions:
    """``holes``: what a polygon export does with masks that have holes ("rle": keep those as
    RLE; "fill": polygons, holes filled). ``tool_data``: keep our own fields in COCO exports
    (a clean COCO file by default). ``protected``: files an export must never write (the
    project file, the COCO file it was imported from)."""

    holes: HolesChoice = "rle"
    tool_data: bool = False
    protected: tuple[Path, ...] = ()


@dataclass
class ExportSummary(exporters.ExportSummary):
    """What an export wrote. ``out_dir`` is the target (the file for COCO kinds); ``coco`` is
    write_coco's report (how many polygons / RLE, which kept RLE, which had holes filled)."""

    kind: str = ""
    coco: ExportReport | None = None

    def line(self) -> str:
        """One line for the user."""
        text = (
            f"Exported {self.images} images, {self.annotations} annotations to {self.out_dir}"
            f" ({self.files} file{'s' if self.files != 1 else ''})"
        )
        if self.coco is not None and self.kind == "coco_polygon":
            text += f"; {self.coco.polygon} as polygons, {self.coco.rle} as RLE"
            if self.coco.kept_rle_for_holes:
                text += f" ({len(self.coco.kept_rle_for_holes)} kept as RLE for their holes)"
            if self.coco.holes_filled:
                text += f" ({len(self.coco.holes_filled)} with holes filled)"
        if self.warnings:
            text += f"; {len(self.warnings)} warning{'s' if len(self.warnings) != 1 else ''}"
        return text


@dataclass(frozen=True)
class KindInfo:
    label: str
    #: True: the target is a file (COCO JSON); False: a folder.
    is_file: bool
    #: Default target name next to the project: ``suffix`` appended to the project's name.
    suffix: str
    run: Callable[..., ExportSummary] = field(repr=False)


class HoleEntry(NamedTuple):
    annotation_id: int
    file_name: str
    holes: int


def holes_report(
    project: Project,
    *,
    progress: ProgressCallback | None = None,
    cancelled: CancelledCallback | None = None,
) -> list[HoleEntry]:
    """The annotations a COCO polygon export cannot write exactly: masks with holes, in file
    order, with their image's file name and the number of holes.

    Exactly the annotations :func:`~.coco_io.write_coco` would keep as RLE (or fill) in polygon
    mode: imported annotations whose original polygons are written verbatim are not listed, nor
    are empty masks (always RLE).
    """
    entries = []
    annotations = list(project.annotations.values())
    total = len(annotations)
    for done, annotation in enumerate(annotations):
        step(progress, cancelled, done, total, f"annotation {annotation.id}")
        holes = _holes(annotation)
        if holes:
            image = project.images.get(annotation.image_id)
            name = image.file_name if image is not None else f"image {annotation.image_id}"
            entries.append(HoleEntry(annotation.id, name, holes))
    step(progress, cancelled, total, total, "done")
    return entries


def _holes(annotation: Annotation) -> int:
    if keeps_original(annotation, "polygon"):
        return 0
    polygons = mask_to_polygons(annotation.mask)
    return polygons.holes if polygons.parts else 0


def export_project(
    project: Project,
    target: str | os.PathLike[str],
    kind: ExportKind,
    *,
    options: ExportOptions | None = None,
    progress: ProgressCallback | None = None,
    cancelled: CancelledCallback | None = None,
) -> ExportSummary:
    """Write ``project`` as ``kind`` to ``target`` (a file for COCO kinds, else a folder).

    Works on its own copy of the project's record dicts; when the project may be edited on
    another thread meanwhile, pass a :meth:`~.model.Project.snapshot` taken on that thread.
    Raises :class:`~sam2_annotator.errors.OperationCancelled` when ``cancelled()`` turns true
    (nothing written), :class:`~sam2_annotator.errors.ProjectError` for unusable targets and
    failed writes.
    """
    try:
        info = EXPORT_KINDS[kind]
    except KeyError:
        known = ", ".join(EXPORT_KINDS)
        raise ProjectError(f"unknown export kind {kind!r}; known: {known}") from None
    options = options or ExportOptions()
    if options.holes not in ("rle", "fill"):
        raise ValueError(f"holes must be 'rle' or 'fill': {options.holes!r}")
    path = Path(target).absolute()
    _check_target(path, info, options.protected)
    work = project.snapshot()
    work.reindex()  # a snapshot's lookups are empty; the exporters need annotations_for
    summary = info.run(work, path, options, progress, cancelled)
    summary.kind = kind
    return summary


def _check_target(path: Path, info: KindInfo, protected: Iterable[Path]) -> None:
    for other in protected:
        if path == Path(other).absolute() or (
            path.exists() and Path(other).exists() and path.samefile(other)
        ):
            raise ProjectError(f"{path} is the project's own file; choose another name")
    if info.is_file and path.is_dir():
        raise ProjectError(f"{path} is a folder; a COCO export needs a file name")
    if not info.is_file and path.exists() and not path.is_dir():
        raise ProjectError(f"{path} is a file; this export needs a folder")


# --------------------------------------------------------------------------- COCO


def _export_coco(
    segmentation: Literal["rle", "polygon"],
) -> Callable[..., ExportSummary]:
    def run(
        project: Project,
        target: Path,
        options: ExportOptions,
        progress: ProgressCallback | None,
        cancelled: CancelledCallback | None,
    ) -> ExportSummary:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"cannot create {target.parent}: {exc.strerror or exc}") from exc
        total = len(project.annotations)
        report = write_coco(
            project,
            target,
            segmentation=segmentation,
            force_polygons=options.holes == "fill",
            tool_data=options.tool_data,
            backup=False,
            on_annotation=lambda done, annotation: step(
                progress, cancelled, done, total, f"annotation {annotation.id}"
            ),
        )
        step(progress, None, total, total, target.name)
        summary = ExportSummary(target, images=len(project.images), annotations=total, files=1)
        summary.coco = report
        summary.warnings.extend(report.warnings)
        return summary

    return run


# --------------------------------------------------------------------------- folders


def _export_folder(exporter: Callable[..., exporters.ExportSummary], **kwargs: object):
    def run(
        project: Project,
        target: Path,
        options: ExportOptions,
        progress: ProgressCallback | None,
        cancelled: CancelledCallback | None,
    ) -> ExportSummary:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(
                tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.", suffix=".export")
            )
        except OSError as exc:
            raise ProjectError(f"cannot write in {target.parent}: {exc.strerror or exc}") from exc
        try:
            written = exporter(project, staging, progress=progress, cancelled=cancelled, **kwargs)
            step(progress, cancelled, written.images, written.images, f"moving into {target}")
            _move_into(staging, target)
            if exporter is exporters.export_yolo:
                # data.yaml names the dataset's absolute folder: the target, not the staging one.
                exporters.write_data_yaml(project, target, class_indices(project))
        except OSError as exc:
            raise ProjectError(f"export to {target} failed: {exc.strerror or exc}") from exc
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        summary = ExportSummary(
            target,
            images=written.images,
            annotations=written.annotations,
            files=written.files,
        )
        summary.warnings.extend(written.warnings)
        return summary

    return run


def _move_into(staging: Path, target: Path) -> None:
    """Move the staging folder's content into ``target``: a rename when ``target`` does not
    exist yet, else file by file (same names replaced, others kept)."""
    if not target.exists():
        os.replace(staging, target)
        return
    for source in sorted(staging.rglob("*")):
        if source.is_dir():
            continue
        destination = target / source.relative_to(staging)
        destination.parent.mkdir(parents=True, exist_ok=True)
        os.replace(source, destination)


#: Export kind -> what it is and how it runs (the dialog's format choices, in this order).
EXPORT_KINDS: dict[str, KindInfo] = {
    "coco_rle": KindInfo(
        "COCO JSON, RLE masks (exact)", True, "_coco_rle.json", _export_coco("rle")
    ),
    "coco_polygon": KindInfo(
        "COCO JSON, polygons", True, "_coco_polygons.json", _export_coco("polygon")
    ),
    "yolo_seg": KindInfo(
        "YOLO segmentation (Ultralytics)", False, "_yolo", _export_folder(exporters.export_yolo)
    ),
    "png_instance": KindInfo(
        "PNG masks, instance (16-bit)",
        False,
        "_instance_masks",
        _export_folder(exporters.export_masks, layers=("instances",)),
    ),
    "png_semantic": KindInfo(
        "PNG masks, semantic (class index + 1)",
        False,
        "_semantic_masks",
        _export_folder(exporters.export_masks, layers=("semantic",)),
    ),
}


def default_target(kind: ExportKind, folder: str | os.PathLike[str], name: str) -> Path:
    """Where ``kind`` goes by default: ``folder/<name><suffix>`` (e.g. ``project_yolo``)."""
    return Path(folder) / f"{name}{EXPORT_KINDS[kind].suffix}"
