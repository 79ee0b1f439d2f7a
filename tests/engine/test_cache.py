"""The embedding cache: LRU byte budget, thread safety, fp16 disk entries, atomic writes."""

from __future__ import annotations

import hashlib
import logging
import os
import sys
import threading
import time
from pathlib import Path

import numpy as np
import platformdirs
import pytest

from sam2_annotator.engine import cache as cache_mod
from sam2_annotator.engine.cache import (
    ARRAY_FIELDS,
    DiskCache,
    EmbeddingCache,
    MemoryCache,
    cache_key,
    default_cache_dir,
)
from sam2_annotator.engine.types import Embedding

MODEL_A = hashlib.sha256(b"model a").hexdigest()
MODEL_B = hashlib.sha256(b"model b").hexdigest()
REAL_SHAPES = {
    "image_embed": (1, 256, 64, 64),
    "high_res_feats_0": (1, 32, 256, 256),
    "high_res_feats_1": (1, 64, 128, 128),
}
# Same layout ratios as the real arrays (feats_0 at 4x, feats_1 at 2x the embedding's side),
# small enough that tests stay fast.
TINY_SHAPES = {
    "image_embed": (1, 4, 2, 2),
    "high_res_feats_0": (1, 2, 8, 8),
    "high_res_feats_1": (1, 3, 4, 4),
}


def key(name: str) -> str:
    return cache_key(hashlib.sha256(name.encode()).hexdigest())


def make_emb(
    seed: int = 0,
    shapes: dict[str, tuple[int, ...]] = TINY_SHAPES,
    orig_hw: tuple[int, int] = (480, 640),
) -> Embedding:
    rng = np.random.default_rng(seed)
    # Scaled like real features (mostly |x| < a few units), with some values near zero.
    arrays = {n: (rng.standard_normal(s) * 2.0).astype(np.float32) for n, s in shapes.items()}
    return Embedding(orig_hw=orig_hw, **arrays)


def sized_emb(nbytes: int) -> Embedding:
    """An embedding whose arrays total exactly ``nbytes`` (a multiple of 12)."""
    n = nbytes // 12
    a = np.zeros((1, 1, 1, n), np.float32)
    return Embedding(a, a.copy(), a.copy(), (1, 1))


def fp16_rounded(emb: Embedding) -> dict[str, np.ndarray]:
    return {n: getattr(emb, n).astype(np.float16).astype(np.float32) for n in ARRAY_FIELDS}


# ---------------------------------------------------------------------------- keys and paths


def test_cache_key_normalises_and_refuses_unsafe_names() -> None:
    digest = hashlib.sha256(b"x").hexdigest()
    assert cache_key(f" {digest.upper()}\n") == digest
    for bad in ["../../etc/passwd", "abc", "g" * 64, digest + "/x", ""]:
        with pytest.raises(ValueError):
            cache_key(bad)


