"""Tiny masked-LM checkpoints with their pretrained heads, and the logits transformers computes.

Writes mlm_bert/ (BertForMaskedLM: cls.predictions.*, decoder tied to the word embeddings) and
mlm_xlmr_untied/ (XLMRobertaForMaskedLM: lm_head.*, tie_word_embeddings false, so the decoder has its
own weight), each a Hugging Face directory (config.json, model.safetensors, vocab.txt) with
expected_logits.json: the logits at every position of the ids below.
Run with the peer environment (../shared/bench/peers/README.md):
    ~/.cache/graft-peers/venv/bin/python Tests/GraftIOTests/Fixtures/make_mlm_head_fixtures.py
"""
import json, os
import torch
from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

here = os.path.dirname(os.path.abspath(__file__))
words = [f"w{i}" for i in range(25)]
ids = [[2, 7, 4, 11, 3], [2, 9, 3, 1, 1]]
mask = [[1, 1, 1, 1, 1], [1, 1, 1, 0, 0]]

def build(name, model, vocab):
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 0.3)
    model.eval()
    out = os.path.join(here, name)
    model.save_pretrained(out, safe_serialization=True)
    with open(os.path.join(out, "vocab.txt"), "w") as f:
        f.write("\n".join(vocab) + "\n")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).logits
    json.dump({"ids": ids, "attention_mask": mask, "logits": logits.tolist()}, open(os.path.join(out, "expected_logits.json"), "w"))
    for extra in ["generation_config.json"]:
        if os.path.exists(os.path.join(out, extra)):
            os.remove(os.path.join(out, extra))

common = dict(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
              max_position_embeddings=40, hidden_act="gelu")
build("mlm_bert", BertForMaskedLM(BertConfig(**common, type_vocab_size=2, pad_token_id=0)),
      ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words)
# XLM-R pads with id 1 (its vocabulary file must say so).
build("mlm_xlmr_untied", XLMRobertaForMaskedLM(XLMRobertaConfig(**common, type_vocab_size=1, pad_token_id=1,
                                                                  tie_word_embeddings=False)),
      ["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"] + words)
