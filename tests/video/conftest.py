"""Video fixtures: the random-init model with its tracking graphs, and the PyTorch reference.

The random-init object-score head calls every object absent (every mask empty), which would make
a parity test compare empty masks; as issue 11 measured, setting the last bias of
``sam_mask_decoder.pred_obj_score_head`` to +10 (all other weights unchanged) makes the clicked
objects present. Both sides use that bias.
"""

from __future__ import annotations

import fcntl
import os
import shutil
from pathlib import Path

import pytest

from tests.conftest import TEST_CONFIG, TEST_SEED, _cache_root, export_cached

OBJECT_SCORE_BIAS = 10.0
VIDEO = (
    Path(__file__).resolve().parents[2].parent / "shared" / "data" / "videos" / "bigbuckbunny.mp4"
)


def _video_fingerprint() -> str:
    """Also changes with the image exporter: the video folder holds the image graphs too."""
    from sam2_annotator.models.export import exporter_fingerprint

    return exporter_fingerprint("export_video")


def export_video_cached(config: str = TEST_CONFIG, seed: int = TEST_SEED) -> Path:
    """Export (once per machine) the random-init model with its video graphs."""
    from sam2_annotator.models.export_video import export_video_model

    image_dir = export_cached(config, seed)
    root = _cache_root()
    target = root / f"{config}-seed{seed}-video-objbias{OBJECT_SCORE_BIAS:g}-{_video_fingerprint()}"
    with open(root / ".lock-video", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not (target / "video.json").is_file():
            tmp = root / f".tmp-{target.name}-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            export_video_model(
                config,
                tmp,
                seed=seed,
                object_score_bias=OBJECT_SCORE_BIAS,
                image_graphs_from=image_dir,
            )
            shutil.rmtree(target, ignore_errors=True)
            os.replace(tmp, target)
    return target


@pytest.fixture(scope="session")
def video_model_dir() -> Path:
    return export_video_cached()


def reference_video_predictor(config: str = TEST_CONFIG, seed: int = TEST_SEED):
    """``SAM2VideoPredictor`` with the same random weights (and object-score bias)."""
    import torch

    from tests.reference import install_torchvision_shim

    install_torchvision_shim()
    from sam2.build_sam import build_sam2_video_predictor

    from sam2_annotator.models.export import resolve_variant
    from sam2_annotator.models.export_video import set_object_score_bias

    torch.manual_seed(seed)
    predictor = build_sam2_video_predictor(resolve_variant(config).config, None, device="cpu")
    set_object_score_bias(predictor, OBJECT_SCORE_BIAS)
    # fill_hole_area=8 needs sam2's CUDA extension; without it the reference warns and skips
    # the step, so it is off on both sides.
    predictor.fill_hole_area = 0
    return predictor


@pytest.fixture(scope="session")
def reference_video():
    pytest.importorskip("torch", reason="parity needs the export extra (torch + sam2)")
    return reference_video_predictor()


def pytest_terminal_summary(terminalreporter) -> None:
    """Print the tracker's parity figures and timings (the closing notes quote them)."""
    import sys

    module = sys.modules.get("tests.video.test_tracker_parity")
    results = getattr(module, "RESULTS", None)
    if not results:
        return
    write = terminalreporter.write_line
    write("tracker parity vs SAM2VideoPredictor (stage frame obj: |logit diff|, IoU, |ref| peak):")
    for stage in dict.fromkeys(r[0] for r in results):
        rows = [r for r in results if r[0] == stage]
        non_empty = sum(r[6] for r in rows)
        write(
            f"  {stage}: {len(rows)} frame-objects, {non_empty} non-empty, worst diff "
            f"{max(r[3] for r in rows):.2e}, worst IoU {min(r[4] for r in rows):.6f}, "
            f"worst relative diff {max(r[3] / max(r[5], 1e-12) for r in rows):.2e}"
        )
        for r in rows:
            write(f"    f{r[1]:02d} obj{r[2]}: {r[3]:.2e} {r[4]:.6f} {r[5]:.3f} nonempty={r[6]}")
    for stage, frame, t, wall in getattr(module, "TIMINGS", []):
        write(
            f"  ms {stage} f{frame:02d}: encoder {t.encoder:.0f}, memory attention "
            f"{t.memory_attention:.0f}, decoder {t.decoder:.0f}, memory encoder "
            f"{t.memory_encoder:.0f}, wall {wall:.0f}"
        )
