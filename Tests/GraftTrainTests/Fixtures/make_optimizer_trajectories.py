"""Reference optimizer trajectories from PyTorch, for GraftTrainTests.

Run:  python make_optimizer_trajectories.py > optimizer_trajectories.json
Needs torch (any recent CPU build); the committed JSON was made with the
version recorded in its "torch" field.

Each case minimises L(p) = sum(w * (p - c)^2) for 12 steps from p0, with the
gradient computed by hand as 2 * w * (p - c) in float32 (so Graft can compute
the identical gradient), the learning rate set by a LambdaLR schedule before
each step. Every step's parameters and learning rate are recorded.
"""
import json
import math

import torch

torch.set_num_threads(1)
N, STEPS = 7, 12
p0 = [math.sin(1.3 * i) * 2 for i in range(N)]
c = [math.cos(0.7 * i) for i in range(N)]
w = [0.5 + 0.25 * i for i in range(N)]


def linear_warmup(warmup, total):
    # transformers.get_linear_schedule_with_warmup
    def factor(step):
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total - step) / max(1, total - warmup))
    return factor


def run(make_optimizer, schedule):
    p = torch.tensor(p0, dtype=torch.float32, requires_grad=True)
    cc = torch.tensor(c, dtype=torch.float32)
    ww = torch.tensor(w, dtype=torch.float32)
    opt = make_optimizer([p])
    sched = torch.optim.lr_scheduler.LambdaLR(opt, schedule)
    params, lrs = [], []
    for _ in range(STEPS):
        lrs.append(opt.param_groups[0]["lr"])
        with torch.no_grad():
            p.grad = 2 * ww * (p - cc)
        opt.step()
        sched.step()
        params.append([float(x) for x in p.detach()])
    return {"params": params, "learning_rates": lrs}


cases = {
    "adamw_defaults_constant": run(lambda ps: torch.optim.AdamW(ps, lr=0.1), lambda s: 1.0),
    "adamw_decay_linear": run(
        lambda ps: torch.optim.AdamW(ps, lr=0.05, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.1),
        linear_warmup(3, 10)),
    "sgd_momentum_linear": run(
        lambda ps: torch.optim.SGD(ps, lr=0.05, momentum=0.9, weight_decay=0.01), linear_warmup(2, 12)),
    "sgd_nesterov_constant": run(
        lambda ps: torch.optim.SGD(ps, lr=0.02, momentum=0.5, dampening=0.0, nesterov=True), lambda s: 1.0),
}
print(json.dumps({"torch": torch.__version__, "p0": p0, "c": c, "w": w, "cases": cases}, indent=1))
