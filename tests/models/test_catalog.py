from __future__ import annotations

import json
import re
from pathlib import Path

import platformdirs
import pytest

from sam2_annotator.errors import ModelError
from sam2_annotator.models.catalog import (
    DATA_DIR_ENV,
    DECODER_CONTRACTS,
    EXTRA_CATALOG_ENV,
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
        base = f"{entry.family}_hiera_{entry.size}"
        # samexporter entries carry the config's name; our exact exports add _exact[_int8]
        expected = {"samexporter-multimask-only": base, "sam2-annotator-exact": f"{base}_exact"}
        suffix = "" if entry.precision == "fp32" else f"_{entry.precision}"
        assert entry.name == expected[entry.decoder_contract] + suffix
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
            assert (f.sha256 is None) == bool(f.unverified)  # no checksum -> says why
        assert entry.approx_mb is None or entry.approx_mb > 0
        assert entry.note


def test_every_url_is_pinned_to_a_revision(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(MIRROR_ENV, raising=False)
    for entry in load_catalog().entries:
        source = entry.source
        assert re.fullmatch(r"[0-9a-f]{40}", source.revision), source.name
        assert source.base_url.endswith(f"/resolve/{source.revision}")
        for f in entry.files:
            assert "/resolve/main" not in entry.url(f)


def test_every_entry_states_its_decoder_contract() -> None:
    entries = load_catalog().entries
    assert {e.decoder_contract for e in entries} <= set(DECODER_CONTRACTS)
    # until our own exports are published, every download is a samexporter export
    samexporter = DECODER_CONTRACTS["samexporter-multimask-only"]
    assert not samexporter.exact and "single-mask" in samexporter.text
    assert "highest predicted IoU" in samexporter.text
    assert all(e.contract is samexporter for e in entries)


def test_pinned_and_unverified_files_of_the_packaged_catalog() -> None:
    """The counts the closing note quotes; a change here is a change of the catalog's trust."""
    files = [f for e in load_catalog().entries for f in e.files]
    pinned = [f.filename for f in files if f.verified]
    unverified = sorted(f.filename for f in files if not f.verified)
    assert len(files) == 12 and len(pinned) == 10
    assert unverified == ["sam2.1_hiera_base_plus_20260221.zip", "sam2.1_hiera_large_20260221.zip"]
    with_size = [f.filename for f in files if f.bytes is not None]
    assert len(with_size) == 6  # sam2 tiny/small pairs, sam2.1 tiny/small zips


def test_approx_mb_comes_from_bytes_or_says_where_it_comes_from() -> None:
    for entry in load_catalog().entries:
        sizes = [f.bytes for f in entry.files]
        if all(b is not None for b in sizes):
            assert entry.approx_mb == round(sum(sizes) / 1e6)  # type: ignore[arg-type]
        else:
            assert entry.approx_mb is None or entry.approx_basis
    # the SAM2.1 zips are not SAM2's sizes (the old catalog copied 155 MB for both)
    assert load_catalog().get("sam2.1_hiera_tiny").approx_mb == 117


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
                "decoder_contract": "samexporter-multimask-only",
                "files": [{"role": r, "path": f"{r}.bin", "unverified": "test"} for r in roles],
            }
        ],
    }


def test_catalog_validation_rejects_inconsistent_entries() -> None:
    entry = Catalog.from_dict(_raw("zip", ["archive"])).get("m")
    assert entry.files[0].sha256 is None and not entry.verified and entry.approx_mb is None
    with pytest.raises(ValueError, match="roles"):
        Catalog.from_dict(_raw("onnx-pair", ["encoder"]))
    with pytest.raises(ValueError, match="archive kind"):
        Catalog.from_dict(_raw("tar", ["archive"]))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m, s: m["files"][0].pop("unverified"), "not marked unverified"),
        (lambda m, s: m["files"][0].update(sha256="a" * 64), "marked unverified"),
        (lambda m, s: m.pop("decoder_contract"), "decoder_contract must be one of"),
        (lambda m, s: m.update(approx_mb=5), "approx_basis"),
        (lambda m, s: s.update(base_url="http://x/resolve/{revision}"), "not published yet"),
    ],
)
def test_catalog_validation_rejects_unmarked_or_unpinned_data(change, message: str) -> None:
    raw = _raw("zip", ["archive"])
    change(raw["models"][0], raw["sources"]["s"])
    with pytest.raises(ValueError, match=message):
        Catalog.from_dict(raw)


def test_approx_mb_is_computed_when_every_size_is_known() -> None:
    raw = _raw("zip", ["archive"])
    raw["models"][0]["files"] = [
        {"role": "archive", "path": "a.zip", "bytes": 2_600_000, "sha256": "b" * 64}
    ]
    entry = Catalog.from_dict(raw).get("m")
    assert entry.approx_mb == 3 and entry.verified and entry.size_text == "~3 MB"
    raw["models"][0]["approx_mb"] = 3
    with pytest.raises(ValueError, match="computed from the files"):
        Catalog.from_dict(raw)


def test_extra_catalog_env_adds_entries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _raw("zip", ["archive"])
    extra = tmp_path / "extra.json"
    extra.write_text(json.dumps(raw))
    monkeypatch.setenv(EXTRA_CATALOG_ENV, str(extra))
    catalog = load_catalog()
    assert catalog.get("m").source.base_url == "http://x"
    assert "sam2.1_hiera_tiny" in catalog.names
    broken = tmp_path / "broken.json"
    broken.write_text("{not json")
    for path in (broken, tmp_path / "missing.json"):
        monkeypatch.setenv(EXTRA_CATALOG_ENV, str(path))
        with pytest.raises(ModelError, match=f"cannot use the catalog .*{EXTRA_CATALOG_ENV}"):
            load_catalog()
    raw["models"][0]["name"] = "sam2.1_hiera_tiny"  # a name the packaged catalog has
    clash = tmp_path / "clash.json"
    clash.write_text(json.dumps(raw))
    monkeypatch.setenv(EXTRA_CATALOG_ENV, str(clash))
    with pytest.raises(ModelError, match="duplicate model names"):
        load_catalog()


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
