"""The release pipeline for exact models: Meta's checkpoints in, catalog entries out.

For each requested SAM2 / SAM2.1 size, one run

1. fetches Meta's official checkpoint (``dl.fbaipublicfiles.com``; the base URL can be replaced,
   e.g. by a local server in a test) with the downloader's own streaming, resuming and checks,
   against the sha256 in :data:`CHECKPOINTS` where one is known;
2. exports it with our exporter (``models export``: the image pair in fp32, then each other
   precision converted from it per :mod:`.precision`; the fp32 video graphs unless ``--no-video``);
3. checks parity against PyTorch on the given photos (:mod:`.parity`); a failure stops the run
   with one line and a non-zero exit, and nothing of that model is written to ``--out``;
4. writes one zip per model and precision (a folder ``<name>/`` holding the model folder, its
   manifest extended by the parity figures), and ``SHA256SUMS``;
5. writes ``catalog-entries.json``: the entries for these archives in the format of
   ``catalog.json``, under a source whose base URL is pinned to the revision the archives are
   uploaded at (``--revision``, or later ``release pin``; until then the URL holds
   ``{revision}`` and the app refuses it).

Export time only: torch and sam2 are imported by the functions that need them. Exports are cached
in ``--work`` by checkpoint sha256 and exporter version, so a rerun after a parity fix or an
upload failure does not export again. Run ``python packaging/release_models.py --help``.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import json
import logging
import os
import re
import shutil
import sys
import zipfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from sam2_annotator import __version__
from sam2_annotator.engine.manifest import MANIFEST_NAME, Manifest, sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.errors import UserError
from sam2_annotator.models.catalog import RemoteFile
from sam2_annotator.models.fetch import fetch_file

log = logging.getLogger(__name__)

#: Where Meta publishes the checkpoints (facebookresearch/sam2, checkpoints/download_ckpts.sh).
OFFICIAL_BASE_URLS = {
    "sam2.1": "https://dl.fbaipublicfiles.com/segment_anything_2/092824",
    "sam2": "https://dl.fbaipublicfiles.com/segment_anything_2/072824",
}
#: Replaces both official base URLs (a mirror holding the same file names; a test's server).
CHECKPOINT_BASE_ENV = "SAM2_ANNOTATOR_CHECKPOINT_BASE_URL"
SIZES = ("tiny", "small", "base_plus", "large")
_SHORT = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}
CONTRACT = "sam2-annotator-exact"
SOURCE_NAME = "sam2-annotator-exact"
PUBLISH_URL = "https://huggingface.co/{repo}/resolve/{revision}"
ENTRIES_FILE = "catalog-entries.json"
SUMS_FILE = "SHA256SUMS"
_ZIP_TIME = (1980, 1, 1, 0, 0, 0)
_PHOTOS = (".jpg", ".jpeg", ".png")  # fixed: the same export gives the same archive


class ReleaseError(UserError):
    """A release step failed (download, export, parity); one line says which and why."""


@dataclass(frozen=True)
class Checkpoint:
    """One of Meta's checkpoints; ``sha256``/``bytes`` as public material states them."""

    family: str
    size: str
    sha256: str | None = None
    bytes: int | None = None

    @property
    def filename(self) -> str:
        return f"{self.family}_hiera_{self.size}.pt"

    @property
    def config(self) -> str:
        return f"{self.family}_hiera_{_SHORT[self.size]}"

    def url(self, base_url: str | None = None) -> str:
        base = base_url or os.environ.get(CHECKPOINT_BASE_ENV, "").strip()
        return f"{(base or OFFICIAL_BASE_URLS[self.family]).rstrip('/')}/{self.filename}"


