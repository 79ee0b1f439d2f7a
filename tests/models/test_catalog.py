from __future__ import annotations

import re
from pathlib import Path

import platformdirs
import pytest

from sam2_annotator.errors import ModelError
from sam2_annotator.models.catalog import (
    DATA_DIR_ENV,
    MIRROR_ENV,
    Catalog,
    installed_models,
    is_installed,
    load_catalog,
    models_root,
)

SIZES = {"tiny": "t", "small": "s", "base_plus": "b+", "large": "l"}


def test_catalog_covers_both_families_in_all_four_sizes() -> None:
    catalog = load_catalog()
    found = {(e.family, e.size) for e in catalog.entries}
    assert found == {(f, s) for f in ("sam2", "sam2.1") for s in SIZES}
    assert len(set(catalog.names)) == len(catalog.names)


def test_names_and_variants_follow_the_sam2_config_names() -> None:
    for entry in load_catalog().entries:
        assert entry.name == f"{entry.family}_hiera_{entry.size}"
        assert entry.variant == f"{entry.family}_hiera_{SIZES[entry.size]}"


def test_variants_match_the_exporter_so_manifests_agree() -> None:
    from sam2_annotator.models.export import VARIANTS

    short_names = {v.name for v in VARIANTS.values()}
    assert {e.variant for e in load_catalog().entries} <= short_names


def test_files_match_the_archive_kind_and_checksums_are_hex() -> None:
    for entry in load_catalog().entries:
        roles = [f.role for f in entry.files]
        if entry.archive == "zip":
            assert roles == ["archive"] and entry.files[0].path.endswith(".zip")
        else:
            assert roles == ["encoder", "decoder"]
            assert "encoder" in entry.files[0].path and "decoder" in entry.files[1].path
        for f in entry.files:
            assert f.sha256 is None or re.fullmatch(r"[0-9a-f]{64}", f.sha256)
            assert f.bytes is None or f.bytes > 1_000_000
        assert entry.approx_mb > 0
        assert entry.note


def test_relative_paths_are_unique_so_one_mirror_folder_serves_all() -> None:
    paths = [f.path for e in load_catalog().entries for f in e.files]
    assert len(set(paths)) == len(paths)


def test_default_urls_use_https_sources(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    for entry in load_catalog().entries:
        for f in entry.files:
            url = entry.url(f)
            assert url == f"{entry.source.base_url}/{f.path}"
            assert url.startswith("https://")


def test_mirror_env_replaces_the_base_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIRROR_ENV, "http://mirror.example/sam2/")
    entry = load_catalog().get("sam2.1_hiera_tiny")
    assert entry.url(entry.files[0]) == "http://mirror.example/sam2/" + entry.files[0].path
    pair = load_catalog().get("sam2_hiera_large")
    assert [pair.url(f) for f in pair.files] == [
        "http://mirror.example/sam2/sam2_hiera_large.encoder.onnx",
        "http://mirror.example/sam2/sam2_hiera_large.decoder.onnx",
    ]


def test_unknown_name_lists_the_known_ones() -> None:
    with pytest.raises(ModelError, match=r"sam2\.1_hiera_tiny") as info:
        load_catalog().get("sam3_huge")
    assert "sam3_huge" in str(info.value)


def _raw(archive: str, roles: list[str]) -> dict:
    return {
        "sources": {"s": {"base_url": "http://x"}},
        "models": [
            {
                "name": "m",
                "family": "sam2",
                "size": "tiny",
                "variant": "sam2_hiera_t",
                "source": "s",
                "archive": archive,
                "approx_mb": 1,
                "files": [{"role": r, "path": f"{r}.bin"} for r in roles],
            }
        ],
    }


def test_catalog_validation_rejects_inconsistent_entries() -> None:
    assert Catalog.from_dict(_raw("zip", ["archive"])).get("m").files[0].sha256 is None
    with pytest.raises(ValueError, match="roles"):
        Catalog.from_dict(_raw("onnx-pair", ["encoder"]))
    with pytest.raises(ValueError, match="archive kind"):
        Catalog.from_dict(_raw("tar", ["archive"]))


def test_models_root_honours_the_data_dir_env(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(DATA_DIR_ENV, str(tmp_path / "portable"))
    assert models_root() == tmp_path / "portable" / "models"
    monkeypatch.delenv(DATA_DIR_ENV)
    assert models_root() == Path(platformdirs.user_data_dir("sam2-annotator", False)) / "models"


def test_installed_models_skips_staging_and_download_folders(data_dir: Path) -> None:
    root = models_root()
    assert installed_models() == []
    for name in ("sam2_hiera_tiny", ".downloads", ".staging-sam2_hiera_small-x"):
        (root / name).mkdir(parents=True)
    assert installed_models() == [root / "sam2_hiera_tiny"]
    assert is_installed("sam2_hiera_tiny") and not is_installed("sam2_hiera_small")
