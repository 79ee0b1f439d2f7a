"""Per-image state of the open images in one observed model (no Qt).

The file list, the canvas and the status bar display this; none of them stores it. One
:class:`ImageState` per image: the embedding state the worker reported, the number of
annotations, the *done* / *needs review* flags (stored in the project) and the annotation ids the
user hid. Listeners get the path and the new state after every change.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

log = logging.getLogger(__name__)

EmbeddingState = Literal["unknown", "encoding", "ready", "failed"]


@dataclass(frozen=True)
class ImageState:
    path: str
    embedding: EmbeddingState = "unknown"
    count: int = 0
    done: bool = False
    review: bool = False
    hidden: frozenset[int] = field(default_factory=frozenset)

    @property
    def flagged(self) -> bool:
        return self.done or self.review


@dataclass(frozen=True)
class ImageFilter:
    """What the image list shows: names containing ``text`` (case-insensitive), only images
    without annotations, only flagged ones (done or needs review)."""

    text: str = ""
    unannotated_only: bool = False
    flagged_only: bool = False

    def accepts(self, state: ImageState) -> bool:
        if self.text and self.text.casefold() not in Path(state.path).name.casefold():
            return False
        if self.unannotated_only and state.count > 0:
            return False
        return not (self.flagged_only and not state.flagged)


@dataclass(frozen=True)
class Summary:
    """The counts the status bar shows."""

    images: int
    annotated: int
    done: int
    review: int
    annotations: int

    def text(self) -> str:
        plural = "" if self.annotations == 1 else "s"
        return (
            f"{self.annotated}/{self.images} annotated · {self.done} done · "
            f"{self.review} to review · {self.annotations} object{plural}"
        )


StateListener = Callable[[str, ImageState], object]


class ImageStates:
    """See the module docstring. Paths are the window's image keys (absolute path strings)."""

    def __init__(self) -> None:
        self._states: dict[str, ImageState] = {}
        self.listeners: list[StateListener] = []
        self.reset_listeners: list[Callable[[], object]] = []

    def reset(self, states: Iterable[ImageState]) -> None:
        self._states = {state.path: state for state in states}
        for listener in list(self.reset_listeners):
            listener()

    @property
    def paths(self) -> list[str]:
        return list(self._states)

    def get(self, path: str) -> ImageState | None:
        return self._states.get(path)

    def update(self, path: str, **changes: object) -> None:
        """Change some fields of an image's state; listeners hear of real changes only."""
        current = self._states.get(path)
        if current is None:
            return
        new = replace(current, **changes)  # type: ignore[arg-type]
        if new == current:
            return
        self._states[path] = new
        for listener in list(self.listeners):
            try:
                listener(path, new)
            except Exception:
                log.exception("an image-state listener failed for %s", path)

    def set_hidden(self, path: str, annotation_id: int, hidden: bool) -> None:
        state = self._states.get(path)
        if state is None:
            return
        ids = set(state.hidden)
        if hidden:
            ids.add(annotation_id)
        else:
            ids.discard(annotation_id)
        self.update(path, hidden=frozenset(ids))

    def is_hidden(self, path: str | None, annotation_id: int) -> bool:
        state = self._states.get(path) if path is not None else None
        return state is not None and annotation_id in state.hidden

    def visible_paths(self, image_filter: ImageFilter) -> list[str]:
        return [p for p, s in self._states.items() if image_filter.accepts(s)]

    def summary(self) -> Summary:
        states = list(self._states.values())
        return Summary(
            images=len(states),
            annotated=sum(1 for s in states if s.count),
            done=sum(1 for s in states if s.done),
            review=sum(1 for s in states if s.review),
            annotations=sum(s.count for s in states),
        )


def initial_states(
    paths: Sequence[Path], counts: Sequence[int], flags: Sequence[tuple[bool, bool]]
) -> list[ImageState]:
    return [
        ImageState(str(path), count=count, done=done, review=review)
        for path, count, (done, review) in zip(paths, counts, flags, strict=True)
    ]