#: Meta publishes no checksums; these are the sha256 other projects pin for the official URLs:
#: SAM2.1 a provisioning script pinning all four (tiny also in an SPDX bill of materials, with
#: its size); SAM2 the SlicerSegmentWithSAM extension (base_plus also the LFS object id of two
#: Hugging Face re-uploads). A mismatch fails the download; ``--checkpoint-sha256`` overrides.
CHECKPOINTS: tuple[Checkpoint, ...] = (
    Checkpoint(
        "sam2.1",
        "tiny",
        "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69",
        156_008_466,
    ),
    Checkpoint(
        "sam2.1", "small", "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"
    ),
    Checkpoint(
        "sam2.1", "base_plus", "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"
    ),
    Checkpoint(
        "sam2.1", "large", "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"
    ),
    Checkpoint("sam2", "tiny", "65b50056e05bcb13694174f51bb6da89c894b57b75ccdf0ba6352c597c5d1125"),
    Checkpoint("sam2", "small", "95949964d4e548409021d47b22712d5f1abf2564cc0c3c765ba599a24ac7dce3"),
    Checkpoint(
        "sam2", "base_plus", "d0bb7f236400a49669ffdd1be617959a8b1d1065081789d7bbff88eded3a8071"
    ),
    Checkpoint("sam2", "large", "7442e4e9b732a508f80e141e7c2913437a3610ee0c77381a66658c3a445df87b"),
)


def checkpoint(family: str, size: str) -> Checkpoint:
    for known in CHECKPOINTS:
        if (known.family, known.size) == (family, size):
            return known
    raise ReleaseError(f"no checkpoint {family} {size}; sizes: {', '.join(SIZES)}")


def archive_name(family: str, size: str, precision: str) -> str:
    """``sam2.1_hiera_tiny_exact``, ``sam2.1_hiera_tiny_exact_int8``: distinct from the
    samexporter entries' names."""
    base = f"{family}_hiera_{size}_exact"
    return base if precision == "fp32" else f"{base}_{precision}"


@dataclass(frozen=True)
class ReleasePlan:
    checkpoints: tuple[Checkpoint, ...]
    precisions: tuple[str, ...]
    images: tuple[Path, ...]
    work: Path
    out: Path
    publish_url: str = PUBLISH_URL
    repo: str = ""
    revision: str = ""
    checkpoint_base_url: str | None = None
    video: bool = True


@dataclass(frozen=True)
class Released:
    """One archive written to ``--out``."""

    name: str
    checkpoint: Checkpoint
    checkpoint_sha256: str
    precision: str
    archive: Path
    bytes: int
    sha256: str
    parity: dict[str, Any]


Say = Callable[[str], None]


# --------------------------------------------------------------------------- the run


def run(plan: ReleasePlan, say: Say = print) -> list[Released]:
    """Every step for every checkpoint of ``plan``; raises :class:`ReleaseError` (or another
    :class:`UserError`) at the first failure."""
    if not plan.images:
        raise ReleaseError("no photos for the parity check (--images)")
    publish_base(plan.publish_url, plan.repo, plan.revision)  # a bad URL fails before the work
    plan.out.mkdir(parents=True, exist_ok=True)
    for stale in (ENTRIES_FILE, SUMS_FILE):  # never leave an earlier run's entries behind
        (plan.out / stale).unlink(missing_ok=True)
    released: list[Released] = []
    for ckpt in plan.checkpoints:
        path = fetch_checkpoint(ckpt, plan, say)
        digest = sha256_file(path)
        fp32 = exported(ckpt, path, digest, plan, say)
        reference = _reference(fp32, path)
        passed = []
        for precision in plan.precisions:
            folder = fp32 if precision == "fp32" else converted(fp32, precision, ckpt, plan, say)
            passed.append(
                (folder, precision, check(folder, reference, plan.images, precision, ckpt, say))
            )
        for folder, precision, parity in passed:  # only once every precision passed
            source = {"url": ckpt.url(plan.checkpoint_base_url), "sha256": digest}
            released.append(write_archive(folder, ckpt, source, precision, parity, plan.out, say))
    entries = catalog_entries(released, plan)
    (plan.out / ENTRIES_FILE).write_text(json.dumps(entries, indent=2) + "\n", encoding="utf-8")
    sums = "".join(f"{r.sha256}  {r.archive.name}\n" for r in released)
    (plan.out / SUMS_FILE).write_text(sums, encoding="utf-8")
    say(f"wrote {len(released)} archive(s), {ENTRIES_FILE} and {SUMS_FILE} to {plan.out}")
    if "{revision}" in entries["sources"][SOURCE_NAME]["base_url"]:
        say(
            f"not published yet: upload the archives, then `release pin {plan.out / ENTRIES_FILE}"
            " --revision COMMIT` to pin their URLs"
        )
    return released


