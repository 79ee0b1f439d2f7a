"""The downloader against a real HTTP server on 127.0.0.1 serving tiny contract-shaped graphs."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
import zipfile
from dataclasses import replace
from pathlib import Path

import pytest

from sam2_annotator import cli
from sam2_annotator.engine.manifest import Manifest, sha256_file
from sam2_annotator.errors import DownloadError, OperationCancelled
from sam2_annotator.models.catalog import (
    MIRROR_ENV,
    CatalogEntry,
    RemoteFile,
    Source,
    installed_models,
    load_catalog,
    models_root,
)
from sam2_annotator.models.download import (
    DOWNLOADS_DIR,
    DownloadProgress,
    TqdmProgress,
    download_model,
)
from tests.models.conftest import FileServer, decoder_bytes, zip_bytes

#: A packaged catalog entry without a sha256 (our tiny test archive can be served as it).
UNVERIFIED_ZIP = "sam2.1_hiera_base_plus"
#: Incompressible padding so the archive spans several 64 KiB chunks.
PADDING = hashlib.shake_256(b"sam2-annotator").digest(300_000)


def _zip_entry(server: FileServer, path: str = "tiny_model.zip", **kw: object) -> CatalogEntry:
    remote = RemoteFile(role="archive", path=path, **kw)  # type: ignore[arg-type]
    return CatalogEntry(
        name="tiny_zip",
        family="sam2.1",
        size="tiny",
        variant="sam2.1_hiera_t",
        source=Source("test", server.url),
        archive="zip",
        files=(remote,),
        approx_mb=1,
        note="test",
    )


def _pair_entry(server: FileServer, pair: dict[str, bytes], sha: bool = True) -> CatalogEntry:
    files = tuple(
        RemoteFile(
            role=role,  # type: ignore[arg-type]
            path=f"pair/m.{role}.onnx",
            bytes=len(pair[f"m.{role}.onnx"]),
            sha256=hashlib.sha256(pair[f"m.{role}.onnx"]).hexdigest() if sha else None,
        )
        for role in ("encoder", "decoder")
    )
    return CatalogEntry(
        name="tiny_pair",
        family="sam2",
        size="tiny",
        variant="sam2_hiera_t",
        source=Source("test", server.url),
        archive="onnx-pair",
        files=files,
        approx_mb=1,
    )


@pytest.fixture
def archive(pair: dict[str, bytes]) -> bytes:
    return zip_bytes({**pair, "padding.bin": PADDING})


def _assert_nothing_installed(root: Path) -> None:
    assert installed_models(root) == []
    leftovers = [p.name for p in root.iterdir() if p.name != DOWNLOADS_DIR]
    assert leftovers == []


def _downloads(root: Path) -> list[str]:
    folder = root / DOWNLOADS_DIR
    return sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []


# --------------------------------------------------------------------------- success paths


def test_full_zip_download_installs_a_verified_model(
    data_dir: Path, file_server: FileServer, archive: bytes, pair: dict[str, bytes]
) -> None:
    file_server.add("tiny_model.zip", archive)
    seen: list[DownloadProgress] = []
    result = download_model(_zip_entry(file_server), progress=seen.append)

    root = models_root()
    assert result.path == root / "tiny_zip"
    assert result.report is not None and result.report.contract == "sam2-annotator"
    assert result.report.files.encoder == root / "tiny_zip" / "m.encoder.onnx"
    for name, data in pair.items():
        assert (result.path / name).read_bytes() == data
    manifest = Manifest.read(result.path)
    assert manifest is not None
    assert manifest.variant == "sam2.1_hiera_t" and manifest.weights == "checkpoint"
    assert manifest.contract == "sam2-annotator"
    assert manifest.files["m.encoder.onnx"].sha256 == sha256_file(result.path / "m.encoder.onnx")
    assert manifest.exporter["urls"] == [f"{file_server.url}/tiny_model.zip"]
    assert [i["name"] for i in manifest.io["decoder"]["inputs"]][-1] == "has_mask_input"
    # progress: monotonic, ends at the full size, several chunks
    assert seen[-1].done == seen[-1].total == len(archive)
    assert [p.done for p in seen] == sorted(p.done for p in seen) and len(seen) > 3
    assert seen[-1].fraction == 1.0
    # nothing left behind but the installed folder
    assert sorted(p.name for p in root.iterdir()) == [DOWNLOADS_DIR, "tiny_zip"]
    assert _downloads(root) == []


def test_onnx_pair_with_known_sha256_installs(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    for name, data in pair.items():
        file_server.add(f"pair/{name}", data)
    result = download_model(_pair_entry(file_server, pair))
    assert sorted(p.name for p in result.path.iterdir()) == [
        "m.decoder.onnx",
        "m.encoder.onnx",
        "manifest.json",
    ]
    assert result.verified and result.check is not None
    # the manifest was written from these files: the report must not call that a check
    assert result.report is not None and result.report.checked_sha256 == ()
    lines = result.lines()
    assert lines[0].startswith("catalog:  sha256 matches the catalog (m.encoder.onnx ")
    assert not any(line.startswith("sha256:   ok") for line in lines)
    assert any(line.startswith("manifest: written now from these files") for line in lines)
    assert _downloads(models_root()) == []


def test_download_without_a_catalog_sha256_is_said_to_be_unverified(
    data_dir: Path,
    file_server: FileServer,
    archive: bytes,
    caplog: pytest.LogCaptureFixture,
) -> None:
    file_server.add("tiny_model.zip", archive)
    entry = _zip_entry(file_server, unverified="no public sha256")
    seen: list[DownloadProgress] = []
    with caplog.at_level("WARNING", logger="sam2_annotator.models.download"):
        result = download_model(entry, progress=seen.append)
    warning = next(r for r in caplog.records if "UNVERIFIED" in r.getMessage())
    assert "no sha256 for tiny_model.zip (no public sha256)" in warning.getMessage()
    assert seen and not any(p.verified for p in seen)  # the GUI's progress text says so
    assert not result.verified
    assert result.lines()[0].startswith("catalog:  UNVERIFIED: the catalog lists no sha256")


def test_zip_with_a_subfolder_and_macos_junk_installs(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    files = {f"inner/{name}": data for name, data in pair.items()}
    files["__MACOSX/inner/._m.encoder.onnx"] = b"resource fork"
    file_server.add("tiny_model.zip", zip_bytes(files))
    result = download_model(_zip_entry(file_server))
    assert (result.path / "m.encoder.onnx").read_bytes() == pair["m.encoder.onnx"]
    assert not (result.path / "__MACOSX").exists()


def test_zip_with_video_graphs_below_the_model_installs_the_model_folder(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    """Our exports keep memory_encoder.onnx in video/: the model is the folder above it."""
    files = {f"m/{name}": data for name, data in pair.items()}
    files["m/video/memory_encoder.onnx"] = pair["m.encoder.onnx"]
    file_server.add("tiny_model.zip", zip_bytes(files))
    result = download_model(_zip_entry(file_server))
    assert (result.path / "m.encoder.onnx").is_file()
    assert (result.path / "video" / "memory_encoder.onnx").is_file()


def test_zip_with_two_sibling_model_folders_is_refused(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    files = {f"{top}/{name}": data for top in ("a", "b") for name, data in pair.items()}
    file_server.add("tiny_model.zip", zip_bytes(files))
    with pytest.raises(DownloadError, match=r"must hold one folder with an \*encoder\*"):
        download_model(_zip_entry(file_server))
    _assert_nothing_installed(models_root())


def test_already_installed_is_not_downloaded_again_unless_forced(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    entry = _zip_entry(file_server)
    download_model(entry)
    (models_root() / "tiny_zip" / "stale.txt").write_text("from the old install")
    requests = len(file_server.requests)

    again = download_model(entry)
    assert again.report is None and again.path == models_root() / "tiny_zip"
    assert len(file_server.requests) == requests

    forced = download_model(entry, force=True)
    assert forced.report is not None
    assert not (forced.path / "stale.txt").exists()
    assert installed_models() == [forced.path]
    assert sorted(p.name for p in models_root().iterdir()) == [DOWNLOADS_DIR, "tiny_zip"]


# --------------------------------------------------------------------------- resuming


def test_resume_after_the_connection_broke(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    file_server.cut_after["tiny_model.zip"] = 100_000
    entry = _zip_entry(file_server)
    with pytest.raises(DownloadError, match="run the same command again to resume") as info:
        download_model(entry)
    assert f"{file_server.url}/tiny_model.zip" in str(info.value)
    root = models_root()
    _assert_nothing_installed(root)
    part = root / DOWNLOADS_DIR / "tiny_model.zip.part"
    assert part.stat().st_size == 100_000

    del file_server.cut_after["tiny_model.zip"]
    result = download_model(entry)
    assert file_server.requests[-1] == ("tiny_model.zip", "bytes=100000-")
    assert result.report is not None
    assert not part.exists()


def test_resume_of_a_truncated_part_when_the_server_ignores_range(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    file_server.ignore_range = True
    part = models_root() / DOWNLOADS_DIR / "tiny_model.zip.part"
    part.parent.mkdir(parents=True)
    garbage = b"garbage that must not be kept" * 100
    part.write_bytes(garbage)

    result = download_model(_zip_entry(file_server))
    assert file_server.requests == [("tiny_model.zip", f"bytes={len(garbage)}-")]
    assert result.report is not None  # the body replaced the garbage instead of being appended


def test_complete_part_answered_with_416_is_used(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    part = models_root() / DOWNLOADS_DIR / "tiny_model.zip.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(archive)
    result = download_model(_zip_entry(file_server))
    assert file_server.requests == [("tiny_model.zip", f"bytes={len(archive)}-")]
    assert result.report is not None


def test_oversized_part_answered_with_416_restarts(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    part = models_root() / DOWNLOADS_DIR / "tiny_model.zip.part"
    part.parent.mkdir(parents=True)
    oversized = archive + b"extra bytes from some other file"
    part.write_bytes(oversized)
    result = download_model(_zip_entry(file_server))
    assert file_server.requests == [
        ("tiny_model.zip", f"bytes={len(oversized)}-"),
        ("tiny_model.zip", None),
    ]
    assert result.report is not None


def test_completed_pair_file_is_reused_when_the_other_failed(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    entry = _pair_entry(file_server, pair)
    file_server.add("pair/m.encoder.onnx", pair["m.encoder.onnx"])
    with pytest.raises(DownloadError, match="HTTP 404"):
        download_model(entry)
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == ["m.encoder.onnx"]

    file_server.add("pair/m.decoder.onnx", pair["m.decoder.onnx"])
    file_server.requests.clear()
    assert download_model(entry).report is not None
    assert [r[0] for r in file_server.requests] == ["pair/m.decoder.onnx"]


# --------------------------------------------------------------------------- failures


def test_http_404_names_the_url_and_installs_nothing(
    data_dir: Path, file_server: FileServer
) -> None:
    with pytest.raises(DownloadError) as info:
        download_model(_zip_entry(file_server))
    message = str(info.value)
    assert message == f"HTTP 404 Not Found for {file_server.url}/tiny_model.zip"
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == []


def test_connection_refused_is_a_download_error(data_dir: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = FileServer(url=f"http://127.0.0.1:{port}")
    with pytest.raises(DownloadError, match=f"cannot download http://127.0.0.1:{port}/"):
        download_model(_zip_entry(server))
    _assert_nothing_installed(models_root())


def test_timeout_is_a_download_error(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    file_server.delay_s = 1.0
    with pytest.raises(DownloadError, match="timed out") as info:
        download_model(_zip_entry(file_server), timeout=0.2)
    assert f"{file_server.url}/tiny_model.zip" in str(info.value)
    assert "\n" not in str(info.value)
    _assert_nothing_installed(models_root())


def test_sha256_mismatch_deletes_the_download(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    entry = _zip_entry(file_server, sha256="0" * 64)
    with pytest.raises(DownloadError, match=r"sha256 mismatch for http://127\.0\.0\.1"):
        download_model(entry)
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == []


def test_size_different_from_the_catalog_deletes_the_download(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    with pytest.raises(DownloadError, match="were expected"):
        download_model(_zip_entry(file_server, bytes=len(archive) + 1))
    assert _downloads(models_root()) == []


def test_corrupt_zip_is_rejected_and_deleted(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    damaged = bytearray(archive)
    damaged[200:260] = b"\x00" * 60  # inside the first member's compressed data
    file_server.add("tiny_model.zip", bytes(damaged))
    with pytest.raises(DownloadError, match="corrupt"):
        download_model(_zip_entry(file_server))
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == []


def test_web_page_instead_of_a_zip_fails_the_signature_check(
    data_dir: Path, file_server: FileServer
) -> None:
    file_server.add("tiny_model.zip", b"<!DOCTYPE html><html>rate limited</html>")
    with pytest.raises(DownloadError, match=r"not a zip archive .*web page"):
        download_model(_zip_entry(file_server))
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == []


def test_bare_file_that_is_not_onnx_fails_the_signature_check(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    entry = _pair_entry(file_server, pair, sha=False)
    entry = replace(entry, files=tuple(replace(f, bytes=None) for f in entry.files))
    file_server.add("pair/m.encoder.onnx", b"PK\x03\x04 a zip, not a graph")
    with pytest.raises(DownloadError, match="is not an ONNX model"):
        download_model(entry)
    assert _downloads(models_root()) == []


@pytest.mark.parametrize(
    ("member", "reason"),
    [("../escape.onnx", r"'\.\.'"), ("/tmp/abs.encoder.onnx", "absolute"), ("C:/x.onnx", "abs")],
)
def test_zip_path_traversal_is_refused(
    data_dir: Path,
    file_server: FileServer,
    pair: dict[str, bytes],
    member: str,
    reason: str,
) -> None:
    file_server.add("tiny_model.zip", zip_bytes({**pair, member: b"evil"}))
    with pytest.raises(DownloadError, match=reason):
        download_model(_zip_entry(file_server))
    _assert_nothing_installed(models_root())
    assert not (models_root().parent / "escape.onnx").exists()
    assert not (models_root() / "escape.onnx").exists()


def test_zip_symlink_is_refused(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    import io

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        for name, data in pair.items():
            zf.writestr(name, data)
        link = zipfile.ZipInfo("link.onnx")
        link.external_attr = 0o120777 << 16
        zf.writestr(link, "/etc/passwd")
    file_server.add("tiny_model.zip", buffer.getvalue())
    with pytest.raises(DownloadError, match="symbolic link"):
        download_model(_zip_entry(file_server))
    _assert_nothing_installed(models_root())


def test_graphs_of_an_unknown_contract_are_not_installed(
    data_dir: Path, file_server: FileServer, pair: dict[str, bytes]
) -> None:
    files = {**pair, "m.decoder.onnx": decoder_bytes(drop_input="has_mask_input")}
    file_server.add("tiny_model.zip", zip_bytes(files))
    with pytest.raises(DownloadError, match=r"tiny_zip are not a usable model: .*contract"):
        download_model(_zip_entry(file_server))
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == []


def test_zip_without_graphs_is_rejected(data_dir: Path, file_server: FileServer) -> None:
    file_server.add("tiny_model.zip", zip_bytes({"README.md": b"hello"}))
    with pytest.raises(DownloadError, match=r"must hold one folder with an \*encoder\*"):
        download_model(_zip_entry(file_server))
    _assert_nothing_installed(models_root())


def test_failed_force_download_keeps_the_previous_install(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    entry = _zip_entry(file_server)
    installed = download_model(entry).path
    before = {p.name: p.read_bytes() for p in installed.iterdir()}
    file_server.files["tiny_model.zip"] = b"<html>oops</html>"
    with pytest.raises(DownloadError):
        download_model(entry, force=True)
    assert {p.name: p.read_bytes() for p in installed.iterdir()} == before


# --------------------------------------------------------------------------- cancel


def test_cancel_keeps_the_part_and_a_later_call_resumes(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    entry = _zip_entry(file_server)
    cancel = threading.Event()

    def progress(p: DownloadProgress) -> None:
        if p.done > 0:
            cancel.set()  # what a GUI's Cancel button does, from any thread

    with pytest.raises(OperationCancelled, match="cancelled"):
        download_model(entry, progress=progress, cancel=cancel)
    root = models_root()
    _assert_nothing_installed(root)
    kept = (root / DOWNLOADS_DIR / "tiny_model.zip.part").stat().st_size
    assert 0 < kept < len(archive)

    result = download_model(entry)
    assert file_server.requests[-1] == ("tiny_model.zip", f"bytes={kept}-")
    assert result.report is not None


def test_cancel_from_another_thread_mid_transfer(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    file_server.hold = threading.Event()
    cancel = threading.Event()
    outcome: list[BaseException] = []

    def worker() -> None:
        try:
            download_model(_zip_entry(file_server), cancel=cancel)
        except OperationCancelled as exc:
            outcome.append(exc)

    thread = threading.Thread(target=worker)
    thread.start()
    assert file_server.holding.wait(5)
    cancel.set()
    file_server.hold.set()
    thread.join(10)
    assert len(outcome) == 1
    _assert_nothing_installed(models_root())


# --------------------------------------------------------------------------- mirror and CLI


def test_mirror_env_downloads_a_real_catalog_entry(
    data_dir: Path,
    file_server: FileServer,
    archive: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    entry = load_catalog().get(UNVERIFIED_ZIP)
    assert entry.files[0].sha256 is None  # our tiny archive could not match a real checksum
    file_server.add(entry.files[0].path, archive)
    monkeypatch.setenv(MIRROR_ENV, file_server.url + "/")
    result = download_model(UNVERIFIED_ZIP)
    assert file_server.requests == [(entry.files[0].path, None)]
    assert result.path == models_root() / UNVERIFIED_ZIP
    manifest = Manifest.read(result.path)
    assert manifest is not None and manifest.variant == "sam2.1_hiera_b+"
    assert manifest.exporter["decoder_contract"] == "samexporter-multimask-only"


def test_corrupted_download_of_a_pinned_catalog_file_is_refused(
    data_dir: Path,
    file_server: FileServer,
    archive: bytes,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A mirror (or a broken proxy) serving other bytes than the catalog pins installs nothing:
    the wrong size is refused as soon as it is known, wrong content by its sha256."""
    tiny = load_catalog().get("sam2.1_hiera_tiny")
    assert tiny.files[0].bytes == 116_507_723 and tiny.files[0].sha256
    file_server.add(tiny.files[0].path, archive)  # a valid zip, but not the pinned one
    monkeypatch.setenv(MIRROR_ENV, file_server.url)
    with pytest.raises(DownloadError) as info:
        download_model("sam2.1_hiera_tiny")
    url = f"{file_server.url}/{tiny.files[0].path}"
    assert str(info.value) == (
        f"{url} sent {len(archive)} bytes but 116507723 were expected; deleted it"
    )
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == []


