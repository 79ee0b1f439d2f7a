"""``models import``: installing a model from files on disk, and the offline download message."""

from __future__ import annotations

import hashlib
import socket
import urllib.request
from pathlib import Path

import pytest

from sam2_annotator import cli
from sam2_annotator.errors import DownloadError, ModelError
from sam2_annotator.models.catalog import (
    Catalog,
    CatalogEntry,
    RemoteFile,
    Source,
    installed_models,
    models_root,
)
from sam2_annotator.models.download import NoConnection, download_model
from sam2_annotator.models.importing import import_model
from sam2_annotator.models.verify import verify_folder
from tests.models.conftest import FileServer, decoder_bytes, zip_bytes

ZIP_NAME = "tiny_model_20260221.zip"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _catalog(zip_sha: str | None = None, pair: dict[str, bytes] | None = None) -> Catalog:
    """A catalog with one zip entry and one onnx-pair entry (sha256s where given)."""
    source = Source("test", "https://models.example.invalid/base", "test source")
    zip_entry = CatalogEntry(
        "tiny_zip", "sam2.1", "tiny", "sam2.1_hiera_t", source, "zip",
        (RemoteFile("archive", ZIP_NAME, sha256=zip_sha),), 1,
    )  # fmt: skip
    files = tuple(
        RemoteFile(
            role,  # type: ignore[arg-type]
            f"m.{role}.onnx",
            bytes=len(pair[f"m.{role}.onnx"]) if pair else None,
            sha256=_sha(pair[f"m.{role}.onnx"]) if pair else None,
        )
        for role in ("encoder", "decoder")
    )
    pair_entry = CatalogEntry(
        "tiny_pair", "sam2", "tiny", "sam2_hiera_t", source, "onnx-pair", files, 1
    )
    return Catalog((zip_entry, pair_entry))


def _snapshot(path: Path) -> dict[str, tuple[bytes, int]]:
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    return {str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in files}


def _nothing_installed(root: Path) -> None:
    assert installed_models(root) == []
    assert not root.exists() or [p.name for p in root.iterdir()] == []  # no staging left


@pytest.fixture
def model_zip(tmp_path: Path, pair: dict[str, bytes]) -> Path:
    path = tmp_path / "usb" / ZIP_NAME
    path.parent.mkdir()
    path.write_bytes(zip_bytes({f"tiny/{n}": d for n, d in pair.items()}))
    return path


# --------------------------------------------------------------------------- installs


def test_zip_matching_the_catalog_sha256_installs_verified(data_dir: Path, model_zip: Path) -> None:
    before = _snapshot(model_zip)
    result = import_model(model_zip, catalog=_catalog(zip_sha=_sha(model_zip.read_bytes())))
    assert result.name == "tiny_zip" and result.verified
    assert result.path == models_root() / "tiny_zip"
    assert "sha256 matches the catalog's tiny_zip" in "\n".join(result.lines())
    report = verify_folder(result.path)  # installed, with a manifest listing its files
    assert report.manifest is not None and report.manifest.variant == "sam2.1_hiera_t"
    assert set(report.checked_sha256) == {"m.encoder.onnx", "m.decoder.onnx"}
    assert _snapshot(model_zip) == before
    assert [p.name for p in models_root().iterdir()] == ["tiny_zip"]


def test_unknown_zip_installs_but_says_unverified(data_dir: Path, model_zip: Path) -> None:
    renamed = model_zip.with_name("my_model.zip")
    model_zip.rename(renamed)
    result = import_model(renamed, catalog=_catalog())
    assert result.name == "my_model" and not result.verified
    assert result.check.text.startswith("UNVERIFIED: my_model.zip not in the catalog")
    assert result.report.manifest is not None and result.report.manifest.weights == "unknown"


def test_zip_named_like_a_catalog_file_without_sha256_is_unverified(
    data_dir: Path, model_zip: Path
) -> None:
    result = import_model(model_zip, catalog=_catalog(zip_sha=None))
    assert result.name == "tiny_zip" and not result.verified
    assert "catalog lists no sha256" in result.check.text


def test_pair_of_files_matching_the_catalog(
    data_dir: Path, model_folder: Path, pair: dict[str, bytes]
) -> None:
    before = _snapshot(model_folder)
    files = [model_folder / "m.decoder.onnx", model_folder / "m.encoder.onnx"]  # any order
    result = import_model(files, catalog=_catalog(pair=pair))
    assert (result.name, result.verified) == ("tiny_pair", True)
    assert sorted(p.name for p in result.path.iterdir()) == [
        "m.decoder.onnx",
        "m.encoder.onnx",
        "manifest.json",
    ]
    assert result.report.contract == "sam2-annotator"
    assert _snapshot(model_folder) == before


