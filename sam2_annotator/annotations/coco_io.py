"""Read, validate and write COCO instances files (the project file format).

Reading accepts what real COCO files contain: polygons, compressed and uncompressed RLE, ids
starting at 0, category id 0, missing image files, wrong image sizes, duplicate annotation ids and
keys this tool does not know. Everything that can be repaired is repaired and listed in an
:class:`ImportReport`; everything that cannot (wrong types, unknown references, RLE that does not
cover its image...) is collected and raised together as one :class:`ProjectFormatError`, so the
user sees the first problems at once instead of one per attempt.

Writing produces plain COCO plus one :data:`~.model.TOOL_KEY` object per record. ``bbox`` and
``area`` always come from pycocotools on the segmentation as written.

This module is the public face of that format; the work is done in

- :mod:`.coco_format`: constants, :class:`ProjectFormatError`, the import and export reports;
- :mod:`.coco_read`: files and JSON, the top level, images and categories;
- :mod:`.coco_read_annotations`: annotations, every segmentation form, annotation ids;
- :mod:`.coco_checks`: the small validation helpers the readers share;
- :mod:`.coco_write`: :func:`project_to_coco`, :func:`dumps` and :func:`write_coco`.
"""

from sam2_annotator.annotations.coco_format import (
    ANNOTATION_KEYS,
    CATEGORY_KEYS,
    IMAGE_KEYS,
    ISSUE_CODES,
    MAX_PROBLEMS,
    SEGMENTATION_FORMATS,
    SHOWN_PROBLEMS,
    TOP_LEVEL_KEYS,
    ExportReport,
    ImportIssue,
    ImportReport,
    ProjectFormatError,
    SegmentationFormat,
)
from sam2_annotator.annotations.coco_read import (
    load_json,
    parse_coco,
    parse_json_bytes,
    read_project,
)
from sam2_annotator.annotations.coco_write import (
    dumps,
    keeps_original,
    project_to_coco,
    write_coco,
)

__all__ = [
    "ANNOTATION_KEYS",
    "CATEGORY_KEYS",
    "IMAGE_KEYS",
    "ISSUE_CODES",
    "MAX_PROBLEMS",
    "SEGMENTATION_FORMATS",
    "SHOWN_PROBLEMS",
    "TOP_LEVEL_KEYS",
    "ExportReport",
    "ImportIssue",
    "ImportReport",
    "ProjectFormatError",
    "SegmentationFormat",
    "dumps",
    "keeps_original",
    "load_json",
    "parse_coco",
    "parse_json_bytes",
    "project_to_coco",
    "read_project",
    "write_coco",
]
