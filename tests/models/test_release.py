"""The release pipeline end to end: a random-init SAM2.1 hiera-tiny checkpoint (laid out as Meta's
are, ``{"model": state_dict}``) served by a local HTTP server, exported in fp32 and int8, checked
against PyTorch on one photo, archived; the archives then installed through the app's own
download path from a second server / a ``file://`` mirror, and loaded.

Costly steps run once: the checkpoint and the pipeline's exports are cached per machine (keyed by
the exporter's code and torch), and the pipeline runs once per module.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import io
import json
import os
import shutil
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from sam2_annotator import cli
from sam2_annotator.engine.image_io import load_image
from sam2_annotator.engine.manifest import Manifest, sha256_file
from sam2_annotator.engine.model_files import ModelFiles
from sam2_annotator.errors import DownloadError
from sam2_annotator.models import parity, release
from sam2_annotator.models.catalog import (
    EXTRA_CATALOG_ENV,
    MIRROR_ENV,
    Catalog,
    installed_models,
    load_catalog,
)
from sam2_annotator.models.download import DOWNLOADS_DIR, download_model
from tests.conftest import SHARED_IMAGES, TEST_CONFIG, TEST_SEED, _cache_root, _exporter_fingerprint

torch = pytest.importorskip("torch", reason="the release pipeline needs the export extra")

REVISION = "0123456789abcdef0123456789abcdef01234567"  # what `release pin` is given after upload
PHOTO = SHARED_IMAGES / "truck.jpg"
NAMES = ("sam2.1_hiera_tiny_exact", "sam2.1_hiera_tiny_exact_int8")


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        return None


@contextlib.contextmanager
def serve(folder: Path) -> Iterator[str]:
    """A static HTTP server on 127.0.0.1 for ``folder``, in a thread; yields its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(folder))
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join(5)


def _cached(name: str) -> Path:
    folder = _cache_root() / "release" / f"{name}-{_exporter_fingerprint()}"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def checkpoint() -> Path:
    """Random-init weights saved as Meta saves its checkpoints (made once per machine: the
    pipeline keys its export cache by the file's sha256)."""
    from sam2_annotator.models.export import build_model, resolve_variant

    folder = _cached("checkpoint")
    path = folder / "sam2.1_hiera_tiny.pt"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not path.is_file():
            model = build_model(resolve_variant(TEST_CONFIG), None, TEST_SEED)
            tmp = path.with_name(f".{path.name}.{os.getpid()}")
            torch.save({"model": model.state_dict()}, tmp)
            os.replace(tmp, path)
    return path


@dataclass(frozen=True)
class Run:
    code: int
    out: str
    err: str


