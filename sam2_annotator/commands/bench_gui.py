"""``sam2-annotator bench --gui IMAGES``: the window's start-up, prefetch and memory.

The protocol is :mod:`sam2_annotator.bench.gui_session`'s (two fresh processes of the real
window: a fresh embedding cache, then a reopen with every embedding on disk).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

#: The targets of issue 10 the summary is checked against (printed, never enforced).
TARGETS = {
    "window_shown_s": ("window on screen after launch", 2.0),
    "peak_rss_mb": ("peak RSS with the embeddings in memory, MB", 1200.0),
    "next_over_decode": ("next image's first mask / click-to-mask", 1.5),
    "reopen_over_encode": ("first mask after reopening / encoder time", 0.1),
}


def add_gui_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group(
        "the window (bench --gui)",
        "Start-up (launch to window on screen), peak RSS with the current image and "
        "--prefetch more embeddings in memory, the next image's first mask vs a click's, and "
        "the first mask after reopening a folder whose embeddings are on disk. Writes "
        "gui_results.json to --out.",
    )
    group.add_argument(
        "--gui",
        type=Path,
        metavar="FOLDER",
        help="measure the window on a folder of at least --prefetch + 2 images",
    )
    group.add_argument(
        "--prefetch",
        type=int,
        default=8,
        metavar="N",
        help="images encoded ahead in the --gui run (default: 8)",
    )


def run_gui(args: argparse.Namespace) -> int:
    from sam2_annotator.bench.environment import machine_info
    from sam2_annotator.bench.gui_session import GuiPlan, run_gui_bench
    from sam2_annotator.commands._common import model_files_from_args
    from sam2_annotator.commands.bench import output_folder

    model = model_files_from_args(args).encoder.parent
    out_dir = output_folder(args.out)
    print(f"bench --gui: two runs of the window on {args.gui} (a minute or more on a CPU)")
    result = run_gui_bench(GuiPlan(model, args.gui, prefetch=args.prefetch))
    result["machine"] = machine_info()
    (out_dir / "gui_results.json").write_text(json.dumps(result, indent=1), encoding="utf-8")
    summary = result["summary"]
    for key, (what, target) in TARGETS.items():
        value = summary.get(key)
        shown = "n/a" if value is None else f"{value:g}"
        verdict = "" if value is None else ("  ok" if value <= target else "  MISSED")
        print(f"{what}: {shown} (target <= {target:g}){verdict}")
    print(f"wrote {out_dir / 'gui_results.json'}")
    return 0 if summary.get("complete") else 1
