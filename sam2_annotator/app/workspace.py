"""What the window has open: a list of images and the project file they are annotated in.

``sam2-annotator PATH`` and File > Open accept three kinds of paths (:data:`OPENERS`):

* a folder: its images, annotated in ``annotations.json`` inside it (loaded if it exists, created
  on the first save);
* a COCO project file (``.json``): its images (plus none other);
* one or more images: those images, annotated in ``annotations.json`` next to the first.

The project file is only created when the first annotation is saved, so opening a folder to look
at it writes nothing.

A COCO file another tool wrote (no ``sam2_annotator`` key: :attr:`ImportReport.foreign`) is never
written to: the work goes to a project file of our own beside it, ``NAME.sam2.json``
(:func:`sidecar_for`). Opening the original again continues that project (``resume=True``) or
starts again from the original (``resume=False``; the old project becomes its ``.bak`` on the first
save). No Qt here.
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
#: Suffix of the project file kept beside a COCO file that another tool wrote.
SIDECAR_SUFFIX = ".sam2.json"


def sidecar_for(path: Path) -> Path:
    """Our project file beside the foreign COCO file ``path`` (train.json -> train.sam2.json)."""
    if path.name.endswith(SIDECAR_SUFFIX):
        return path
    return path.with_name(path.stem + SIDECAR_SUFFIX)


def resume_candidate(path: str | Path) -> Path | None:
    """The project that opening ``path`` could continue: the sidecar of the COCO file ``path``
    (or of a folder's ``annotations.json``) when it exists, else ``None``. Reads no JSON."""
    target = Path(path).expanduser()
    if target.is_dir():
        target = target / PROJECT_FILE_NAME
    if not _is_project(target) or target.name.endswith(SIDECAR_SUFFIX):
        return None
    sidecar = sidecar_for(target)
    return sidecar if sidecar.is_file() else None


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
    #: The foreign COCO file this project was imported from (never written), if any.
    source: Path | None = None
    #: Where background-save results go (see :meth:`use_background_saver`); ``None``: saves
    #: run synchronously.
    on_saved: Callable | None = None

    # ------------------------------------------------------------------ opening

    @classmethod
    def open(cls, path: str | Path | Sequence[str | Path], *, resume: bool = True) -> Workspace:
        """Open a folder, a project file, an image, or a list of images (``resume``: see the
        module docstring)."""
        if not isinstance(path, (str, Path)):
            paths = [Path(p) for p in path]
            if len(paths) == 1:
                return cls.open(paths[0], resume=resume)
            return cls.open_images(paths)
        target = Path(path).expanduser()
        for accepts, opener in OPENERS:
            if accepts(target):
                return opener(target, resume)
        if not target.exists():
            raise UserError(f"not found: {target}")
        raise UserError(
            f"cannot open {target}: expected an image, a folder of images or a COCO .json file"
        )

    @classmethod
    def open_folder(cls, folder: Path, resume: bool = True) -> Workspace:
        folder = folder.resolve()
        project_path, store, source = _project_beside(folder, resume)
        images = list_images(folder)
        if store is not None:
            images = _merge(images, [store.image_path(r) for r in store.images])
        if not images:
            raise UserError(f"no images in {folder}")
        resolved = [p.resolve() for p in images]
        return cls(project_path, resolved, store, opened=folder, source=source)

    @classmethod
    def open_project(cls, project_path: Path, resume: bool = True) -> Workspace:
        project_path = project_path.resolve()
        store, source = _open_store(project_path, resume)
        images = [store.image_path(record).resolve() for record in store.images]
        if not images:
            raise UserError(f"{project_path} lists no images")
        return cls(store.path, images, store, opened=project_path, source=source)

    @classmethod
    def open_images(cls, paths: Sequence[Path], resume: bool = True) -> Workspace:
        images = [p.resolve() for p in paths]
        missing = [p for p in images if not p.is_file()]
        if missing:
            raise UserError(f"image not found: {missing[0]}")
        project_path, store, source = _project_beside(images[0].parent, resume)
        opened = images[0] if len(images) == 1 else None
        return cls(project_path, images, store, opened=opened, source=source)

    # ------------------------------------------------------------------ the project

    def ensure_store(self) -> ProjectStore:
        """The project store; a new project is written with the first edit's save."""
        if self.store is None:
            if self.project_path.exists():
                self.store, _source = _open_store(self.project_path, True)
            else:
                self.store = ProjectStore.create(self.project_path, write=False)
                log.info("new project %s", self.project_path)
            for listener in self.listeners:
                self.store.listeners.append(listener)
            if self.on_saved is not None:
                self.store.use_background_saver(self.on_saved)
        return self.store

    def use_background_saver(self, on_saved: Callable) -> None:
        """Autosaves of this workspace's project run on a saver thread; results go to
        ``on_saved`` (called on that thread)."""
        self.on_saved = on_saved
        if self.store is not None:
            self.store.use_background_saver(on_saved)

    def close(self, timeout: float | None = 30.0) -> None:
        """Write what is pending and stop the saver thread (the store stays usable)."""
        if self.store is not None:
            self.store.close(timeout)

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


def _project_beside(folder: Path, resume: bool) -> tuple[Path, ProjectStore | None, Path | None]:
    """The project a folder (or images in it) is annotated in: its ``annotations.json`` (or that
    file's sidecar when another tool wrote it), opened if it exists."""
    project_path = folder / PROJECT_FILE_NAME
    if not project_path.is_file():
        return project_path, None, None
    store, source = _open_store(project_path, resume)
    return store.path, store, source


def _open_store(path: Path, resume: bool) -> tuple[ProjectStore, Path | None]:
    """The store for the COCO file ``path`` and the foreign file it imports (``None`` if ours).

    A foreign file is never written: its store is bound to :func:`sidecar_for` ``(path)``, read
    from there when it exists and ``resume``, else imported from ``path`` (nothing is written
    until the first edit)."""
    try:
        sidecar = sidecar_for(path)
        if resume and sidecar != path and sidecar.is_file():
            log.info("continuing %s (the project kept for %s)", sidecar.name, path.name)
            return ProjectStore.open(sidecar), path
        store = ProjectStore.open(path)
        if store.report is None or not store.report.foreign or sidecar == path:
            return store, None
        log.info("%s was written by another tool; work is kept in %s", path.name, sidecar.name)
        store.retarget(sidecar)
        return store, path
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
OPENERS: tuple[tuple[Callable[[Path], bool], Callable[[Path, bool], Workspace]], ...] = (
    (Path.is_dir, Workspace.open_folder),
    (_is_project, Workspace.open_project),
    (_is_image, lambda p, resume: Workspace.open_images([p], resume)),
)
