"""Docs/continual-adapters.md from the results of Benchmarks/continual/adapters.sh.

    python3 Benchmarks/continual/summarize_adapters.py OUT "COMMAND" SEED...

OUT holds seedN.json (adapt continual --json) and seedN.md (its output) for every seed.
"""
import json
import re
import statistics
import subprocess
import sys


def spread(values, digits=3):
    mean = statistics.mean(values)
    if len(values) < 2:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def main():
    out, command, seeds = sys.argv[1], sys.argv[2], sys.argv[3:]
    reports = {seed: json.load(open(f"{out}/seed{seed}.json")) for seed in seeds}
    names = [run["name"] for run in reports[seeds[0]]["runs"]]
    def ran_at(seed):
        try:
            return open(f"{out}/seed{seed}.commit").read().strip()
        except FileNotFoundError:
            return "not recorded"
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print("# Continual learning over the backbone: adapters under strategies, an adapter per task")
    print()
    print(f"Written by `Benchmarks/continual/adapters.sh` (commit {commit}) from seed{'s' if len(seeds) > 1 else ''} "
          f"{', '.join(f'{seed} (run at {ran_at(seed)})' for seed in seeds)}, whose reports are in Benchmarks/continual/results:")
    print()
    print("```")
    print(command)
    print("```")
    print()
    print("The bible-genres stream of [continual](continual.md) (Chichewa verses, 8 genres as 4 class-incremental")
    print("tasks of 2; no task identity at test time: after each task, every task so far is scored among all")
    print("classes so far), on a smaller sample so that an adapter can be trained under each strategy: 100")
    print("training and 50 test verses per genre, 10 epochs per task, batch 32, AdamW lr 1e-3. The methods on")
    print("frozen features read multilingual-e5-small's mean-pooled embeddings of the same verses; `adapter`")
    print("trains a seq_bn adapter (reduction 16) and a sequence head over the frozen backbone on the verses'")
    print("tokens (at most 128), under each strategy (replay: a memory of 200 verses, a quarter of the")
    print("training set). The per-task methods train one expert per task on its own classes and route a test")
    print("verse to the task whose prototype, the normalised mean of the task's training embeddings (frozen")
    print("backbone), is nearest by cosine; the router column is the share of test verses sent to their own")
    if len(seeds) > 1:
        print("task after the last one. Mean ± standard deviation over the seeds (the seed draws initialisation")
        print("and example order; the data sample is fixed); seconds are the fastest seed's run, at the command's threads")
        print("(a seed's run may share the machine with other jobs).")
    else:
        print("task after the last one. One seed so far, so no spread yet: `SEEDS=\"1 2\" bash Benchmarks/continual/adapters.sh`")
        print("runs more (about an hour each with two threads) and rewrites this page from every seed in the results. Seconds")
        print("are at the command's threads, on the shared machine.")
    print()
    print("| method | average accuracy | forgetting | backward transfer | router | trainable parameters | seconds |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        runs = [next(r for r in reports[s]["runs"] if r["name"] == name) for s in seeds]
        routed = [re.search(r"\(([0-9.]+) of test examples routed", r["description"]) for r in runs]
        router = spread([float(m.group(1)) for m in routed]) if all(routed) else ""
        print(f"| {name} | {spread([r['average_accuracy'] for r in runs])} | {spread([r['forgetting'] for r in runs])} | "
              f"{spread([r['backward_transfer'] for r in runs])} | {router} | {runs[0]['trainable_parameters']:,} | "
              f"{min(r['seconds'] for r in runs):.0f} |")
    mean = {name: statistics.mean(next(r for r in reports[s]["runs"] if r["name"] == name)["average_accuracy"] for s in seeds)
            for name in names}
    forgetting = {name: statistics.mean(next(r for r in reports[s]["runs"] if r["name"] == name)["forgetting"] for s in seeds)
                  for name in names}
    best = max(names, key=mean.get)
    print()
    print(f"Highest average accuracy: {best} ({mean[best]:.3f}). Without a memory, the adapter per task "
          f"({mean['adapter-per-task']:.3f}) against the probe per task behind the same router ({mean['linear-per-task']:.3f}) "
          f"and the key-value bottleneck ({mean['kv']:.3f}). Fine-tuned naively, the adapter forgets as the linear probe does "
          f"(forgetting {forgetting['adapter']:.3f} against {forgetting['linear']:.3f}); EWC and LwF at these settings barely "
          f"change that ({forgetting['adapter + EWC (lambda 100.0)']:.3f}, {forgetting['adapter + LwF (alpha 1.0, temperature 2.0)']:.3f}). "
          "The per-task methods lose what their router misroutes: their experts never change after their task.")
    print()
    print("## Methods")
    print()
    for run in reports[seeds[0]]["runs"]:
        print(f"- **{run['name']}**: {run['description']}")
    print()
    print(f"## Accuracy matrices, seed {seeds[0]}")
    print()
    text = open(f"{out}/seed{seeds[0]}.md").read()
    body = [line for line in text.splitlines() if not line.startswith("    ")]
    start = next(i for i, line in enumerate(body) if line.startswith("## "))
    end = next(i for i, line in enumerate(body) if line.startswith("## Summary"))
    print("\n".join(re.sub(r"^## ([^:]*):.*", r"### \1", line) for line in body[start:end]).rstrip())


main()
