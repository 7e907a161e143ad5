"""Reference outputs of adapters computed by AdapterHub `adapters` and `peft`.

Run:  python make_adapter_references.py   (writes adapter_references.h5 here)
Needs torch, transformers, adapters (1.3.0) and peft (0.21.2), h5py.

A tiny random BERT (weights under their Hugging Face names, config as the
"config" attribute, a padded batch in "input.ids" / "input.attention_mask")
and, per case, the adapter weights renamed to Graft's parameter names
("case/NAME/adapters/ADAPTER/<graft name>") and the expected last hidden
state ("case/NAME/expected"). Adapter weights are randomised (std 0.1) so
that every parameter matters, including those initialised to zero.
"""
import json
import re

import adapters
import h5py
import torch
from adapters.composition import Stack
from peft import LoraConfig, get_peft_model
from transformers import BertConfig, BertModel

torch.manual_seed(0)
torch.set_num_threads(1)
config = BertConfig(vocab_size=40, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                    intermediate_size=48, max_position_embeddings=16, hidden_act="gelu")
ids = torch.tensor([[2, 17, 33, 5, 21, 9, 3], [2, 30, 11, 3, 0, 0, 0]])
mask = (torch.arange(7)[None, :] < torch.tensor([[7], [4]])).long()


def base_model():
    torch.manual_seed(1)
    model = BertModel(config, add_pooling_layer=False).eval()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def graft_name(name):
    """AdapterHub / peft parameter name -> (adapter, Graft name) or None."""
    m = re.match(r"encoder\.layer\.(\d+)\.(attention\.output|output)\.adapters\.(\w+)\.adapter_(down|up)\.(?:0\.)?(weight|bias)", name)
    if m:
        sub = "attention" if m[2] == "attention.output" else "feed_forward"
        return m[3], f"layer.{m[1]}.{sub}.{m[4]}.{m[5]}"
    m = re.match(r"invertible_adapters\.(\w+)\.([FG])\.(\d)\.(weight|bias)", name)
    if m:
        part = "down" if m[3] == "0" else "up"
        return m[1], f"invertible.{m[2].lower()}.{part}.{m[4]}"
    m = re.match(r"base_model\.model\.encoder\.layer\.(\d+)\.attention\.self\.(query|key|value)\.lora_([AB])\.(\w+)\.weight", name)
    if m:
        return m[4], f"layer.{m[1]}.{m[2]}.lora_{m[3]}"
    return None


cases = {}


def record(case, model, inputs_model=None):
    torch.manual_seed(sum(case.encode()))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if graft_name(name):
                p.copy_(torch.randn_like(p) * 0.1)
        out = (inputs_model or model)(input_ids=ids, attention_mask=mask).last_hidden_state
    weights = {}
    for name, p in model.named_parameters():
        g = graft_name(name)
        if g:
            weights.setdefault(g[0], {})[g[1]] = p.detach().numpy().copy()
    cases[case] = (weights, out.numpy())


for case, cfg in [("seq_bn", "seq_bn"), ("double_seq_bn", "double_seq_bn"), ("par_bn", "par_bn"), ("seq_bn_inv", "seq_bn_inv")]:
    model = base_model()
    adapters.init(model)
    model.add_adapter("a", config=cfg)
    model.set_active_adapters("a")
    record(case, model)

model = base_model()
adapters.init(model)
model.add_adapter("lang", config="seq_bn")
model.add_adapter("task", config="double_seq_bn")
model.set_active_adapters(Stack("lang", "task"))
record("stack_seq_bn_double_seq_bn", model)

model = get_peft_model(base_model(), LoraConfig(r=4, lora_alpha=8, target_modules=["query", "value"], lora_dropout=0.0))
model.eval()
record("lora_r4_alpha8", model)

with h5py.File("adapter_references.h5", "w") as f:
    f.attrs["config"] = json.dumps(config.to_dict())
    for name, tensor in base_model().state_dict().items():
        f[name] = tensor.float().numpy()
    f["input.ids"] = ids.float().numpy()
    f["input.attention_mask"] = mask.float().numpy()
    for case, (weights, expected) in cases.items():
        f[f"case/{case}/expected"] = expected
        for adapter, params in weights.items():
            for name, value in params.items():
                f[f"case/{case}/adapters/{adapter}/{name}"] = value
print({case: sorted(w) for case, (w, _) in cases.items()})

# Sanity: every case must differ from the plain backbone.
with torch.no_grad():
    plain = base_model()(input_ids=ids, attention_mask=mask).last_hidden_state.numpy()
for case, (_, expected) in cases.items():
    assert abs(expected - plain).max() > 1e-3, case