def test_folder_and_single_file_find_the_pair(data_dir: Path, model_folder: Path) -> None:
    result = import_model(model_folder, name="from_folder", catalog=_catalog())
    assert result.name == "from_folder" and not result.verified
    named_like = import_model(model_folder / "m.encoder.onnx", catalog=_catalog())
    assert (named_like.name, named_like.verified) == ("tiny_pair", False)  # no sha256 known
    again = import_model(model_folder / "m.decoder.onnx", catalog=Catalog(()))
    assert again.name == "m"  # the files' common stem
    assert {p.name for p in installed_models()} == {"from_folder", "tiny_pair", "m"}


def test_files_with_unhelpful_names_get_their_roles_from_the_graphs(
    data_dir: Path, tmp_path: Path, pair: dict[str, bytes]
) -> None:
    (tmp_path / "a.onnx").write_bytes(pair["m.decoder.onnx"])
    (tmp_path / "b.onnx").write_bytes(pair["m.encoder.onnx"])
    result = import_model([tmp_path / "a.onnx", tmp_path / "b.onnx"], name="ab", catalog=_catalog())
    assert result.report.files.encoder.name == "encoder.onnx"
    assert (result.path / "encoder.onnx").read_bytes() == pair["m.encoder.onnx"]
    assert verify_folder(result.path).contract == "sam2-annotator"


def test_existing_install_needs_force_or_a_new_name(data_dir: Path, model_folder: Path) -> None:
    import_model(model_folder, name="x", catalog=_catalog())
    with pytest.raises(ModelError, match=r"already installed .*--force"):
        import_model(model_folder, name="x", catalog=_catalog())
    assert import_model(model_folder, name="x", force=True, catalog=_catalog()).name == "x"
    renamed = import_model(model_folder, name="x", rename_if_exists=True, catalog=_catalog())
    assert renamed.name == "x-2"


# --------------------------------------------------------------------------- refusals


def test_corrupted_catalog_file_is_refused_and_nothing_is_installed(
    data_dir: Path, model_folder: Path, pair: dict[str, bytes]
) -> None:
    catalog = _catalog(pair=pair)
    encoder = model_folder / "m.encoder.onnx"
    data = bytearray(encoder.read_bytes())
    data[-1] ^= 0xFF  # one flipped byte: still an ONNX header, no longer the catalog's file
    encoder.write_bytes(bytes(data))
    before = _snapshot(model_folder)
    with pytest.raises(ModelError) as info:
        import_model(model_folder, catalog=catalog)
    message = str(info.value)
    assert "named like m.encoder.onnx of the catalog's tiny_pair but does not match" in message
    assert "corrupt" in message and "\n" not in message
    _nothing_installed(models_root())
    assert _snapshot(model_folder) == before


def test_corrupted_catalog_zip_is_refused(data_dir: Path, model_zip: Path) -> None:
    good = _sha(model_zip.read_bytes())
    model_zip.write_bytes(model_zip.read_bytes()[:-10])  # truncated on the stick
    with pytest.raises(ModelError, match="does not match it .*expected " + good):
        import_model(model_zip, catalog=_catalog(zip_sha=good))
    _nothing_installed(models_root())


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (lambda d: d / "nope.zip", "no such file or folder: .*nope.zip"),
        (lambda d: _write(d / "notes.zip", b"<html>not found</html>"), "is not a zip archive"),
        (lambda d: _write(d / "docs.zip", zip_bytes({"a.txt": b"hi"})), "not a model archive"),
        (lambda d: _write(d / "x.encoder.onnx", b"\x00garbage"), "is not an ONNX model"),
        (lambda d: _write(d / "sam2.pt", b"PK..."), "PyTorch checkpoint"),
        (lambda d: d, "is not a model folder"),
    ],
)
def test_unusable_sources_are_one_clear_line(
    data_dir: Path, tmp_path: Path, make, expected: str
) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    with pytest.raises(ModelError, match=expected) as info:
        import_model(make(folder), catalog=_catalog())
    assert "\n" not in str(info.value)
    _nothing_installed(models_root())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_broken_onnx_behind_a_valid_header_is_refused(
    data_dir: Path, model_folder: Path, pair: dict[str, bytes]
) -> None:
    (model_folder / "m.decoder.onnx").write_bytes(pair["m.decoder.onnx"][:40])  # truncated
    before = _snapshot(model_folder)
    with pytest.raises(ModelError) as info:
        import_model(model_folder, catalog=_catalog())
    message = str(info.value)
    assert message.startswith(f"{model_folder} is not a usable model: ONNX Runtime cannot load")
    assert str(model_folder / "m.decoder.onnx") in message and ".staging" not in message
    _nothing_installed(models_root())
    assert _snapshot(model_folder) == before


