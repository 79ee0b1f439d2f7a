"""Per-image review flags (*done*, *needs review*), stored in the project file under the image's
``sam2_annotator`` object and changed as undoable commands (no Qt)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from sam2_annotator.annotations.model import Change, ImageRecord, Project

FlagName = Literal["done", "review"]
FLAGS: tuple[FlagName, ...] = ("done", "review")
#: What each flag is called where a user sees it.
FLAG_LABELS: dict[FlagName, str] = {"done": "done", "review": "needs review"}


@dataclass
class SetImageFlag:
    """Set or clear one flag of one image (an undo step)."""

    image_id: int
    flag: FlagName
    value: bool
    _before: ImageRecord | None = field(default=None, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.flag not in FLAGS:
            raise ValueError(f"unknown image flag {self.flag!r}; expected one of {FLAGS}")

    @property
    def label(self) -> str:
        state = "set" if self.value else "clear"
        return f"{state} '{FLAG_LABELS[self.flag]}' on image {self.image_id}"

    def do(self, project: Project) -> list[Change]:
        current = project.image(self.image_id)
        self._before = current
        return [project.replace_image(current.with_flag(self.flag, self.value))]

    def undo(self, project: Project) -> list[Change]:
        assert self._before is not None
        return [project.replace_image(self._before)]
