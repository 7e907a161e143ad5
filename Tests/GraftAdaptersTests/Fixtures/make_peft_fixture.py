"""A peft LoRA adapter on a tiny random BERT, and the output it gives.

Run:  python make_peft_fixture.py   (writes peft_base/, peft_lora/ and peft_expected.h5 here)
Needs torch, transformers (4.57), peft (0.21.2), h5py.

- peft_base/: the base model as a Hugging Face directory (config.json,
  model.safetensors, vocab.txt), importable by `adapt import`.
- peft_lora/: `PeftModel.save_pretrained` of a LoRA (r 4, alpha 16, so the
  scaling is 4; query, value and intermediate.dense of layer 1 only) whose
  A and B are randomised (std 0.1), so that every weight matters.
- peft_expected.h5: "input.ids", "input.attention_mask" (a padded batch) and
  "expected", peft's last hidden state for them (eval mode).
"""
import json
import os
import shutil

import h5py
import torch
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertModel

torch.manual_seed(0)
torch.set_num_threads(1)
here = os.path.dirname(os.path.abspath(__file__))
words = ["the", "a", "mawu", "ndi", "water", "wind", "##s", "##ing", "run", "dog"]
vocabulary = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + words
vocabulary += [f"w{i}" for i in range(40 - len(vocabulary))]
config = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=48, max_position_embeddings=16, hidden_act="gelu")
ids = torch.tensor([[2, 17, 33, 5, 21, 9, 3], [2, 30, 11, 3, 0, 0, 0]])
mask = (torch.arange(7)[None, :] < torch.tensor([[7], [4]])).long()

base = BertModel(config, add_pooling_layer=False).eval()
with torch.no_grad():
    for p in base.parameters():
        p.add_(torch.randn_like(p) * 0.05)
base_dir = os.path.join(here, "peft_base")
shutil.rmtree(base_dir, ignore_errors=True)
base.save_pretrained(base_dir)
with open(os.path.join(base_dir, "vocab.txt"), "w") as f:
    f.write("\n".join(vocabulary) + "\n")

lora = LoraConfig(r=4, lora_alpha=16, lora_dropout=0.1, layers_to_transform=[1],
                  target_modules=["query", "value", "intermediate.dense"])
model = get_peft_model(base, lora).eval()
with torch.no_grad():
    for name, p in model.named_parameters():
        if "lora_" in name:
            p.copy_(torch.randn_like(p) * 0.1)
    expected = model(input_ids=ids, attention_mask=mask).last_hidden_state
lora_dir = os.path.join(here, "peft_lora")
shutil.rmtree(lora_dir, ignore_errors=True)
model.save_pretrained(lora_dir)
os.remove(os.path.join(lora_dir, "README.md"))

with h5py.File(os.path.join(here, "peft_expected.h5"), "w") as f:
    f["input.ids"] = ids.float().numpy()
    f["input.attention_mask"] = mask.float().numpy()
    f["expected"] = expected.numpy()

with torch.no_grad(), model.disable_adapter():
    unadapted = model(input_ids=ids, attention_mask=mask).last_hidden_state
assert (expected - unadapted).abs().max() > 1e-2, "the adapter must change the output"
print(sorted(os.listdir(lora_dir)), json.load(open(os.path.join(lora_dir, "adapter_config.json")))["target_modules"])
