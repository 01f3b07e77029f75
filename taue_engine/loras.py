"""LoRAs: which files, at which scale, and what words they teach.

TAUE trains nothing, so it runs on whatever weights the user runs, LoRAs included. The loading itself is diffusers'
(`load_lora_weights` through peft, which reads diffusers-format and kohya/A1111 files alike); this module names
LoRAs, reads them from disk (never from a hub), and gives the pipeline the set of adapters a job asks for.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path

LORA_SUFFIXES = (".safetensors",)
WORDS_KEY = "taue.words"
"""Safetensors metadata: a JSON list of the words a LoRA teaches (our toy LoRA writes it), so that the unknown-words
warning knows them. kohya files' `ss_tag_frequency` serves the same purpose."""


@dataclass(frozen=True)
class LoraSpec:
    """One LoRA of a job: its file, its scale (1.0: as trained; 0: no effect) and its adapter name."""

    path: Path
    scale: float = 1.0
    name: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "path", Path(self.path))
        if isinstance(self.scale, bool) or not isinstance(self.scale, (int, float)) or not -4 <= self.scale <= 4:
            raise ValueError(f"LoRA scale must be a number in -4..4 (got {self.scale!r})")
        object.__setattr__(self, "scale", float(self.scale))
        if not self.name:
            object.__setattr__(self, "name", lora_name(self.path))

    def check(self) -> LoraSpec:
        """The spec, if its file can be a LoRA; ValueError saying what to change otherwise."""
        if not self.path.is_file():
            raise ValueError(f"no LoRA file {str(self.path)!r}")
        if self.path.suffix.lower() not in LORA_SUFFIXES:
            raise ValueError(f"LoRA {str(self.path)!r} is not a .safetensors file (convert .ckpt/.pt LoRAs to "
                             "safetensors: they can run code when loaded)")
        return self


def lora_name(path: Path | str) -> str:
    """The adapter name of a file: its stem, with characters peft does not take in a module name replaced."""
    return re.sub(r"[^A-Za-z0-9_-]", "_", Path(path).stem) or "lora"


def parse_lora(text: str) -> LoraSpec:
    """'PATH' or 'PATH:SCALE' (the CLI's --lora). A colon followed by something that is not a number is part of
    the path (C:\\loras\\x.safetensors)."""
    path, sep, scale = text.rpartition(":")
    if sep:
        try:
            return LoraSpec(Path(path), float(scale))
        except ValueError as error:
            if "scale" in str(error):
                raise
    return LoraSpec(Path(text))


def as_spec(value) -> LoraSpec:
    """A LoraSpec from a LoraSpec, a path, a 'PATH[:SCALE]' string or a (path, scale) pair."""
    if isinstance(value, LoraSpec):
        return value
    if isinstance(value, str):
        return parse_lora(value)
    if isinstance(value, Path):
        return LoraSpec(value)
    if isinstance(value, (tuple, list)) and len(value) == 2:
        return LoraSpec(Path(value[0]), value[1])
    raise ValueError(f"a LoRA is a path, 'PATH:SCALE' or (path, scale) (got {value!r})")


def unique_names(specs: list[LoraSpec]) -> list[LoraSpec]:
    """The same specs with adapter names made unique (two files called style.safetensors in two folders)."""
    seen: dict[str, int] = {}
    named = []
    for spec in specs:
        count = seen.get(spec.name, 0)
        seen[spec.name] = count + 1
        named.append(spec if not count else LoraSpec(spec.path, spec.scale, f"{spec.name}_{count + 1}"))
    return named


def lora_metadata(path: Path) -> dict:
    """The safetensors metadata of a LoRA file (its header only: no tensors read)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as handle:
        return dict(handle.metadata() or {})


def read_lora(path: Path) -> tuple[dict, dict]:
    """The LoRA's tensors and its safetensors metadata, read from the file (safetensors only: no pickle)."""
    from safetensors.torch import load_file

    return load_file(str(path)), lora_metadata(path)


def file_words(path: Path) -> frozenset[str] | None:
    """The words a LoRA file says it teaches, from its header, read once per version of the file (a polled job's
    warnings ask again and again)."""
    stat = Path(path).stat()
    return _file_words(str(path), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=256)
def _file_words(path: str, mtime_ns: int, size: int) -> frozenset[str] | None:
    words = taught_words(lora_metadata(Path(path)))
    return None if words is None else frozenset(words)


def taught_words(metadata: dict) -> set[str] | None:
    """The words a LoRA says it teaches (None: it does not say, so any word may mean something)."""
    if WORDS_KEY in metadata:
        return {str(w).lower() for w in json.loads(metadata[WORDS_KEY])}
    if "ss_tag_frequency" in metadata:  # kohya: {folder: {caption tag: count}}
        words: set[str] = set()
        for tags in json.loads(metadata["ss_tag_frequency"]).values():
            for tag in tags:
                words.update(re.findall(r"[a-z0-9']+", tag.lower()))
        return words
    return None


def file_digest(path: Path) -> str:
    """sha256 of the file (recorded in taue.json: the result says exactly which LoRA made it)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def lora_folder_files(folder: Path) -> dict[str, Path]:
    """The LoRAs of a server's --lora-dir by the name a request uses: the file name (with or without .safetensors),
    files directly inside the folder only."""
    files = {}
    for path in sorted(Path(folder).iterdir()):
        if path.is_file() and path.suffix.lower() in LORA_SUFFIXES:
            files[path.stem] = path
    return files
