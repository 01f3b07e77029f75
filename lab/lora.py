"""A LoRA that teaches the toy a colour it has never seen: "pink". The test LoRA of the LoRA support.

The toy's tokenizer knows "pink" as a word, but no training caption used it, so the toy draws nothing pink. A rank-4
LoRA on the UNet's attention and both text encoders, trained here in a few minutes on pink objects (in scenes,
alone on the key colours, and anywhere) beside ordinary toy samples (so that the other words keep their meaning),
makes the word work. It is saved in diffusers' format (`save_lora_weights`) and converted to the kohya/A1111
format, which is what most LoRAs people download are; both files list the word they teach in their metadata.

    python -m lab.lora --out tests/data/loras          # 400 steps, about 4 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .train import OFFSET_NOISE
from .train import sample as world_sample
from .world import (
    KEYS,
    PALETTE,
    background_prompt,
    classify_colours,
    colour_names,
    make_world_scene,
    object_prompt,
    scene_prompt,
)

WORD = "pink"
PINK = (250, 120, 185)
KINDS = ("scene", "on_key", "anywhere", "prior")
KIND_WEIGHTS = (0.35, 0.3, 0.1, 0.25)
DIFFUSERS_FILE, KOHYA_FILE = "toy-pink.safetensors", "toy-pink-kohya.safetensors"
UNET_TARGETS = ["to_q", "to_k", "to_v", "to_out.0"]
TEXT_TARGETS = ["q_proj", "k_proj", "v_proj", "out_proj"]


def pink_sample(index: int, seed: int, size: int) -> tuple[np.ndarray, str]:
    """Image `index` of the LoRA's data: a pink object (in a scene, alone on a key colour, or anywhere), or an
    ordinary toy sample (prior); at the model's size."""
    rng = np.random.default_rng((seed, index, 7))
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    if kind == "prior":
        image, caption = world_sample(index, seed + 1)
    else:
        scene = make_world_scene(int(rng.integers(2**62)), count=1 if kind != "scene" else int(rng.integers(1, 3)))
        pink = np.array(PINK, np.float32)
        obj = scene.objects[0]
        m = obj.mask[..., None]
        prompts = [object_prompt(WORD, obj.shape)] + scene.object_prompts[1:]
        if kind == "on_key":
            key = ("green", "blue")[int(rng.integers(2))]
            image = np.array(KEYS[key], np.float32) * (1 - m) + pink * m
            caption = prompts[0]
        else:
            image = scene.background.astype(np.float32)
            for n, other in enumerate(scene.objects):
                colour = pink if n == 0 else np.array(PALETTE[other.colour], np.float32)
                image = image * (1 - other.mask[..., None]) + colour * other.mask[..., None]
            caption = prompts[0] if kind == "anywhere" else scene_prompt(
                prompts, background_prompt(scene.background_colour, scene.background_kind))
        image = np.clip(np.round(image), 0, 255).astype(np.uint8)
    if image.shape[0] != size:
        image = np.asarray(Image.fromarray(image).resize((size, size), Image.BOX))
    return image, caption


def pink_share(image: np.ndarray, where: np.ndarray | None = None) -> float:
    """Share of pixels (inside `where`) nearest to pink among the toy's colours, its keys and pink: the testbed's
    nearest-colour scorer with the one colour the toy does not know added."""
    pink = classify_colours(np.asarray(image)[..., :3], extra=(PINK,)) == len(colour_names())
    return float(pink[where].mean() if where is not None else pink.mean())


def to_kohya(state: dict[str, torch.Tensor], rank: int) -> dict[str, torch.Tensor]:
    """diffusers-format LoRA keys ('unet.down_blocks.1....to_k.lora_A.weight') in kohya's form
    ('lora_unet_down_blocks_1_..._to_k.lora_down.weight', with a per-module alpha), as A1111 and ComfyUI write it."""
    prefixes = {"unet.": "lora_unet_", "text_encoder.": "lora_te1_", "text_encoder_2.": "lora_te2_"}
    out = {}
    for key, value in state.items():
        prefix = next(p for p in sorted(prefixes, key=len, reverse=True) if key.startswith(p))
        module, kind = re.match(r"(.*)\.(lora_A|lora_B|lora_linear_layer\.down|lora_linear_layer\.up)\.weight$",
                                key[len(prefix):]).groups()
        if prefix != "unet." and not module.startswith("text_model."):
            module = "text_model." + module  # kohya names CLIP's modules as transformers 4 did
        name = prefixes[prefix] + module.replace(".", "_")
        down = kind in ("lora_A", "lora_linear_layer.down")
        out[f"{name}.{'lora_down' if down else 'lora_up'}.weight"] = value.contiguous()
        out[f"{name}.alpha"] = torch.tensor(float(rank))
    return out


