"""Regenerates the Hugging Face tokenizer fixtures: small tokenizers of the three
kinds XLM-R-family and RoBERTa checkpoints ship, and what Hugging Face `tokenizers`
makes of every text of texts.jsonl plus the wordpiece fixture's EXTRA_TEXTS and
TEXTS below.

- xlmr/sentencepiece.bpe.model: a SentencePiece unigram model (3,000 pieces,
  `nmt_nfkc` normalisation, so its precompiled charsmap is SentencePiece's own)
  trained on the Chichewa and English Bibles; xlmr/tokenizer.json is what
  transformers' XLMRobertaTokenizerFast converts it to (the `<s> <pad> </s> <unk>`
  ids and `<mask>` of XLM-R, Precompiled + Replace normaliser, Metaspace).
- byte_fallback/tokenizer.json: the same pieces plus the 256 `<0xXX>` byte pieces,
  with `byte_fallback` on (as Llama-style unigram and BPE vocabularies have), NFKC
  and Lowercase normalisers, and Metaspace's `first` prepend scheme.
- roberta/tokenizer.json: a byte-level BPE of 2,000
  tokens trained by `tokenizers` with RoBERTa's special tokens and post-processor.

Each NAME_expected.jsonl line is {"text", "max_length", "ids"}: max_length is null
for the complete encoding and 16 or 512 for the truncated encoding of every
text longer than that.
  Usage: PYTHONPATH=DIR python make_huggingface_fixtures.py
  (needs sentencepiece, protobuf, tokenizers and transformers; Scripts/fetch-models.sh
  and `adapt data prepare chichewa-bible english-bible` for the training text)
"""
import json
import os
import sys
import tempfile

import sentencepiece as spm
from tokenizers import Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
from tokenizers.implementations import ByteLevelBPETokenizer
from transformers import XLMRobertaTokenizerFast

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_wordpiece_fixture import EXTRA_TEXTS, write_expected  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("GRAFT_CACHE", os.path.expanduser("~/.cache/graft"))

# What the shared texts do not cover for these pipelines: the special tokens in
# the text (XLM-R's <mask> strips the spaces on its left), whitespace of every
# kind and runs of it, NFKC folding (full-width forms, ligatures, super- and
# subscripts, compatibility jamo), runs of unknown characters, byte-level BPE's
# contractions and digit runs, and a very long word.
TEXTS = [
    "hello <mask> world", "hello<mask>world", "  <mask>  x", "<s>a</s><pad><unk>", "<mask><mask>", "<MASK> <Mask>",
    "a  b   c\t\td\n\ne \u00a0f\u2003g\u3000h", " leading", "trailing ", "  both  ", "\t", "",
    "\uff21\uff22\uff23 \uff11\uff12\uff13 \ufb01\ufb02 x\u00b2 H\u2082O \u3131\u314f \u2460 \u2474 \u33a1 \u2126",
    "\U0001d400\U0001d401 \u1e9b\u0323 \u212b A\u030a \u00c5",
    "\u2603\u2603\u2603 \U00013000\U00013001 \U0001f600\U0001f600 \ue000\ue001",
    "I'm we're they've she'll he'd it's don't WE'RE", "123456789 3.14159 1,000,000 0x1F",
    "Supercalifragilisticexpialidocious" * 4, "a" * 300,
    "\u0645\u0631\u062d\u0628\u0627 \u0628\u0627\u0644\u0639\u0627\u0644\u0645 \u05e9\u05dc\u05d5\u05dd",
]


def texts():
    with open(os.path.join(HERE, "texts.jsonl"), encoding="utf-8") as f:
        shared = [json.loads(line)["text"] for line in f if line.strip()]
    return shared + EXTRA_TEXTS + TEXTS


def training_lines():
    lines = []
    for name in ("chichewa-bible", "english-bible"):
        path = os.path.join(CACHE, "data", f"{name}.jsonl")
        if not os.path.exists(path):
            sys.exit(f"missing {path}: run `adapt data prepare {name}`")
        with open(path, encoding="utf-8") as f:
            lines += [json.loads(line)["text"] for line in f][:6000]
    return lines


def sentencepiece_unigram(corpus, work):
    directory = os.path.join(HERE, "xlmr")
    os.makedirs(directory, exist_ok=True)
    prefix = os.path.join(work, "spm")
    spm.SentencePieceTrainer.train(
        input=corpus, model_prefix=prefix, model_type="unigram", vocab_size=3000, character_coverage=0.9995,
        normalization_rule_name="nmt_nfkc", seed_sentencepiece_size=200000, num_threads=2, minloglevel=2)
    model = os.path.join(directory, "sentencepiece.bpe.model")  # XLM-R's file name, although it is a unigram model
    os.replace(prefix + ".model", model)
    fast = XLMRobertaTokenizerFast(vocab_file=model)
    fast.backend_tokenizer.save(os.path.join(directory, "tokenizer.json"))
    return fast.backend_tokenizer


def with_byte_fallback(xlmr):
    spec = json.loads(xlmr.to_str())
    vocab = spec["model"]["vocab"]
    floor = min(score for _, score in vocab)
    pieces = vocab[:-1] + [[f"<0x{b:02X}>", floor - 1] for b in range(256)] + vocab[-1:]
    tokenizer = Tokenizer(models.Unigram([tuple(p) for p in pieces], unk_id=spec["model"]["unk_id"], byte_fallback=True))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase(), normalizers.Replace(Regex(" {2,}"), " ")])
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="first")
    tokenizer.decoder = decoders.Metaspace(replacement="\u2581", prepend_scheme="first")
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A </s>", pair="<s> $A </s> </s> $B </s>", special_tokens=[("<s>", 0), ("</s>", 2)])
    tokenizer.add_special_tokens(["<s>", "<pad>", "</s>", "<unk>", "<mask>"])
    directory = os.path.join(HERE, "byte_fallback")
    os.makedirs(directory, exist_ok=True)
    tokenizer.save(os.path.join(directory, "tokenizer.json"))
    return tokenizer


def byte_level_bpe(corpus):
    directory = os.path.join(HERE, "roberta")
    os.makedirs(directory, exist_ok=True)
    trainer = ByteLevelBPETokenizer()
    trainer.train([corpus], vocab_size=2000, min_frequency=2,
                  special_tokens=["<s>", "<pad>", "</s>", "<unk>", "<mask>"], show_progress=False)
    spec = json.loads(trainer._tokenizer.to_str())
    for token in spec["added_tokens"]:  # RoBERTa's <mask> takes the spaces before it
        token["lstrip"] = token["content"] == "<mask>"
    tokenizer = Tokenizer.from_str(json.dumps(spec))
    tokenizer.post_processor = processors.RobertaProcessing(("</s>", 2), ("<s>", 0), trim_offsets=True, add_prefix_space=False)
    tokenizer.save(os.path.join(directory, "tokenizer.json"))
    return tokenizer


def main():
    cases = texts()
    with tempfile.TemporaryDirectory() as work:
        corpus = os.path.join(work, "corpus.txt")
        with open(corpus, "w", encoding="utf-8") as f:
            f.write("\n".join(training_lines()) + "\n")
        xlmr = sentencepiece_unigram(corpus, work)
        write_expected("xlmr", xlmr, cases)
        write_expected("byte_fallback", with_byte_fallback(Tokenizer.from_str(xlmr.to_str())), cases)
        write_expected("roberta", byte_level_bpe(corpus), cases)


if __name__ == "__main__":
    main()
