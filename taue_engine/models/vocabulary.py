"""The words a model knows, where its folder says (`vocabulary.json`), and the words of a prompt it does not.

The toy models were trained on captions of a few dozen words (shapes, colours, background patterns); every other
word reaches the UNet as tokens it never saw, so "a red vintage bicycle" comes out as whatever the colours alone
make. A model that publishes its words lets the CLI, the server and the plug-ins say so before the user waits for
a result; SDXL checkpoints publish none and are never warned about.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

VOCABULARY_FILE = "vocabulary.json"
REAL_MODEL_HINT = "for real prompts use SDXL: --model stabilityai/stable-diffusion-xl-base-1.0 (README, 'Real SDXL')"


def model_words(folder: Path | None) -> frozenset[str] | None:
    """The words `folder/vocabulary.json` lists (`{"words": [...]}`), or None when the model publishes none."""
    if folder is None or not (folder / VOCABULARY_FILE).is_file():
        return None
    words = json.loads((folder / VOCABULARY_FILE).read_text(encoding="utf-8"))["words"]
    return frozenset(w.lower() for w in words)


def prompt_words(prompt: str) -> list[str]:
    return re.findall(r"[a-z]+", prompt.lower())


def unknown_words(known: frozenset[str] | None, prompts: list[str | None]) -> list[str]:
    """Words of the prompts the model does not know, in first-seen order ([] when it publishes no vocabulary)."""
    if known is None:
        return []
    seen: list[str] = []
    for prompt in prompts:
        for word in prompt_words(prompt or ""):
            if word not in known and word not in seen:
                seen.append(word)
    return seen


def unknown_words_warning(model: str, unknown: list[str]) -> str | None:
    """One line for the user, or None when every word is known."""
    if not unknown:
        return None
    listed = ", ".join(unknown[:12]) + (f" and {len(unknown) - 12} more" if len(unknown) > 12 else "")
    return (f"the {model} model does not know the words {listed}: it draws only the shapes, colours and "
            f"backgrounds it was trained on; {REAL_MODEL_HINT}")