def test_graphs_of_no_known_contract_are_refused(data_dir: Path, model_folder: Path) -> None:
    (model_folder / "m.decoder.onnx").write_bytes(decoder_bytes(drop_input="mask_input"))
    with pytest.raises(ModelError, match="is not a usable model"):
        import_model(model_folder, catalog=_catalog())
    _nothing_installed(models_root())


def test_folder_with_several_pairs_asks_for_the_two_files(
    data_dir: Path, model_folder: Path, pair: dict[str, bytes]
) -> None:
    (model_folder / "m.decoder_multi.onnx").write_bytes(pair["m.decoder.onnx"])
    with pytest.raises(ModelError, match=r"several encoder/decoder pairs .*give the two files"):
        import_model(model_folder, catalog=_catalog())
    chosen = [model_folder / "m.encoder.onnx", model_folder / "m.decoder_multi.onnx"]
    assert import_model(chosen, catalog=_catalog()).name == "m-multi"


# --------------------------------------------------------------------------- the CLI


@pytest.fixture
def models_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("models",))


def test_cli_import(
    models_cli: None, data_dir: Path, model_folder: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["models", "import", str(model_folder), "--name", "usb"]) == 0
    captured = capsys.readouterr()
    assert f"installed usb at {models_root() / 'usb'}" in captured.out
    assert "catalog:  UNVERIFIED" in captured.out and "contract: sam2-annotator" in captured.out
    assert "is not verified against the catalog" in captured.err
    assert cli.main(["models", "import", str(model_folder / "missing.zip")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no such file or folder: ") and err.count("\n") == 1


# --------------------------------------------------------------------------- offline downloads


def _entry(base_url: str) -> CatalogEntry:
    return CatalogEntry(
        "tiny_zip", "sam2.1", "tiny", "sam2.1_hiera_t", Source("t", base_url), "zip",
        (RemoteFile("archive", ZIP_NAME),), 1,
    )  # fmt: skip


def _assert_offline_advice(message: str, url: str) -> None:
    assert message.startswith(f"cannot download {url}: ")
    assert "no internet connection" in message
    assert f"download {url} there" in message
    assert "`sam2-annotator models import FILE`" in message
    assert "“Install from a file…”" in message
    assert "\n" not in message


def test_refused_connection_says_offline_and_how_to_import(data_dir: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on once closed
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    with pytest.raises(NoConnection) as info:
        download_model(_entry(base))
    _assert_offline_advice(str(info.value), f"{base}/{ZIP_NAME}")
    assert "refused" in str(info.value)
    _nothing_installed(models_root() / "tiny_zip")


def test_unresolvable_host_says_offline(data_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def no_dns(*args: object, **kwargs: object) -> None:
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_dns)
    base = "https://huggingface.co/some/repo/resolve/abc123"
    with pytest.raises(DownloadError) as info:
        download_model(_entry(base))
    message = str(info.value)
    _assert_offline_advice(message, f"{base}/{ZIP_NAME}")
    assert "[Errno -2] Name or service not known" in message


def test_offline_pair_download_names_both_files(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, pair: dict[str, bytes]
) -> None:
    def offline(*args: object, **kwargs: object) -> None:
        raise urllib.error.URLError(socket.gaierror(-3, "Temporary failure in name resolution"))

    monkeypatch.setattr(urllib.request, "urlopen", offline)
    entry = _catalog(pair=pair).get("tiny_pair")
    with pytest.raises(NoConnection) as info:
        download_model(entry)
    message = str(info.value)
    urls = [entry.url(f) for f in entry.files]
    assert f"download {urls[0]} and {urls[1]} there" in message
    assert "models import ENCODER DECODER" in message


def test_http_errors_are_not_called_offline(data_dir: Path, file_server: FileServer) -> None:
    with pytest.raises(DownloadError) as info:
        download_model(_entry(file_server.url))
    assert not isinstance(info.value, NoConnection)
    assert "internet" not in str(info.value)