def test_corrupted_download_from_a_file_mirror_fails_its_sha256(
    data_dir: Path, tmp_path: Path, pair: dict[str, bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    base_plus = load_catalog().get("sam2_hiera_base_plus")  # sha256 known, size not
    encoder = base_plus.files[0]
    assert encoder.bytes is None and encoder.sha256 is not None
    mirror = tmp_path / "usb-stick"
    mirror.mkdir()
    (mirror / encoder.path).write_bytes(pair["m.encoder.onnx"])  # an ONNX graph, the wrong one
    monkeypatch.setenv(MIRROR_ENV, mirror.as_uri())
    with pytest.raises(DownloadError) as info:
        download_model("sam2_hiera_base_plus")
    message = str(info.value)
    assert message.startswith(f"sha256 mismatch for {mirror.as_uri()}/{encoder.path}: got ")
    assert message.endswith(f"expected {encoder.sha256}; deleted the download")
    _assert_nothing_installed(models_root())
    assert _downloads(models_root()) == []


def test_mirror_errors_say_where_the_mirror_came_from(
    data_dir: Path, file_server: FileServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MIRROR_ENV, file_server.url)
    with pytest.raises(DownloadError, match=f"HTTP 404 .*mirror .*{MIRROR_ENV}"):
        download_model("sam2_hiera_tiny")


@pytest.fixture
def models_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("models",))


def test_cli_download_list_and_path(
    models_cli: None,
    data_dir: Path,
    file_server: FileServer,
    archive: bytes,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(MIRROR_ENV, file_server.url)
    file_server.add(f"{UNVERIFIED_ZIP}_20260221.zip", archive)

    assert cli.main(["models", "path"]) == 0
    assert capsys.readouterr().out.strip() == str(data_dir / "models")

    assert cli.main(["models", "download", UNVERIFIED_ZIP, "--no-progress"]) == 0
    captured = capsys.readouterr()
    out = captured.out
    assert f"installed {UNVERIFIED_ZIP} at {data_dir / 'models' / UNVERIFIED_ZIP}" in out
    assert "contract: sam2-annotator" in out
    # said before the download and in the report: no checksum, and the decoder's rule
    assert captured.err.startswith(f"warning: {UNVERIFIED_ZIP} is UNVERIFIED: the catalog has ")
    assert "  catalog:  UNVERIFIED: the catalog lists no sha256" in out
    assert "  decoder:  samexporter-multimask-only: " in out
    assert "highest predicted IoU instead of SAM2's rule" in out
    assert "sha256:   ok" not in out

    assert cli.main(["models", "download", UNVERIFIED_ZIP]) == 0
    captured = capsys.readouterr()
    assert "already installed" in captured.out and captured.err == ""

    (data_dir / "models" / DOWNLOADS_DIR).mkdir(exist_ok=True)
    (data_dir / "models" / DOWNLOADS_DIR / "sam2_hiera_small.encoder.onnx.part").write_bytes(b"x")
    (data_dir / "models" / "my_export").mkdir()
    assert cli.main(["models", "list"]) == 0
    listing = capsys.readouterr().out
    rows = {line.split()[0]: line for line in listing.splitlines() if line}
    assert f"installed: {data_dir / 'models' / UNVERIFIED_ZIP}" in rows[UNVERIFIED_ZIP]
    assert "partial download" in rows["sam2_hiera_small"]
    assert rows["sam2_hiera_large"].rstrip().endswith("-")
    assert len([r for r in rows if r.startswith("sam2")]) == 8
    assert rows["my_export"].split()[1:3] == ["local", "installed:"]
    tiny_row = rows["sam2.1_hiera_tiny"].split()
    assert tiny_row[1:6] == ["~117", "MB", "zip", "pinned", "multimask-only"]
    assert rows[UNVERIFIED_ZIP].split()[4:6] == ["UNVERIFIED", "multimask-only"]
    assert "DECODER multimask-only: samexporter export: the decoder lacks SAM2's single-mask" in (
        listing
    )


def test_cli_download_errors_are_one_line(
    models_cli: None,
    data_dir: Path,
    file_server: FileServer,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv(MIRROR_ENV, file_server.url)
    assert cli.main(["models", "download", "sam2_hiera_tiny", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: HTTP 404 Not Found for ")
    assert err.count("\n") == 1
    assert cli.main(["models", "download", "nope"]) == 2
    assert "unknown model 'nope'" in capsys.readouterr().err


def test_tqdm_progress_follows_restarts(capsys: pytest.CaptureFixture[str]) -> None:
    with TqdmProgress(disable=False) as bar:
        for done in (0, 50, 100, 0, 100, 200):  # the server ignored Range after 100 bytes
            bar(DownloadProgress("m", "f.zip", 1, 1, done, 200))
    err = capsys.readouterr().err
    assert "f.zip [1/1]" in err
    assert "200/200" in err.replace("B", "")


def test_manifest_lists_every_file_the_archive_brought(
    data_dir: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    folder = download_model(_zip_entry(file_server)).path
    data = json.loads((folder / "manifest.json").read_text())
    assert set(data["files"]) == {"m.encoder.onnx", "m.decoder.onnx", "padding.bin"}
    assert data["files"]["padding.bin"]["bytes"] == len(PADDING)


def test_unwritable_models_folder_is_a_download_error(
    tmp_path: Path, file_server: FileServer, archive: bytes
) -> None:
    file_server.add("tiny_model.zip", archive)
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("a file where the data dir should be")
    with pytest.raises(DownloadError, match="cannot write the download of tiny_zip under"):
        download_model(_zip_entry(file_server), root=blocker / "models")
