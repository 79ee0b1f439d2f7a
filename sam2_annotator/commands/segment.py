"""``sam2-annotator segment``: one image, some clicks, one mask PNG."""

from __future__ import annotations

import argparse
import json
import logging
import time
from pathlib import Path

from sam2_annotator.commands._common import add_model_arguments, engine_from_args
from sam2_annotator.errors import PromptError, UserError

log = logging.getLogger(__name__)


def _numbers(text: str, counts: tuple[int, ...], what: str) -> list[float]:
    parts = [p.strip() for p in text.split(",")]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        message = f"{what} {text!r} must be numbers separated by commas"
        raise argparse.ArgumentTypeError(message) from None
    if len(values) not in counts:
        raise argparse.ArgumentTypeError(
            f"{what} {text!r} needs {' or '.join(map(str, counts))} numbers"
        )
    return values


def point_arg(text: str) -> tuple[float, float, int]:
    values = _numbers(text, (2, 3), "point")
    label = 1 if len(values) == 2 else values[2]
    if label not in (0, 1):
        raise argparse.ArgumentTypeError(
            f"point {text!r}: the label must be 1 (positive) or 0 (negative)"
        )
    return values[0], values[1], int(label)


def box_arg(text: str) -> tuple[float, float, float, float]:
    x0, y0, x1, y1 = _numbers(text, (4,), "box")
    return x0, y0, x1, y1


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment one object in an image and write its mask",
        description="Encode IMAGE, decode the given points/box and write the mask as a PNG "
        "(0/255, original size). One point without a box gives the best of three candidates; "
        "any other prompt gives SAM2's single-mask output.",
    )
    parser.add_argument("image", type=Path, help="the image file")
    parser.add_argument(
        "--point",
        type=point_arg,
        action="append",
        default=[],
        metavar="X,Y[,1|0]",
        help="a point; label 1 = positive (default), 0 = negative",
    )
    parser.add_argument("--box", type=box_arg, metavar="X0,Y0,X1,Y1", help="a box")
    parser.add_argument(
        "--mask-input",
        type=Path,
        metavar="NPY",
        help="previous low-res logits (from --save-logits) to refine",
    )
    parser.add_argument(
        "--candidate", type=int, metavar="I", help="use candidate I instead of the automatic choice"
    )
    parser.add_argument(
        "--multimask",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="force multimask (best of three) or single-mask output",
    )
    parser.add_argument("--out", type=Path, required=True, metavar="PNG", help="mask file to write")
    parser.add_argument(
        "--save-logits",
        type=Path,
        metavar="NPY",
        help="write the chosen low-res logits, for a later --mask-input",
    )
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    add_model_arguments(parser)
    parser.set_defaults(func=run)


def _load_mask_input(path: Path | None):
    if path is None:
        return None
    import numpy as np

    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise PromptError(f"cannot read mask input {path}: {exc}") from exc


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from sam2_annotator.engine.image_io import load_image
    from sam2_annotator.engine.predictor import validate_prompt
    from sam2_annotator.engine.types import Prompt
    from sam2_annotator.masks_io import write_mask_png

    if not args.point and args.box is None:
        raise UserError("give at least one --point X,Y or a --box X0,Y0,X1,Y1")
    image = load_image(args.image)
    prompt = Prompt(
        points=np.array([p[:2] for p in args.point], np.float32).reshape(-1, 2),
        labels=np.array([p[2] for p in args.point], np.int64),
        box=None if args.box is None else np.array(args.box, np.float32),
        mask_input=_load_mask_input(args.mask_input),
    )
    validate_prompt(prompt, image.shape[:2])  # fail before the slow encoder runs
    load_start = time.perf_counter()
    engine = engine_from_args(args)
    load_ms = (time.perf_counter() - load_start) * 1000.0
    embedding = engine.encode(image)
    encode = engine.last_encode_timing
    result = engine.decode(embedding, prompt, multimask=args.multimask, candidate=args.candidate)
    write_mask_png(args.out, result.mask)
    if args.save_logits:
        np.save(args.save_logits, result.chosen_low_res)
    summary = {
        "image": str(args.image),
        "size": [int(image.shape[1]), int(image.shape[0])],
        "model": engine.display_name,
        "random_init": engine.files.is_random_init,
        "contract": engine.contract.name,
        "provider": engine.provider,
        "multimask": result.multimask,
        "candidate": result.candidate,
        "scores": [round(float(s), 6) for s in result.scores],
        "score": round(result.score, 6),
        "mask_pixels": int(result.mask.sum()),
        "load_ms": round(load_ms, 1),
        "encoder_ms": round(encode.preprocess_ms + encode.run_ms, 1),
        "decoder_ms": round(result.total_ms, 1),
        "out": str(args.out),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        _print_summary(summary)
    return 0


def _print_summary(s: dict) -> None:
    scores = ", ".join(f"{i}:{v:.3f}" for i, v in enumerate(s["scores"]))
    print(f"model      {s['model']} ({s['contract']} contract) on {s['provider']}")
    print(
        f"mode       {'multimask' if s['multimask'] else 'single-mask'}; "
        f"chosen candidate {s['candidate']} (score {s['score']:.3f}); scores {scores}"
    )
    print(
        f"timing     encoder {s['encoder_ms']:.0f} ms, decoder {s['decoder_ms']:.1f} ms "
        f"(session load {s['load_ms']:.0f} ms)"
    )
    print(f"mask       {s['mask_pixels']} px -> {s['out']}")
