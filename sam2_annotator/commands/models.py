"""``sam2-annotator models``: list, download, import and verify pre-exported ONNX models.

Sub-subcommands are a table (:data:`SUBCOMMANDS`); each registrar adds its parser and calls
``set_defaults(models_func=handler)``. ``models export`` lives in its own module. Heavy imports stay
inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable

from sam2_annotator.commands import models_export

log = logging.getLogger(__name__)

SubparserRegistrar = Callable[["argparse._SubParsersAction[argparse.ArgumentParser]"], None]


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "models",
        help="list, download, import and verify SAM2 ONNX models",
        description="Manage SAM2/SAM2.1 ONNX models (samexporter layout). Downloads go to "
        "`models path`; set SAM2_ANNOTATOR_MODEL_MIRROR to a base URL holding the same file "
        "names to download from a mirror, and SAM2_ANNOTATOR_DATA_DIR to move the data dir.",
    )
    parser.set_defaults(func=run, models_func=None, models_parser=parser)
    models_sub = parser.add_subparsers(dest="models_command", metavar="ACTION")
    for registrar in SUBCOMMANDS:
        registrar(models_sub)


def run(args: argparse.Namespace) -> int:
    if args.models_func is None:
        args.models_parser.print_help()
        return 0
    return int(args.models_func(args) or 0)


# --------------------------------------------------------------------------- list


def _register_list(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("list", help="the catalog, with what is installed where")
    p.set_defaults(models_func=run_list)


def run_list(args: argparse.Namespace) -> int:
    from sam2_annotator.models.catalog import (
        DECODER_CONTRACTS,
        installed_models,
        load_catalog,
        models_root,
    )
    from sam2_annotator.models.download import DOWNLOADS_DIR, PART_SUFFIX

    root = models_root()
    catalog = load_catalog()
    rows = [("NAME", "SIZE", "FORMAT", "SHA256", "DECODER", "STATUS")]
    for entry in catalog.entries:
        folder = root / entry.name
        partial = any(
            (root / DOWNLOADS_DIR / (f.filename + PART_SUFFIX)).is_file() for f in entry.files
        )
        if folder.is_dir():
            status = f"installed: {folder}"
        elif partial:
            status = "partial download (run `models download` to resume)"
        else:
            status = "-"
        check = "pinned" if entry.verified else "UNVERIFIED"
        size = entry.size_text.replace("size unknown", "?")
        rows.append((entry.name, size, entry.archive, check, entry.contract.short, status))
    known = set(catalog.names)
    others = [p for p in installed_models(root) if p.name not in known]
    rows += [(p.name, "", "local", "", "", f"installed: {p}") for p in others]
    print(_table(rows))
    print(f"\nmodels folder: {root}")
    unverified = [e for e in catalog.entries if not e.verified]
    print(
        "\nSHA256 pinned: every file has a sha256 (and the URL a fixed revision); the download "
        "is refused if it differs."
    )
    if unverified:
        print(
            "SHA256 UNVERIFIED: the catalog has no sha256 for a file of "
            + ", ".join(e.name for e in unverified)
            + "; its download is only checked for format and I/O contract."
        )
    used = {e.decoder_contract for e in catalog.entries}
    for name in sorted(used):
        contract = DECODER_CONTRACTS[name]
        print(f"DECODER {contract.short}: {contract.text}.")
    return 0


def _table(rows: list[tuple[str, ...]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    lines = []
    for row in rows:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    return "\n".join(lines)


# --------------------------------------------------------------------------- download


def _register_download(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "download",
        help="download, verify and install a catalog model",
        description="Download NAME (see `models list`) from its pinned URL, resuming a partial "
        "download, check its size and sha256 against the catalog (a file the catalog has no "
        "sha256 for is said to be UNVERIFIED before and after), verify it loads, and install it "
        "atomically.",
    )
    p.add_argument("name", metavar="NAME", help="a model name from `models list`")
    p.add_argument("--force", action="store_true", help="replace an installed copy")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--timeout", type=float, default=30.0, help="network timeout in seconds (default: 30)"
    )
    p.set_defaults(models_func=run_download)


def run_download(args: argparse.Namespace) -> int:
    from sam2_annotator.models.catalog import is_installed, load_catalog
    from sam2_annotator.models.download import (
        TqdmProgress,
        download_model,
        unverified_warning,
    )

    entry = load_catalog().get(args.name)
    warning = unverified_warning(entry)
    if warning is not None and (args.force or not is_installed(entry.name)):
        print(f"warning: {warning}", file=sys.stderr)
    with TqdmProgress(disable=True if args.no_progress else None) as bar:
        result = download_model(entry, force=args.force, progress=bar, timeout=args.timeout)
    if result.report is None:
        print(f"{entry.name} is already installed at {result.path} (use --force to replace it)")
        return 0
    print(f"installed {entry.name} at {result.path}")
    for line in result.lines():
        print(f"  {line}")
    return 0


# --------------------------------------------------------------------------- import


def _register_import(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "import",
        help="install a model zip, folder or ONNX pair from disk (offline, USB stick)",
        description="Install a model from local files: a model .zip (the archives `models "
        "download` fetches), a model folder, one .onnx file (its partner is found next to it) or "
        "the encoder and decoder .onnx files. The files are checked like a download (archive "
        "safety, ONNX signature, I/O contract, sha256 against the catalog when they are catalog "
        "files; others are installed as unverified), staged and moved into `models path`. The "
        "source files are only read.",
    )
    p.add_argument(
        "source", metavar="FILE|DIR", nargs="+", help="a .zip, a folder, or one or two .onnx files"
    )
    p.add_argument(
        "--name", help="install folder name (default: the catalog name, else the files' name)"
    )
    p.add_argument("--force", action="store_true", help="replace an installed model of that name")
    p.set_defaults(models_func=run_import)


def run_import(args: argparse.Namespace) -> int:
    from sam2_annotator.models.importing import import_model

    result = import_model(args.source, name=args.name, force=args.force)
    print(f"installed {result.name} at {result.path}")
    for line in result.lines():
        print(f"  {line}")
    if not result.verified:
        print(
            f"warning: {result.name} is not verified against the catalog; use it only if you "
            "trust where the files came from",
            file=sys.stderr,
        )
    return 0


# --------------------------------------------------------------------------- verify


def _register_verify(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "verify",
        help="check a model folder: checksums, loading, contract",
        description="Check manifest.json sha256s (when present), load both graphs with ONNX "
        "Runtime on CPU and detect the I/O contract. Exit 0 when the model is usable.",
    )
    p.add_argument("folder", metavar="DIR", help="model folder, or the name of an installed model")
    p.set_defaults(models_func=run_verify)


def run_verify(args: argparse.Namespace) -> int:
    from sam2_annotator.commands._common import resolve_model_path
    from sam2_annotator.models.verify import verify_folder

    report = verify_folder(resolve_model_path(args.folder))
    for line in report.lines():
        print(line)
    if report.manifest is not None and report.manifest.is_random_init:
        print(
            "random-init: this model is for tests only; do not annotate with it",
            file=sys.stderr,
        )
    print("ok")
    return 0


# --------------------------------------------------------------------------- path


def _register_path(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser("path", help="print the folder models are installed into")
    p.set_defaults(models_func=run_path)


def run_path(args: argparse.Namespace) -> int:
    from sam2_annotator.models.catalog import models_root

    print(models_root())
    return 0


#: The built-in ``models`` actions, in the order ``models --help`` lists them.
SUBCOMMANDS: list[SubparserRegistrar] = [
    _register_list,
    _register_download,
    _register_import,
    _register_verify,
    _register_path,
    models_export.register,
]
