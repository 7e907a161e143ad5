"""Checks `adapt export --format transformers` (and `--format adapterhub`) against `adapt embed`.

    adapt export e5.h5 --format transformers --output e5-hf
    head -n 200 texts.txt | adapt embed --backbone e5.h5 > embed.jsonl
    python check_export.py e5-hf embed.jsonl
    # a language adapter: the AdapterHub export, loaded on the exported backbone
    adapt export language.h5 --format adapterhub --output language-hub
    head -n 200 texts.txt | adapt embed --backbone e5.h5 --adapter language.h5 > embed.jsonl
    python check_export.py e5-hf embed.jsonl --adapter language-hub

Loads DIR with transformers.AutoModel, runs each line's ids (as Graft tokenized
them: the export carries no transformers tokenizer), mean-pools the last hidden
state over the tokens, L2-normalises, and prints one JSON line: the number of
texts and the smallest and mean cosine similarity to Graft's embedding, and the
largest absolute difference of any component.
"""

import argparse
import json

import torch
from transformers import AutoModel


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", help="the directory written by adapt export --format transformers")
    parser.add_argument("embeddings", help="the output of adapt embed (JSONL with ids and embedding)")
    parser.add_argument("--adapter", help="an adapter directory written by adapt export --format adapterhub, run active")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    records = [json.loads(line) for line in open(args.embeddings, encoding="utf-8")]
    model = AutoModel.from_pretrained(args.model, add_pooling_layer=False).eval()
    if args.adapter:
        import adapters
        adapters.init(model)
        model.set_active_adapters(model.load_adapter(args.adapter, use_safetensors=True))
    pad = model.config.pad_token_id
    cosines, largest = [], 0.0
    with torch.no_grad():
        for start in range(0, len(records), args.batch_size):
            batch = records[start:start + args.batch_size]
            length = max(len(r["ids"]) for r in batch)
            ids = torch.tensor([r["ids"] + [pad] * (length - len(r["ids"])) for r in batch])
            mask = (torch.arange(length)[None, :] < torch.tensor([len(r["ids"]) for r in batch])[:, None]).long()
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            pooled = torch.nn.functional.normalize(pooled, dim=-1)
            graft = torch.tensor([r["embedding"] for r in batch])
            cosines += torch.nn.functional.cosine_similarity(pooled, graft, dim=-1).tolist()
            largest = max(largest, (pooled - graft).abs().max().item())
    print(json.dumps({"texts": len(cosines), "min_cosine": min(cosines), "mean_cosine": sum(cosines) / len(cosines),
                      "max_abs_difference": largest}))


if __name__ == "__main__":
    main()
