"""``bench --video`` results as the Markdown tables ``docs/BENCHMARKS.md`` quotes, and a summary."""

from __future__ import annotations

from typing import Any

from sam2_annotator.bench.report import machine_line
from sam2_annotator.bench.video import PARTS

LABELS = {
    "encoder": "encoder",
    "memory_attention": "memory attention",
    "memory_encoder": "memory encoder",
    "decoder": "decoder",
    "graphs": "four graphs",
    "other": "other (frame I/O, bookkeeping, upsampling)",
    "wall": "whole frame",
}


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def _ratio(a: float | None, b: float | None) -> str:
    return "n/a" if not a or not b else f"{a / b:.2f}"


def video_markdown(results: dict[str, Any]) -> str:
    ort, torch = results["onnxruntime"], results["torch"]
    src = results["source"]
    with_torch = torch.get("available", False)
    lines = [
        f"Model: {results['model']['name']}; ONNX Runtime {results['machine']['onnxruntime']}; "
        f"{machine_line(results['machine'])}; load average before/after "
        f"{results['load_average']['before']} / {results['load_average']['after']}.",
        "",
        f"Clip: {src['path']}, frames 0-{src['frames_used'] - 1} ({src['width']}x{src['height']}, "
        f"{src['frames_written']}); one click on frame 0 at {results['prompt']['point']}; "
        f"{results['alternation']}.",
        "",
    ]
    if with_torch:
        lines.append(
            f"PyTorch {torch['version']} ({torch['threads']} threads), {torch['weights']}; "
            f"ONNX Runtime threads: {results['threads'] or 'default'}."
        )
    else:
        lines.append(f"PyTorch: not run ({torch.get('reason') or 'unknown reason'}).")
    n = ort["propagated"]["frames"]
    lines += [
        "",
        f"Per propagated frame ({n} frames, ms):",
        "",
        "| part | ORT p50 | ORT mean | PyTorch p50 | PyTorch mean | PyTorch / ORT (p50) |",
        "|---|---|---|---|---|---|",
    ]
    for part in (*PARTS, "graphs", "other", "wall"):
        ours = ort["propagated"][part]
        theirs = torch["propagated"][part] if with_torch else {"p50_ms": None, "mean_ms": None}
        lines.append(
            f"| {LABELS[part]} | {_fmt(ours['p50_ms'])} | {_fmt(ours['mean_ms'])} | "
            f"{_fmt(theirs['p50_ms'])} | {_fmt(theirs['mean_ms'])} | "
            f"{_ratio(theirs['p50_ms'], ours['p50_ms'])} |"
        )
    lines += [
        "",
        "Prompted frame 0 (encoder + decoder on the click, memory encoder in the preflight; ms):",
        "",
        "| side | encoder | decoder | memory encoder | whole |",
        "|---|---|---|---|---|",
    ]
    for side in (ort, torch if with_torch else None):
        first = None if side is None else side.get("first_frame")
        if first:
            lines.append(
                f"| {side['name']} | {_fmt(first['encoder_ms'])} | {_fmt(first['decoder_ms'])} | "
                f"{_fmt(first['memory_encoder_ms'])} | {_fmt(first['wall_ms'])} |"
            )
    if with_torch:
        agree = torch["vs_onnxruntime"]
        lines += [
            "",
            f"PyTorch's init_state (loads all {src['frames_used']} frames, encodes frame 0): "
            f"{_fmt(torch['init_state_ms'], '{:.0f}')} ms. Masks ORT vs PyTorch: IoU mean "
            f"{_fmt(agree['iou_mean'], '{:.4f}')}, min {_fmt(agree['iou_min'], '{:.4f}')} over "
            f"{agree['frames'] - agree['frames_both_empty']} frames with a mask "
            f"({agree['frames_both_empty']} both empty).",
        ]
    lines += ["", *_flops_lines(results["memory_attention_flops"])]
    reduced = results.get("reduced_memory")
    if reduced:
        lines += ["", *_reduced_lines(reduced)]
    mem = results["memory"]
    lines += [
        "",
        f"Peak RSS {_fmt(mem['peak_rss_mb'], '{:.0f}')} MiB (one process: ONNX Runtime"
        + (" and PyTorch" if with_torch else "")
        + f"); frame-feature cache {_fmt(mem['frame_cache_mb'])} MiB.",
    ]
    return "\n".join(lines) + "\n"


