"""``bench --gui``: the real window's start-up, prefetch and memory, in fresh processes.

Each run starts ``python -m sam2_annotator.gui.probe`` (see that module for the scenario) and
reads the JSON it writes. Start-up is measured from just before the process is started, so it
includes the interpreter, the imports and Qt. Two runs share one embedding disk cache: the
first encodes (a fresh cache), the second *reopens* the folder with every embedding on disk,
which is the figure for "first mask after reopening an encoded folder". The memory figures are
the probe's peak RSS with the current image and ``prefetch`` more embeddings in memory.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sam2_annotator.engine.image_io import list_images
from sam2_annotator.errors import UserError

#: The probe gives up after 600 s itself; this is the launcher's own limit.
PROBE_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class GuiPlan:
    model_dir: Path
    images: Path  # a folder with at least prefetch + 2 images
    prefetch: int = 8
    platform: str = "offscreen"  # Qt platform plugin of the probe (offscreen: no screen needed)


def run_probe(plan: GuiPlan, cache_dir: Path, out: Path) -> dict[str, Any]:
    """One probe process; its JSON (``returncode`` added)."""
    env = dict(os.environ, QT_QPA_PLATFORM=plan.platform)
    command = [
        sys.executable,
        "-m",
        "sam2_annotator.gui.probe",
        "--model",
        str(plan.model_dir),
        "--images",
        str(plan.images),
        "--out",
        str(out),
        "--prefetch",
        str(plan.prefetch),
        "--cache-dir",
        str(cache_dir),
    ]
    t0 = time.time()
    proc = subprocess.run(
        [*command, "--t0", repr(t0)],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROBE_TIMEOUT_S,
        check=False,
    )
    if not out.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise UserError(f"the GUI probe exited {proc.returncode}: {' / '.join(tail)}")
    result = json.loads(out.read_text())
    result["returncode"] = proc.returncode
    return result


def run_gui_bench(plan: GuiPlan, encoder_ms: float | None = None) -> dict[str, Any]:
    """A fresh-cache run then a reopen run; the figures the issue's targets are stated in."""
    count = len(list_images(plan.images))
    if count < plan.prefetch + 2:
        raise UserError(
            f"{plan.images} holds {count} images; the GUI bench needs at least "
            f"{plan.prefetch + 2} images (the current one, {plan.prefetch} to prefetch, "
            "and one after them)"
        )
    with tempfile.TemporaryDirectory(prefix="sam2a-gui-bench-") as tmp:
        cache = Path(tmp) / "cache"
        fresh = run_probe(plan, cache, Path(tmp) / "fresh.json")
        reopen = run_probe(plan, cache, Path(tmp) / "reopen.json")
    return summarize(fresh, reopen, plan.prefetch, encoder_ms)


def summarize(
    fresh: dict[str, Any], reopen: dict[str, Any], prefetch: int, encoder_ms: float | None
) -> dict[str, Any]:
    decode = fresh.get("decode_ms") or []
    decode_p50 = statistics.median(decode) if decode else None
    next_ms = fresh.get("next_image_first_mask_ms")
    memory = fresh.get("memory", {}).get(f"with_{prefetch + 1}_embeddings", {})
    reopen_ms = reopen.get("first_mask_after_open_ms")
    encodes = fresh.get("encode_ms") or []
    encode_ms = (
        encoder_ms if encoder_ms is not None else (statistics.median(encodes) if encodes else None)
    )
    summary = {
        "window_shown_s": fresh["events"].get("window_shown"),
        "model_loaded_s": fresh["events"].get("model_loaded"),
        "window_shown_reopen_s": reopen["events"].get("window_shown"),
        "decode_click_to_mask_p50_ms": decode_p50,
        "next_image_first_mask_ms": next_ms,
        "next_over_decode": _ratio(next_ms, decode_p50),
        "embeddings_in_memory": prefetch + 1,
        "peak_rss_mb": memory.get("peak_rss_mb"),
        "first_mask_fresh_ms": fresh.get("first_mask_after_open_ms"),
        "first_mask_reopen_ms": reopen_ms,
        "encode_p50_ms": encode_ms,
        "encodes_in_reopen": len(reopen.get("encode_ms") or []),
        "reopen_over_encode": _ratio(reopen_ms, encode_ms),
        "complete": fresh.get("returncode") == 0 and reopen.get("returncode") == 0,
    }
    return {"summary": summary, "fresh": fresh, "reopen": reopen}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None
