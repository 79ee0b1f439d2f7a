"""``sam2-annotator bench``: the paper's latency and memory measurements, as JSON and plots."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sam2_annotator.commands._common import add_model_arguments
from sam2_annotator.commands.bench_gui import add_gui_arguments
from sam2_annotator.commands.bench_video import add_video_arguments
from sam2_annotator.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from sam2_annotator.bench.latency import BenchImage
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.models.export_reference import TorchSource

log = logging.getLogger(__name__)

#: The stand-in image when no ``--images`` are given (width, height).
SYNTHETIC_SIZE = (1200, 800)


def point_counts(text: str) -> tuple[int, ...]:
    """``"1,2,4,8"`` -> ``(1, 2, 4, 8)`` (an argparse type: errors become usage errors)."""
    try:
        counts = tuple(int(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a comma-separated list of integers"
        ) from None
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"{text!r}: point counts must be positive integers")
    return tuple(dict.fromkeys(counts))


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "bench",
        help="measure encoder/decoder latency and memory (JSON + plots)",
        description="Latency protocol of 'Deploying Vision Foundation AI Models on the Edge' "
        "(section 4): first call vs steady state, identical input then varying images and "
        "numbers of points, engine vs bare session.run, PyTorch eager when installed, peak RSS. "
        "Writes results.json, results.md and three PNG plots to --out. With --video SOURCE: "
        "the cost of tracking a frame instead, split by graph, next to PyTorch's "
        "SAM2VideoPredictor.",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    parser.add_argument(
        "--images",
        type=Path,
        nargs="+",
        metavar="PATH",
        help="image files or folders (default: one synthetic "
        f"{SYNTHETIC_SIZE[0]}x{SYNTHETIC_SIZE[1]} image); the first one is used "
        "for the identical-input runs",
    )
    parser.add_argument(
        "--runs",
        type=int,
        default=1000,
        help="identical-input decoder runs, and encoder runs unless "
        "--encoder-runs is given (default: 1000)",
    )
    parser.add_argument("--encoder-runs", type=int, help="identical-input encoder runs")
    parser.add_argument(
        "--image-runs",
        type=int,
        default=3,
        help="encoder runs per image in the varying-images pass (default: 3)",
    )
    parser.add_argument(
        "--points",
        type=point_counts,
        default=(1, 2, 4, 8),
        metavar="N,N,...",
        help="numbers of points for the varying-points pass (default: 1,2,4,8)",
    )
    parser.add_argument(
        "--point-runs", type=int, help="decoder runs per number of points (default: min(runs, 100))"
    )
    parser.add_argument(
        "--torch-runs",
        type=int,
        help="PyTorch runs per model part (default: min(encoder runs, 20))",
    )
    parser.add_argument(
        "--no-torch",
        action="store_true",
        help="skip the PyTorch eager column even when torch and sam2 are installed",
    )
    parser.add_argument(
        "--checkpoint",
        type=Path,
        metavar="PT",
        help="the .pt checkpoint the model was exported from (PyTorch column of "
        "models exported from trained weights; also for --video)",
    )
    parser.add_argument(
        "--compare",
        metavar="DIR",
        help="another model folder (e.g. the int8 variant): its bare encoder and decoder runs "
        "are alternated with ours on the same inputs and reported as a speed ratio",
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the random prompts")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_model_arguments(parser)
    add_video_arguments(parser)
    add_gui_arguments(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.gui is not None:
        from sam2_annotator.commands.bench_gui import run_gui

        return run_gui(args)
    if args.video is not None:
        from sam2_annotator.commands.bench_video import run_video

        return run_video(args)
    from tqdm import tqdm

    from sam2_annotator.bench import report
    from sam2_annotator.bench.latency import BenchPlan, run_benchmark
    from sam2_annotator.commands._common import model_files_from_args, resolve_model_path
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.engine.providers import SessionConfig, parse_provider_list

    plan = BenchPlan(
        runs=args.runs,
        encoder_runs=args.encoder_runs,
        image_runs=args.image_runs,
        point_runs=args.point_runs,
        points=args.points,
        torch_runs=args.torch_runs,
        seed=args.seed,
    )
    config = SessionConfig(
        providers=tuple(parse_provider_list(args.providers)), threads=args.threads
    )
    files = model_files_from_args(args)
    images = load_bench_images(args.images)
    compare = ModelFiles.from_folder(resolve_model_path(args.compare)) if args.compare else None
    torch_source, skipped = _torch_source(files, args)
    out_dir = output_folder(args.out)
    if files.is_random_init:
        print("note: random-init weights: timings are valid, masks are meaningless")
    with tqdm(
        total=plan.steps(len(images), torch_source is not None, compare is not None),
        unit="run",
        disable=args.no_progress,
        desc="bench",
    ) as bar:

        def progress(phase: str) -> None:
            bar.set_description(phase, refresh=False)
            bar.update()

        results = run_benchmark(
            files,
            config,
            images,
            plan,
            torch_source=torch_source,
            torch_skipped_reason=skipped,
            compare=compare,
            progress=progress,
        )
    report.write_json(out_dir / report.BENCH_JSON, results)
    (out_dir / report.BENCH_MARKDOWN).write_text(report.bench_markdown(results), encoding="utf-8")
    report.bench_plots(results, out_dir)
    _print_summary(results, out_dir)
    return 0


def output_folder(path: Path) -> Path:
    """Create ``path`` (and parents); a UserError naming it when that is impossible."""
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UserError(f"cannot create the output folder {path}: {exc.strerror or exc}") from exc
    return path


def load_bench_images(paths: list[Path] | None) -> list[BenchImage]:
    """The images named on the command line (folders expanded), or one synthetic image."""
    import numpy as np

    from sam2_annotator.bench.latency import BenchImage
    from sam2_annotator.engine.image_io import list_images, load_image

    if not paths:
        width, height = SYNTHETIC_SIZE
        rows, cols = np.mgrid[0:height, 0:width].astype(np.float32)
        rng = np.random.default_rng(0)
        noise = rng.integers(0, 32, (height, width, 3))
        base = np.stack([cols / width, rows / height, (cols + rows) / (width + height)], axis=-1)
        pixels = np.clip(base * 223 + noise, 0, 255).astype(np.uint8)
        return [BenchImage(f"synthetic-{width}x{height}", pixels)]
    files: list[Path] = []
    for path in paths:
        found = list_images(path) if path.is_dir() else [path]
        if not found:
            raise UserError(f"no images in {path}")
        files.extend(found)
    return [BenchImage(p.stem, load_image(p)) for p in files]


def _torch_source(files: ModelFiles, args: argparse.Namespace) -> tuple[TorchSource | None, str]:
    """The PyTorch weights for the comparison column, or None and why not."""
    from sam2_annotator.models import export_reference as torch_ref

    if args.no_torch:
        return None, "disabled with --no-torch"
    reason = torch_ref.unavailable_reason()
    if reason is not None:
        log.info("no PyTorch column: %s", reason)
        return None, reason
    try:
        return torch_ref.source_for(files, args.checkpoint), ""
    except UserError as exc:
        log.warning("no PyTorch column: %s", exc)
        return None, str(exc)


def _print_summary(results: dict[str, Any], out_dir: Path) -> None:
    def fmt(value: float | None, pattern: str = "{:.1f}") -> str:
        return "n/a" if value is None else pattern.format(value)

    print(
        f"model    {results['model']['name']} on {results['provider']}, "
        f"onnxruntime {results['onnxruntime']}"
    )
    for name in ("encoder", "decoder"):
        part = results[name]
        torch = (
            f", PyTorch p50 {fmt(part['torch_p50_ms'])} ms "
            f"(x{fmt(part['torch_over_ort'], '{:.2f}')} of ORT)"
            if part["torch_p50_ms"] is not None
            else ""
        )
        print(
            f"{name:8} first {fmt(part['first_ms'], '{:.0f}')} ms, p50 {fmt(part['p50_ms'])} ms, "
            f"p95 {fmt(part['p95_ms'])} ms, bare run p50 {fmt(part['raw_p50_ms'])} ms "
            f"(x{fmt(part['overhead_ratio'], '{:.3f}')}){torch}"
        )
    by_points = ", ".join(f"{n}: {v:.1f}" for n, v in results["decoder"]["by_points"].items())
    print(f"points   decoder p50 ms by #points {by_points}")
    print(
        f"memory   peak RSS {fmt(results['peak_rss_mb'], '{:.0f}')} MiB, one embedding "
        f"{fmt(results['memory'].get('embedding_mb'), '{:.1f}')} MiB"
    )
    compare = results.get("compare")
    if compare:
        speedups = {
            part: fmt(compare[part]["speedup"], "{:.2f}") for part in ("encoder", "decoder")
        }
        print(
            f"compare  {compare['model']}: bare encoder x{speedups['encoder']}, bare decoder "
            f"x{speedups['decoder']} (ours / theirs)"
        )
    print(f"results  {out_dir}")