def _flops_lines(block: dict[str, Any]) -> list[str]:
    peak = block["peak"]
    largest = block["breakdown_largest_frame"] or {}
    share = block["share_of_nominal_peak"]
    sgemm = block["share_of_measured_sgemm"]
    met = block["met"]
    return [
        f"Memory attention FLOPs: {block['formula']}.",
        "",
        f"Largest memory ({block['largest_memory_frames']} frames): "
        f"{_fmt(largest.get('total'))} GFLOP per frame ({largest.get('memory_tokens', 'n/a')} "
        f"memory tokens; cross-attention products {_fmt(largest.get('cross_attention_products'))}"
        f", self-attention {_fmt(largest.get('self_attention'))}, MLP "
        f"{_fmt(largest.get('mlp'))}), achieved "
        f"{_fmt(block['achieved_gflops_largest_memory'])} GFLOP/s "
        f"(all propagated frames: {_fmt(block['achieved_gflops_all_frames'])}). fp32 peak: "
        f"nominal {_fmt(peak['nominal_gflops'], '{:.0f}')} GFLOP/s ({peak['formula']}; "
        f"{peak['assumption']}), measured sgemm "
        f"{_fmt(peak['measured_sgemm_gflops'], '{:.0f}')} GFLOP/s. Share: "
        f"{_fmt(None if share is None else share * 100, '{:.0f}')} % of nominal, "
        f"{_fmt(None if sgemm is None else sgemm * 100, '{:.0f}')} % of sgemm "
        f"(target >= {block['target_share'] * 100:.0f} % of peak: "
        f"{'met' if met else 'not met' if met is not None else 'n/a'}).",
    ]


def _reduced_lines(reduced: dict[str, Any]) -> list[str]:
    agree = reduced["vs_exact"]
    return [
        f"**Reduced memory, {reduced['label']}** (the same run; measured on the "
        f"{reduced['frames_compared']} frames from frame {reduced['differs_from_frame']} on, "
        "where its memory differs from the exact one):",
        "",
        "| | exact | reduced | speed-up |",
        "|---|---|---|---|",
        f"| memory attention p50 ms | {_fmt(reduced['exact_memory_attention_p50_ms'])} | "
        f"{_fmt(reduced['memory_attention_p50_ms'])} | "
        f"{_fmt(reduced['memory_attention_speedup'], '{:.2f}')} |",
        f"| frame (four graphs) p50 ms | {_fmt(reduced['exact_frame_graphs_p50_ms'])} | "
        f"{_fmt(reduced['frame_graphs_p50_ms'])} | {_fmt(reduced['frame_speedup'], '{:.2f}')} |",
        "",
        f"Mask IoU reduced vs exact: mean {_fmt(agree['iou_mean'], '{:.4f}')}, min "
        f"{_fmt(agree['iou_min'], '{:.4f}')} over {agree['frames'] - agree['frames_both_empty']} "
        f"frames with a mask ({agree['frames_both_empty']} both empty).",
    ]


def video_summary(results: dict[str, Any]) -> str:
    """A few lines for the console."""
    ort = results["onnxruntime"]["propagated"]
    parts = ", ".join(f"{LABELS[p]} {_fmt(ort[p]['p50_ms'], '{:.0f}')}" for p in PARTS)
    lines = [
        f"model    {results['model']['name']}; {ort['frames']} propagated frames",
        f"ORT      p50 ms per frame {_fmt(ort['wall']['p50_ms'], '{:.0f}')} ({parts})",
    ]
    torch = results["torch"]
    if torch.get("available"):
        theirs = torch["propagated"]
        parts = ", ".join(f"{LABELS[p]} {_fmt(theirs[p]['p50_ms'], '{:.0f}')}" for p in PARTS)
        speed = results["speedup"]
        lines.append(
            f"PyTorch  p50 ms per frame {_fmt(theirs['wall']['p50_ms'], '{:.0f}')} ({parts}); "
            f"PyTorch / ORT x{_fmt(speed['torch_over_ort_wall_p50'], '{:.2f}')} "
            f"(target {speed['target']}: {'met' if speed['met'] else 'not met'})"
        )
    else:
        lines.append(f"PyTorch  not run: {torch.get('reason')}")
    flops = results["memory_attention_flops"]
    share = flops["share_of_nominal_peak"]
    lines.append(
        f"memory attention {_fmt(flops['achieved_gflops_largest_memory'])} GFLOP/s = "
        f"{_fmt(None if share is None else share * 100, '{:.0f}')} % of the nominal fp32 peak "
        f"{_fmt(flops['peak']['nominal_gflops'], '{:.0f}')} GFLOP/s"
    )
    reduced = results.get("reduced_memory")
    if reduced:
        agree = reduced["vs_exact"]
        lines.append(
            f"reduced  {reduced['label']}: memory attention "
            f"x{_fmt(reduced['memory_attention_speedup'], '{:.2f}')}, frame "
            f"x{_fmt(reduced['frame_speedup'], '{:.2f}')}, IoU vs exact mean "
            f"{_fmt(agree['iou_mean'], '{:.4f}')} min {_fmt(agree['iou_min'], '{:.4f}')}"
        )
    return "\n".join(lines)
