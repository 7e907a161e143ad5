"""LoRA adapters with prediction heads saved by AdapterHub `adapters` with `save_adapter(..., with_head=True)`,
and what AdapterHub computes with them: a LoRA on every adaptable matrix with a one-layer classification head on
the tiny random BERT of make_adapterhub_fixture.py (adapterhub_bert/), saved as torch.save files; and a LoRA on
query and value of layer 1 only with a tagging head on a tiny random XLM-R, saved as safetensors. Then two-layer
heads (Dropout, Linear(hidden, hidden), the activation, Dropout, Linear(hidden, labels): modules 0-4 of the head),
each with a LoRA on query and value: AdapterHub's default classification head (layers 2, tanh) on BERT, saved as
torch.save files; a GELU tagging head and a ReLU classification head on XLM-R, saved as safetensors.

Writes adapterhub_xlmr/ (config.json, model.safetensors; a WordPiece vocab.txt only so that Graft can import it:
the tests feed token ids), adapterhub_lora_bert/ and adapterhub_head2_bert/ (adapter_config.json,
pytorch_adapter.bin, head_config.json, pytorch_model_head.bin), adapterhub_lora_xlmr/, adapterhub_head2_xlmr_gelu/
and adapterhub_head2_xlmr_relu/ (adapter_config.json, adapter.safetensors, head_config.json, model_head.safetensors),
adapterhub_lora_expected.json (the one-layer heads) and adapterhub_head2_expected.json (the two-layer heads): for
each adapter directory, its base model directory, input ids, attention mask, the last hidden state with the
adapter active and the head's logits.
Run with the peer environment (../shared/bench/peers/README.md):
    ~/.cache/graft-peers/venv/bin/python Tests/GraftAdaptersTests/Fixtures/make_adapterhub_lora_fixture.py
"""
import json, os
import adapters
import torch
from adapters import AutoAdapterModel, LoRAConfig
from transformers import XLMRobertaConfig, XLMRobertaModel

os.chdir(os.path.dirname(os.path.abspath(__file__)))  # relative paths: save_adapter records the base model's
torch.manual_seed(1)
xlmr = XLMRobertaConfig(vocab_size=30, hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                        max_position_embeddings=40, type_vocab_size=1, pad_token_id=1, bos_token_id=0, eos_token_id=2)
XLMRobertaModel(xlmr, add_pooling_layer=False).save_pretrained("adapterhub_xlmr", safe_serialization=True)
with open(os.path.join("adapterhub_xlmr", "vocab.txt"), "w") as f:
    # WordPiece's names for XLM-R's special tokens at XLM-R's ids (<s>, <pad>, </s>, <unk>, <mask>)
    f.write("\n".join(["[CLS]", "[PAD]", "[SEP]", "[UNK]", "[MASK]"] + [f"w{i}" for i in range(25)]) + "\n")

def save(cases, expected_file):
    """Saves each case's adapter and head as AdapterHub does, and what AdapterHub computes with them."""
    expected = {}
    for directory, base, lora, add_head, safetensors, ids in cases:
        model = AutoAdapterModel.from_pretrained(base).eval()
        model.add_adapter("task", config=lora)
        add_head(model)
        model.set_active_adapters("task")
        with torch.no_grad():  # every adapter and head weight random, so that each one matters
            for name, p in model.named_parameters():
                if "loras" in name or name.startswith("heads."):
                    p.copy_(torch.randn_like(p) * 0.3)
        model.save_adapter(directory, "task", with_head=True, use_safetensors=safetensors)
        mask = [[int(i != model.config.pad_token_id) for i in row] for row in ids]
        with torch.no_grad():
            hidden = model.base_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
            logits = model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask), head="task").logits
            model.set_active_adapters(None)
            plain = model.base_model(input_ids=torch.tensor(ids), attention_mask=torch.tensor(mask)).last_hidden_state
        assert (hidden - plain).abs().max() > 0.1, "the LoRA must change the hidden state"
        expected[directory] = {"base": base, "ids": ids, "attention_mask": mask, "last_hidden_state": hidden.tolist(),
                               "logits": logits.tolist()}
    json.dump(expected, open(expected_file, "w"))


bert_ids, xlmr_ids = [[2, 7, 4, 11, 3], [2, 9, 3, 0, 0]], [[0, 7, 4, 11, 2], [0, 9, 2, 1, 1]]
save([  # adapter directory, base model, LoRA, head, safetensors, inputs
    ("adapterhub_lora_bert", "adapterhub_bert",
     LoRAConfig(r=4, alpha=6, attn_matrices=["q", "k", "v"], intermediate_lora=True, output_lora=True),
     lambda m: m.add_classification_head("task", num_labels=3, layers=1, id2label={0: "neg", 1: "neu", 2: "pos"}),
     False, bert_ids),
    ("adapterhub_lora_xlmr", "adapterhub_xlmr", LoRAConfig(r=2, alpha=8, leave_out=[0]),
     lambda m: m.add_tagging_head("task", num_labels=4, id2label={0: "O", 1: "B-X", 2: "I-X", 3: "B-Y"}),
     True, xlmr_ids),
], "adapterhub_lora_expected.json")

torch.manual_seed(2)
save([
    ("adapterhub_head2_bert", "adapterhub_bert", LoRAConfig(r=2, alpha=4),
     lambda m: m.add_classification_head("task", num_labels=3, id2label={0: "neg", 1: "neu", 2: "pos"}),  # AdapterHub's defaults
     False, bert_ids),
    ("adapterhub_head2_xlmr_gelu", "adapterhub_xlmr", LoRAConfig(r=2, alpha=4),
     lambda m: m.add_tagging_head("task", num_labels=3, layers=2, activation_function="gelu", id2label={0: "O", 1: "B-X", 2: "I-X"}),
     True, xlmr_ids),
    ("adapterhub_head2_xlmr_relu", "adapterhub_xlmr", LoRAConfig(r=2, alpha=4),
     lambda m: m.add_classification_head("task", num_labels=2, layers=2, activation_function="relu", id2label={0: "no", 1: "yes"}),
     True, xlmr_ids),
], "adapterhub_head2_expected.json")
