"""Avalanche's strategies on the features Graft's `adapt continual` uses (Benchmarks/continual/peer.sh).

Reads a Graft feature cache (graft-features/1: train/ and test/ features and labels), builds the same
class-incremental stream (tasks of consecutive classes, in order), trains a linear probe or an MLP
(d-H-C, ReLU; weights N(0, 1/fan_in), zero biases, as Graft's FeatureClassifier) under Avalanche's
Naive, Replay, EWC, LwF and GDumb with the schedule Graft uses (AdamW, no weight decay, E epochs per
task, batch B), and prints one JSON line per (method, strategy, seed): the accuracy matrix (tasks seen
so far scored by the argmax over the classes seen so far, as Graft scores them), average accuracy,
forgetting and wall time.

    python avalanche_peer.py --features CACHE.h5 --tasks 2,2,2,2 --seeds 0 1 2 > peer.jsonl
"""
import argparse
import json
import time

import h5py
import numpy as np
import torch
from torch import nn


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--features", required=True, help="a graft-features/1 file")
    parser.add_argument("--tasks", default="2,2,2,2", help="classes per task, in class order")
    parser.add_argument("--methods", default="linear,mlp")
    parser.add_argument("--strategies", default="naive,replay,ewc,lwf,gdumb")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--hidden-size", type=int, default=256)
    parser.add_argument("--memory", type=int, default=200)
    parser.add_argument("--replay-buffer", choices=["experience-balanced", "reservoir"], default="experience-balanced",
                        help="Replay's storage policy: Avalanche's default, or reservoir sampling over the stream (Graft's)")
    parser.add_argument("--ewc-lambda", type=float, default=100)
    parser.add_argument("--lwf-alpha", type=float, default=1)
    parser.add_argument("--lwf-temperature", type=float, default=2)
    parser.add_argument("--threads", type=int, default=1)
    return parser.parse_args()


def load(path):
    with h5py.File(path, "r") as f:
        fmt = f.attrs["format"]
        fmt = fmt.decode() if isinstance(fmt, bytes) else fmt
        assert fmt == "graft-features/1", f"{path}: format {fmt}, expected graft-features/1"
        return [(torch.tensor(np.asarray(f[f"{split}/features"]), dtype=torch.float32),
                 torch.tensor(np.asarray(f[f"{split}/labels"]), dtype=torch.long)) for split in ("train", "test")]


def model(method, size, classes, hidden):
    layers = [nn.Linear(size, classes)] if method == "linear" else [nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, classes)]
    for layer in layers:
        if isinstance(layer, nn.Linear):
            nn.init.normal_(layer.weight, std=layer.in_features ** -0.5)
            nn.init.zeros_(layer.bias)
    return nn.Sequential(*layers)


def stream(train, test, sizes):
    from torch.utils.data import TensorDataset
    from avalanche.benchmarks.scenarios.supervised import class_incremental_benchmark

    return class_incremental_benchmark({"train": TensorDataset(*train), "test": TensorDataset(*test)},
                                       class_order=list(range(sum(sizes))), num_classes_per_exp=sizes)


def strategy(name, net, args):
    from avalanche.training.supervised import Naive, Replay, EWC, LwF, GDumb
    common = dict(model=net, optimizer=torch.optim.AdamW(net.parameters(), lr=args.learning_rate, weight_decay=0),
                  criterion=nn.CrossEntropyLoss(), train_mb_size=args.batch_size, train_epochs=args.epochs,
                  eval_mb_size=1024, device="cpu", evaluator=None)
    if name == "naive":
        return Naive(**common)
    if name == "replay":
        if args.replay_buffer == "reservoir":
            from avalanche.training.plugins import ReplayPlugin
            from avalanche.training.storage_policy import ReservoirSamplingBuffer
            policy = ReservoirSamplingBuffer(max_size=args.memory)
            return Naive(plugins=[ReplayPlugin(mem_size=args.memory, storage_policy=policy)], **common)
        return Replay(mem_size=args.memory, **common)
    if name == "ewc":
        return EWC(ewc_lambda=args.ewc_lambda, **common)
    if name == "lwf":
        return LwF(alpha=args.lwf_alpha, temperature=args.lwf_temperature, **common)
    if name == "gdumb":
        return GDumb(mem_size=args.memory, **common)
    raise SystemExit(f"unknown strategy {name}")


def accuracy_row(net, test, starts, through):
    x, y = test
    net.eval()
    with torch.no_grad():
        logits = net(x)[:, :starts[through + 1]]
    predictions = logits.argmax(1)
    row = []
    for j in range(through + 1):
        rows = (y >= starts[j]) & (y < starts[j + 1])
        row.append(float((predictions[rows] == y[rows]).float().mean()))
    net.train()
    return row


def main():
    args = parse_args()
    torch.set_num_threads(args.threads)
    train, test = load(args.features)
    sizes = [int(s) for s in args.tasks.split(",")]
    starts = np.cumsum([0] + sizes)
    benchmark = stream(train, test, sizes)
    classes = int(starts[-1])
    for method in args.methods.split(","):
        for name in args.strategies.split(","):
            for seed in args.seeds:
                torch.manual_seed(seed)
                np.random.seed(seed)
                net = model(method, train[0].shape[1], classes, args.hidden_size)
                learner = strategy(name, net, args)
                rows, start = [], time.time()
                for i, experience in enumerate(benchmark.train_stream):
                    learner.train(experience)
                    rows.append(accuracy_row(learner.model, test, starts, i))
                last = rows[-1]
                tasks = len(rows)
                forgetting = float(np.mean([max(rows[i][j] for i in range(j, tasks - 1)) - last[j] for j in range(tasks - 1)]))
                print(json.dumps({"method": method, "strategy": name, "seed": seed, "matrix": rows,
                                  "average_accuracy": float(np.mean(last)), "forgetting": forgetting,
                                  "seconds": round(time.time() - start, 2)}), flush=True)


if __name__ == "__main__":
    main()
