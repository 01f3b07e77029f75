"""A word-level CLIP tokenizer built offline from a word list kept in the repo.

CLIP's BPE marks the last letter of a word with '</w>'. All merges here are built right to left, each joining a
letter to a suffix that ends in '</w>', so a merge can only fire at the end of a word: no merge of one word can
fire inside another (the trap of left-to-right merges). Known words become one token; unknown words fall back to
their longest known suffix plus single letters, never to the unknown token.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

BOS, EOS = "<|startoftext|>", "<|endoftext|>"
MAX_LENGTH = 77
_CHARS = string.ascii_lowercase + string.digits + ",.!?'-:;&()/"


def read_word_list(path: Path) -> list[str]:
    words = []
    for line in path.read_text(encoding="utf-8").splitlines():
        word = line.strip().lower()
        if word and not word.startswith("#") and word not in words:
            words.append(word)
    return words


def write_tokenizer_files(words: list[str], directory: Path) -> Path:
    """Write vocab.json, merges.txt and the tokenizer configs for `words` into `directory`."""
    vocab: dict[str, int] = {}

    def add(token: str) -> None:
        if token not in vocab:
            vocab[token] = len(vocab)

    for char in _CHARS:
        add(char)
    for char in _CHARS:
        add(char + "</w>")
    merges: list[str] = []
    for word in words:
        if any(c not in _CHARS for c in word):
            raise ValueError(f"vocabulary word {word!r} has characters outside {_CHARS!r}")
        suffix = word[-1] + "</w>"
        for i in range(len(word) - 2, -1, -1):
            merged = word[i] + suffix
            merge = f"{word[i]} {suffix}"
            if merged not in vocab:
                add(merged)
                merges.append(merge)
            suffix = merged
    add(BOS)
    add(EOS)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "vocab.json").write_text(json.dumps(vocab, indent=0), encoding="utf-8")
    (directory / "merges.txt").write_text("#version: 0.2\n" + "\n".join(merges) + "\n", encoding="utf-8")
    special = {"bos_token": BOS, "eos_token": EOS, "unk_token": EOS, "pad_token": EOS}
    (directory / "special_tokens_map.json").write_text(json.dumps(special), encoding="utf-8")
    config = {"model_max_length": MAX_LENGTH, "tokenizer_class": "CLIPTokenizer", **special}
    (directory / "tokenizer_config.json").write_text(json.dumps(config), encoding="utf-8")
    return directory


def load_word_tokenizer(words: list[str], directory: Path):
    """A CLIPTokenizer over `words` (transformers ignores vocab/merges passed to the constructor: use a folder)."""
    from transformers import CLIPTokenizer

    write_tokenizer_files(words, directory)
    return CLIPTokenizer.from_pretrained(str(directory))
