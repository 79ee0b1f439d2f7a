"""Turn result documents into PNG plots and Markdown tables (what ``docs/BENCHMARKS.md`` quotes)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sam2_annotator.bench import plots
from sam2_annotator.bench.accuracy import EvalRun
from sam2_annotator.bench.environment import isa_summary
from sam2_annotator.bench.plots import Series

#: File names inside the output folder.
BENCH_JSON = "results.json"
BENCH_MARKDOWN = "results.md"
TRACE_PNG = "latency_trace.png"
IMAGES_PNG = "encoder_by_image.png"
POINTS_PNG = "decoder_by_points.png"
EVAL_JSON = "summary.json"
EVAL_OBJECTS_JSON = "per_object.json"
EVAL_MARKDOWN = "summary.md"
EVAL_PNG = "iou_boxplot.png"


def write_json(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- bench


def bench_plots(results: dict[str, Any], out_dir: Path) -> list[Path]:
    """Fig. 3 (per-run trace), Fig. 5 (encoder per image), Fig. 6 (decoder per #points)."""
    traces = results["traces"]
    encoder = plots.line_chart(
        [
            Series("engine encode", traces["encoder_ms"]),
            Series("bare session.run", traces["encoder_raw_ms"]),
        ],
        "Encoder latency per run (identical input)",
        "run",
        "ms",
    )
    decoder = plots.line_chart(
        [
            Series("engine decode", traces["decoder_ms"]),
            Series("bare session.run", traces["decoder_raw_ms"]),
        ],
        "Decoder latency per run (identical input)",
        "run",
        "ms",
    )
    by_image = results["encoder"]["by_image"]
    sizes = {i["name"]: f"{i['width']}x{i['height']}" for i in results["images"]}
    images = plots.bar_chart(
        [f"{name} {sizes.get(name, '')}".strip() for name in by_image],
        [Series("engine encode p50", list(by_image.values()))],
        "Encoder latency per image (p50)",
        "ms",
        "{:.0f}",
    )
    decoder_part = results["decoder"]
    counts = list(decoder_part["by_points"])
    points = plots.bar_chart(
        [f"{n} point{'s' if n != '1' else ''}" for n in counts],
        [
            Series("engine decode p50", [decoder_part["by_points"][n] for n in counts]),
            Series("bare session.run p50", [decoder_part["raw_by_points"][n] for n in counts]),
        ],
        "Decoder latency per number of points (p50)",
        "ms",
        "{:.1f}",
    )
    return [
        plots.save_png(out_dir / TRACE_PNG, plots.vstack([encoder, decoder])),
        plots.save_png(out_dir / IMAGES_PNG, images),
        plots.save_png(out_dir / POINTS_PNG, points),
    ]


def _torch_table(results: dict[str, Any]) -> list[str]:
    torch = results["torch"]
    if not torch.get("available"):
        return [f"PyTorch eager: not run ({torch.get('reason') or 'unknown reason'})."]
    lines = [
        "PyTorch eager vs bare ONNX Runtime, alternated on the same input "
        f"(PyTorch {torch['version']}, {torch['threads']} threads):",
        "",
        "| part | runs | PyTorch p50 ms | ONNX Runtime p50 ms | PyTorch / ORT |",
        "|---|---|---|---|---|",
    ]
    for name in ("encoder", "decoder"):
        part = results[name]
        lines.append(
            f"| {name} | {part['torch_runs']} | {_fmt(part['torch_p50_ms'])} | "
            f"{_fmt(part['torch_alternated_ort_p50_ms'])} | "
            f"{_fmt(part['torch_over_ort'], '{:.2f}')} |"
        )
    return lines


def _fmt(value: float | None, pattern: str = "{:.1f}") -> str:
    return "n/a" if value is None else pattern.format(value)


def machine_line(machine: dict[str, Any]) -> str:
    """``CPU (n CPUs; ISA flags)`` as the result tables name the machine."""
    isa = machine.get("isa")
    flags = f"; {isa_summary(isa)}" if isa else ""
    ident = machine.get("cpu_id") or {}
    family = ""
    if "family" in ident:
        family = f"family {ident['family']} model {ident.get('model', '?')}, "
    return f"{machine['cpu']} ({family}{machine['cpus']} CPUs{flags})"


def bench_markdown(results: dict[str, Any]) -> str:
    """The tables ``docs/BENCHMARKS.md`` uses, from one ``results.json``."""
    enc, dec = results["encoder"], results["decoder"]
    machine = results["machine"]
    lines = [
        f"Model: {results['model']['name']} on {results['provider']}; ONNX Runtime "
        f"{results['onnxruntime']}; {machine_line(machine)}; "
        f"load average before/after {results['load_average']['before']} / "
        f"{results['load_average']['after']}.",
        "",
        "| part | runs | first call (load + run) ms | p50 ms | p95 ms | max ms | bare run p50 ms"
        " | engine / bare |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, part in (("encoder", enc), ("decoder", dec)):
        lines.append(
            f"| {name} | {part['runs']} | {_fmt(part['first_ms'], '{:.0f}')} "
            f"({_fmt(part['load_ms'], '{:.0f}')} + {_fmt(part['first_run_ms'], '{:.0f}')}) | "
            f"{_fmt(part['p50_ms'])} | {_fmt(part['p95_ms'])} | {_fmt(part['max_ms'])} | "
            f"{_fmt(part['raw_p50_ms'])} | {_fmt(part['overhead_ratio'], '{:.3f}')} |"
        )
    lines += ["", *_torch_table(results)]
    lines += ["", "| image | encoder p50 ms |", "|---|---|"]
    sizes = {i["name"]: f"{i['width']}x{i['height']}" for i in results["images"]}
    for name, value in enc["by_image"].items():
        lines.append(f"| {name} ({sizes.get(name, '?')}) | {_fmt(value)} |")
    lines += [
        "",
        "| points | decoder p50 ms (engine) | bare run p50 ms | engine / bare |",
        "|---|---|---|---|",
    ]
    for count, value in dec["by_points"].items():
        raw = dec["raw_by_points"][count]
        share = None if not raw else value / raw
        lines.append(
            f"| {count} | {_fmt(value, '{:.2f}')} | {_fmt(raw, '{:.2f}')} | "
            f"{_fmt(share, '{:.3f}')} |"
        )
    mem = results["memory"]
    lines += [
        "",
        "| memory | MiB |",
        "|---|---|",
        f"| peak RSS (ONNX Runtime phases) | {_fmt(results['peak_rss_mb'], '{:.0f}')} |",
        f"| RSS after loading both sessions | {_fmt(mem.get('rss_after_load_mb'), '{:.0f}')} |",
        f"| one embedding (float32 arrays, exact) | {_fmt(mem.get('embedding_mb'), '{:.2f}')} |",
        f"| peak RSS with the PyTorch model loaded | "
        f"{_fmt(mem.get('peak_rss_with_torch_mb'), '{:.0f}')} |",
    ]
    compare = results.get("compare")
    if compare:
        lines += [
            "",
            f"Bare session.run, alternated with {compare['model']} on the same inputs:",
            "",
            "| part | runs | this model p50 ms | other model p50 ms | this / other |",
            "|---|---|---|---|---|",
        ]
        for part in ("encoder", "decoder"):
            block = compare[part]
            lines.append(
                f"| {part} | {block['runs']} | {_fmt(block['raw_p50_ms'])} | "
                f"{_fmt(block['other_raw_p50_ms'])} | {_fmt(block['speedup'], '{:.2f}')} |"
            )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- eval


def eval_plot(run: EvalRun, out_dir: Path) -> Path:
    """Fig. 7: IoU vs ground truth per model and #points, and IoU between the two models."""
    counts = run.plan.points
    groups = [(f"{label} {n}pt", run.iou_values(label, n)) for label in run.labels for n in counts]
    panels = [
        plots.box_plot(
            [g for g, _ in groups],
            [v for _, v in groups],
            "Mask IoU vs ground truth",
            "IoU",
            (0.0, 1.0),
        )
    ]
    if len(run.labels) == 2:
        between = [(f"{n} point{'s' if n != 1 else ''}", run.between_values(n)) for n in counts]
        values = [v for _, values in between for v in values]
        low = min(values, default=0.0)
        panels.append(
            plots.box_plot(
                [g for g, _ in between],
                [v for _, v in between],
                f"Mask IoU between {run.labels[0]} and {run.labels[1]}",
                "IoU",
                (0.0 if low < 0.5 else min(low, 0.9), 1.0),
            )
        )
    return plots.save_png(out_dir / EVAL_PNG, plots.vstack(panels))


def eval_markdown(summary: dict[str, Any]) -> str:
    machine = summary.get("machine")
    lines = [f"Machine: {machine_line(machine)}.", ""] if machine else []
    lines += [
        "| model | points | n | mean | median | q1 | q3 | min |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for label, block in summary["iou_vs_gt"].items():
        lines += _dist_rows(label, block)
    pair = summary.get("iou_between")
    if pair:
        lines += [
            "",
            f"IoU between {pair['models'][0]} and {pair['models'][1]}:",
            "",
            "| pair | points | n | mean | median | q1 | q3 | min |",
            "|---|---|---|---|---|---|---|---|",
        ]
        lines += _dist_rows(" vs ".join(pair["models"]), pair)
    return "\n".join(lines) + "\n"


def _dist_rows(label: str, block: dict[str, Any]) -> list[str]:
    rows = []
    entries: Sequence[tuple[str, Any]] = [*block["by_points"].items(), ("all", block["all"])]
    for points, dist in entries:
        if dist is None:
            rows.append(f"| {label} | {points} | 0 | | | | | |")
            continue
        rows.append(
            f"| {label} | {points} | {dist['count']} | {dist['mean']:.4f} | {dist['median']:.4f}"
            f" | {dist['q1']:.4f} | {dist['q3']:.4f} | {dist['min']:.4f} |"
        )
    return rows
