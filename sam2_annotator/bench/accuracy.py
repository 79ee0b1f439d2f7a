"""The paper's accuracy protocol: click points inside ground-truth masks, compare the masks.

For every usable annotation of a COCO instances file and every requested number of points, the
points are drawn uniformly (without replacement) from the annotation's mask pixels with a
generator seeded by ``(seed, annotation id, points)``, so a result does not depend on which other
annotations were evaluated. Every model segments the same prompt; we record the IoU of each
predicted mask with the ground truth and, with two models, the IoU between their masks
(fidelity of one to the other).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from sam2_annotator.annotations.masks import iou
from sam2_annotator.annotations.model import Annotation, ImageRecord, Project
from sam2_annotator.bench.stats import distribution, latency_stats
from sam2_annotator.engine import postprocess
from sam2_annotator.engine.image_io import load_image
from sam2_annotator.engine.predictor import (
    Sam2Engine,
    default_multimask,
    select_candidate,
)
from sam2_annotator.engine.types import Embedding, Prompt
from sam2_annotator.errors import ImageLoadError, UserError
from sam2_annotator.models.export_reference import TorchModel, TorchPredictor

log = logging.getLogger(__name__)

Progress = Callable[[str], None]
SUMMARY_SCHEMA = 1


# --------------------------------------------------------------------------- models


class Segmenter(Protocol):
    """A model under evaluation: embed an image once, then turn prompts into masks."""

    label: str

    def embed(self, image: np.ndarray) -> Any: ...

    def predict(self, state: Any, prompt: Prompt) -> np.ndarray: ...

    def describe(self) -> dict[str, Any]: ...


class OnnxSegmenter:
    """Our engine, exactly as the app uses it."""

    def __init__(self, engine: Sam2Engine, label: str) -> None:
        self.engine = engine
        self.label = label

    def embed(self, image: np.ndarray) -> Embedding:
        return self.engine.encode(image)

    def predict(self, state: Embedding, prompt: Prompt) -> np.ndarray:
        return self.engine.decode(state, prompt).mask

    def describe(self) -> dict[str, Any]:
        manifest = self.engine.files.manifest
        return {
            "runtime": "onnxruntime",
            "name": self.engine.display_name,
            "encoder": str(self.engine.files.encoder),
            "precision": manifest.precision if manifest else None,
            "weights": manifest.weights if manifest else "unknown",
            "provider": self.engine.provider,
        }


class TorchSegmenter:
    """PyTorch eager modules with the engine's pre- and post-processing around them.

    Pre/post-processing match the reference ``SAM2ImagePredictor`` (the parity tests check
    that), so differences come from the runtime alone.
    """

    def __init__(self, model: TorchModel, label: str = "pytorch") -> None:
        self.model = model
        self.label = label
        self.predictor = TorchPredictor(model)

    def embed(self, image: np.ndarray) -> Embedding:
        return self.predictor.embed(image)

    def predict(self, state: Embedding, prompt: Prompt) -> np.ndarray:
        output = self.predictor.decode_raw(state, prompt)
        chosen = select_candidate(output, default_multimask(prompt), None)
        return postprocess.logits_to_mask(output.low_res_logits[chosen], state.orig_hw)

    def describe(self) -> dict[str, Any]:
        return {
            "runtime": "pytorch eager",
            "version": self.model.version,
            "threads": self.model.threads,
        }


# --------------------------------------------------------------------------- protocol


@dataclass(frozen=True)
class EvalPlan:
    points: tuple[int, ...] = (1, 3, 5)
    seed: int = 0
    #: Evaluate at most this many annotations (in image order); None = all.
    max_annotations: int | None = None

    def __post_init__(self) -> None:
        if not self.points or min(self.points) < 1:
            raise UserError(f"point counts must be positive integers, got {list(self.points)}")
        if self.max_annotations is not None and self.max_annotations < 1:
            raise UserError(f"--max-annotations must be at least 1, got {self.max_annotations}")


def sample_points(mask: np.ndarray, count: int, rng: np.random.Generator) -> np.ndarray:
    """``count`` distinct pixels of ``mask`` as ``(x, y)`` float32, uniformly at random.

    Coordinates are pixel indices (column, row). Fewer pixels than ``count`` -> repeats allowed.
    """
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        raise ValueError("cannot sample points from an empty mask")
    chosen = rng.choice(rows.size, size=count, replace=rows.size < count)
    return np.stack([cols[chosen], rows[chosen]], axis=1).astype(np.float32)


def prompt_for(annotation: Annotation, mask: np.ndarray, count: int, seed: int) -> Prompt:
    rng = np.random.default_rng([seed, annotation.id, count])
    points = sample_points(mask, count, rng)
    return Prompt(points=points, labels=np.ones(count, np.int64))


@dataclass(frozen=True)
class ObjectResult:
    annotation_id: int
    image_id: int
    category: str
    points: int
    iou_vs_gt: dict[str, float]
    iou_between: float | None

    def to_dict(self) -> dict[str, Any]:
        return {
            "annotation_id": self.annotation_id,
            "image_id": self.image_id,
            "category": self.category,
            "points": self.points,
            "iou_vs_gt": {k: round(v, 6) for k, v in self.iou_vs_gt.items()},
            "iou_between": None if self.iou_between is None else round(self.iou_between, 6),
        }


@dataclass
class EvalRun:
    """Everything an evaluation produced; :meth:`summary` is the JSON document."""

    labels: list[str]
    plan: EvalPlan
    objects: list[ObjectResult] = field(default_factory=list)
    skipped: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    embed_ms: dict[str, list[float]] = field(default_factory=dict)
    predict_ms: dict[str, list[float]] = field(default_factory=dict)

    def skip(self, reason: str, count: int = 1) -> None:
        self.skipped[reason] = self.skipped.get(reason, 0) + count

    def iou_values(self, label: str, points: int | None = None) -> list[float]:
        return [o.iou_vs_gt[label] for o in self.objects if points in (None, o.points)]

    def between_values(self, points: int | None = None) -> list[float]:
        return [
            o.iou_between
            for o in self.objects
            if o.iou_between is not None and points in (None, o.points)
        ]

    def summary(self) -> dict[str, Any]:
        def dist(values: list[float]) -> dict[str, Any] | None:
            found = distribution(values)
            return None if found is None else found.to_dict()

        def by_points(values_for: Callable[[int | None], list[float]]) -> dict[str, Any]:
            return {
                "all": dist(values_for(None)),
                "by_points": {str(n): dist(values_for(n)) for n in self.plan.points},
            }

        pair = None
        if len(self.labels) == 2:
            pair = {"models": self.labels, **by_points(self.between_values)}
        return {
            "schema": SUMMARY_SCHEMA,
            "points": list(self.plan.points),
            "seed": self.plan.seed,
            "evaluated_objects": len({o.annotation_id for o in self.objects}),
            "evaluated_prompts": len(self.objects),
            "skipped": dict(self.skipped),
            "problems": list(self.problems),
            "iou_vs_gt": {
                label: by_points(lambda n, label=label: self.iou_values(label, n))
                for label in self.labels
            },
            "iou_between": pair,
            "timing": {
                label: {
                    "embed_p50_ms": _p50(self.embed_ms.get(label, [])),
                    "predict_p50_ms": _p50(self.predict_ms.get(label, [])),
                }
                for label in self.labels
            },
        }


def nothing_evaluated_reason(run: EvalRun, images_dir: Path | None = None) -> str | None:
    """Why ``run`` scored no prompt at all (one line for the user), or None if it scored some.

    An evaluation that scored nothing must not look like a result: the command fails with this.
    """
    if run.objects:
        return None
    if not run.skipped:
        return "nothing was evaluated: the COCO file has no usable annotations"
    counts = ", ".join(f"{reason}: {count}" for reason, count in sorted(run.skipped.items()))
    message = f"nothing was evaluated (annotations skipped — {counts})"
    missing = [p for p in run.problems if p.startswith("image not found: ")]
    if missing:
        message += f"; {len(missing)} image(s) not found, e.g. {missing[0].split(': ', 1)[1]}"
        if images_dir is not None:
            message += f"; is --images {images_dir} the folder the COCO file_name values are "
            message += "relative to?"
    elif run.problems:
        message += f"; first problem: {run.problems[0]}"
    return message


def missing_images_reason(project: Project, images_dir: Path) -> str | None:
    """One line if *no* annotated image exists on disk (checked before any model is loaded)."""
    annotated = sorted({a.image_id for a in project.annotations.values()})
    paths = [project.image_path(image_id) for image_id in annotated]
    if not paths or any(path.is_file() for path in paths):
        return None
    message = (
        f"none of the {len(paths)} annotated images was found under --images {images_dir} "
        f"(e.g. {paths[0]})"
    )
    hint = _folder_holding(project.image(annotated[0]).file_name, images_dir)
    if hint is not None:
        message += f"; {hint} holds it: pass --images {hint}"
    else:
        message += "; --images must be the folder the COCO file_name values are relative to"
    return message


def _folder_holding(file_name: str, images_dir: Path) -> Path | None:
    """A folder next to ``images_dir`` (parent or one child down) where ``file_name`` exists."""
    if Path(file_name).is_absolute():
        return None
    candidates = [images_dir.parent]
    if images_dir.is_dir():
        candidates += sorted(p for p in images_dir.iterdir() if p.is_dir())
    for folder in candidates:
        if (folder / file_name).is_file():
            return folder
    return None


def _p50(values: Sequence[float]) -> float | None:
    return round(latency_stats(values).p50_ms, 3) if values else None


def usable_annotations(
    project: Project, run: EvalRun, limit: int | None
) -> list[tuple[ImageRecord, list[Annotation]]]:
    """Images with their non-crowd, non-empty annotations, in id order, at most ``limit``."""
    chosen: list[tuple[ImageRecord, list[Annotation]]] = []
    remaining = limit
    for image_id in sorted(project.images):
        keep = []
        for annotation in project.annotations_for(image_id):
            if annotation.iscrowd:
                run.skip("crowd")
            elif annotation.area == 0:
                run.skip("empty mask")
            elif remaining is not None and remaining <= len(keep):
                run.skip("over --max-annotations")
            else:
                keep.append(annotation)
        if remaining is not None:
            remaining -= len(keep)
        if keep:
            chosen.append((project.images[image_id], keep))
    return chosen


def evaluate(
    project: Project,
    models: Sequence[Segmenter],
    plan: EvalPlan,
    progress: Progress | None = None,
    on_total: Callable[[int], None] | None = None,
) -> EvalRun:
    """Run the protocol over ``project`` with one or two models (see the module docstring)."""
    if not 1 <= len(models) <= 2:
        raise ValueError(f"evaluate takes one or two models, got {len(models)}")
    labels = [m.label for m in models]
    if len(set(labels)) != len(labels):
        raise ValueError(f"model labels must differ, got {labels}")
    run = EvalRun(labels=labels, plan=plan)
    work = usable_annotations(project, run, plan.max_annotations)
    if on_total is not None:
        on_total(sum(len(anns) for _, anns in work) * len(plan.points))
    tick = progress or (lambda _what: None)
    for record, objects in work:
        pixels = _load(project, record, run)
        if pixels is None:
            run.skip("image unreadable or of the wrong size", len(objects))
            for _ in range(len(objects) * len(plan.points)):
                tick(record.file_name)
            continue
        states = [_timed(run.embed_ms, m.label, m.embed, pixels) for m in models]
        for annotation in objects:
            truth = annotation.mask
            category = _category_name(project, annotation)
            for count in plan.points:
                prompt = prompt_for(annotation, truth, count, plan.seed)
                masks = [
                    _timed(run.predict_ms, m.label, m.predict, s, prompt)
                    for m, s in zip(models, states, strict=True)
                ]
                run.objects.append(
                    ObjectResult(
                        annotation_id=annotation.id,
                        image_id=record.id,
                        category=category,
                        points=count,
                        iou_vs_gt={
                            m.label: iou(mask, truth) for m, mask in zip(models, masks, strict=True)
                        },
                        iou_between=iou(masks[0], masks[1]) if len(masks) == 2 else None,
                    )
                )
                tick(record.file_name)
    return run


def _timed(store: dict[str, list[float]], label: str, fn: Callable[..., Any], *args: Any) -> Any:
    start = time.perf_counter()
    result = fn(*args)
    store.setdefault(label, []).append((time.perf_counter() - start) * 1000.0)
    return result


def _category_name(project: Project, annotation: Annotation) -> str:
    category = project.categories.get(annotation.category_id)
    return category.name if category is not None else str(annotation.category_id)


def _load(project: Project, record: ImageRecord, run: EvalRun) -> np.ndarray | None:
    path = project.image_path(record)
    try:
        pixels = load_image(path)
    except ImageLoadError as exc:
        run.problems.append(str(exc))
        log.warning("%s", exc)
        return None
    if pixels.shape[:2] != record.shape:
        message = (
            f"{path}: the file is {pixels.shape[1]}x{pixels.shape[0]} but the COCO file "
            f"says {record.width}x{record.height}; its masks would not line up"
        )
        run.problems.append(message)
        log.warning("%s", message)
        return None
    return pixels


def read_ground_truth(coco: Path, images_dir: Path) -> Project:
    """A COCO instances file (polygons or RLE, ids from 0) with images under ``images_dir``."""
    from sam2_annotator.annotations.coco_io import read_project

    project, report = read_project(coco, images_dir=images_dir, root=images_dir, check_images=False)
    for issue in report.issues:
        log.info("%s: %s", coco, issue.message)
    if not project.annotations:
        raise UserError(f"{coco} has no annotations to evaluate")
    return project
