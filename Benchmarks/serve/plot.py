"""Plots Benchmarks/serve/run.sh's table: requests/s by connections, for each batching and traffic.

Usage: python3 plot.py SERVE_BENCH.md OUT.svg   (standard library only; the bar chart of the benchmark suite)
"""
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "suite"))
from run import bar_chart  # noqa: E402

rows = [[cell.strip() for cell in line.split("|")[1:-1]] for line in open(sys.argv[1]) if re.match(r"\| (on|off) ", line)]
connections = sorted({int(r[2]) for r in rows})
series = []
colors = {("on", "single"): "#1f77b4", ("on", "mixed"): "#9ecae1", ("off", "single"): "#d62728", ("off", "mixed"): "#ff9896"}
for (batching, traffic), color in colors.items():
    rate = {int(r[2]): float(r[3]) for r in rows if (r[0], r[1]) == (batching, traffic)}
    series.append((f"{traffic}, batching {batching}", color, [rate.get(c) for c in connections]))
bar_chart(sys.argv[2], "adapt serve, multilingual-e5-small: requests/s (one verse each)",
          [f"{c} connection{'s' if c > 1 else ''}" for c in connections], series, ylabel="requests/s")
