#!/usr/bin/env python3
"""The PyTorch + AdapterHub `adapters` peer of `graft-bench main-job`: the main job's training steps on a
randomly initialised multilingual-e5-small (XLM-R shape: 12 layers, hidden 384, 12 heads, FFN 1536,
vocabulary 250,002), on the batches Graft ran (their lengths come in as JSON from graft-bench's output).

    PY=~/.cache/graft-peers/venv/bin/python
    $PY Benchmarks/suite/torch_main_job.py --task classify --threads 1 --lengths '[[42, 40, ...], ...]' --warmup 2

  --task classify  seq_bn task adapter, mean pooling over real tokens, dropout 0.1, a linear head of 8 classes
  --task mlm       seq_bn_inv language adapter and a trainable masked-LM head (dense, GELU, LayerNorm, bias);
                   15% of tokens selected (80/10/10), logits at the selected rows over the corpus vocabulary
                   (5,610 ids, their embedding rows gathered once) plus 2,048 sampled outside ids with the
                   log(outside / sampled) correction, as `adapt mlm`

Each step: zero_grad, forward, loss, backward, AdamW (lr 1e-3, weight decay 0.01). Prints one JSON line:
tokens/s over the timed batches (real tokens), and GFLOP/s by graft-bench's FLOP model (the encoder's
matmuls and attention products on the padded batch, forward and input backward).
"""
import argparse
import json
import math
import resource
import time

import torch
import torch.nn.functional as F

VOCABULARY, CORPUS, NEGATIVES, CLASSES = 250_002, 5610, 2048, 8
LAYERS, HIDDEN, HEADS, FFN = 12, 384, 12, 1536


def model_flops(batches):
    total = 0
    for lengths in batches:
        length, padded = max(lengths), len(lengths) * max(lengths)
        layer = 2 * padded * (4 * HIDDEN * HIDDEN + 2 * HIDDEN * FFN) + 4 * padded * length * HIDDEN
        total += 2 * LAYERS * layer
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--task", choices=["classify", "mlm"], required=True)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--lengths", required=True, help="JSON list of batches, each a list of sequence lengths")
    p.add_argument("--warmup", type=int, default=2, help="the first batches, run untimed")
    p.add_argument("--peak-gflops", type=float, default=None)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    batches = json.loads(a.lengths)

    import adapters
    from adapters import SeqBnConfig, SeqBnInvConfig
    from transformers import XLMRobertaConfig, XLMRobertaForMaskedLM
    config = XLMRobertaConfig(vocab_size=VOCABULARY, hidden_size=HIDDEN, num_hidden_layers=LAYERS, num_attention_heads=HEADS,
                              intermediate_size=FFN, max_position_embeddings=514, pad_token_id=1, bos_token_id=0,
                              eos_token_id=2, attn_implementation="sdpa")
    model = XLMRobertaForMaskedLM(config)
    adapters.init(model)
    model.add_adapter("a", config=SeqBnConfig(reduction_factor=16) if a.task == "classify" else SeqBnInvConfig(reduction_factor=16))
    model.train_adapter("a")
    for parameter in model.lm_head.parameters():
        parameter.requires_grad_(False)
    encoder, lm = model.roberta, model.lm_head
    corpus = torch.arange(CORPUS - 5) * 44 + 5  # as graft-bench: ids of the corpus vocabulary
    vocabulary = torch.cat([torch.arange(4), corpus, torch.tensor([VOCABULARY - 1])])
    outside = torch.ones(VOCABULARY, dtype=torch.bool)
    outside[vocabulary] = False
    outside = outside.nonzero().squeeze(1)
    restricted = lm.decoder.weight.detach()[vocabulary].clone()
    correction = math.log(len(outside) / NEGATIVES)
    if a.task == "classify":
        head = torch.nn.Linear(HIDDEN, CLASSES)
        trainable = [p for p in model.parameters() if p.requires_grad] + list(head.parameters())
    else:
        for module in (lm.dense, lm.layer_norm):
            for parameter in module.parameters():
                parameter.requires_grad_(True)
        lm.bias.requires_grad_(True)
        trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-3, weight_decay=0.01)
    model.train()
    generator = torch.Generator().manual_seed(0)

    def make(lengths):
        width = max(lengths)
        ids = torch.ones(len(lengths), width, dtype=torch.long)
        mask = torch.zeros(len(lengths), width, dtype=torch.long)
        for row, length in enumerate(lengths):
            ids[row, 0], ids[row, length - 1] = 0, 2
            ids[row, 1:length - 1] = corpus[torch.randint(len(corpus), (length - 2,), generator=generator)]
            mask[row, :length] = 1
        return ids, mask

    def step(lengths):
        ids, mask = make(lengths)
        optimizer.zero_grad(set_to_none=True)
        if a.task == "classify":
            hidden = encoder(input_ids=ids, attention_mask=mask).last_hidden_state
            weights = mask.unsqueeze(2).float()
            pooled = F.dropout((hidden * weights).sum(1) / weights.sum(1), 0.1, training=True)
            loss = F.cross_entropy(head(pooled), torch.arange(len(lengths)) % CLASSES)
        else:
            selectable = (ids > 3) & (mask == 1)
            selected = selectable & (torch.rand(ids.shape, generator=generator) < 0.15)
            targets = ids[selected]
            choice = torch.rand(ids.shape, generator=generator)
            corrupted = ids.clone()
            corrupted[selected & (choice < 0.8)] = VOCABULARY - 1
            random = selected & (choice >= 0.8) & (choice < 0.9)
            corrupted[random] = torch.randint(VOCABULARY, (int(random.sum()),), generator=generator)
            hidden = encoder(input_ids=corrupted, attention_mask=mask).last_hidden_state[selected]
            states = lm.layer_norm(F.gelu(lm.dense(hidden)))
            states = model.base_model.invertible_adapters_forward(states.unsqueeze(0), rev=True).squeeze(0)
            negatives = outside[torch.randperm(len(outside), generator=generator)[:NEGATIVES]]
            weight = torch.cat([restricted, lm.decoder.weight.detach()[negatives]])
            bias = torch.cat([lm.bias[vocabulary], lm.bias[negatives] + correction])
            logits = states @ weight.T + bias
            loss = F.cross_entropy(logits, torch.searchsorted(vocabulary, targets))
        loss.backward()
        optimizer.step()
        return loss.item()

    losses = [step(lengths) for lengths in batches[:a.warmup]]
    start = time.perf_counter()
    for lengths in batches[a.warmup:]:
        losses.append(step(lengths))
    seconds = time.perf_counter() - start
    timed = batches[a.warmup:]
    tokens = sum(sum(lengths) for lengths in timed)
    flops = model_flops(timed)
    peak = a.peak_gflops or 97.0 * a.threads
    print(json.dumps(dict(
        engine="pytorch", mode="main_job", task=a.task, method="seq_bn" if a.task == "classify" else "seq_bn_inv",
        config="e5-small", threads=a.threads, batch=len(batches[0]), steps=len(timed), warmup=a.warmup,
        tokens=tokens, seconds=round(seconds, 3), tokens_per_s=round(tokens / seconds, 1),
        achieved_gflops=round(flops / seconds / 1e9, 2), peak_gflops_ref=peak, frac_of_peak=round(flops / seconds / 1e9 / peak, 3),
        loss_first=round(losses[0], 4), loss_last=round(losses[-1], 4),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        torch=torch.__version__, adapters=adapters.__version__)))


if __name__ == "__main__":
    main()
