"""A project file on disk with undo, change callbacks and crash-safe autosave (no Qt).

:class:`ProjectStore` is the one object a front end edits through::

    store = ProjectStore.open("project.json")
    store.listeners.append(lambda change: print(change))
    image = store.add_image("photos/cat.jpg", width=640, height=480)
    cat = store.add_category("cat")
    annotation = store.add_annotation(image.id, cat.id, mask, prompts=..., score=0.97)
    store.relabel(annotation.id, other.id)
    store.undo()

Every edit is written at once (``autosave=True``, the default) through
:func:`~.atomic.write_atomic`. When a save fails the edit stays in memory (and in the undo
history), :attr:`ProjectStore.dirty` stays true and :class:`~.atomic.ProjectSaveError` is raised to
the caller; the next successful save writes everything. Listeners are plain callables that get
one :class:`~.model.Change` at a time, after the edit is complete; a listener that raises is logged
and does not stop the others. Not thread-safe: call it from one thread (the GUI thread).

One user action is one save: edits made inside ``with store.transaction():`` (a new category, the
image record and the annotation of one accept, say) are written once, when the outermost
transaction ends. With :meth:`ProjectStore.use_background_saver` the autosave does not serialise
anything on the calling thread: it hands a :meth:`~.model.Project.snapshot` to a
:class:`~.saver.BackgroundSaver`, whose results (and failures) arrive through its callback.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any, Literal

import numpy as np

from sam2_annotator.annotations.atomic import ProjectSaveError, write_atomic
from sam2_annotator.annotations.coco_io import (
    ImportReport,
    dumps,
    project_to_coco,
    read_project,
)
from sam2_annotator.annotations.flags import SetImageFlag
from sam2_annotator.annotations.labels import CategoryError, check_color, clean_name, name_key
from sam2_annotator.annotations.masks import as_mask, mask_to_rle
from sam2_annotator.annotations.model import (
    Annotation,
    Category,
    Change,
    ImageRecord,
    JsonDict,
    Project,
    PromptRecord,
    SourceGeometry,
    default_color,
    rebase,
    utc_now,
)
from sam2_annotator.annotations.saver import BackgroundSaver, SaveResult, Snapshot
from sam2_annotator.annotations.undo import (
    DEFAULT_UNDO_LIMIT,
    AddAnnotation,
    Batch,
    Command,
    DeleteAnnotation,
    DeleteAnnotations,
    Relabel,
    RemoveCategory,
    ReplaceCategory,
    ReplaceMask,
    SetIscrowd,
    UndoStack,
)
from sam2_annotator.errors import ProjectError

log = logging.getLogger(__name__)

Listener = Callable[[Change], Any]

__all__ = ["Listener", "ProjectSaveError", "ProjectStore"]


class ProjectStore:
    """A :class:`~.model.Project` bound to its file (see the module docstring)."""

    def __init__(
        self,
        project: Project,
        path: str | os.PathLike[str],
        *,
        autosave: bool = True,
        undo_limit: int = DEFAULT_UNDO_LIMIT,
        report: ImportReport | None = None,
    ) -> None:
        self.path = Path(path)
        self.project = project
        self.autosave = autosave
        self.report = report
        self.history = UndoStack(undo_limit)
        self.listeners: list[Listener] = []
        self.saver: BackgroundSaver | None = None
        #: Bumped on every change; a save records the generation it wrote.
        self._generation = 0
        self._saved_generation = 0
        self._transaction_depth = 0

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        images_dir: str | os.PathLike[str] | None = None,
        check_images: bool = True,
        autosave: bool = True,
        undo_limit: int = DEFAULT_UNDO_LIMIT,
    ) -> ProjectStore:
        """Open a project (or any COCO instances file) to continue working on it.

        What was repaired or is worth knowing (missing images, renumbered ids...) is in
        :attr:`report`. Nothing is written until the first edit or :meth:`save`; repaired ids
        reach the file then. Raises :class:`~sam2_annotator.errors.ProjectError`.
        """
        project, report = read_project(path, images_dir=images_dir, check_images=check_images)
        if images_dir is not None:
            log.info("image paths will be saved relative to %s", Path(path).parent)
        return cls(project, path, autosave=autosave, undo_limit=undo_limit, report=report)

    @classmethod
    def create(
        cls,
        path: str | os.PathLike[str],
        *,
        info: JsonDict | None = None,
        autosave: bool = True,
        undo_limit: int = DEFAULT_UNDO_LIMIT,
        overwrite: bool = False,
        write: bool = True,
    ) -> ProjectStore:
        """Start a new, empty project and write it to ``path`` right away (``write=False``: with
        the first edit, e.g. when the caller is about to add one in a transaction)."""
        target = Path(path)
        if target.exists() and not overwrite:
            raise ProjectError(f"{target} already exists; open it instead")
        default_info: JsonDict = {
            "description": "annotated with sam2-annotator",
            "version": "1.0",
            "date_created": utc_now(),
        }
        project = Project(root=target.parent, info=info if info is not None else default_info)
        store = cls(project, target, autosave=autosave, undo_limit=undo_limit)
        if write:
            store.save()
        else:
            store._generation = 1  # not on disk yet: dirty until the first save
        return store

    @classmethod
    def import_coco(
        cls,
        source: str | os.PathLike[str],
        path: str | os.PathLike[str],
        *,
        images_dir: str | os.PathLike[str] | None = None,
        autosave: bool = True,
        overwrite: bool = False,
    ) -> ProjectStore:
        """Make a new project file at ``path`` from a COCO file elsewhere (which is not touched).

        Image paths are taken relative to ``images_dir`` (default: the source file's folder) and
        stored relative to ``path``.
        """
        target = Path(path)
        if target.exists() and not overwrite:
            raise ProjectError(f"{target} already exists; choose another name")
        project, report = read_project(source, images_dir=images_dir, root=target.parent)
        store = cls(project, target, autosave=autosave, report=report)
        store.save()
        return store

    # ------------------------------------------------------------------ reading

    @property
    def images(self) -> list[ImageRecord]:
        return list(self.project.images.values())

    @property
    def categories(self) -> list[Category]:
        return list(self.project.categories.values())

    def annotations_for(self, image_id: int) -> list[Annotation]:
        return self.project.annotations_for(image_id)

    def annotation(self, annotation_id: int) -> Annotation:
        return self.project.annotation(annotation_id)

    def image_path(self, image: ImageRecord | int) -> Path:
        return self.project.image_path(image)

    # ------------------------------------------------------------------ images and categories
    # (not undoable: adding an image or a category loses no work)

    def add_image(self, path: str | os.PathLike[str], width: int, height: int) -> ImageRecord:
        """Add an image file (its path is stored relative to the project file).

        Adding a file that is already in the project returns the existing record.
        """
        existing = self.project.image_by_path(path)
        if existing is not None:
            return existing
        if width < 1 or height < 1:
            raise ValueError(f"image size must be positive, got {width}x{height}")
        record = ImageRecord(
            id=self.project.next_image_id(),
            file_name=self.project.relative_name(path),
            width=int(width),
            height=int(height),
        )
        self._apply([self.project.add_image(record)])
        return record

    def add_category(
        self,
        name: str,
        *,
        supercategory: str = "",
        color: tuple[int, int, int] | None = None,
        category_id: int | None = None,
    ) -> Category:
        """Add a category; its colour defaults to a distinct one derived from its id."""
        if not name.strip():
            raise ValueError("a category needs a name")
        new_id = self.project.next_category_id() if category_id is None else category_id
        category = Category(
            id=new_id,
            name=name,
            supercategory=supercategory,
            color=color if color is not None else default_color(new_id),
        )
        self._apply([self.project.add_category(category)])
        return category

    # ------------------------------------------------------------------ undoable edits

    def add_annotation(
        self,
        image_id: int,
        category_id: int,
        mask: np.ndarray,
        *,
        prompts: PromptRecord | None = None,
        score: float | None = None,
        geometry: SourceGeometry | None = None,
    ) -> Annotation:
        """Add a mask (bool ``(H, W)`` of the image's size) as a new annotation.

        ``geometry`` is the shape the user drew (a polygon), written as it is in every export;
        ``mask`` must be its rasterisation."""
        image = self.project.image(image_id)
        annotation = Annotation.from_mask(
            self.project.allocate_annotation_id(),
            image_id,
            category_id,
            as_mask(mask, image.shape),
            prompts=prompts,
            score=score,
        )
        if geometry is not None:
            annotation = replace(annotation, original=geometry)
        self.execute(AddAnnotation(annotation))
        return annotation

    def delete_annotation(self, annotation_id: int) -> None:
        self.execute(DeleteAnnotation(annotation_id))

    def delete_annotations(self, annotation_ids: Sequence[int]) -> None:
        """Delete several annotations as one undo step."""
        if not annotation_ids:
            return
        commands = [DeleteAnnotation(i) for i in annotation_ids]
        self.execute(Batch(commands, f"delete {len(commands)} annotations"))

    def relabel(self, annotation_id: int, category_id: int) -> Annotation:
        self.project.category(category_id)
        current = self.project.annotation(annotation_id)
        if current.category_id == category_id:
            return current  # nothing to undo
        command = Relabel(annotation_id, category_id=category_id)
        self.execute(command)
        return command.result

    def replace_mask(
        self,
        annotation_id: int,
        mask: np.ndarray,
        *,
        prompts: PromptRecord | None = None,
        score: float | None = None,
        geometry: SourceGeometry | None = None,
    ) -> Annotation:
        """New mask for an annotation (one undo step); ``geometry`` as in :meth:`add_annotation`
        (without it the imported geometry is dropped: it no longer describes the mask)."""
        current = self.project.annotation(annotation_id)
        image = self.project.image(current.image_id)
        rle = mask_to_rle(as_mask(mask, image.shape))
        command = ReplaceMask(
            annotation_id, rle=rle, prompts=prompts, score=score, geometry=geometry
        )
        self.execute(command)
        return command.result

    def set_image_flag(self, image_id: int, flag: str, value: bool) -> None:
        """Mark an image *done* or *needs review* (``flag`` ``"done"``/``"review"``), undoable."""
        if self.project.image(image_id).flag(flag) == bool(value):
            return
        self.execute(SetImageFlag(image_id, flag, bool(value)))  # type: ignore[arg-type]

    def execute(self, command: Command) -> None:
        """Run any undoable command, notify listeners and autosave."""
        self._apply(self.history.push(command, self.project))

    def undo(self) -> bool:
        """Undo the last edit; False when there was nothing to undo."""
        changes = self.history.undo(self.project)
        if changes:
            self._apply(changes)
        return bool(changes)

    def redo(self) -> bool:
        changes = self.history.redo(self.project)
        if changes:
            self._apply(changes)
        return bool(changes)

    @property
    def can_undo(self) -> bool:
        return self.history.can_undo

    @property
    def can_redo(self) -> bool:
        return self.history.can_redo

    # ------------------------------------------------------------------ category edits
    # (undoable; each one is one undo step and one save)

    def categories_in_order(self) -> list[Category]:
        """The categories in file order: the n-th of these is what number key n gives
        (:meth:`~.model.Project.category_by_number`; counts: ``project.category_counts()``)."""
        return list(self.project.categories.values())

    def rename_category(self, category_id: int, new_name: str) -> Category:
        """Rename a category. Refuses (:class:`~.labels.CategoryError`) an empty name or one
        another category has (case-insensitive): combining two is :meth:`merge_categories`."""
        current = self.project.category(category_id)
        name = clean_name(new_name)
        for other in self.project.categories.values():
            if other.id != category_id and name_key(other.name) == name_key(name):
                raise CategoryError(
                    f"a category named {other.name!r} already exists; "
                    f"merge {current.name!r} into it instead"
                )
        if name == current.name:
            return current  # nothing to undo
        renamed = replace(current, name=name)
        self.execute(ReplaceCategory(renamed, f"rename category {current.name!r} to {name!r}"))
        return renamed

    def recolor_category(self, category_id: int, color: tuple[int, int, int]) -> Category:
        """Give a category a new display colour (``(r, g, b)``, each 0-255)."""
        current = self.project.category(category_id)
        rgb = check_color(color)
        if rgb == current.color:
            return current
        recolored = replace(current, color=rgb)
        self.execute(ReplaceCategory(recolored, f"recolour category {current.name!r}"))
        return recolored

    def merge_categories(self, source_id: int, target_id: int) -> int:
        """Move every annotation of ``source_id`` to ``target_id`` and remove ``source_id``;
        one undo step restores both. Returns how many annotations moved."""
        source = self.project.category(source_id)
        target = self.project.category(target_id)
        if source_id == target_id:
            raise CategoryError(f"cannot merge {source.name!r} into itself")
        moved = self.project.category_annotation_ids(source_id)
        commands: list[Command] = [Relabel(i, category_id=target_id) for i in moved]
        commands.append(RemoveCategory(source_id))
        self.execute(Batch(commands, f"merge category {source.name!r} into {target.name!r}"))
        return len(moved)

    def delete_category(
        self,
        category_id: int,
        *,
        annotations: Literal["delete", "move"] | None = None,
        move_to: int | None = None,
    ) -> int:
        """Remove a category; what happens to its annotations must be said when it has any:
        ``annotations="delete"`` deletes them, ``"move"`` relabels them to ``move_to``. One undo
        step restores the category (id, name, colour, place in the order) and its annotations
        (records and positions). Returns how many annotations were deleted or moved."""
        category = self.project.category(category_id)
        used = self.project.category_annotation_ids(category_id)
        commands: list[Command] = []
        if annotations == "move":
            if move_to is None:
                raise CategoryError("say which category the annotations move to")
            if move_to == category_id:
                raise CategoryError(f"cannot move the annotations of {category.name!r} to itself")
            target = self.project.category(move_to)
            commands = [Relabel(i, category_id=move_to) for i in used]
            text = f"delete category {category.name!r} (annotations to {target.name!r})"
        elif annotations == "delete":
            commands = [DeleteAnnotations(used)]
            text = f"delete category {category.name!r} and {len(used)} annotations"
        elif annotations is None:
            if used:
                raise CategoryError(
                    f"category {category.name!r} still has {len(used)} annotations; "
                    "say whether to delete them or move them to another category"
                )
            text = f"delete category {category.name!r}"
        else:
            raise ValueError(f'annotations must be "delete" or "move", got {annotations!r}')
        commands.append(RemoveCategory(category_id))
        self.execute(Batch(commands, text))
        return len(used)

    def set_iscrowd(self, annotation_id: int, iscrowd: int) -> Annotation:
        """Mark an annotation as a crowd region (1 or True) or one object (0 or False)."""
        if iscrowd not in (0, 1):
            raise ValueError(f"iscrowd must be 0 or 1, got {iscrowd!r}")
        value = int(iscrowd)
        current = self.project.annotation(annotation_id)
        if current.iscrowd == value:
            return current
        command = SetIscrowd(annotation_id, iscrowd=value)
        self.execute(command)
        return command.result

    # ------------------------------------------------------------------ saving

    @property
    def dirty(self) -> bool:
        """Some change is not on disk yet (pending in the saver, or its save failed)."""
        saved = self._saved_generation
        if self.saver is not None:
            saved = max(saved, self.saver.saved_generation)
        return self._generation > saved

    @contextlib.contextmanager
    def transaction(self) -> Iterator[ProjectStore]:
        """Group the edits of one user action into one save (transactions nest)."""
        self._transaction_depth += 1
        start = self._generation
        try:
            yield self
        finally:
            self._transaction_depth -= 1
            if self._transaction_depth == 0 and self._generation != start and self.autosave:
                self._autosave()

    def use_background_saver(self, on_result: Callable[[SaveResult], None] | None = None) -> None:
        """From now on autosaves are written by a :class:`~.saver.BackgroundSaver` thread;
        ``on_result`` gets every :class:`~.saver.SaveResult` (on that thread)."""
        if self.saver is None:
            self.saver = BackgroundSaver(on_result)
        else:
            self.saver.on_result = on_result

    def flush(self, timeout: float | None = None) -> SaveResult | None:
        """Wait for the background saver (no-op without one); its last result."""
        return self.saver.flush(timeout) if self.saver is not None else None

    def close(self, timeout: float | None = 30.0) -> SaveResult | None:
        """Write what is pending and stop the background saver (the store stays usable, saving
        synchronously)."""
        if self.saver is None:
            return None
        saver, self.saver = self.saver, None
        result = saver.close(timeout)
        self._saved_generation = max(self._saved_generation, saver.saved_generation)
        return result

    def save(self) -> None:
        """Write the project now (atomically, keeping the previous file as ``.bak``).

        With a background saver this hands it the current state and waits for it (so a save on
        this thread can never be overtaken by an older snapshot). Raises
        :class:`~.atomic.ProjectSaveError`; the file on disk is then the previous version.
        """
        generation = self._generation
        if self.saver is not None:
            self.saver.submit(Snapshot(generation, self.project.snapshot(), self.path))
            result = self.saver.flush()
            if result is not None and result.error is not None:
                raise result.error
        else:
            data, _report = project_to_coco(self.project, root=self.path.parent)
            write_atomic(self.path, dumps(data))
        self._saved_generation = max(self._saved_generation, generation)
        self._notify([Change("saved")])

    def save_as(self, path: str | os.PathLike[str]) -> None:
        """Write to ``path`` (image paths rebased to its folder) and continue there."""
        target = Path(path)
        self.flush()
        data, _report = project_to_coco(self.project, root=target.parent)
        write_atomic(target, dumps(data))
        for image in self.images:
            file_name = rebase(image.file_name, self.project.root, target.parent)
            self.project.images[image.id] = replace(image, file_name=file_name)
        self.project.root = target.parent
        self.project.reindex()
        self.path = target
        self._saved_generation = self._generation
        self._notify([Change("saved")])

    def retarget(self, path: str | os.PathLike[str]) -> None:
        """Save to ``path`` from now on (same folder, so image paths stay valid). Nothing is
        written until the first edit: looking at a foreign COCO file creates no file, and the
        original, untouched, still holds everything. Used to keep a foreign COCO file untouched
        while working on a project of our own beside it."""
        target = Path(path)
        if os.path.abspath(target.parent) != os.path.abspath(self.path.parent):
            raise ValueError("retarget keeps the folder; use save_as to move the project")
        self.flush()
        self.path = target

    def _apply(self, changes: list[Change]) -> None:
        self._generation += 1
        self._notify(changes)
        if self.autosave and self._transaction_depth == 0:
            self._autosave()

    def _autosave(self) -> None:
        if self.saver is not None:
            snapshot = Snapshot(self._generation, self.project.snapshot(), self.path)
            self.saver.submit(snapshot)
        else:
            self.save()

    def _notify(self, changes: list[Change]) -> None:
        for change in changes:
            for listener in list(self.listeners):
                try:
                    listener(change)
                except Exception:
                    log.exception("a project listener failed on %s", change)