def run_pipeline(*args: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = release.main(list(args))
    return Run(code, out.getvalue(), err.getvalue())


def build_args(url: str, ckpt: Path, work: Path, out: Path, *extra: str) -> list[str]:
    return [
        "build",
        "--families",
        "sam2.1",
        "--sizes",
        "tiny",
        "--images",
        str(PHOTO),
        "--work",
        str(work),
        "--out",
        str(out),
        "--no-video",
        "--checkpoint-base-url",
        url,
        "--checkpoint-sha256",
        f"{ckpt.name}={sha256_file(ckpt)}",
        "--repo",
        "test/sam2-annotator-models",
        *extra,
    ]


@pytest.fixture(scope="module")
def released(checkpoint: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Run]:
    out = tmp_path_factory.mktemp("release-out")
    with serve(checkpoint.parent) as url:
        result = run_pipeline(*build_args(url, checkpoint, _cached("work"), out))
    assert result.code == 0, result.err
    return out, result


# --------------------------------------------------------------------------- what it writes


def test_pipeline_writes_archives_sums_and_entries(released: tuple[Path, Run]) -> None:
    out, result = released
    entries = json.loads((out / release.ENTRIES_FILE).read_text())
    models = {m["name"]: m for m in entries["models"]}
    assert sorted(models) == sorted(NAMES)
    sums = (out / release.SUMS_FILE).read_text().splitlines()
    for name, model in models.items():
        assert model["decoder_contract"] == "sam2-annotator-exact"
        (remote,) = model["files"]
        archive = out / remote["path"]
        assert remote["bytes"] == archive.stat().st_size
        assert remote["sha256"] == sha256_file(archive)
        assert f"{remote['sha256']}  {archive.name}" in sums
        with zipfile.ZipFile(archive) as zf:
            names = sorted(zf.namelist())
            manifest = Manifest.from_dict(json.loads(zf.read(f"{name}/manifest.json")))
        assert names == [f"{name}/{f}" for f in ("decoder.onnx", "encoder.onnx", "manifest.json")]
        assert manifest.precision == model["precision"]
        assert [o["name"] for o in manifest.io["decoder"]["outputs"]] == [
            "masks",
            "iou_predictions",
        ]
        record = manifest.exporter["release"]
        assert record["checkpoint"]["sha256"] == manifest.source_checkpoint["sha256"]
        assert record["parity"]["images"] == ["truck"]
        assert record["parity"]["min_iou"] >= parity.TOLERANCES[model["precision"]].min_iou
    fp32 = json.loads(zipfile.ZipFile(out / f"{NAMES[0]}.zip").read(f"{NAMES[0]}/manifest.json"))
    assert fp32["exporter"]["release"]["parity"]["max_logit_diff"] <= 1e-3
    assert "from the checkpoint sam2.1_hiera_tiny.pt" in models[NAMES[0]]["note"]  # not "Meta's"
    assert "parity ok: 8 prompts" in result.out


def test_entries_are_refused_until_pinned_then_load(
    released: tuple[Path, Run], tmp_path: Path
) -> None:
    out, _result = released
    entries = tmp_path / release.ENTRIES_FILE
    shutil.copy(out / release.ENTRIES_FILE, entries)
    with pytest.raises(ValueError, match="not published yet"):
        Catalog.from_dict(json.loads(entries.read_text()))
    pinned = run_pipeline("pin", str(entries), "--revision", REVISION)
    assert pinned.code == 0, pinned.err
    catalog = Catalog.from_dict(json.loads(entries.read_text()))
    entry = catalog.get(NAMES[1])
    base = f"https://huggingface.co/test/sam2-annotator-models/resolve/{REVISION}"
    assert entry.url(entry.files[0], mirror="") == f"{base}/{NAMES[1]}.zip"
    assert entry.contract.exact and entry.precision == "int8" and entry.verified


# --------------------------------------------------------------------------- installing it


@pytest.fixture
def pinned_catalog(
    released: tuple[Path, Run], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Path:
    """The produced entries, pinned, added to the app's catalog."""
    out, _result = released
    entries = tmp_path / "entries.json"
    shutil.copy(out / release.ENTRIES_FILE, entries)
    release.pin(entries, REVISION)
    monkeypatch.setenv(EXTRA_CATALOG_ENV, str(entries))
    return entries


def _segment(folder: Path) -> None:
    """Load the installed folder in the engine and segment with two points (single-mask rule)."""
    from sam2_annotator.engine.predictor import Sam2Engine

    engine = Sam2Engine(ModelFiles.from_folder(folder))
    image = load_image(PHOTO)
    case = parity.prompt_cases(image.shape[1], image.shape[0])[1]  # positive + negative point
    prediction = engine.decode(engine.encode(image), case.prompt())
    assert prediction.single_token and len(prediction.scores) == 4
    assert prediction.mask.shape == image.shape[:2]


def test_released_archive_installs_through_the_cli_and_loads(
    released: tuple[Path, Run],
    pinned_catalog: Path,
    data_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("models",))
    out, _result = released
    with serve(out) as mirror:
        monkeypatch.setenv(MIRROR_ENV, mirror)
        assert cli.main(["models", "download", NAMES[1], "--no-progress"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # nothing unverified to warn about
    lines = [line.strip() for line in captured.out.splitlines()]
    folder = data_dir / "models" / NAMES[1]
    assert lines[0] == f"installed {NAMES[1]} at {folder}"
    assert lines[1].startswith(f"catalog:  sha256 matches the catalog at {REVISION[:12]} (")
    assert lines[2].startswith("decoder:  sam2-annotator-exact: exported by sam2-annotator")
    # the archive's own manifest is checked (not one written from the files at install)
    assert "sha256:   ok against manifest.json (decoder.onnx, encoder.onnx)" in lines
    assert "variant:  sam2.1_hiera_t" in lines and "contract: sam2-annotator" in lines
    _segment(folder)


def test_released_fp32_archive_installs_from_a_file_mirror(
    released: tuple[Path, Run], pinned_catalog: Path, data_dir: Path, monkeypatch
) -> None:
    out, _result = released
    monkeypatch.setenv(MIRROR_ENV, out.as_uri())
    result = download_model(NAMES[0])
    assert result.verified and result.report is not None
    assert result.report.checked_sha256 == ("decoder.onnx", "encoder.onnx")
    manifest = Manifest.read(result.path)
    assert manifest is not None and manifest.exporter["release"]["name"] == NAMES[0]
    assert result.report.contract == "sam2-annotator"  # both graphs loaded in ONNX Runtime


def test_corrupted_release_archive_is_refused(
    released: tuple[Path, Run],
    pinned_catalog: Path,
    data_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    out, _result = released
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    damaged = bytearray((out / f"{NAMES[1]}.zip").read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # same size, one byte flipped
    (mirror / f"{NAMES[1]}.zip").write_bytes(bytes(damaged))
    entry = load_catalog().get(NAMES[1])
    with serve(mirror) as url:
        monkeypatch.setenv(MIRROR_ENV, url)
        with pytest.raises(DownloadError) as info:
            download_model(NAMES[1])
    assert str(info.value) == (
        f"sha256 mismatch for {url}/{NAMES[1]}.zip: got {sha256_file(mirror / (NAMES[1] + '.zip'))}"
        f", expected {entry.files[0].sha256}; deleted the download"
    )
    root = data_dir / "models"
    assert installed_models(root) == []
    assert sorted(p.name for p in root.iterdir()) == [DOWNLOADS_DIR]
    assert list((root / DOWNLOADS_DIR).iterdir()) == []


# --------------------------------------------------------------------------- failing loudly


def test_parity_failure_exits_1_with_one_line_and_writes_nothing(
    released: tuple[Path, Run], checkpoint: Path, tmp_path: Path, monkeypatch
) -> None:
    """A model that misses the bar is not archived (the int8 bar raised above what it meets)."""
    strict = parity.Tolerance(min_iou=0.99999, mean_iou=0.99999, same_choice=False)
    monkeypatch.setitem(parity.TOLERANCES, "int8", strict)
    out = tmp_path / "out"
    with serve(checkpoint.parent) as url:
        args = build_args(url, checkpoint, _cached("work"), out, "--precisions", "int8")
        result = run_pipeline(*args)
    assert result.code == 1
    assert result.err.count("\n") == 1
    assert result.err.startswith(
        "error: parity failed for sam2.1_hiera_tiny_exact_int8 vs PyTorch: mask IoU 0."
    )
    assert sorted(p.name for p in out.iterdir()) == []


def test_checkpoint_with_another_sha256_fails_before_any_export(
    checkpoint: Path, tmp_path: Path
) -> None:
    work, out = tmp_path / "work", tmp_path / "out"
    with serve(checkpoint.parent) as url:
        args = build_args(url, checkpoint, work, out)
        args[args.index("--checkpoint-sha256") + 1] = f"{checkpoint.name}={'0' * 64}"
        result = run_pipeline(*args)
    assert result.code == 1 and result.err.count("\n") == 1
    assert result.err.startswith(f"error: sha256 mismatch for {url}/{checkpoint.name}: got ")
    assert not (work / "exports").exists()
    assert not (out / release.ENTRIES_FILE).exists()
