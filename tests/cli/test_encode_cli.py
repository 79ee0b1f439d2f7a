"""``sam2-annotator encode DIR``: fills the disk cache, skips what is cached, resumes, shards."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest
from PIL import Image

from sam2_annotator.cli import main
from sam2_annotator.commands.encode import parse_shard, shard_of
from sam2_annotator.engine.cache import DiskCache, cache_key
from sam2_annotator.engine.cache_sources import SOURCES_FOLDER, SourceIndex
from sam2_annotator.engine.image_io import image_hash, load_image


@pytest.fixture
def folder(tmp_path):
    rng = np.random.default_rng(5)
    images = tmp_path / "imgs"
    images.mkdir()
    for name in ("b.png", "a.jpg"):
        Image.fromarray(rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)).save(images / name)
    (images / "broken.jpg").write_bytes(b"not a jpeg")
    return images


def _run(folder, cache, model_dir) -> int:
    return main(
        [
            "encode",
            str(folder),
            "--model",
            str(model_dir),
            "--cache-dir",
            str(cache),
            "--no-progress",
        ]
    )


def test_encode_fills_cache_and_resumes(folder, tmp_path, model_dir, engine, capsys, monkeypatch):
    cache = tmp_path / "cache"
    disk = DiskCache(cache, engine.model_key)
    original_put = DiskCache.put
    calls = {"n": 0}

    def interrupted_put(self, key, emb):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original_put(self, key, emb)

    monkeypatch.setattr(DiskCache, "put", interrupted_put)
    assert _run(folder, cache, model_dir) == 130  # Ctrl+C during the second image
    monkeypatch.setattr(DiskCache, "put", original_put)
    keys = {name: cache_key(image_hash(load_image(folder / name))) for name in ("a.jpg", "b.png")}
    assert keys["a.jpg"] in disk and keys["b.png"] not in disk

    capsys.readouterr()
    assert _run(folder, cache, model_dir) == 1  # broken.jpg is reported, the rest is done
    out = capsys.readouterr().out
    assert "1 encoded, 1 already cached, 1 failed" in out and "broken.jpg" in out
    assert keys["b.png"] in disk

    stored = disk.get(keys["b.png"])
    fresh = engine.encode(load_image(folder / "b.png"))
    np.testing.assert_allclose(stored.image_embed, fresh.image_embed, rtol=2e-3, atol=1e-4)
    assert stored.orig_hw == (48, 64)
    # Each file's key is recorded as a hint, so the window finds its entry before decoding it.
    hints = SourceIndex(cache)
    assert {name: hints.key_for(folder / name) for name in keys} == keys


def test_encode_rejects_a_missing_folder(tmp_path, model_dir, capsys):
    assert _run(tmp_path / "nope", tmp_path / "cache", model_dir) == 2
    assert "not a folder" in capsys.readouterr().err


# ---------------------------------------------------------------------------- --shard K/N


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("x", "expected K/N"),
        ("1/2/3", "expected K/N"),
        ("3/2", "0..1"),
        ("2/2", "the last of 2 shards is 1/2"),
        ("-1/3", "0..2"),
        ("0/0", "at least 1"),
    ],
)
def test_bad_shard_is_refused_with_the_reason(tmp_path, text, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["encode", str(tmp_path), f"--shard={text}"])
    assert exit_info.value.code == 2
    assert "--shard" in (err := capsys.readouterr().err) and message in err


@pytest.mark.parametrize("text", ["x", "-1", "nan"])
def test_bad_cache_cap_is_refused(tmp_path, text, capsys):
    with pytest.raises(SystemExit):
        main(["encode", str(tmp_path), "--cache-max-gb", text])
    assert "--cache-max-gb" in capsys.readouterr().err


def test_shard_of_is_pinned_and_partitions():
    # Pinned values: machines (and versions) must agree on the slices of a running job array.
    assert [shard_of(n, 4) for n in ("a.jpg", "b.png", "img10.jpg")] == [2, 0, 0]
    assert parse_shard(" 1/3 ") == (1, 3)
    names = [f"img{i:05d}.jpg" for i in range(3000)]
    counts = [sum(shard_of(n, 3) == k for n in names) for k in range(3)]
    assert sum(counts) == 3000 and min(counts) > 900  # each name in one shard; balanced
    nfd, nfc = "cafe\u0301.jpg", "caf\u00e9.jpg"  # macOS spells file names decomposed
    assert shard_of(nfd, 7) == shard_of(nfc, 7)
    assert all(shard_of(n, 1) == 0 for n in names[:10])


def _shard_folder(tmp_path, per_shard: int = 2, n: int = 3):
    """Small images whose names fall ``per_shard`` into each of ``n`` shards."""
    rng = np.random.default_rng(11)
    folder = tmp_path / "dataset"
    folder.mkdir()
    taken = {k: [] for k in range(n)}
    i = 0
    while any(len(v) < per_shard for v in taken.values()):
        name = f"img{i:03d}.png"
        k = shard_of(name, n)
        if len(taken[k]) < per_shard:
            taken[k].append(name)
            pixels = rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / name)
        i += 1
    return folder, taken


_CLI = "import sys; from sam2_annotator.cli import main; sys.exit(main(sys.argv[1:]))"


def test_three_concurrent_shards_encode_every_image_exactly_once(tmp_path, model_dir, capsys):
    """Three `encode --shard K/3` processes share one cache folder, as a job array would."""
    folder, expected = _shard_folder(tmp_path)
    cache = tmp_path / "shared-cache"
    start = time.perf_counter()
    command = [sys.executable, "-c", _CLI, "encode", str(folder), "--model", str(model_dir)]
    command += ["--cache-dir", str(cache), "--threads", "1", "--json", "--no-progress"]
    procs = [
        subprocess.Popen(
            [*command, "--shard", f"{k}/3"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for k in range(3)
    ]
    outputs = [p.communicate(timeout=600) for p in procs]
    wall = time.perf_counter() - start
    for p, (_, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
    reports = [json.loads(out) for out, _ in outputs]

    encoded = [set(r["encoded"]) for r in reports]
    everything = {name for names in expected.values() for name in names}
    for k, report in enumerate(reports):
        assert report["shard"] == [k, 3] and report["images_in_folder"] == 6
        assert encoded[k] == set(expected[k])  # the slice this shard owns, all of it
        assert report["cached"] == [] and report["failed"] == []
    assert sum(len(e) for e in encoded) == len(everything) == 6  # no image encoded twice
    assert set().union(*encoded) == everything  # and none left out

    model_folders = [p for p in cache.iterdir() if p.name != SOURCES_FOLDER]
    assert len(model_folders) == 1
    hints = SourceIndex(cache)  # written by the three processes side by side, all complete
    assert all(hints.key_for(folder / name) is not None for name in everything)
    assert len(list(model_folders[0].glob("*.npz"))) == 6
    assert not list(model_folders[0].glob("*.tmp"))

    # An unsharded run afterwards finds everything cached: nothing is encoded again.
    capsys.readouterr()
    args = ["encode", str(folder), "--model", str(model_dir), "--cache-dir", str(cache)]
    assert main([*args, "--json", "--no-progress"]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["encoded"] == [] and sorted(again["cached"]) == sorted(everything)
    per_shard = ", ".join(f"{r['seconds']:.1f}" for r in reports)
    print(f"3 shards x 2 images, concurrent: {wall:.1f} s wall (shards' own: {per_shard} s)")


def test_empty_shard_succeeds_without_loading_a_model(tmp_path, capsys):
    folder = tmp_path / "one"
    folder.mkdir()
    Image.new("RGB", (8, 8)).save(folder / "a.jpg")  # shard_of("a.jpg", 4) == 2
    assert main(["encode", str(folder), "--shard", "0/4", "--model", str(tmp_path / "none")]) == 0
    assert "shard 0/4: 0 of 1 images; 0 encoded" in capsys.readouterr().out


def test_cache_cap_evicts_and_warns(folder, tmp_path, model_dir, capsys):
    cache = tmp_path / "cache"
    # about 10.7 MiB: room for one 8 MiB entry, not two
    args = ["encode", str(folder), "--model", str(model_dir), "--cache-dir", str(cache)]
    assert main([*args, "--cache-max-gb", "0.01", "--json", "--no-progress"]) == 1  # broken.jpg
    captured = capsys.readouterr()
    report = json.loads(captured.out)
    assert len(report["encoded"]) == 2 and report["evicted"] == 1
    assert report["cache_max_bytes"] == int(0.01 * 2**30)
    assert "capped at" in captured.err and "--cache-max-gb" in captured.err
    (model_folder,) = (p for p in cache.iterdir() if p.is_dir() and p.name != SOURCES_FOLDER)
    assert len(list(model_folder.glob("*.npz"))) == 1
    # The cap is remembered by the folder: the app (no cap given) keeps it.
    assert DiskCache(cache, "0" * 64).max_bytes == int(0.01 * 2**30)
