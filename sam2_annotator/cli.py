"""The one entry point, ``sam2-annotator``.

Each subcommand lives in :mod:`sam2_annotator.commands` as a module with ``register(subparsers)``;
this file only assembles them. Command modules import their heavy dependencies lazily so that
``--help`` stays fast. Without a subcommand the GUI starts.
"""

from __future__ import annotations

import argparse
import difflib
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from sam2_annotator import __version__
from sam2_annotator.errors import UserError

log = logging.getLogger(__name__)

#: Subcommand modules under ``sam2_annotator.commands``, in the order ``--help`` lists them.
COMMAND_MODULES: tuple[str, ...] = (
    "segment",
    "encode",
    "models",
    "coco",
    "exports",
    "bench",
    "evaluate",
    "track",
)


def build_parser() -> argparse.ArgumentParser:
    return _build()[0]


def _build() -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(
        prog="sam2-annotator",
        description="Segment objects with SAM2 on ONNX Runtime and save COCO annotations.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more logging")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"sam2_annotator.commands.{name}")
        module.register(subparsers)
    return parser, subparsers


def _configure_logging(verbosity: int) -> None:
    level = logging.WARNING if verbosity == 0 else logging.INFO if verbosity == 1 else logging.DEBUG
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")


def _wants_gui(argv: Sequence[str]) -> bool:
    """No subcommand (``sam2-annotator``, ``sam2-annotator photo.jpg --model DIR``) = the GUI."""
    if not argv:
        return True
    first = argv[0]
    if first in ("-h", "--help", "--version") or first.startswith("-v"):
        return False
    return first not in _command_names()


def _command_names() -> set[str]:
    return set(_build()[1].choices)


#: Options that a mistyped word may have meant (``help`` -> ``--help``).
_TOP_LEVEL_OPTIONS = ("--help", "--version", "--self-test")


def _looks_like_path(word: str) -> bool:
    """``photos/``, ``./x``, ``~/x``, ``a.jpg``: meant as a path, not as a command."""
    separators = [os.sep, "/"] + ([os.altsep] if os.altsep else [])
    return any(sep in word for sep in separators) or word.startswith("~") or "." in word


def _exists(word: str) -> bool:
    try:
        return Path(word).expanduser().exists()
    except (OSError, ValueError):  # a name too long for the file system, a NUL byte
        return False


def unknown_first_argument(argv: Sequence[str]) -> str | None:
    """The one-line error for a first argument that is neither a command, an option nor an
    existing path (``sam2-annotator segmnet``), or ``None`` when the GUI may start with it.

    Existing files and folders, including names without an extension, still open the GUI.
    """
    if not argv:
        return None
    first = argv[0]
    if first.startswith("-") or _exists(first):
        return None
    commands = _command_names()
    if first in commands:
        return None
    if _looks_like_path(first):
        return f"no such file or folder: '{first}'"
    close = difflib.get_close_matches(first, [*sorted(commands), *_TOP_LEVEL_OPTIONS], n=1)
    hint = f" \N{EM DASH} did you mean '{close[0]}'?" if close else "."
    return f"unknown command '{first}'{hint} To open files, give their path"


def _print_error_line(message: str) -> None:
    """Print to stderr, degrading the em dash where the console encoding lacks it."""
    try:
        print(message, file=sys.stderr)
    except UnicodeEncodeError:
        print(message.replace("\N{EM DASH}", "-"), file=sys.stderr)


def _self_test(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="sam2-annotator --self-test")
    parser.add_argument("--self-test", action="store_true", required=True)
    parser.add_argument("--model", type=Path, help="model folder (default: bundled/installed)")
    parser.add_argument(
        "--no-gui", action="store_true", help="skip the Qt and desktop-library checks"
    )
    args = parser.parse_args(argv)
    from sam2_annotator.selftest import run_self_test

    gui_check = desktop_check = None
    if not args.no_gui:
        from sam2_annotator.gui.selfcheck import offscreen_check
        from sam2_annotator.platform_check import self_test_line

        gui_check = offscreen_check
        desktop_check = self_test_line
    return run_self_test(args.model, gui_check, desktop_check=desktop_check)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--self-test" in argv:
        return _self_test(argv)
    if _wants_gui(argv):
        problem = unknown_first_argument(argv)
        if problem is not None:
            _print_error_line(problem)
            return 2
        from sam2_annotator.platform_check import gui_preflight

        problem = gui_preflight()  # missing X11 libraries: one line, not Qt's core dump
        if problem is not None:
            _print_error_line(problem)
            return 1
        from sam2_annotator.gui.app import main as gui_main

        return gui_main(argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    _configure_logging(args.verbose)
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return int(args.func(args) or 0)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
