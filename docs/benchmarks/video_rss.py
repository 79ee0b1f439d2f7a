"""Peak RSS of a long propagation with two frame-cache budgets (docs/BENCHMARKS.md, video).

    python docs/benchmarks/video_rss.py --frames 40 --cache-mb 64 320 --out video_rss.json

Each budget runs in its own process (the peak RSS of a process never goes down): one click on
frame 0 of a folder of JPEG frames made from ``bigbuckbunny.mp4`` (132 frames; beyond them the clip
plays backward mirrored left-right, so that no frame's content, hence no cache key, repeats),
then forward propagation with the exact memory. After every frame: RSS and peak RSS
(``/proc/self/statm``, ``getrusage``), the bytes of frame features in the cache and the bytes of
the memory bank (which, like SAM2's ``output_dict``, keeps every frame).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

VIDEO = ROOT.parent / "shared" / "data" / "videos" / "bigbuckbunny.mp4"
MIB = 1 << 20


def make_frames(folder: Path, count: int) -> Path:
    import cv2
    import numpy as np

    folder.mkdir(parents=True, exist_ok=True)
    if len(list(folder.glob("*.jpg"))) == count:
        return folder
    capture = cv2.VideoCapture(str(VIDEO))
    clip = []
    while True:
        ok, frame = capture.read()
        if not ok:
            break
        clip.append(frame)
    capture.release()
    if count > 2 * len(clip):
        raise SystemExit(f"at most {2 * len(clip)} frames (the clip, then the clip mirrored)")
    for index in range(count):
        loop, pos = divmod(index, len(clip))
        frame = clip[pos] if loop == 0 else np.ascontiguousarray(clip[-1 - pos][:, ::-1])
        cv2.imwrite(str(folder / f"{index:05d}.jpg"), frame, [cv2.IMWRITE_JPEG_QUALITY, 95])
    return folder


def child(args: argparse.Namespace) -> int:
    import numpy as np

    from sam2_annotator.bench.memory import current_rss_mb, peak_rss_mb
    from sam2_annotator.engine.cache import MemoryCache
    from sam2_annotator.engine.providers import SessionConfig
    from sam2_annotator.engine.tracker import tracker_from_folder
    from sam2_annotator.engine.video_io import FolderSource

    source = FolderSource(args.frames_dir)
    tracker = tracker_from_folder(
        str(args.model),
        source,
        SessionConfig(threads=args.threads),
        cache=MemoryCache(args.cache_mb * MIB),
    )
    rows = [{"frame": "loaded", "rss_mb": current_rss_mb(), "peak_rss_mb": peak_rss_mb()}]
    tracker.add_points(0, 1, np.array([[640.0, 360.0]]), np.array([1]))
    start = time.perf_counter()
    for result in tracker.propagate(max_frame_num_to_track=len(source) - 1):
        rows.append(
            {
                "frame": result.frame_idx,
                "rss_mb": round(current_rss_mb() or 0.0, 1),
                "peak_rss_mb": round(peak_rss_mb() or 0.0, 1),
                "cache_mb": round(tracker.cache_nbytes / MIB, 1),
                "bank_mb": round(tracker.bank_nbytes / MIB, 2),
                "ms": round(result.wall_ms, 1),
                "present": bool(result.masks()[1].any()),
            }
        )
        print(json.dumps(rows[-1]), file=sys.stderr, flush=True)
    print(
        json.dumps(
            {
                "cache_mb": args.cache_mb,
                "frames": len(source),
                "encoder_runs": tracker.encoder_runs,
                "seconds": round(time.perf_counter() - start, 1),
                "rows": rows,
            }
        )
    )
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--cache-mb", type=int, nargs="+", default=[64, 320])
    parser.add_argument("--threads", type=int, default=0)
    parser.add_argument("--model", type=Path, help="model folder (default: the test export)")
    parser.add_argument("--frames-dir", type=Path, default=Path("/tmp/sam2-video-rss-frames"))
    parser.add_argument("--out", type=Path, default=Path("video_rss.json"))
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.cache_mb = args.cache_mb[0]
        return child(args)

    import os

    from sam2_annotator.bench.environment import machine_info

    if args.model is None:
        from tests.video.conftest import export_video_cached

        args.model = export_video_cached()
    frames = make_frames(args.frames_dir / str(args.frames), args.frames)
    result = {"machine": machine_info(), "load_before": list(os.getloadavg()), "runs": []}
    for budget in args.cache_mb:
        cmd = [sys.executable, __file__, "--child", "--cache-mb", str(budget)]
        cmd += ["--frames-dir", str(frames), "--model", str(args.model)]
        cmd += ["--threads", str(args.threads)]
        done = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)
        run = json.loads(done.stdout.strip().splitlines()[-1])
        result["runs"].append(run)
        last = run["rows"][-1]
        print(
            f"budget {budget} MiB: {run['frames']} frames, peak RSS {last['peak_rss_mb']} MiB, "
            f"cache {last['cache_mb']} MiB, bank {last['bank_mb']} MiB, {run['seconds']} s"
        )
    result["load_after"] = list(os.getloadavg())
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
