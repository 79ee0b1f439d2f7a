"""``sam2-annotator eval``: mask accuracy against a COCO file, and fidelity between two models."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from sam2_annotator.commands._common import add_model_arguments
from sam2_annotator.commands.bench import output_folder, point_counts

if TYPE_CHECKING:  # pragma: no cover
    from sam2_annotator.bench.accuracy import Segmenter
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.engine.predictor import Sam2Engine
    from sam2_annotator.engine.providers import SessionConfig

log = logging.getLogger(__name__)


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "eval",
        help="mask IoU vs a COCO file's masks, and between two models",
        description="Accuracy protocol of 'Deploying Vision Foundation AI Models on the Edge' "
        "(section 4): for every annotation, points drawn uniformly inside its mask (fixed seed) "
        "prompt the model; the IoU of the predicted mask with the annotation is recorded, and "
        "with --compare or --torch-reference the IoU between the two models' masks. Writes "
        "summary.json, per_object.json, summary.md and iou_boxplot.png to --out.",
    )
    parser.add_argument(
        "--coco",
        type=Path,
        required=True,
        metavar="JSON",
        help="COCO instances file (polygons or RLE)",
    )
    parser.add_argument(
        "--images",
        type=Path,
        required=True,
        metavar="DIR",
        help="folder the COCO file_name values are relative to",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    other = parser.add_mutually_exclusive_group()
    other.add_argument(
        "--compare",
        metavar="DIR",
        help="a second ONNX model folder (e.g. the int8 variant) to compare with",
    )
    other.add_argument(
        "--torch-reference",
        action="store_true",
        help="compare with the same weights run by PyTorch eager (needs torch+sam2)",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PT",
        help="with --torch-reference for models exported from a checkpoint",
    )
    parser.add_argument(
        "--points",
        type=point_counts,
        default=(1, 3, 5),
        metavar="N,N,...",
        help="numbers of positive points per prompt (default: 1,3,5)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the point sampling")
    parser.add_argument(
        "--max-annotations",
        type=int,
        metavar="N",
        help="evaluate only the first N usable annotations",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from sam2_annotator.bench import report
    from sam2_annotator.bench.accuracy import (
        EvalPlan,
        evaluate,
        missing_images_reason,
        nothing_evaluated_reason,
        read_ground_truth,
    )
    from sam2_annotator.bench.environment import machine_info
    from sam2_annotator.commands._common import model_files_from_args
    from sam2_annotator.engine.predictor import Sam2Engine
    from sam2_annotator.engine.providers import SessionConfig, parse_provider_list
    from sam2_annotator.errors import UserError

    plan = EvalPlan(points=args.points, seed=args.seed, max_annotations=args.max_annotations)
    project = read_ground_truth(args.coco, args.images)
    reason = missing_images_reason(project, args.images)  # before loading any model
    if reason is not None:
        raise UserError(reason)
    config = SessionConfig(
        providers=tuple(parse_provider_list(args.providers)), threads=args.threads
    )
    files = model_files_from_args(args)
    engine = Sam2Engine(files, config)
    models = [_onnx_segmenter(engine, None)]
    models += _second_model(args, files, config, models[0].label)
    out_dir = output_folder(args.out)
    if files.is_random_init:
        print(
            "note: random-init weights: IoU vs ground truth is meaningless; IoU between two "
            "models is indicative only"
        )
    with tqdm(unit="prompt", disable=args.no_progress, desc="eval") as bar:

        def set_total(total: int) -> None:
            bar.reset(total=total)

        result = evaluate(
            project, models, plan, progress=lambda _name: bar.update(), on_total=set_total
        )
    reason = nothing_evaluated_reason(result, args.images)
    if reason is not None:  # empty tables with exit 0 would look like a result
        raise UserError(reason)
    summary = {
        **result.summary(),
        "coco": str(args.coco),
        "images": str(args.images),
        "models": {m.label: m.describe() for m in models},
        "machine": machine_info(),
    }
    report.write_json(out_dir / report.EVAL_JSON, summary)
    report.write_json(out_dir / report.EVAL_OBJECTS_JSON, [o.to_dict() for o in result.objects])
    table = report.eval_markdown(summary)
    (out_dir / report.EVAL_MARKDOWN).write_text(table, encoding="utf-8")
    report.eval_plot(result, out_dir)
    print(table, end="")
    print(
        f"{summary['evaluated_objects']} objects, {summary['evaluated_prompts']} prompts; "
        f"skipped {summary['skipped'] or 'none'} -> {out_dir}"
    )
    return 0


def _label(engine: Sam2Engine) -> str:
    manifest = engine.files.manifest
    return f"onnx-{manifest.precision}" if manifest is not None else "onnx"


def _onnx_segmenter(engine: Sam2Engine, taken: str | None) -> Segmenter:
    from sam2_annotator.bench.accuracy import OnnxSegmenter

    label = _label(engine)
    return OnnxSegmenter(engine, f"{label}-compare" if label == taken else label)


def _second_model(
    args: argparse.Namespace, files: ModelFiles, config: SessionConfig, taken: str
) -> list[Segmenter]:
    from sam2_annotator.bench.accuracy import TorchSegmenter
    from sam2_annotator.commands._common import resolve_model_path
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.engine.predictor import Sam2Engine
    from sam2_annotator.errors import UserError
    from sam2_annotator.models import export_reference as torch_ref

    if args.compare:
        other = ModelFiles.from_folder(resolve_model_path(args.compare))
        return [_onnx_segmenter(Sam2Engine(other, config), taken)]
    if args.torch_reference:
        reason = torch_ref.unavailable_reason()
        if reason is not None:
            raise UserError(f"--torch-reference needs torch and sam2: {reason}")
        source = torch_ref.source_for(files, args.checkpoint)
        return [TorchSegmenter(torch_ref.TorchModel.load(source, threads=args.threads))]
    return []
