"""What the window has open: a list of images and the project file they are annotated in.

``sam2-annotator PATH`` and File > Open accept three kinds of paths (:data:`OPENERS`):

* a folder: its images, annotated in ``annotations.json`` inside it (loaded if it exists, created
  on the first save);
* a COCO project file (``.json``): its images (plus none other);
* one or more images: those images, annotated in ``annotations.json`` next to the first.

The project file is only created when the first annotation is saved, so opening a folder to look
at it writes nothing. No Qt here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from sam2_annotator.annotations import Annotation, Category, ImageRecord, ProjectStore
from sam2_annotator.engine.image_io import IMAGE_EXTENSIONS, list_images, natural_key
from sam2_annotator.errors import ProjectError, UserError

log = logging.getLogger(__name__)

#: The project file a folder (or a set of images) is annotated in.
PROJECT_FILE_NAME = "annotations.json"


@dataclass
class Workspace:
    """The open images (absolute paths, display order) and their project.

    ``store`` is ``None`` until the project file exists (see :meth:`ensure_store`).
    """

    project_path: Path
    images: list[Path]
    store: ProjectStore | None = None
    #: The path the user opened (what "recent projects" remembers).
    opened: Path | None = None
    listeners: list[Callable] = field(default_factory=list)

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: str | Path | Sequence[str | Path]) -> Workspace:
        """Open a folder, a project file, an image, or a list of images."""
        if not isinstance(path, (str, Path)):
            paths = [Path(p) for p in path]
            if len(paths) == 1:
                return cls.open(paths[0])
            return cls.open_images(paths)
        target = Path(path).expanduser()
        for accepts, opener in OPENERS:
            if accepts(target):
                return opener(target)
        if not target.exists():
            raise UserError(f"not found: {target}")
        raise UserError(
            f"cannot open {target}: expected an image, a folder of images or a COCO .json file"
        )

    @classmethod
    def open_folder(cls, folder: Path) -> Workspace:
        folder = folder.resolve()
        project_path = folder / PROJECT_FILE_NAME
        store = _open_store(project_path) if project_path.is_file() else None
        images = list_images(folder)
        if store is not None:
            images = _merge(images, [store.image_path(r) for r in store.images])
        if not images:
            raise UserError(f"no images in {folder}")
        return cls(project_path, [p.resolve() for p in images], store, opened=folder)

    @classmethod
    def open_project(cls, project_path: Path) -> Workspace:
        project_path = project_path.resolve()
        store = _open_store(project_path)
        images = [store.image_path(record).resolve() for record in store.images]
        if not images:
            raise UserError(f"{project_path} lists no images")
        return cls(project_path, images, store, opened=project_path)

    @classmethod
    def open_images(cls, paths: Sequence[Path]) -> Workspace:
        images = [p.resolve() for p in paths]
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise UserError(f"image not found: {missing[0]}")
        project_path = images[0].parent / PROJECT_FILE_NAME
        store = _open_store(project_path) if project_path.is_file() else None
        return cls(project_path, images, store, opened=images[0] if len(images) == 1 else None)

    # ------------------------------------------------------------------ the project

    def ensure_store(self) -> ProjectStore:
        """The project store, creating the project file on first use."""
        if self.store is None:
            if self.project_path.exists():
                self.store = _open_store(self.project_path)
            else:
                self.store = ProjectStore.create(self.project_path)
                log.info("created project %s", self.project_path)
            for listener in self.listeners:
                self.store.listeners.append(listener)
        return self.store

    def add_listener(self, listener: Callable) -> None:
        """Call ``listener(change)`` after every change to the project (also once it exists)."""
        self.listeners.append(listener)
        if self.store is not None:
            self.store.listeners.append(listener)

    def record(self, image: Path | str) -> ImageRecord | None:
        if self.store is None:
            return None
        return self.store.project.image_by_path(image)

    def image_id(self, image: Path | str, width: int, height: int) -> int:
        """The image's id in the project, adding it (and creating the project) if needed."""
        store = self.ensure_store()
        record = store.project.image_by_path(image)
        if record is None:
            record = store.add_image(image, width=width, height=height)
        return record.id

    def annotations(self, image: Path | str) -> list[Annotation]:
        record = self.record(image)
        if record is None or self.store is None:
            return []
        return self.store.annotations_for(record.id)

    def annotation_count(self, image: Path | str) -> int:
        return len(self.annotations(image))

    @property
    def categories(self) -> list[Category]:
        return self.store.categories if self.store is not None else []

    def category_named(self, name: str) -> Category | None:
        wanted = name.strip().casefold()
        for category in self.categories:
            if category.name.casefold() == wanted:
                return category
        return None

    def category_for(self, name: str) -> Category:
        """The category called ``name`` (case-insensitive), created if new."""
        existing = self.category_named(name)
        if existing is not None:
            return existing
        return self.ensure_store().add_category(name.strip())


def _open_store(path: Path) -> ProjectStore:
    try:
        return ProjectStore.open(path)
    except ProjectError:
        raise
    except (OSError, ValueError) as exc:
        raise ProjectError(f"cannot open the project {path}: {exc}") from exc


def _merge(first: list[Path], second: list[Path]) -> list[Path]:
    seen = {p.resolve() for p in first}
    extra = [p for p in second if p.resolve() not in seen]
    return first + sorted(extra, key=lambda p: natural_key(p.name))


def _is_image(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS


def _is_project(path: Path) -> bool:
    return path.is_file() and path.suffix.lower() == ".json"


#: How each kind of path is opened, tried in order.
OPENERS: tuple[tuple[Callable[[Path], bool], Callable[[Path], Workspace]], ...] = (
    (Path.is_dir, Workspace.open_folder),
    (_is_project, Workspace.open_project),
    (_is_image, lambda p: Workspace.open_images([p])),
)
