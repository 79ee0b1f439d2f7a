"""Shared fixtures: the random-init SAM2.1 hiera-tiny model, exported once per machine."""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_IMAGES = ROOT.parent / "shared" / "data" / "images"
TEST_CONFIG = "sam2.1_hiera_t"
TEST_SEED = 0


def _cache_root() -> Path:
    env = os.environ.get("SAM2_ANNOTATOR_TEST_CACHE")
    if env:
        return Path(env)
    import platformdirs

    return Path(platformdirs.user_cache_dir("sam2-annotator")) / "test-models"


def _exporter_fingerprint() -> str:
    """Changes whenever the exporter or torch change, so a stale export is never reused."""
    from sam2_annotator.models.export import exporter_fingerprint

    return exporter_fingerprint()


def export_cached(config: str = TEST_CONFIG, seed: int = TEST_SEED) -> Path:
    """Export (once per machine) the random-init model and return its folder."""
    from sam2_annotator.models.export import export_model

    root = _cache_root()
    root.mkdir(parents=True, exist_ok=True)
    target = root / f"{config}-seed{seed}-{_exporter_fingerprint()}"
    with open(root / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "manifest.json").is_file():
            tmp = root / f".tmp-{target.name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            export_model(config, tmp, checkpoint=None, seed=seed)
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
    return target


@pytest.fixture(scope="session")
def model_dir() -> Path:
    """Folder with encoder.onnx, decoder.onnx and manifest.json (random-init hiera-tiny)."""
    return export_cached()


@pytest.fixture(scope="session")
def engine(model_dir: Path):
    from sam2_annotator.engine.model_files import ModelFiles
    from sam2_annotator.engine.predictor import Sam2Engine

    return Sam2Engine(ModelFiles.from_folder(model_dir))


@pytest.fixture(scope="session")
def shared_images() -> dict[str, Path]:
    paths = {p.stem: p for p in sorted(SHARED_IMAGES.glob("*.jpg"))}
    assert {"truck", "groceries", "cars"} <= set(paths), f"missing test photos in {SHARED_IMAGES}"
    return paths


@pytest.fixture
def small_rgb() -> np.ndarray:
    rng = np.random.default_rng(1)
    return rng.integers(0, 256, (120, 160, 3), dtype=np.uint8)


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the measured parity figures (the closing notes quote them)."""
    import sys

    module = sys.modules.get("tests.engine.test_parity")
    results = getattr(module, "RESULTS", None)
    if results:
        worst_diff = max(r[1] for r in results)
        worst_iou = min(r[2] for r in results)
        span = min(r[3] for r in results), max(r[3] for r in results)
        terminalreporter.write_line(
            f"parity vs PyTorch: {len(results)} cases, worst |low-res logit diff| "
            f"{worst_diff:.2e}, worst mask IoU {worst_iou:.6f} (reference |logits| peak "
            f"{span[0]:.1f}..{span[1]:.1f})"
        )
