"""The COCO project file format: shared constants, the format error and the import/export reports.

:mod:`.coco_read` and :mod:`.coco_write` build on these; :mod:`.coco_io` re-exports them all.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Literal

from sam2_annotator.errors import ProjectError

SegmentationFormat = Literal["rle", "polygon"]
SEGMENTATION_FORMATS: tuple[SegmentationFormat, ...] = ("rle", "polygon")

#: How many problems a :class:`ProjectFormatError` message lists before "and N more".
SHOWN_PROBLEMS = 10
#: Problems collected at most; a file that is wrong everywhere does not need a million lines.
MAX_PROBLEMS = 1000

IMAGE_KEYS = ("id", "file_name", "width", "height")
CATEGORY_KEYS = ("id", "name", "supercategory")
ANNOTATION_KEYS = ("id", "image_id", "category_id", "segmentation", "area", "bbox", "iscrowd")
TOP_LEVEL_KEYS = ("info", "licenses", "images", "annotations", "categories")

#: Import issue codes -> what they mean (``coco validate`` groups its output by these).
ISSUE_CODES: dict[str, str] = {
    "renumbered_id": "annotation id below 1 (COCOeval ignores id 0); given a new id",
    "missing_id": "annotation without an id; given one",
    "duplicate_id": "annotation id used twice; the later one gets a new id on save",
    "missing_image_file": "image file not found (the image and its annotations are kept)",
    "unreadable_image": "image file cannot be read (kept)",
    "size_mismatch": "width/height differ from the image file",
    "degenerate_polygon": "polygon part with fewer than 3 points dropped",
    "flat_polygon": "segmentation is one flat coordinate list, not a list of polygons",
    "bbox_only": "no segmentation; the box is used as the mask",
    "empty_mask": "the mask is empty",
}


class ProjectFormatError(ProjectError):
    """The file is not a usable COCO instances file; ``problems`` lists what is wrong."""

    def __init__(self, source: str, problems: list[str], total: int | None = None) -> None:
        self.source = source
        self.problems = problems
        self.total = total if total is not None else len(problems)
        shown = "; ".join(problems[:SHOWN_PROBLEMS])
        more = self.total - min(len(problems), SHOWN_PROBLEMS)
        suffix = f"; and {more} more" if more > 0 else ""
        noun = "problem" if self.total == 1 else "problems"
        super().__init__(f"{source}: not a usable COCO file ({self.total} {noun}): {shown}{suffix}")


@dataclass(frozen=True)
class ImportIssue:
    """Something repaired or worth knowing about; ``code`` is a key of :data:`ISSUE_CODES`."""

    code: str
    message: str


@dataclass
class ImportReport:
    """Counts and issues from reading one file."""

    source: str
    images: int = 0
    annotations: int = 0
    categories: int = 0
    segmentations: Counter[str] = field(default_factory=Counter)
    issues: list[ImportIssue] = field(default_factory=list)
    #: The file was not written by this tool (no top-level ``sam2_annotator`` object): the app
    #: never writes to it and keeps its work in a project file of its own beside it.
    foreign: bool = False

    def add(self, code: str, message: str) -> None:
        if code not in ISSUE_CODES:
            raise ValueError(f"unknown import issue code {code!r}")
        self.issues.append(ImportIssue(code, message))

    def codes(self) -> Counter[str]:
        return Counter(issue.code for issue in self.issues)

    def of(self, code: str) -> list[ImportIssue]:
        return [issue for issue in self.issues if issue.code == code]

    @property
    def ok(self) -> bool:
        return not self.issues


@dataclass
class ExportReport:
    """What writing chose per annotation; ``warnings`` name every annotation that lost detail."""

    rle: int = 0
    polygon: int = 0
    kept_rle_for_holes: list[int] = field(default_factory=list)
    holes_filled: list[int] = field(default_factory=list)
    #: Annotations written with their imported segmentation, unchanged (untouched by the user).
    kept_original: int = 0
    empty_as_rle: list[int] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
