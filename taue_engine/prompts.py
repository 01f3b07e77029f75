"""The prompts of a job: encoded once for all phases, the object's own words found among their tokens, and the
words the model (and its LoRAs) does not know named before the job runs."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from .models.vocabulary import unknown_words, unknown_words_warning

STOP_WORDS = {"a", "an", "the", "of", "on", "in", "with", "and", "at", "by", ",", ".", "!", "?", "-", "'s"}


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
        """Positions of the object's words in T_fg (not BOS/EOS/padding, not stop words): whose attention is A_fg."""
        tok = self.tokenizer
        ids = tok(prompt, truncation=True, max_length=tok.model_max_length).input_ids
        special = {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id}
        words = [i for i, t in enumerate(ids) if t not in special]
        content = [i for i in words if tok.convert_ids_to_tokens(ids[i]).replace("</w>", "") not in STOP_WORDS]
        return content or words

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
        *object_embeds, bg, comp = self._encode_prompts(prompts + [background_prompt, composite_prompt],
                                                        negative_prompt, self._execution_device)
        return composite_prompt, object_embeds, bg, comp

    def _uses_cfg(self, guidance: float) -> bool:
        """Whether SDXL's __call__ will batch [uncond, cond] for this guidance scale (as diffusers decides it)."""
        return guidance > 1 and self.unet.config.time_cond_proj_dim is None