def fetch_checkpoint(ckpt: Checkpoint, plan: ReleasePlan, say: Say) -> Path:
    """Download (or reuse) the checkpoint into ``work/checkpoints``, checked like a model file."""
    url = ckpt.url(plan.checkpoint_base_url)
    folder = plan.work / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    if ckpt.sha256 is None:
        say(f"warning: no known sha256 for {ckpt.filename}; its download is not checked")
    remote = RemoteFile("checkpoint", ckpt.filename, ckpt.bytes, ckpt.sha256)
    say(f"checkpoint {ckpt.filename} <- {url}")
    path = fetch_file(url, folder / ckpt.filename, remote)
    check = "sha256 ok" if ckpt.sha256 else "sha256 not known"
    say(f"  {path.stat().st_size} bytes, {check}")
    return path


def _fingerprint() -> str:
    """Changes with the exporter's code and torch, so a stale export is never reused."""
    from sam2_annotator.models.export import exporter_fingerprint

    return exporter_fingerprint("export_video", "precision")


def exported(ckpt: Checkpoint, path: Path, digest: str, plan: ReleasePlan, say: Say) -> Path:
    """The fp32 export of ``path`` (cached in ``work/exports``)."""
    from sam2_annotator.models.export import export_folder

    key = f"{ckpt.family}_hiera_{ckpt.size}-{digest[:12]}-{_fingerprint()}"
    key += "" if plan.video else "-novideo"
    target = plan.work / "exports" / key / "fp32"
    if (target / MANIFEST_NAME).is_file():
        say(f"export {ckpt.config} fp32: cached in {target}")
        return target
    say(f"export {ckpt.config} fp32 -> {target}")
    return _atomic(target, lambda tmp: export_folder(ckpt.config, tmp, path, video=plan.video))


def converted(fp32: Path, precision: str, ckpt: Checkpoint, plan: ReleasePlan, say: Say) -> Path:
    """The ``precision`` variant of the fp32 export, next to it (cached)."""
    from sam2_annotator.models.export import export_folder

    target = fp32.parent / precision
    if (target / MANIFEST_NAME).is_file():
        say(f"export {ckpt.config} {precision}: cached in {target}")
        return target
    say(f"export {ckpt.config} {precision} -> {target}")
    checkpoint_path = plan.work / "checkpoints" / ckpt.filename

    def build(tmp: Path) -> None:
        export_folder(
            ckpt.config, tmp, checkpoint_path, precision=precision, video=plan.video, fp32_dir=fp32
        )

    return _atomic(target, build)


