"""Arguments and helpers shared by subcommands."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from sam2_annotator.errors import UserError

if TYPE_CHECKING:  # pragma: no cover
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.engine.predictor import Sam2Engine


def add_model_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument(
        "--model",
        metavar="DIR",
        help="folder with one *encoder*.onnx and one *decoder*.onnx, or the name of an installed "
        "model (default: $SAM2_ANNOTATOR_MODEL, else a bundled, else an installed model)",
    )
    group.add_argument("--encoder", metavar="FILE", help="encoder ONNX file (with --decoder)")
    group.add_argument("--decoder", metavar="FILE", help="decoder ONNX file (with --encoder)")
    group.add_argument(
        "--providers",
        default="auto",
        help="execution providers in order of preference, e.g. cuda,cpu (default: auto)",
    )
    group.add_argument(
        "--threads", type=int, default=0, help="CPU threads for ONNX Runtime (0 = automatic)"
    )


def model_files_from_args(args: argparse.Namespace) -> ModelFiles:
    from sam2_annotator.engine.model_files import ModelFiles

    if args.encoder or args.decoder:
        if not (args.encoder and args.decoder):
            raise UserError("--encoder and --decoder go together")
        return ModelFiles.from_paths(args.encoder, args.decoder)
    from sam2_annotator.models.locate import default_model

    if args.model:
        return ModelFiles.from_folder(resolve_model_path(args.model))
    model = default_model()
    if model is None:
        raise UserError(
            "no model given and none installed: pass --model DIR (a folder with the encoder and "
            "decoder ONNX files), or run `sam2-annotator models download sam2.1_hiera_tiny`"
        )
    return ModelFiles.from_folder(model)


def resolve_model_path(model: str) -> Path:
    """A folder path, or the name of a model installed by ``models download``."""
    path = Path(model).expanduser()
    if path.is_dir() or os.sep in model or "/" in model:
        return path
    from sam2_annotator.models.catalog import models_root

    installed = models_root() / model
    return installed if installed.is_dir() else path


def engine_from_args(args: argparse.Namespace) -> Sam2Engine:
    from sam2_annotator.engine.predictor import Sam2Engine
    from sam2_annotator.engine.providers import SessionConfig, parse_provider_list

    config = SessionConfig(
        providers=tuple(parse_provider_list(args.providers)), threads=args.threads
    )
    return Sam2Engine(model_files_from_args(args), config)