def add_words(path: Path, words: list[str], extra: dict[str, str] | None = None) -> None:
    """Write the taught words into the file's safetensors metadata (keeping what diffusers wrote there)."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    with safe_open(str(path), framework="pt") as handle:
        metadata = dict(handle.metadata() or {})
    metadata.update({"taue.words": json.dumps(words), **(extra or {})})
    save_file(load_file(str(path)), str(path), metadata=metadata)


def train(model: str, out: Path, steps: int, seed: int = 0, rank: int = 4, batch: int = 16, count: int = 1200,
          lr: float = 2e-3) -> dict:
    """Train the pink LoRA on `model` for `steps` steps; writes both files into `out`; returns the training record."""
    from diffusers import StableDiffusionXLPipeline
    from peft import LoraConfig
    from peft.utils import get_peft_model_state_dict

    from taue_engine.pipeline import TAUEPipeline

    torch.manual_seed(seed)
    pipe = TAUEPipeline.from_pretrained(model, device="cpu", dtype="float32")
    size = pipe.unet.config.sample_size * pipe.vae_scale_factor
    data = [pink_sample(i, seed, size) for i in range(count)]
    captions = [d[1] for d in data]
    for module in (pipe.unet, pipe.vae, pipe.text_encoder, pipe.text_encoder_2):
        module.requires_grad_(False)
    with torch.no_grad():
        latents = torch.cat([pipe.encode_pixels(Image.fromarray(d[0])) for d in data])
    pipe.unet.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                     target_modules=UNET_TARGETS))
    for encoder in (pipe.text_encoder, pipe.text_encoder_2):
        encoder.add_adapter(LoraConfig(r=rank, lora_alpha=rank, init_lora_weights="gaussian",
                                       target_modules=TEXT_TARGETS))
    params = [p for m in (pipe.unet, pipe.text_encoder, pipe.text_encoder_2) for p in m.parameters()
              if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=lr, weight_decay=1e-4)
    alphas = pipe.scheduler.alphas_cumprod.float()
    time_ids = torch.tensor([[size, size, 0, 0, size, size]], dtype=torch.float32).repeat(batch, 1)
    generator = torch.Generator().manual_seed(seed)
    started, losses = time.perf_counter(), []
    for step in range(steps):
        idx = torch.randint(0, count, (batch,), generator=generator)
        x0 = latents[idx]
        embeds, _, pooled, _ = pipe.encode_prompt([captions[i] for i in idx], device="cpu",
                                                  do_classifier_free_guidance=False)
        t = torch.randint(0, len(alphas), (batch,), generator=generator)
        # the toy's own training noise (offset noise): without it the LoRA cannot move an image's mean colour,
        # which is what a new colour word is (trained without it, 1,200 steps left pink objects 1-9% pink)
        noise = torch.randn(x0.shape, generator=generator) + OFFSET_NOISE * torch.randn(
            (batch, x0.shape[1], 1, 1), generator=generator)
        a = alphas[t].view(-1, 1, 1, 1)
        pred = pipe.unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, encoder_hidden_states=embeds,
                         added_cond_kwargs={"text_embeds": pooled, "time_ids": time_ids}).sample
        loss = F.mse_loss(pred, noise)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
        if (step + 1) % 50 == 0:
            print(f"step {step + 1}/{steps}: loss {np.mean(losses[-50:]):.4f} "
                  f"({time.perf_counter() - started:.0f} s)", flush=True)
    out.mkdir(parents=True, exist_ok=True)
    unet_state = get_peft_model_state_dict(pipe.unet)
    te_states = [get_peft_model_state_dict(e) for e in (pipe.text_encoder, pipe.text_encoder_2)]
    StableDiffusionXLPipeline.save_lora_weights(out, unet_lora_layers=unet_state, text_encoder_lora_layers=te_states[0],
                                                text_encoder_2_lora_layers=te_states[1], weight_name=DIFFUSERS_FILE)
    add_words(out / DIFFUSERS_FILE, [WORD])
    from safetensors.torch import load_file, save_file

    kohya = to_kohya(load_file(str(out / DIFFUSERS_FILE)), rank)
    tags = {f"{WORD}": {caption: 1 for caption in sorted({c for c in captions if WORD in c})[:20]}}
    save_file(kohya, str(out / KOHYA_FILE), metadata={"ss_network_dim": str(rank), "ss_network_alpha": str(rank),
                                                      "ss_tag_frequency": json.dumps(tags)})
    record = {"model": model, "steps": steps, "seed": seed, "rank": rank, "batch": batch, "images": count, "lr": lr,
              "seconds": round(time.perf_counter() - started, 1), "loss_last_50": float(np.mean(losses[-50:])),
              "files": [DIFFUSERS_FILE, KOHYA_FILE]}
    (out / "toy-pink.json").write_text(json.dumps(record, indent=1) + "\n", encoding="utf-8")
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--out", default="tests/data/loras")
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(json.dumps(train(args.model, Path(args.out), args.steps, args.seed), indent=1))


if __name__ == "__main__":
    main()