def _atomic(target: Path, build: Callable[[Path], object]) -> Path:
    tmp = target.with_name(f".tmp-{target.name}-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        build(tmp)
        shutil.rmtree(target, ignore_errors=True)
        os.replace(tmp, target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return target


def _reference(fp32: Path, checkpoint_path: Path) -> Any:
    """The PyTorch side of the parity check, built once per checkpoint."""
    from sam2_annotator.models.export_reference import TorchModel, TorchPredictor, source_for

    return TorchPredictor(
        TorchModel.load(source_for(ModelFiles.from_folder(fp32), checkpoint_path))
    )


def check(
    folder: Path,
    reference: Any,
    images: Sequence[Path],
    precision: str,
    ckpt: Checkpoint,
    say: Say,
) -> dict[str, Any]:
    """Parity against PyTorch or a :class:`ReleaseError` naming what failed."""
    from sam2_annotator.engine.predictor import Sam2Engine
    from sam2_annotator.models.parity import check_parity

    engine = Sam2Engine(ModelFiles.from_folder(folder))
    report = check_parity(engine, reference, images, precision, progress=say)
    name = archive_name(ckpt.family, ckpt.size, precision)
    failures = report.failures()
    if failures:
        raise ReleaseError(f"parity failed for {name} vs PyTorch: {'; '.join(failures)}")
    say(f"  parity ok: {report.summary()}")
    return report.to_dict()


# --------------------------------------------------------------------------- archives, entries


def write_archive(
    folder: Path,
    ckpt: Checkpoint,
    source: dict[str, str],
    precision: str,
    parity: dict[str, Any],
    out: Path,
    say: Say,
) -> Released:
    """``out/<name>.zip`` holding ``<name>/`` (the folder; its manifest gains the release
    record), written to a temporary name first."""
    name = archive_name(ckpt.family, ckpt.size, precision)
    manifest = Manifest.read(folder)
    if manifest is None:
        raise ReleaseError(f"{folder} has no {MANIFEST_NAME}: not our exporter's folder")
    exporter = dict(manifest.exporter)
    exporter["release"] = {
        "name": name,
        "decoder_contract": CONTRACT,
        "checkpoint": source,
        "parity": parity,
        "released_by": f"sam2-annotator {__version__}",
        "date": _dt.datetime.now(_dt.UTC).date().isoformat(),
    }
    manifest_bytes = replace(manifest, exporter=exporter).to_json().encode("utf-8")
    archive = out / f"{name}.zip"
    tmp = archive.with_name(f".{archive.name}.{os.getpid()}.tmp")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.name != MANIFEST_NAME)
    with zipfile.ZipFile(tmp, "w", zipfile.ZIP_DEFLATED) as zf:
        _add(zf, f"{name}/{MANIFEST_NAME}", manifest_bytes)
        for path in files:
            _add_file(zf, f"{name}/{path.relative_to(folder).as_posix()}", path)
    os.replace(tmp, archive)
    size, digest = archive.stat().st_size, sha256_file(archive)
    say(f"archive {archive.name}: {size} bytes, sha256 {digest}")
    return Released(name, ckpt, source["sha256"], precision, archive, size, digest, parity)


def _info(arcname: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, date_time=_ZIP_TIME)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = 0o644 << 16
    return info


def _add(zf: zipfile.ZipFile, arcname: str, data: bytes) -> None:
    zf.writestr(_info(arcname), data)


def _add_file(zf: zipfile.ZipFile, arcname: str, path: Path) -> None:
    with open(path, "rb") as src, zf.open(_info(arcname), "w", force_zip64=True) as dst:
        shutil.copyfileobj(src, dst, 1 << 20)


def catalog_entries(released: Sequence[Released], plan: ReleasePlan) -> dict[str, Any]:
    """The ``catalog.json`` fragment for ``released`` (one source, one entry per archive)."""
    base_url = publish_base(plan.publish_url, plan.repo, plan.revision)
    models = []
    for r in released:
        ckpt = r.checkpoint
        parity = r.parity
        models.append(
            {
                "name": r.name,
                "family": ckpt.family,
                "size": ckpt.size,
                "variant": f"{ckpt.family}_hiera_{_SHORT[ckpt.size]}",
                "source": SOURCE_NAME,
                "archive": "zip",
                "decoder_contract": CONTRACT,
                "precision": r.precision,
                "files": [
                    {
                        "role": "archive",
                        "path": r.archive.name,
                        "bytes": r.bytes,
                        "sha256": r.sha256,
                    }
                ],
                "note": (
                    f"Exported by sam2-annotator {__version__} ({r.precision}) from "
                    f"{_whose(r)} {ckpt.filename} (sha256 {r.checkpoint_sha256[:12]}…); parity "
                    f"vs PyTorch on {len(parity['images'])} photo(s): mask IoU min "
                    f"{parity['min_iou']:.4f}, mean {parity['mean_iou']:.4f}."
                ),
            }
        )
    source = {
        "base_url": base_url,
        "repo": plan.repo,
        "revision": plan.revision or "{revision}",
        "about": "SAM2/SAM2.1 exported by sam2-annotator's release pipeline from Meta's "
        "checkpoints, parity-checked against PyTorch",
    }
    return {"format": 1, "sources": {SOURCE_NAME: source}, "models": models}


def _whose(released: Released) -> str:
    """ "Meta's" only for the checkpoint whose sha256 is the one pinned for Meta's file."""
    official = checkpoint(released.checkpoint.family, released.checkpoint.size).sha256
    return "Meta's" if released.checkpoint_sha256 == official else "the checkpoint"


def publish_base(template: str, repo: str, revision: str) -> str:
    """The archives' base URL; ``{revision}`` stays until the upload's commit is known."""
    if "{repo}" in template and not repo:
        raise ReleaseError("--repo is needed for the publish URL (where the archives go)")
    if revision and not re.fullmatch(r"[0-9a-f]{40}", revision):
        raise ReleaseError(f"--revision must be a 40-hex commit, got {revision!r}")
    if "{revision}" not in template and not re.search(r"/[0-9a-f]{40}(/|$)", template):
        raise ReleaseError(f"the publish URL {template} is not pinned to a revision")
    return template.replace("{repo}", repo).replace("{revision}", revision or "{revision}")


def pin(entries_path: Path, revision: str) -> dict[str, Any]:
    """Fill in the revision the archives were uploaded at (after the upload)."""
    data = json.loads(entries_path.read_text(encoding="utf-8"))
    source = data["sources"][SOURCE_NAME]
    source["base_url"] = publish_base(source["base_url"], source.get("repo", ""), revision)
    source["revision"] = revision
    entries_path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return data


# --------------------------------------------------------------------------- the command line


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="release_models",
        description="Build the exact-model archives and their catalog entries (see the module "
        "docstring of sam2_annotator.models.release).",
    )
    sub = parser.add_subparsers(dest="command")
    build = sub.add_parser("build", help="fetch, export, check parity, archive (the default)")
    _build_arguments(build)
    pin_cmd = sub.add_parser("pin", help="pin the entries' URLs to the upload's revision")
    pin_cmd.add_argument("entries", type=Path, metavar=ENTRIES_FILE)
    pin_cmd.add_argument("--revision", required=True, help="the commit the archives are at")
    return parser


