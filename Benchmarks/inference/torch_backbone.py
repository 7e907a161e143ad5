"""The PyTorch side of the inference peers: transformers' XLMRobertaModel (or BertModel) holding the
weights of a Graft backbone file."""
import json

import h5py
import torch
from transformers import BertConfig, BertModel, XLMRobertaConfig, XLMRobertaModel


def load(path):
    """(model in eval mode, the backbone's config dictionary) for the Graft backbone file at `path`."""
    with h5py.File(path, "r") as f:
        config = json.loads(f.attrs["config"])
        state = {name: torch.from_numpy(f[name][()].astype("float32")) for name in f.keys()}
    kind = (XLMRobertaConfig, XLMRobertaModel) if config["model_type"] == "xlm-roberta" else (BertConfig, BertModel)
    model = kind[1](kind[0](**config), add_pooling_layer="pooler.dense.weight" in state).eval()
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert not unexpected and all("position_ids" in m for m in missing), (missing, unexpected)
    return model, config


def random_ids(config, batch, length, seed=0):
    """Random ids of the real vocabulary (special tokens left out) and a full attention mask."""
    ids = torch.randint(3, config["vocab_size"] - 40, (batch, length), generator=torch.Generator().manual_seed(seed))
    return ids, torch.ones_like(ids)