def test_default_cache_dir_env_override(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(cache_mod.CACHE_DIR_ENV, str(tmp_path / "emb"))
    assert default_cache_dir() == tmp_path / "emb"
    monkeypatch.delenv(cache_mod.CACHE_DIR_ENV)
    assert default_cache_dir() == Path(platformdirs.user_cache_dir("sam2-annotator")) / "embeddings"


# ---------------------------------------------------------------------------- memory level


def test_lru_evicts_least_recently_used_within_byte_budget() -> None:
    mem = MemoryCache(max_bytes=3 * 1200)
    for name in "abc":
        mem.put(name, sized_emb(1200))
    assert mem.lru_keys() == ["a", "b", "c"]
    assert mem.nbytes == 3600
    assert mem.get("a") is not None  # "a" is now the most recent; "b" the oldest
    assert mem.lru_keys() == ["b", "c", "a"]
    mem.put("d", sized_emb(1200))
    assert "b" not in mem
    assert mem.lru_keys() == ["c", "a", "d"]
    mem.put("e", sized_emb(2400))  # needs two slots: evicts "c" and "a"
    assert mem.lru_keys() == ["d", "e"]
    assert mem.nbytes == 3600 == sum(mem.get(k).nbytes for k in mem.lru_keys())
    assert len(mem) == 2


def test_put_existing_key_replaces_and_recounts() -> None:
    mem = MemoryCache(max_bytes=10_000)
    mem.put("a", sized_emb(1200))
    mem.put("b", sized_emb(1200))
    new = sized_emb(2400)
    mem.put("a", new)
    assert mem.get("a") is new
    assert mem.nbytes == 3600
    assert mem.lru_keys() == ["b", "a"]


def test_oversize_entry_is_not_stored_and_drops_stale_value(
    caplog: pytest.LogCaptureFixture,
) -> None:
    mem = MemoryCache(max_bytes=1200)
    mem.put("a", sized_emb(1200))
    mem.put("keep", sized_emb(12))  # evicts "a"
    mem.put("x", sized_emb(120))
    with caplog.at_level(logging.DEBUG, logger=cache_mod.__name__):
        mem.put("x", sized_emb(2400))
    assert "x" not in mem  # the old value for "x" is stale, not kept
    assert "keep" in mem
    assert mem.nbytes == 12
    assert any("budget" in r.message for r in caplog.records)


def test_zero_budget_disables_memory_cache() -> None:
    mem = MemoryCache(max_bytes=0)
    mem.put("a", make_emb())
    assert len(mem) == 0 and mem.get("a") is None and mem.nbytes == 0
    with pytest.raises(ValueError):
        MemoryCache(max_bytes=-1)


def test_discard_and_clear() -> None:
    mem = MemoryCache(max_bytes=10_000)
    mem.put("a", sized_emb(1200))
    mem.put("b", sized_emb(1200))
    mem.discard("a")
    mem.discard("missing")
    assert mem.lru_keys() == ["b"] and mem.nbytes == 1200
    mem.clear()
    assert len(mem) == 0 and mem.nbytes == 0


def test_memory_cache_is_thread_safe() -> None:
    old_interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible to provoke races
    try:
        max_bytes = 5 * 1200
        mem = MemoryCache(max_bytes=max_bytes)
        sizes = [120, 1200, 2400, 7200]  # 7200 is oversize
        errors: list[str] = []
        stop = threading.Event()

        def worker(seed: int) -> None:
            rng = np.random.default_rng(seed)
            for _ in range(3000):
                k = f"k{rng.integers(20)}"
                op = rng.integers(4)
                if op == 0:
                    mem.discard(k)
                elif op == 1:
                    emb = mem.get(k)
                    if emb is not None and emb.nbytes not in sizes:
                        errors.append(f"bad entry {emb.nbytes}")
                else:
                    mem.put(k, sized_emb(sizes[rng.integers(len(sizes))]))

        def watcher() -> None:
            while not stop.is_set():
                if mem.nbytes > max_bytes:
                    errors.append(f"over budget: {mem.nbytes}")

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(6)]
        watch = threading.Thread(target=watcher)
        watch.start()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        stop.set()
        watch.join()
    finally:
        sys.setswitchinterval(old_interval)
    assert errors == []
    keys = mem.lru_keys()
    assert len(keys) == len(set(keys)) == len(mem)
    assert mem.nbytes == sum(mem.get(k).nbytes for k in keys) <= max_bytes


# ---------------------------------------------------------------------------- disk level


def test_fp16_rounding_error_is_within_half_precision_bound() -> None:
    """How much the disk format changes real-size arrays: fp16 keeps 11 significant bits."""
    emb = make_emb(shapes=REAL_SHAPES)
    unit_roundoff = 2.0**-11  # round-to-nearest with a 10-bit stored mantissa
    smallest_normal = float(np.finfo(np.float16).tiny)
    for name, rounded in fp16_rounded(emb).items():
        orig = getattr(emb, name)
        err = np.abs(rounded - orig)
        normal = np.abs(orig) >= smallest_normal
        rel = err[normal] / np.abs(orig[normal])
        assert rel.max() <= unit_roundoff, name
        # Below fp16's normal range the error is absolute: at most half the subnormal step.
        assert err[~normal].max(initial=0.0) <= 2.0**-25, name
        # Over the whole tensor, the change is about 1e-4 of its norm, safely below 1e-3.
        assert np.linalg.norm(rounded - orig) / np.linalg.norm(orig) < 1e-3, name


