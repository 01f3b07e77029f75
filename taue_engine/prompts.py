"""The prompts of a job: encoded once for all phases, the object's own words found among their tokens, and the
words the model (and its LoRAs) does not know named before the job runs."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import torch

from .models.vocabulary import unknown_words, unknown_words_warning

STOP_WORDS = {"a", "an", "the", "of", "on", "in", "with", "and", "at", "by", ",", ".", "!", "?", "-", "'s"}
QUALITY_WORDS = {
    "photo", "photograph", "photography", "photorealistic", "realistic", "hyperrealistic", "raw", "8k", "4k", "2k",
    "hd", "uhd", "hdr", "dslr", "masterpiece", "best", "quality", "high", "highly", "detailed", "detail", "details",
    "sharp", "focus", "professional", "studio", "lighting", "light", "cinematic", "render", "rendered", "octane",
    "unreal", "engine", "trending", "artstation", "award", "winning", "beautiful", "stunning", "intricate", "ultra",
    "resolution", "epic", "amazing", "absurdres", "highres", "sharpness", "bokeh", "depth", "field", "style"}
"""Words that describe the picture, not the object: left out of the object's attention (A_fg) with STOP_WORDS."""
MARK = re.compile(r"\[([^\[\]]+)\]")
"""[words] in an object prompt marks the words whose attention finds the object; the brackets are not encoded."""
_WORD = re.compile(r"[\w']+|[^\w\s]")


def strip_marks(prompt: str) -> str:
    """The prompt as the text encoders read it: '[bicycle]' -> 'bicycle'."""
    return MARK.sub(r"\1", prompt)


def object_words(prompt: str) -> list[bool]:
    """For each word of strip_marks(prompt) (as _WORD splits it), whether its attention finds the object: the
    words the user marked with [ ]; else the first clause's (up to the first comma) words that are neither stop
    words nor quality tags; else any such word; else every word."""
    marked = [(m.start(), m.end()) for m in MARK.finditer(prompt)]
    words, chosen = [], []
    for m in _WORD.finditer(prompt):
        if m.group() not in ("[", "]"):
            words.append(m.group().lower())
            chosen.append(any(a < m.start() < b for a, b in marked))
    if any(chosen):
        return chosen
    content = [w not in STOP_WORDS and w not in QUALITY_WORDS for w in words]
    first = [clause == 0 and ok for ok, clause in zip(content, _clauses(words))]
    return first if any(first) else content if any(content) else [True] * len(words)


def _clauses(words: list[str]) -> list[int]:
    clause, out = 0, []
    for w in words:
        out.append(clause)
        clause += w == ","
    return out


class PromptMixin:
    """For an SDXL pipeline (`tokenizer`, `encode_prompt`, `unet`), with `known_words` and `model_name` set by
    the pipeline and `lora_words` from the LoRA manager."""

    if TYPE_CHECKING:  # the pipeline's own
        known_words: frozenset[str] | None
        model_name: str
        tokenizer: Any
        unet: Any
        config: Any
        encode_prompt: Any
        lora_words: Any
        _execution_device: torch.device

    def prompt_warning(self, prompts: list[str | None], lora_words: list[set[str] | None] | None = None) -> str | None:
        """One line naming the words of `prompts` this model does not know (None: all known, or the model publishes
        no vocabulary, as SDXL checkpoints do). A LoRA adds the words it says it teaches; one that does not say
        turns the check off, as any word may mean something to it. `lora_words`: the words of the LoRAs a job will
        load (loras.file_words); default those loaded now."""
        known = self.known_words
        for words in self.lora_words() if lora_words is None else lora_words:
            known = None if known is None or words is None else known | words
        return unknown_words_warning(self.model_name, unknown_words(known, prompts))

    def _object_token_indices(self, prompt: str) -> list[int]:
        """Positions in T_fg of the object's words (object_words: marked, or the first clause's without stop words
        and quality tags): whose attention is A_fg. Each word is tokenised alone (CLIP's tokeniser splits on words
        first); if that does not give the prompt's own tokens, every word but the stop words counts."""
        tok = self.tokenizer
        text = strip_marks(prompt)
        ids = tok(text, truncation=True, max_length=tok.model_max_length).input_ids
        special = {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}
        positions = [i for i, t in enumerate(ids) if t not in special]
        pieces = [tok(w, add_special_tokens=False).input_ids for w in _WORD.findall(text)]
        if [t for piece in pieces for t in piece][: len(positions)] == [ids[i] for i in positions]:
            owner = [n for n, piece in enumerate(pieces) for _ in piece]
            wanted = object_words(prompt)
            return [i for i, n in zip(positions, owner) if wanted[n]]
        content = [i for i in positions if tok.convert_ids_to_tokens(ids[i]).replace("</w>", "") not in STOP_WORDS]
        return content or positions

    def _encode_prompts(self, prompts: list[str], negative_prompt: str | None, device) -> list[tuple]:
        """(embeds, negative embeds, pooled, negative pooled) per prompt, the negative encoded once for all.

        As in SDXL's encode_prompt, no negative prompt means zeroed embeddings when the model asks for them
        (`force_zeros_for_empty_prompt`), else the encoded empty string.
        """
        zero_negative = negative_prompt is None and self.config.force_zeros_for_empty_prompt
        texts = prompts + ([] if zero_negative else [negative_prompt or ""])
        embeds, _, pooled, _ = self.encode_prompt(texts, device=device, num_images_per_prompt=1,
                                                  do_classifier_free_guidance=False)
        n = len(prompts)
        if zero_negative:
            negative, negative_pooled = torch.zeros_like(embeds[:1]), torch.zeros_like(pooled[:1])
        else:
            negative, negative_pooled = embeds[n : n + 1], pooled[n : n + 1]
        return [(embeds[i : i + 1], negative, pooled[i : i + 1], negative_pooled) for i in range(n)]

    def _encode_scene(self, prompts: list[str], background_prompt: str, composite_prompt: str | None,
                      negative_prompt: str | None) -> tuple:
        """(T_all, each object's embeddings, T_bg's, T_all's): every prompt encoded once, in one batch; T_all
        defaults to the object prompts and T_bg joined with ', '."""
        composite_prompt = composite_prompt or ", ".join(prompts + [background_prompt])
        *object_embeds, bg, comp = self._encode_prompts([strip_marks(p) for p in prompts]
                                                        + [background_prompt, strip_marks(composite_prompt)],
                                                        negative_prompt, self._execution_device)
        return composite_prompt, object_embeds, bg, comp

    def _uses_cfg(self, guidance: float) -> bool:
        """Whether SDXL's __call__ will batch [uncond, cond] for this guidance scale (as diffusers decides it)."""
        return guidance > 1 and self.unet.config.time_cond_proj_dim is None
