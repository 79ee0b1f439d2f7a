"""``sam2-annotator models export``: a SAM2 checkpoint (or random weights) -> our ONNX contract."""

from __future__ import annotations

import argparse
from pathlib import Path

PRECISIONS = ("fp32", "int8", "fp16")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "export",
        help="export a SAM2/SAM2.1 checkpoint to ONNX (needs the export extra: torch + sam2)",
        description="Export the encoder and decoder of a SAM2 or SAM2.1 checkpoint to ONNX in "
        "the samexporter layout, with a manifest.json. --random-init builds the real "
        "architecture with random weights instead (for tests and benchmarks: timings are real, "
        "masks are meaningless, and every surface that names the model says so).",
    )
    p.add_argument(
        "--config",
        required=True,
        help="sam2.1_hiera_t|s|b+|l or sam2_hiera_t|s|b+|l (long names such as "
        "sam2.1_hiera_tiny work too)",
    )
    weights = p.add_mutually_exclusive_group(required=True)
    weights.add_argument("--checkpoint", type=Path, help="official .pt checkpoint")
    weights.add_argument(
        "--random-init", action="store_true", help="random weights (never for real annotation)"
    )
    p.add_argument("--seed", type=int, default=0, help="seed for --random-init (default 0)")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default="fp32",
        help="fp32 (default); int8 = dynamic quantisation of MatMul weights (convs "
        "stay fp32); fp16 = half precision for GPU providers",
    )
    p.add_argument(
        "--no-video",
        dest="video",
        action="store_false",
        help="skip the video graphs (memory attention, memory encoder, track decoder in "
        "DIR/video/, for `track` and video annotation); written by default",
    )
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="output folder")
    p.set_defaults(models_func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from sam2_annotator.models.export import export_folder

    manifest, video = export_folder(
        args.config, args.out, args.checkpoint, args.seed, args.precision, args.video
    )
    if video is not None:
        print(f"  video graphs (fp32): {', '.join(sorted(video.files))} in {args.out / 'video'}")
    print(f"exported {manifest.display_name} -> {args.out}")
    for name, entry in sorted(manifest.files.items()):
        print(f"  {name}  {entry.bytes / 1e6:.1f} MB  sha256 {entry.sha256[:16]}…")
    if manifest.is_random_init:
        print("  weights: RANDOM-INIT (for tests and benchmarks only; masks are meaningless)")
    return 0