def test_disk_round_trip_real_size_equals_fp16_rounded(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    emb = make_emb(seed=3, shapes=REAL_SHAPES, orig_hw=(1080, 1920))
    k = key("photo")
    assert k not in disk and disk.get(k) is None
    assert disk.put(k, emb) is True
    assert k in disk
    path = tmp_path / MODEL_A[:16] / f"{k}.npz"
    assert path.is_file()
    # fp16 storage: about half the float32 size (plus small zip/npy headers).
    assert emb.nbytes / 2 <= disk.size_bytes() == path.stat().st_size < emb.nbytes / 2 + 4096
    back = disk.get(k)
    assert back is not None
    assert back.orig_hw == (1080, 1920)
    for name, expected in fp16_rounded(emb).items():
        arr = getattr(back, name)
        assert arr.dtype == np.float32 and arr.flags.c_contiguous
        np.testing.assert_array_equal(arr, expected)


def test_put_refuses_values_outside_fp16_range(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    emb = make_emb()
    emb.high_res_feats_1[0, 0, 0, 0] = 1e6  # overflows to inf in float16
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        assert disk.put(key("big"), emb) is False
    assert key("big") not in disk
    assert "high_res_feats_1" in caplog.text


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty", "flip_byte"])
def test_damaged_file_is_a_miss_and_is_deleted(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, damage: str
) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")
    disk.put(k, make_emb())
    path = disk.path_for(k)
    data = path.read_bytes()
    damaged = {
        "truncate": data[: len(data) // 2],
        "garbage": os.urandom(len(data)),
        "empty": b"",
        # flip one byte inside the last array's data: the zip CRC check catches it
        "flip_byte": data[:-300] + bytes([data[-300] ^ 0xFF]) + data[-299:],
    }[damage]
    path.write_bytes(damaged)
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        assert disk.get(k) is None
    assert not path.exists()
    assert "unusable" in caplog.text
    assert disk.put(k, make_emb()) and disk.get(k) is not None  # and can be written again


def _write_entry(path: Path, **overrides: np.ndarray) -> None:
    emb = make_emb()
    fields = {
        "format_version": np.array(cache_mod.FORMAT_VERSION, np.int64),
        "model_key": np.array(MODEL_A),
        "image_key": np.array(path.stem),
        "orig_hw": np.array(emb.orig_hw, np.int64),
        **{n: getattr(emb, n).astype(np.float16) for n in ARRAY_FIELDS},
    }
    fields.update(overrides)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as f:
        np.savez(f, **fields)


@pytest.mark.parametrize(
    "override",
    [
        {"format_version": np.array(99, np.int64)},
        {"model_key": np.array(MODEL_B)},
        {"image_key": np.array(key("other"))},
        {"orig_hw": np.array([0, 5], np.int64)},
        {"image_embed": np.zeros((1, 4, 2, 2), np.float32)},  # not fp16
        {"high_res_feats_0": np.zeros((2, 8, 8), np.float16)},  # not [1, C, H, W]
    ],
    ids=["version", "model", "key", "orig_hw", "dtype", "rank"],
)
def test_mismatching_entry_is_a_miss_and_is_deleted(
    tmp_path: Path, override: dict[str, np.ndarray]
) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")
    path = disk.path_for(k)
    _write_entry(path)
    assert disk.get(k) is not None  # the helper writes a valid entry when nothing is overridden
    _write_entry(path, **override)
    assert disk.get(k) is None
    assert not path.exists()


def test_missing_field_is_a_miss(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")
    path = disk.path_for(k)
    path.parent.mkdir(parents=True)
    with path.open("wb") as f:
        np.savez(f, image_embed=np.zeros((1, 1, 1, 1), np.float16))
    assert disk.get(k) is None
    assert not path.exists()


def test_other_model_does_not_see_entries(tmp_path: Path) -> None:
    a, b = DiskCache(tmp_path, MODEL_A), DiskCache(tmp_path, MODEL_B)
    k = key("img")
    a.put(k, make_emb())
    assert k in a and k not in b and b.get(k) is None
    assert b.size_bytes() == 0 and a.size_bytes() > 0
    b.clear()
    assert a.get(k) is not None  # clearing one model leaves the other alone
    # A model key sharing the 16-digit folder prefix still never gets A's embedding.
    same_prefix = DiskCache(tmp_path, MODEL_A[:16] + "0" * 48)
    assert same_prefix.folder == a.folder
    assert same_prefix.get(k) is None


def test_atomic_write_leaves_no_file_when_replace_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")

    def fail_replace(src: object, dst: object) -> None:
        assert Path(str(src)).is_file()  # the whole entry is written before it is moved
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="simulated"):
        disk.put(k, make_emb())
    assert k not in disk
    assert list(disk.folder.iterdir()) == []  # no final file and no temp file
    assert disk.get(k) is None


def test_atomic_write_keeps_old_entry_when_write_is_interrupted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")
    old = make_emb(seed=1)
    disk.put(k, old)

    def interrupted_savez(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt  # Ctrl+C in the middle of `encode`

    monkeypatch.setattr(np, "savez", interrupted_savez)
    with pytest.raises(KeyboardInterrupt):
        disk.put(k, make_emb(seed=2))
    monkeypatch.undo()
    assert [p.name for p in disk.folder.iterdir()] == [f"{k}.npz"]
    back = disk.get(k)
    assert back is not None
    np.testing.assert_array_equal(back.image_embed, fp16_rounded(old)["image_embed"])


def test_stale_temp_files_are_removed_on_open(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    disk.put(key("img"), make_emb())
    stale = disk.folder / f"{key('a')}.x1.tmp"
    fresh = disk.folder / f"{key('b')}.x2.tmp"
    stale.write_bytes(b"half")
    fresh.write_bytes(b"half")
    old = time.time() - cache_mod.STALE_TEMP_S - 60
    os.utime(stale, (old, old))
    DiskCache(tmp_path, MODEL_A)
    assert not stale.exists()
    assert fresh.exists()  # may belong to a writer that is still running
    assert key("img") in disk


def test_size_bytes_and_clear(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    assert disk.size_bytes() == 0
    disk.clear()  # no folder yet: nothing to do
    for i in range(3):
        disk.put(key(f"img{i}"), make_emb(seed=i))
    (disk.folder / f"{key('x')}.y.tmp").write_bytes(b"partial")
    files = sorted(disk.folder.glob("*.npz"))
    assert len(files) == 3
    assert disk.size_bytes() == sum(p.stat().st_size for p in files)
    disk.clear()
    assert disk.size_bytes() == 0 and list(disk.folder.iterdir()) == []


def test_concurrent_disk_put_and_get_never_see_partial_files(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("shared")
    embs = [make_emb(seed=i) for i in range(4)]
    expected = [fp16_rounded(e)["image_embed"] for e in embs]
    errors: list[str] = []

    def writer(i: int) -> None:
        for _ in range(25):
            disk.put(k, embs[i])

    def reader() -> None:
        for _ in range(100):
            emb = disk.get(k)
            if emb is not None and not any(np.array_equal(emb.image_embed, e) for e in expected):
                errors.append("read a mixed or partial entry")

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [p.name for p in disk.folder.iterdir()] == [f"{k}.npz"]
    assert disk.get(k) is not None


# ---------------------------------------------------------------------------- size cap (LRU)


def _entry_size(tmp_path: Path) -> int:
    probe = DiskCache(tmp_path / "probe", MODEL_A, max_bytes=0)
    probe.put(key("probe"), make_emb())
    return probe.path_for(key("probe")).stat().st_size


def _age(disk: DiskCache, name: str, seconds_ago: float) -> None:
    t = time.time() - seconds_ago
    os.utime(disk.path_for(key(name)), (t, t))


def test_disk_cap_evicts_least_recently_used(tmp_path: Path) -> None:
    size = _entry_size(tmp_path)
    disk = DiskCache(tmp_path / "c", MODEL_A, max_bytes=int(3.5 * size))  # room for 3
    for age, name in [(300, "a"), (200, "b"), (100, "c")]:
        disk.put(key(name), make_emb())
        _age(disk, name, age)  # explicit mtimes: file-system clocks can be coarse
    assert disk.total_bytes() == 3 * size and disk.evicted == 0
    disk.put(key("d"), make_emb())
    assert key("a") not in disk  # the oldest went
    assert all(key(n) in disk for n in "bcd")
    assert disk.total_bytes() <= disk.max_bytes and disk.evicted == 1


def test_disk_hit_refreshes_recency(tmp_path: Path) -> None:
    size = _entry_size(tmp_path)
    disk = DiskCache(tmp_path / "c", MODEL_A, max_bytes=int(3.5 * size))
    for age, name in [(300, "a"), (200, "b"), (100, "c")]:
        disk.put(key(name), make_emb())
        _age(disk, name, age)
    assert disk.get(key("a")) is not None  # a is now the most recently used
    assert disk.touch(key("b")) is True  # `encode` skipping a cached image marks it too
    assert disk.touch(key("missing")) is False
    _age(disk, "b", 50)
    disk.put(key("d"), make_emb())
    assert key("c") not in disk  # least recently used after the hit and the touch
    assert all(key(n) in disk for n in "abd")


def test_disk_cap_is_enforced_over_many_writes(tmp_path: Path) -> None:
    size = _entry_size(tmp_path)
    cap = int(5.5 * size)
    disk = DiskCache(tmp_path / "c", MODEL_A, max_bytes=cap)
    for i in range(20):
        disk.put(key(f"img{i}"), make_emb(seed=i))
        assert disk.total_bytes() <= cap
    assert disk.total_bytes() >= int(cap * cache_mod.EVICT_TO) - size  # evicts no more than needed
    assert key("img19") in disk


def test_disk_cap_covers_all_models_and_only_entries(tmp_path: Path) -> None:
    size = _entry_size(tmp_path)
    cap = int(5.5 * size)
    b = DiskCache(tmp_path / "c", MODEL_B, max_bytes=0)
    for i in range(5):
        b.put(key(f"b{i}"), make_emb(seed=i))
        _age(b, f"b{i}", 100 - i)
    foreign = tmp_path / "c" / "not-a-model"
    foreign.mkdir()
    (foreign / f"{key('x')}.npz").write_bytes(b"x" * (10 * size))  # never counted or deleted
    b.folder.joinpath("notes.npz").write_bytes(b"y" * size)  # not a hex key: not ours either
    a = DiskCache(tmp_path / "c", MODEL_A, max_bytes=cap)
    a.put(key("a0"), make_emb())  # its first write checks the whole folder
    assert a.total_bytes() <= cap
    assert key("b0") not in b and key("b4") in b and key("a0") in a
    assert (foreign / f"{key('x')}.npz").exists() and b.folder.joinpath("notes.npz").exists()


def test_disk_entry_larger_than_cap_is_not_written(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    disk = DiskCache(tmp_path, MODEL_A, max_bytes=100)
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        assert disk.put(key("img"), make_emb()) is False
    assert key("img") not in disk and "cache cap" in caplog.text


def test_disk_cap_zero_means_no_cap(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A, max_bytes=0)
    for i in range(5):
        disk.put(key(f"img{i}"), make_emb())
    assert disk.enforce_limit() == 0 and len(list(disk.folder.glob("*.npz"))) == 5
    with pytest.raises(ValueError):
        DiskCache(tmp_path, MODEL_A, max_bytes=-1)


def test_disk_cap_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    assert cache_mod.parse_max_gb("1.5") == 3 * 2**29
    assert cache_mod.parse_max_gb("0") == 0
    for bad in ["x", "-1", "nan", "inf", ""]:
        with pytest.raises(ValueError):
            cache_mod.parse_max_gb(bad)
    monkeypatch.delenv(cache_mod.CACHE_MAX_GB_ENV, raising=False)
    assert DiskCache(tmp_path, MODEL_A).max_bytes == cache_mod.DEFAULT_MAX_BYTES
    monkeypatch.setenv(cache_mod.CACHE_MAX_GB_ENV, "0.5")
    assert DiskCache(tmp_path, MODEL_A).max_bytes == 2**29
    assert DiskCache(tmp_path, MODEL_A, max_bytes=123).max_bytes == 123  # explicit wins
    monkeypatch.setenv(cache_mod.CACHE_MAX_GB_ENV, "lots")
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        assert DiskCache(tmp_path, MODEL_A).max_bytes == cache_mod.DEFAULT_MAX_BYTES
    assert cache_mod.CACHE_MAX_GB_ENV in caplog.text


def test_cap_recorded_in_the_folder_is_kept_by_later_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """A shared folder filled with no cap is not evicted down to a laptop's default."""
    monkeypatch.setenv(cache_mod.CACHE_MAX_GB_ENV, "1")
    assert cache_mod.recorded_max_bytes(tmp_path) is None
    cache_mod.record_max_bytes(tmp_path, 0)  # `encode --cache-max-gb 0`
    assert DiskCache(tmp_path, MODEL_A).max_bytes == 0  # the folder's record beats the env
    assert DiskCache(tmp_path, MODEL_A, max_bytes=5).max_bytes == 5  # an explicit cap beats both
    cache_mod.record_max_bytes(tmp_path, 2**30)
    assert DiskCache(tmp_path, MODEL_B).max_bytes == 2**30
    assert sorted(p.name for p in tmp_path.iterdir()) == [cache_mod.LIMIT_FILE]  # no temp left
    with pytest.raises(ValueError):
        cache_mod.record_max_bytes(tmp_path, -1)
    for bad in ["{", '{"max_bytes": -3}', '{"max_bytes": "big"}', "[]"]:
        (tmp_path / cache_mod.LIMIT_FILE).write_text(bad)
        with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
            assert DiskCache(tmp_path, MODEL_A).max_bytes == 2**30  # falls back to the env var
        assert cache_mod.LIMIT_FILE in caplog.text


def test_eviction_tolerates_files_vanishing_underneath(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    size = _entry_size(tmp_path)
    disk = DiskCache(tmp_path / "c", MODEL_A, max_bytes=0)
    for i, name in enumerate("abcd"):
        disk.put(key(name), make_emb())
        _age(disk, name, 100 - i)
    disk.max_bytes = int(2.5 * size)
    original_scan = DiskCache._scan_all_entries

    def scan_then_lose_some(self: DiskCache) -> list[tuple[Path, float, int]]:
        found = original_scan(self)
        self.path_for(key("a")).unlink()  # another process evicts a and b after our listing
        self.path_for(key("b")).unlink()
        return found

    monkeypatch.setattr(DiskCache, "_scan_all_entries", scan_then_lose_some)
    assert disk.enforce_limit() == 0  # nothing left for us to delete, and no error
    monkeypatch.undo()
    assert key("c") in disk and key("d") in disk  # counted a and b as gone: kept the rest


def test_corrupt_entry_replaced_meanwhile_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")
    path = disk.path_for(k)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"half an entry")
    original_read = DiskCache._read
    writer = DiskCache(tmp_path, MODEL_A)

    def read_while_another_writer_replaces(self: DiskCache, f, key_: str) -> Embedding:
        writer.put(k, make_emb())  # a good entry lands between our open and our delete
        return original_read(self, f, key_)

    monkeypatch.setattr(DiskCache, "_read", read_while_another_writer_replaces)
    assert disk.get(k) is None  # we opened the broken file: a miss...
    monkeypatch.undo()
    assert disk.get(k) is not None  # ...but the other writer's good entry was not deleted


_WORKER = """
import sys, hashlib, numpy as np
from pathlib import Path
from sam2_annotator.engine.cache import DiskCache, cache_key
from sam2_annotator.engine.types import Embedding
root, model, cap, wid = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
disk = DiskCache(root, model, max_bytes=cap)
keys = [cache_key(hashlib.sha256(f"img{i}".encode()).hexdigest()) for i in range(24)]
def emb(i):
    a = np.full((1, 4, 2, 2), i, np.float32)
    return Embedding(a, np.full((1, 2, 8, 8), i, np.float32), np.full((1, 3, 4, 4), i, np.float32),
                     (10, i + 1))
bad = 0
for rnd in range(10):
    for j in range(24):
        i = (j * 5 + wid * 7 + rnd) % 24
        disk.put(keys[i], emb(i))
        got = disk.get(keys[(i + 11) % 24])
        if got is not None and not (got.orig_hw == (10, (i + 11) % 24 + 1)
                                    and (got.image_embed == (i + 11) % 24).all()):
            bad += 1
print(bad, disk.evicted)
"""


def test_concurrent_processes_with_eviction_stay_consistent(tmp_path: Path) -> None:
    """Three processes write, read and evict in one small-capped folder at once."""
    import subprocess

    size = _entry_size(tmp_path)
    cap = 8 * size
    root = tmp_path / "shared"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, str(root), MODEL_A, str(cap), str(w)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for w in range(3)
    ]
    results = [p.communicate(timeout=120) for p in procs]
    for p, (_out, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
        assert "Traceback" not in err
    bad = [int(out.split()[0]) for out, _ in results]
    evicted = [int(out.split()[1]) for out, _ in results]
    assert bad == [0, 0, 0]  # every hit was a complete entry for its own key
    assert sum(evicted) > 0  # eviction did run concurrently with writers and readers
    disk = DiskCache(root, MODEL_A, max_bytes=cap)
    disk.enforce_limit()
    assert disk.total_bytes() <= cap
    assert not list(disk.folder.glob("*.tmp"))  # no temp file left behind


# ---------------------------------------------------------------------------- two levels


def test_two_level_get_promotes_disk_entry_to_memory(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")
    emb = make_emb()
    disk.put(k, emb)  # e.g. filled earlier by `sam2-annotator encode`
    cache = EmbeddingCache(MemoryCache(max_bytes=10**6), disk)
    assert k in cache and k not in cache.memory
    first = cache.get(k)
    assert first is not None and k in cache.memory
    np.testing.assert_array_equal(first.high_res_feats_0, fp16_rounded(emb)["high_res_feats_0"])
    disk.clear()
    assert cache.get(k) is first  # served from memory now


def test_two_level_put_fills_both_and_memory_keeps_exact_fp32(tmp_path: Path) -> None:
    cache = EmbeddingCache(MemoryCache(max_bytes=10**6), DiskCache(tmp_path, MODEL_A))
    k = key("img")
    emb = make_emb()
    assert cache.put(k, emb) is True
    assert cache.get(k) is emb  # exact float32 from memory, not the fp16 disk copy
    assert k in cache.disk
    cache.memory.clear()
    assert cache.get(k) is not None  # still on disk


def test_two_level_put_of_an_entry_on_disk_refreshes_its_recency(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path, MODEL_A)
    k = key("img")
    disk.put(k, make_emb())
    _age(disk, "img", 1000)
    old = disk.path_for(k).stat().st_mtime
    cache = EmbeddingCache(MemoryCache(max_bytes=10**6), disk)
    assert cache.put(k, make_emb()) is True
    assert disk.path_for(k).stat().st_mtime > old + 900


def test_two_level_put_survives_disk_failure(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    cache = EmbeddingCache(MemoryCache(max_bytes=10**6), DiskCache(tmp_path, MODEL_A))
    k = key("img")

    def fail_replace(src: object, dst: object) -> None:
        raise OSError("read-only file system (simulated)")

    monkeypatch.setattr(os, "replace", fail_replace)
    emb = make_emb()
    with caplog.at_level(logging.WARNING, logger=cache_mod.__name__):
        assert cache.put(k, emb) is False
    assert cache.get(k) is emb
    assert "simulated" in caplog.text


def test_two_level_without_disk(tmp_path: Path) -> None:
    cache = EmbeddingCache(MemoryCache(max_bytes=10**6))
    emb = make_emb()
    assert cache.put("anything", emb) is False
    assert cache.get("anything") is emb and "anything" in cache
    assert cache.get("missing") is None and "missing" not in cache
    assert list(tmp_path.iterdir()) == []
