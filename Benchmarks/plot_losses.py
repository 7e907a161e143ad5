"""Training curves as a self-contained SVG, from `adapt ... --log FILE.jsonl` files.

Usage: python3 plot_losses.py [--dev] OUT.svg TITLE LABEL=FILE.jsonl [LABEL=FILE.jsonl ...]
No dependencies: the SVG is written by hand. Each curve is the training loss
per step, smoothed by a centred moving average over 9 steps; with --dev, the
dev-set evaluations the log holds (macro-F1 for `adapt train --evaluate-every`), as they are.
"""
import json
import os
import sys

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def smooth(values, window=9):
    half = window // 2
    return [sum(values[max(0, i - half):i + half + 1]) / len(values[max(0, i - half):i + half + 1])
            for i in range(len(values))]


def main(out, title, *series, field="loss"):
    curves = []
    for item in series:
        label, path = item.split("=", 1)
        records = [r for r in (json.loads(line) for line in open(path) if line.strip()) if field in r]
        if not records:
            sys.exit(f"{path} logs no {field}")
        values = [r[field] for r in records]
        curves.append((label, [r["step"] for r in records], smooth(values) if field == "loss" else values))
    width, height, left, bottom, top, right = 640, 380, 60, 40, 30, 150
    xmax = max(max(steps) for _, steps, _ in curves)
    ymin = min(min(losses) for _, _, losses in curves)
    ymax = max(max(losses) for _, _, losses in curves)
    def x(v): return left + (width - left - right) * v / xmax
    def y(v): return top + (height - top - bottom) * (ymax - v) / max(ymax - ymin, 1e-9)
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="12">',
             f'<rect width="{width}" height="{height}" fill="white"/>',
             f'<text x="{left}" y="18" font-size="14">{title}</text>',
             f'<line x1="{left}" y1="{height - bottom}" x2="{width - right}" y2="{height - bottom}" stroke="black"/>',
             f'<line x1="{left}" y1="{top}" x2="{left}" y2="{height - bottom}" stroke="black"/>',
             f'<text x="{(width - right + left) / 2}" y="{height - 8}" text-anchor="middle">step</text>',
             f'<text x="14" y="{(height - bottom + top) / 2}" transform="rotate(-90 14 {(height - bottom + top) / 2})" text-anchor="middle">{"training loss" if field == "loss" else "dev evaluation"}</text>']
    for i in range(5):
        v = ymin + (ymax - ymin) * i / 4
        parts.append(f'<text x="{left - 6}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
        parts.append(f'<line x1="{left}" y1="{y(v):.1f}" x2="{width - right}" y2="{y(v):.1f}" stroke="#ddd"/>')
    for i in range(5):
        s = xmax * i / 4
        parts.append(f'<text x="{x(s):.1f}" y="{height - bottom + 16}" text-anchor="middle">{int(s)}</text>')
    for index, (label, steps, losses) in enumerate(curves):
        color = COLORS[index % len(COLORS)]
        points = " ".join(f"{x(s):.1f},{y(l):.1f}" for s, l in zip(steps, losses))
        parts.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{points}"/>')
        if field != "loss":  # a few evaluations: mark each
            parts += [f'<circle cx="{x(s):.1f}" cy="{y(l):.1f}" r="3" fill="{color}"/>' for s, l in zip(steps, losses)]
        parts.append(f'<text x="{width - right + 10}" y="{top + 16 * index + 10}" fill="{color}">{label}</text>')
    parts.append("</svg>")
    temporary = out + ".partial"
    with open(temporary, "w") as f:
        f.write("\n".join(parts) + "\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(temporary, out)


if __name__ == "__main__":
    arguments = sys.argv[1:]
    if arguments[:1] == ["--dev"]:
        main(*arguments[1:], field="evaluation")
    else:
        main(*arguments)