def _build_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--families", nargs="+", choices=sorted(OFFICIAL_BASE_URLS), default=["sam2.1"])
    p.add_argument("--sizes", nargs="+", choices=SIZES, default=list(SIZES))
    p.add_argument("--precisions", nargs="+", choices=("fp32", "int8"), default=["fp32", "int8"])
    p.add_argument("--images", nargs="+", type=Path, required=True, help="photos (or a folder)")
    p.add_argument("--work", type=Path, required=True, help="downloads and cached exports")
    p.add_argument("--out", type=Path, required=True, help="archives and catalog entries")
    p.add_argument(
        "--checkpoint-base-url",
        help=f"replaces Meta's base URLs (default: ${CHECKPOINT_BASE_ENV} or the official ones)",
    )
    p.add_argument(
        "--checkpoint-sha256",
        action="append",
        default=[],
        metavar="FILE=SHA256",
        help="the sha256 to expect for a checkpoint file instead of the built-in one",
    )
    p.add_argument("--publish-url", default=PUBLISH_URL, help=f"default: {PUBLISH_URL}")
    p.add_argument("--repo", default="", help="the repository the archives are uploaded to")
    p.add_argument("--revision", default="", help="its commit, when already known")
    p.add_argument("--no-video", dest="video", action="store_false", help="image graphs only")


def plan_from(args: argparse.Namespace) -> ReleasePlan:
    overrides = {}
    for item in args.checkpoint_sha256:
        filename, _, digest = item.partition("=")
        if not re.fullmatch(r"[0-9a-f]{64}", digest):
            raise ReleaseError(f"--checkpoint-sha256 wants FILE=SHA256 (64 hex), got {item!r}")
        overrides[filename] = digest
    checkpoints = []
    for family in args.families:
        for size in args.sizes:
            ckpt = checkpoint(family, size)
            if ckpt.filename in overrides:
                ckpt = replace(ckpt, sha256=overrides.pop(ckpt.filename), bytes=None)
            checkpoints.append(ckpt)
    if overrides:
        raise ReleaseError(f"--checkpoint-sha256 for files not in this run: {sorted(overrides)}")
    images: list[Path] = []
    for path in args.images:
        if not path.exists():
            raise ReleaseError(f"no such photo or folder: {path}")
        images += (
            sorted(p for p in path.iterdir() if p.suffix.lower() in _PHOTOS)
            if path.is_dir()
            else [path]
        )
    return ReleasePlan(
        checkpoints=tuple(checkpoints),
        precisions=tuple(dict.fromkeys(args.precisions)),
        images=tuple(images),
        work=args.work,
        out=args.out,
        publish_url=args.publish_url,
        repo=args.repo,
        revision=args.revision,
        checkpoint_base_url=args.checkpoint_base_url,
        video=args.video,
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Exit 0 on success; 1 with one ``error:`` line on stderr for any failure."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] not in ("build", "pin", "-h", "--help"):
        argv.insert(0, "build")
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "pin":
            pin(args.entries, args.revision)
            print(f"pinned {args.entries} to {args.revision}")
            return 0
        run(plan_from(args), lambda line: print(line, flush=True))
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
