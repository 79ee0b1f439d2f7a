"""Project data model, COCO read/write, mask <-> RLE/polygon, undo and atomic save (no Qt).

The names most callers need are re-exported here; see :mod:`.store` for the editing API.
"""

from sam2_annotator.annotations.atomic import ProjectSaveError, write_atomic
from sam2_annotator.annotations.coco_io import (
    ExportReport,
    ImportIssue,
    ImportReport,
    ProjectFormatError,
    project_to_coco,
    read_project,
    write_coco,
)
from sam2_annotator.annotations.masks import Polygons, Rle, mask_to_polygons, mask_to_rle
from sam2_annotator.annotations.model import (
    TOOL_KEY,
    Annotation,
    Category,
    Change,
    ImageRecord,
    Project,
    PromptRecord,
)
from sam2_annotator.annotations.store import ProjectStore

__all__ = [
    "TOOL_KEY",
    "Annotation",
    "Category",
    "Change",
    "ExportReport",
    "ImageRecord",
    "ImportIssue",
    "ImportReport",
    "Polygons",
    "Project",
    "ProjectFormatError",
    "ProjectSaveError",
    "ProjectStore",
    "PromptRecord",
    "Rle",
    "mask_to_polygons",
    "mask_to_rle",
    "project_to_coco",
    "read_project",
    "write_atomic",
    "write_coco",
]
