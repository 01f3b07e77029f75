"""The LoRAs a pipeline runs with: exactly those a job asks for, loaded once and kept while asked for.

A mixin for a diffusers pipeline with LoRA loading (SDXL's `StableDiffusionXLLoraLoaderMixin`: load_lora_weights,
set_adapters, delete_adapters ...); loras.py names, reads and describes the files.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from diffusers.utils import logging as diffusers_logging

from .loras import LoraSpec, as_spec, file_digest, read_lora, taught_words, unique_names
from .runs import one_run_at_a_time


class LoraManagerMixin:
    """`load_loras` and `active_loras`. The pipeline's __init__ calls `_init_loras`."""

    if TYPE_CHECKING:  # diffusers' LoRA loader's, in the pipeline
        load_lora_weights: Any
        unload_lora_weights: Any
        get_list_adapters: Any
        set_adapters: Any
        delete_adapters: Any
        enable_lora: Any
        disable_lora: Any
        _run_lock: Any

    active_loras: list[dict[str, Any]]
    """The LoRAs of the jobs that run now: name, file, scale and sha256 (recorded in each result's taue.json)."""

    def _init_loras(self) -> None:
        self._loras: dict[str, dict[str, Any]] = {}  # adapter name -> its file's stamp, digest, words and name
        self.active_loras = []

    def lora_words(self) -> list[set[str] | None]:
        """The words each loaded LoRA says it teaches (None: it does not say)."""
        return [entry["words"] for entry in self._loras.values()]

    @one_run_at_a_time
    def load_loras(self, loras: list[LoraSpec | str | Path | tuple] | None) -> list[dict[str, Any]]:
        """Make exactly these LoRAs active, for every phase of the jobs that follow: each a `LoraSpec`, a path, a
        'PATH[:SCALE]' string or a (path, scale) pair; an empty list (or None) leaves none. LoRAs no longer asked
        for are deleted from the model (with none left, the model is exactly as loaded); files already loaded are
        reused with their new scale. Loaded by diffusers (`load_lora_weights`, through peft), from the file's
        tensors: diffusers-format and kohya/A1111 files alike. Returns `active_loras`.

        Raises:
            ValueError: a file is missing, not .safetensors, or not a LoRA of this model (the message says which).
        """
        specs = unique_names([as_spec(spec) for spec in (loras or [])])
        for spec in specs:
            spec.check()
        loaded = self._loras
        stamps = {spec.name: (str(spec.path.resolve()), spec.path.stat().st_mtime_ns, spec.path.stat().st_size)
                  for spec in specs}
        stale = [name for name, entry in loaded.items() if stamps.get(name) != entry["stamp"]]
        if stale and len(stale) == len(loaded):
            self.unload_lora_weights()  # none kept: peft's layers go too
            loaded.clear()
        elif stale:
            self.delete_adapters(stale)
            for name in stale:
                del loaded[name]
        for spec in specs:
            if spec.name in loaded:
                continue
            tensors, metadata = read_lora(spec.path)
            verbosity = diffusers_logging.get_verbosity()
            try:
                diffusers_logging.set_verbosity(diffusers_logging.CRITICAL)  # a failure is reported below, in a line
                self.load_lora_weights(tensors, adapter_name=spec.name)
            except Exception as error:  # noqa: BLE001 - diffusers/peft raise many kinds for a foreign file
                if any(spec.name in names for names in self.get_list_adapters().values()):
                    self.delete_adapters([spec.name])
                why = ("its layers have other sizes: it was made for another base model" if "size mismatch" in
                       str(error) else f"{type(error).__name__}: {str(error).splitlines()[0][:160]}")
                raise ValueError(f"{spec.path.name} is not a LoRA this model can load ({why})") from None
            finally:
                diffusers_logging.set_verbosity(verbosity)
            loaded[spec.name] = {"stamp": stamps[spec.name], "digest": file_digest(spec.path),
                                 "words": taught_words(metadata), "file": spec.path.name}
        # a LoRA at scale 0 is off (disable_lora), not peft's branch run at weight 0: no work and nothing of it in
        # the sums; the files still match no LoRA only to one 8-bit level, as after an unload (tests/test_loras.py)
        live = [spec for spec in specs if spec.scale != 0]
        if live:
            self.enable_lora()
            self.set_adapters([spec.name for spec in live], adapter_weights=[spec.scale for spec in live])
        elif loaded:
            self.disable_lora()
        self.active_loras = [{"name": spec.name, "file": loaded[spec.name]["file"], "scale": spec.scale,
                              "sha256": loaded[spec.name]["digest"]} for spec in specs]
        return self.active_loras
