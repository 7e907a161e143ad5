"""Reference outputs of tiny random BERT and XLM-R models from transformers.

Run:  python make_tiny_encoders.py   (writes tiny_bert.h5 and tiny_xlmr.h5 here)
Needs torch, transformers and h5py. Each file holds the model's weights under
their Hugging Face names (float32), the config as a JSON string attribute
"config", a padded batch of inputs ("input.ids", "input.attention_mask",
stored as float32) and the expected outputs ("expected.last_hidden_state",
"expected.pooler_output", "expected.mlm_logits", "expected.mlm_transform").
"""
import json

import h5py
import torch
from transformers import BertConfig, BertForMaskedLM, XLMRobertaConfig, XLMRobertaForMaskedLM

torch.manual_seed(0)
torch.set_num_threads(1)
SHAPE = dict(vocab_size=61, hidden_size=24, num_hidden_layers=2, num_attention_heads=3,
             intermediate_size=40, max_position_embeddings=24, type_vocab_size=2, hidden_act="gelu",
             layer_norm_eps=1e-12)


def randomise(model):
    # Default init gives LayerNorm = identity and zero biases; perturb everything so
    # every parameter is exercised by the comparison.
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.2 + (1.0 if p.dim() == 1 and p.shape[0] == SHAPE["hidden_size"] else 0.0))


def export(model, config, prefix, lm_prefix, path, ids, mask):
    model.eval()
    randomise(model)
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        base = getattr(model, prefix)
        pooled = base.pooler(out.hidden_states[-1]) if base.pooler is not None else None
        transform = model.cls.predictions.transform(out.hidden_states[-1]) if lm_prefix == "cls.predictions." \
            else model.lm_head.layer_norm(torch.nn.functional.gelu(model.lm_head.dense(out.hidden_states[-1])))
    with h5py.File(path, "w") as f:
        f.attrs["config"] = json.dumps(config.to_dict())
        for name, tensor in model.state_dict().items():
            f[name] = tensor.float().numpy()
        f["input.ids"] = ids.float().numpy()
        f["input.attention_mask"] = mask.float().numpy()
        f["expected.last_hidden_state"] = out.hidden_states[-1].numpy()
        f["expected.mlm_logits"] = out.logits.numpy()
        f["expected.mlm_transform"] = transform.numpy()
        if pooled is not None:
            f["expected.pooler_output"] = pooled.numpy()


ids = torch.tensor([[2, 17, 33, 5, 48, 9, 3], [2, 40, 11, 3, 0, 0, 0]])
mask = (torch.arange(7)[None, :] < torch.tensor([[7], [4]])).long()
bert_config = BertConfig(**SHAPE, pad_token_id=0)
export(BertForMaskedLM(bert_config), bert_config, "bert", "cls.predictions.", "tiny_bert.h5", ids, mask)

# XLM-R: pad id 1, position ids offset past it.
xids = torch.where(mask.bool(), ids, torch.ones_like(ids))
xlmr_config = XLMRobertaConfig(**SHAPE | {"max_position_embeddings": 26}, pad_token_id=1, bos_token_id=0, eos_token_id=2)
export(XLMRobertaForMaskedLM(xlmr_config), xlmr_config, "roberta", "lm_head.", "tiny_xlmr.h5", xids, mask)
