"""``sam2-annotator encode DIR``: fills the disk cache, skips what is cached, resumes."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from sam2_annotator.cli import main
from sam2_annotator.engine.cache import DiskCache, cache_key
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


def test_encode_rejects_a_missing_folder(tmp_path, model_dir, capsys):
    assert _run(tmp_path / "nope", tmp_path / "cache", model_dir) == 2
    assert "not a folder" in capsys.readouterr().err
