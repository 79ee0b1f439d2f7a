"""``bench --gui``: the real window in fresh processes, a fresh cache then a reopen."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from sam2_annotator import cli
from sam2_annotator.bench.gui_session import GuiPlan, run_gui_bench
from sam2_annotator.errors import UserError
from sam2_annotator.gui.probe import DECODE_CLICKS


@pytest.mark.slow
def test_gui_bench_measures_startup_prefetch_memory_and_reopen(
    tmp_path: Path, model_dir: Path, shared_images: dict[str, Path], capsys
) -> None:
    folder = tmp_path / "photos"
    folder.mkdir()
    for name in ("cars", "groceries", "truck"):
        shutil.copy(shared_images[name], folder / f"{name}.jpg")
    out = tmp_path / "out"
    args = ["bench", "--gui", str(folder), "--prefetch", "1", "--model", str(model_dir)]
    assert cli.main([*args, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "window on screen after launch" in printed and "(target <= 2)" in printed
    result = json.loads((out / "gui_results.json").read_text())
    assert result["machine"]["cpu"]
    summary, fresh, reopen = result["summary"], result["fresh"], result["reopen"]
    assert summary["complete"], (fresh, reopen)
    assert not fresh.get("errors") and not reopen.get("errors")
    events = fresh["events"]
    assert 0 < events["window_shown"] <= events["first_image_shown"] <= events["done"]
    assert len(fresh["decode_ms"]) == DECODE_CLICKS
    pairs = zip(fresh["decoder_run_ms"], fresh["decode_ms"], strict=True)
    assert all(run <= click for run, click in pairs)
    assert summary["next_image_first_mask_ms"] > 0
    # The first run encoded the current and the prefetched image; the reopen found both on disk.
    assert len(fresh["encode_ms"]) >= 2
    assert summary["encodes_in_reopen"] == 0
    assert summary["first_mask_reopen_ms"] < summary["first_mask_fresh_ms"]
    window_rss = fresh["memory"]["at_window_shown"]["rss_mb"]
    assert summary["peak_rss_mb"] > window_rss > 0


def test_gui_bench_needs_enough_images(tmp_path: Path, model_dir: Path) -> None:
    (tmp_path / "one.jpg").write_bytes(b"")
    with pytest.raises(UserError, match="at least 10 images"):
        run_gui_bench(GuiPlan(model_dir, tmp_path, prefetch=8))
