"""Train the toy model (128x128 scenes, a local AutoencoderTiny VAE, a 16x16 latent) on a CPU, across sessions.

    python -m lab.train --work runs/toy2 --hours 10          # starts, or goes on from runs/toy2
    python -m lab.train --work runs/toy2 --export taue_engine/toy/model

The committed model is this script at `--seed 0` with the steps its `training.json` records (about 5 CPU-hours):

    python -m lab.train --work runs/toy2 --seed 0 --vae-steps 24066 --unet-steps 13000 --decoder-steps 5998
    python -m lab.train --work runs/toy2 --seed 0 --export taue_engine/toy/model

Every draw is seeded and every stage stops at its step count, so this is the committed model's recipe; its bytes
differ in one known way: the committed UNet was carried to another machine once, at step 3,114 (`--carry`: weights
in half precision, no optimizer moments, the learning rate warmed up again over REWARM_STEPS), which a run on one
machine does not do.

Everything is seeded (`--seed`) and every stage resumes from its checkpoint in `--work` (a folder git ignores):
data (`world.py` scenes, cached), VAE (reconstruction, paste locality and the key-green direction, trained
together), caption embeddings (frozen random CLIP encoders, computed once), UNet (epsilon prediction on SDXL's noise
schedule with offset noise, OFFSET_NOISE; 10% caption dropout as zero embeddings, EMA). The UNet's checkpoint is
written every 10 minutes and each one is scored on a fixed prompt set (`score_checkpoint`); the best EMA weights are
kept in `best.pt` and exported.
The budget (`--hours`) counts the time of every run of every stage, so `--hours 10` means ten CPU-hours in all.
The log of losses and scores is `<work>/loss.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from taue_engine.models.tiny import SDXL_SCHEDULER_CONFIG, VOCABULARY, sdxl_euler_scheduler
from taue_engine.models.tokenizer import load_word_tokenizer, read_word_list
from taue_engine.models.vocabulary import VOCABULARY_FILE, prompt_words

from .world import KEYS, SHAPES, SIZE, classify_colours, colour_names, key_for, make_world_scene

GREEN_LATENT = (0.0, 1.0, 1.0, 0.0)  # the paper's green latent: where key green lies in SDXL's latent
TEXT_HIDDEN, TEXT_HIDDEN_2 = 64, 96  # the two frozen random CLIP text encoders' widths

LATENT = 16  # 128 / 8: an object of radius 0.13-0.32 spans 4-10 latent cells across
TIME_EMBED_DIM = 32
TEXT_WIDTH = 64 + 96
KINDS = ("scene", "scene_comma", "object_on_key", "object_anywhere", "background")
KIND_WEIGHTS = (0.27, 0.15, 0.28, 0.08, 0.22)
CHECKPOINT_SECONDS = 600
OFFSET_NOISE = 0.15
"""The UNet's training noise gets a per-image, per-channel constant of this std ("offset noise"; SDXL was trained
with 0.0357 on its 128x128 latent). Without it, SDXL's schedule leaves 6.8% of the image in x_999, and on a 16x16
latent the image's mean colour is readable there (signal 0.054 against the noise's mean 0.0625): the first run
(no offset, 3950 steps, runs/toy2/no-offset) learnt to read the colour from x_t instead of the prompt, so from pure
noise its clean estimate at t=999 had the same mean for all five plain backgrounds (which lie up to 2.3 latent
units apart) and 8-17% of the score prompts got their background right. 0.15 brings the leak to about the first
toy's (8x8 latent) level; a key colour injected by TAUE's phase 1 (|E(green)| about 3.4) is still far above it."""
UNET_PLANNED_STEPS = 13000  # the UNet's learning rate falls (cosine, to 10%) over this many steps, by step: a run
# is reproduced exactly by --unet-steps with the seed; the time budget stops it
DECODER_SHARE = 0.05  # of the budget (30 minutes), after the UNet: the decoder alone, for paste locality
PASTE_WEIGHT = 4.0
REWARM_STEPS = 200
SCENES_PLANNED_STEPS = 4000  # about 45 minutes on 2 cores
SCENES_MIX = {"several": 0.45, "one": 0.15, "object": 0.25, "background": 0.15}
CARRIED = ("budget.json", "loss.jsonl", "latents.json", "vae.pt", "decoder.pt", "unet.pt", "best.pt",
           "unet-scenes.pt")
HALVED = ("unet.pt", "best.pt", "unet-scenes.pt")  # the UNet's weights travel in half precision; the VAE's
# (1.8 MB) as they are
VAE_SHARE = 0.2  # of the budget (2 hours of 10): reconstruction, locality and green together (1 hour gave 27.0 dB
# held out and a paste 2.9 dB under its own reconstruction: short of the bars)


# ---------------------------------------------------------------------------------------------------- helpers
def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def build_text_encoders(tokenizer_dir: Path, seed: int):
    """The tokenizer of the toy's words and two small CLIP text encoders with random, frozen weights (seeded)."""
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = load_word_tokenizer(read_word_list(VOCABULARY), tokenizer_dir)

    def config(hidden):
        return CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                              num_hidden_layers=2, num_attention_heads=4, max_position_embeddings=77,
                              projection_dim=hidden, hidden_act="gelu", bos_token_id=tokenizer.bos_token_id,
                              eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)

    torch.manual_seed(seed + 2)
    text_encoder = CLIPTextModel(config(TEXT_HIDDEN)).eval()
    torch.manual_seed(seed + 3)
    text_encoder_2 = CLIPTextModelWithProjection(config(TEXT_HIDDEN_2)).eval()
    return tokenizer, text_encoder, text_encoder_2


@torch.no_grad()
def encode_captions(tokenizer, text_encoder, text_encoder_2, captions: list[str]):
    """Per unique caption: SDXL's prompt embeddings (penultimate states of both encoders) and pooled embedding."""
    unique = sorted(set(captions))
    embeds, pooled = [], []
    for i in range(0, len(unique), 256):
        ids = tokenizer(unique[i : i + 256], padding="max_length", max_length=77, truncation=True,
                        return_tensors="pt").input_ids
        one = text_encoder(ids, output_hidden_states=True).hidden_states[-2]
        two = text_encoder_2(ids, output_hidden_states=True)
        embeds.append(torch.cat([one, two.hidden_states[-2]], dim=-1))
        pooled.append(two.text_embeds)
    index = {c: i for i, c in enumerate(unique)}
    return torch.cat(embeds), torch.cat(pooled), torch.tensor([index[c] for c in captions])


class Log:
    """The run's log, one JSON record a line (`<work>/loss.jsonl`)."""

    def __init__(self, path: Path):
        self.path = path

    def write(self, **record) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"time": round(time.time(), 1), **record}) + "\n")


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def restore_checkpoint(state: dict, optimizer, **modules) -> tuple[int, float]:
    """Restore `modules` (by checkpoint key), the optimizer and the RNGs from a checkpoint already read; returns
    (step, seconds spent)."""
    for key, module in modules.items():
        module.load_state_dict(state[key])
    if state.get("optimizer") is not None:  # a carried checkpoint (--carry) has no optimizer moments
        optimizer.load_state_dict(state["optimizer"])
    torch.set_rng_state(state["rng"]["torch"])
    np.random.set_state(state["rng"]["numpy"])
    random.setstate(state["rng"]["python"])
    return state["step"], state["seconds"]


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def psnr_of(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss((a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2).item()
    return 10 * math.log10(1 / max(mse, 1e-10))


# ---------------------------------------------------------------------------------------------------- data
def sample(index: int, seed: int) -> tuple[np.ndarray, str]:
    """Image `index` of the data set: its kind drawn by KIND_WEIGHTS, everything from (seed, index)."""
    rng = np.random.default_rng((seed, index))
    kind = KINDS[int(rng.choice(len(KINDS), p=KIND_WEIGHTS))]
    scene_seed = int(rng.integers(2**62))
    if kind in ("scene", "scene_comma"):
        scene = make_world_scene(scene_seed)
        return scene.image, scene.scene_prompt if kind == "scene" else scene.comma_prompt
    if kind == "background":
        scene = make_world_scene(scene_seed, count=1)
        return scene.background, scene.background_prompt
    scene = make_world_scene(scene_seed, count=1)
    obj = scene.objects[0]
    if kind == "object_on_key":
        return scene.object_on_key(0, key_for(obj.colour, rng)), obj.prompt
    return scene.image, obj.prompt


def _chunk(args):
    start, stop, seed = args
    images = np.empty((stop - start, SIZE, SIZE, 3), np.uint8)
    captions = []
    for i in range(start, stop):
        images[i - start], caption = sample(i, seed)
        captions.append(caption)
    return images, captions


def make_dataset(count: int, seed: int, work: Path) -> tuple[np.ndarray, list[str]]:
    """`count` images (uint8 N x 128 x 128 x 3) and captions, drawn on every core, cached in `work`."""
    images_path, captions_path = work / "images.npy", work / "captions.json"
    if images_path.exists() and captions_path.exists():
        captions = json.loads(captions_path.read_text())
        if len(captions) == count:
            return np.load(images_path, mmap_mode="r"), captions
    from multiprocessing import Pool

    chunks = [(s, min(s + 500, count), seed) for s in range(0, count, 500)]
    images, captions = np.empty((count, SIZE, SIZE, 3), np.uint8), []
    with Pool(os.cpu_count() or 2) as pool:
        for (start, stop, _), (part, words) in tqdm(zip(chunks, pool.imap(_chunk, chunks)), total=len(chunks),
                                                     desc="scenes", unit="x500"):
            images[start:stop] = part
            captions += words
    np.save(images_path, images)
    captions_path.write_text(json.dumps(captions))
    return images, captions


# ---------------------------------------------------------------------------------------------------- models
def build_vae():
    """TAESD's architecture (convolutions and ReLUs: no GroupNorm, no attention, so a region of the latent decodes
    from its neighbourhood only), 8x: 128 px to a 16x16 latent."""
    from diffusers import AutoencoderTiny

    # 32 channels, one block at the full-resolution ends: about 1 s a step of 16 crops on 2 cores
    return AutoencoderTiny(encoder_block_out_channels=(32,) * 4, decoder_block_out_channels=(32,) * 4,
                           num_encoder_blocks=(1, 2, 2, 2), num_decoder_blocks=(2, 2, 2, 1), latent_channels=4)


def build_unet():
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=LATENT, in_channels=4, out_channels=4, layers_per_block=1, block_out_channels=(32, 64, 128),
        # cross-attention at every level (SDXL skips its finest): the object tokens' attention maps, from which
        # the object mask is read, then come at the latent's own resolution too
        down_block_types=("CrossAttnDownBlock2D",) * 3, up_block_types=("CrossAttnUpBlock2D",) * 3,
        attention_head_dim=(2, 4, 4), transformer_layers_per_block=1, cross_attention_dim=TEXT_WIDTH,
        use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=96 + 6 * TIME_EMBED_DIM, norm_num_groups=16,
    )


class Budget:
    """Wall time spent by every stage, across runs (in `<work>/budget.json`), against `--hours`."""

    def __init__(self, work: Path, hours: float):
        self.path, self.hours = work / "budget.json", hours
        self.spent = json.loads(self.path.read_text()) if self.path.exists() else {}

    def record(self, stage: str, seconds: float) -> None:
        self.spent[stage] = seconds
        self.path.write_text(json.dumps(self.spent, indent=1))

    def seconds_for(self, stage: str, share: float | None = None, reserve: dict[str, float] | None = None) -> float:
        """The total seconds a stage may run: its share of the budget, or (share None) what the others left, less
        the shares `reserve` keeps for stages still to come (minus what they have spent already)."""
        if share is not None:
            return share * self.hours * 3600
        kept = sum(max(0.0, part * self.hours * 3600 - self.spent.get(name, 0.0))
                   for name, part in (reserve or {}).items())
        return self.hours * 3600 - sum(v for k, v in self.spent.items() if k != stage) - kept


class Stage:
    """One training stage's loop state: modules, optimizer, step, seconds spent and RNGs, restored on resume; a
    checkpoint every CHECKPOINT_SECONDS (and `on_checkpoint` then); the loss log every 50 steps."""

    def __init__(self, name: str, path: Path, log: Log, budget: Budget, seconds: float, optimizer, on_checkpoint=None,
                 max_steps: int | None = None, carry: Path | None = None, **modules):
        self.name, self.path, self.log, self.budget, self.seconds = name, path, log, budget, seconds
        self.max_steps, self.carry = max_steps, carry
        self.optimizer, self.modules, self.on_checkpoint = optimizer, modules, on_checkpoint
        state = torch.load(path, weights_only=False) if path.exists() else None
        self.step, spent = restore_checkpoint(state, optimizer, **modules) if state else (0, 0.0)
        self.rewarm_from = self.step if state and state.get("optimizer") is None else None
        self.start, self.last_save, self.loss = time.time() - spent, time.time(), None
        self.bar = tqdm(desc=name, unit="step", initial=self.step, mininterval=5)

    @property
    def spent(self) -> float:
        return time.time() - self.start

    def rewarm(self) -> float:
        """A factor on the learning rate: after a resume from a carried checkpoint (no optimizer moments) it rises
        again over REWARM_STEPS, as at the start, so that Adam's first unscaled steps do not throw the weights."""
        if self.rewarm_from is None:
            return 1.0
        return min(1.0, (self.step - self.rewarm_from + 1) / REWARM_STEPS)

    def set_lr(self, lr: float) -> None:
        """This step's learning rate, as the stage's schedule gives it, times rewarm()."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr * self.rewarm()

    def running(self) -> bool:
        """Until the time budget is spent, or `max_steps` (what reproduces a run exactly: time does not). While a
        file `pause` exists in the work folder the stage waits, and the wait is not counted: the machine's other
        work (tests, benchmarks) would otherwise eat the budget at a third of the speed."""
        pause = self.path.parent / "pause"
        while pause.exists():
            time.sleep(2)
            self.start += 2
            self.last_save += 2
        if self.max_steps is not None:
            return self.step < self.max_steps
        return self.spent < self.seconds

    def step_done(self, loss: float) -> None:
        self.step, self.loss = self.step + 1, loss
        self.bar.update(1)
        if self.step % 50 == 0:
            self.bar.set_postfix(loss=f"{loss:.4f}")
            self.log.write(stage=self.name, step=self.step, loss=loss, minutes=round(self.spent / 60, 2))
        if time.time() - self.last_save > CHECKPOINT_SECONDS:
            self.save()

    def save(self) -> None:
        save_checkpoint(self.path, **{key: module.state_dict() for key, module in self.modules.items()},
                        optimizer=self.optimizer.state_dict(), step=self.step, seconds=self.spent, rng=rng_state())
        self.budget.record(self.name, self.spent)
        if self.on_checkpoint is not None:
            self.on_checkpoint(self)
        if self.carry is not None:
            write_carry(self.path.parent, self.carry)
        self.last_save = time.time()

    def close(self) -> None:
        self.bar.close()
        self.save()


def paste_cells(batch: int, height: int, width: int) -> torch.Tensor:
    """[B, 1, H, W]: half rectangles of latent cells, half object-like blobs (smoothed noise over a level)."""
    masks = torch.zeros(batch, 1, height, width)
    half = batch // 2
    for m in masks[:half]:
        h, w = (int(v) for v in torch.randint(2, max(3, height * 3 // 4) + 1, (2,)))
        y, x = int(torch.randint(0, height - h + 1, ())), int(torch.randint(0, width - w + 1, ()))
        m[:, y: y + h, x: x + w] = 1
    noise = F.interpolate(torch.rand(batch - half, 1, 4, 4), size=(height, width), mode="bicubic",
                          align_corners=False)
    levels = torch.stack([torch.quantile(n.flatten(), float(q)) for n, q in
                          zip(noise, torch.empty(batch - half).uniform_(0.5, 0.9))])
    masks[half:] = (noise > levels.view(-1, 1, 1, 1)).float()
    return masks


def crops(data: np.ndarray, batch: int, side: int = 64) -> torch.Tensor:
    """`batch` random crops of `side` pixels, at multiples of 8 (the latent grid stays aligned)."""
    idx = np.random.randint(0, len(data), batch)
    out = np.empty((batch, side, side, 3), np.uint8)
    for k, i in enumerate(idx):
        y, x = (8 * np.random.randint(0, (SIZE - side) // 8 + 1) for _ in range(2))
        out[k] = data[i, y: y + side, x: x + side]
    return to_tensor(out)


def green_direction_loss(vae, latents: torch.Tensor) -> torch.Tensor:
    """1 - cos(E(key green) - mean latent, GREEN_LATENT): the paper injects [0, 1, 1, 0] because in SDXL's latent
    that is where green lies; this VAE is trained to put it there too."""
    green = to_tensor(np.broadcast_to(np.array(KEYS["green"], np.uint8), (1, 32, 32, 3)).copy())
    direction = vae.encode(green).latents.mean(dim=(0, 2, 3)) - latents.detach().mean(dim=(0, 2, 3))
    return 1 - F.cosine_similarity(direction, torch.tensor(GREEN_LATENT), dim=0)


def train_vae(work: Path, images: np.ndarray, log: Log, budget: Budget, seed: int, batch: int = 16,
              max_steps: int | None = None, carry: Path | None = None):
    """Reconstruction, paste locality (a latent pasted from two crops decodes to the paste of the crops: what
    TAUE's transplants need of the decoder) and the key-green direction, together."""
    torch.manual_seed(seed)
    vae = build_vae()
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    stage = Stage("vae", work / "vae.pt", log, budget, budget.seconds_for("vae", VAE_SHARE), optimizer,
                  max_steps=max_steps, carry=carry, model=vae)
    train, held_out = images[:-256], images[-256:]
    vae.train()
    while stage.running():
        progress = stage.spent / stage.seconds
        stage.set_lr(1e-3 * min(1.0, (stage.step + 1) / 200) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))))
        x = crops(train, batch)
        latent = vae.encode(x).latents
        recon = vae.decode(latent).sample
        pasted, target = paste_pair(vae, x, latent)
        loss = F.mse_loss(recon, x) + F.mse_loss(pasted, target) + 0.01 * green_direction_loss(vae, latent)
        optimise(stage, optimizer, loss, vae.parameters())
    return finish(stage, vae, held_out, log)


def paste_pair(vae, x: torch.Tensor, latent: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A latent pasted from two crops' latents (paste_cells), decoded, and the paste of the crops it should be."""
    other = torch.roll(torch.arange(len(x)), 1)
    cells = paste_cells(len(x), *latent.shape[-2:])
    pixels = F.interpolate(cells, size=x.shape[-2:], mode="nearest")
    pasted = vae.decode(cells * latent + (1 - cells) * latent[other]).sample
    return pasted, pixels * x + (1 - pixels) * x[other]


def optimise(stage: Stage, optimizer, loss: torch.Tensor, parameters) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(parameters, 1.0)
    optimizer.step()
    stage.step_done(loss.item())


def finish(stage: Stage, vae, held_out: np.ndarray, log: Log):
    """The stage's last checkpoint, and the VAE's report (held out, paste) in the log."""
    stage.close()
    vae.eval()
    report = vae_report(vae, held_out)
    log.write(stage=stage.name, step=stage.step, **report)
    print(f"{stage.name}: {stage.step} steps, {report}")
    return vae


def train_decoder(work: Path, vae, images: np.ndarray, log: Log, budget: Budget, seed: int, batch: int = 16,
                  max_steps: int | None = None, carry: Path | None = None):
    """The decoder alone, the encoder frozen (so the UNet's latents stay what it was trained on), with the paste
    loss weighted PASTE_WEIGHT times: trained jointly, the first VAE decoded a pasted latent 3.1 dB worse than its
    own reconstruction in the same cells (29.1 dB held out, paste 25.4 dB against 28.5 dB), where TAUE needs
    within 2 dB."""
    torch.manual_seed(seed + 2)
    vae.requires_grad_(False)
    vae.decoder.requires_grad_(True)
    optimizer = torch.optim.AdamW(vae.decoder.parameters(), lr=3e-4, weight_decay=0.0)
    stage = Stage("decoder", work / "decoder.pt", log, budget, budget.seconds_for("decoder", DECODER_SHARE),
                  optimizer, max_steps=max_steps, carry=carry, model=vae)
    train, held_out = images[:-256], images[-256:]
    vae.decoder.train()
    while stage.running():
        progress = stage.spent / stage.seconds
        stage.set_lr(3e-4 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))))
        x = crops(train, batch)
        with torch.no_grad():
            latent = vae.encode(x).latents
        pasted, target = paste_pair(vae, x, latent)
        loss = F.mse_loss(vae.decode(latent).sample, x) + PASTE_WEIGHT * F.mse_loss(pasted, target)
        optimise(stage, optimizer, loss, vae.decoder.parameters())
    return finish(stage, vae, held_out, log)


@torch.no_grad()
def vae_report(vae, held_out: np.ndarray) -> dict:
    """Held-out reconstruction PSNR on whole 128 px images, and the paste-decode PSNR in the pasted cells."""
    x = to_tensor(np.asarray(held_out[:64]))
    latent = vae.encode(x).latents
    recon = vae.decode(latent).sample
    torch.manual_seed(0)
    cells = paste_cells(len(x), *latent.shape[-2:])
    pixels = F.interpolate(cells, size=x.shape[-2:], mode="nearest").expand_as(x) > 0
    other = torch.roll(torch.arange(len(x)), 1)
    pasted = vae.decode(torch.where(cells > 0, latent, latent[other])).sample
    target = torch.where(pixels, x, x[other])
    inside = lambda a, b: 10 * math.log10(4 / max(F.mse_loss(a.clamp(-1, 1)[pixels], b[pixels]).item(), 1e-10))  # noqa: E731
    return {"held_out_psnr": round(psnr_of(recon, x), 2), "paste_psnr": round(inside(pasted, target), 2),
            "own_psnr_in_cells": round(inside(torch.where(pixels, recon, recon[other]), target), 2)}


@torch.no_grad()
def encode_latents(vae, images: np.ndarray) -> torch.Tensor:
    out = [vae.encode(to_tensor(np.asarray(images[i: i + 128]))).latents
           for i in tqdm(range(0, len(images), 128), desc="latents")]
    return torch.cat(out)


# ---------------------------------------------------------------------------------------------------- scoring
SCORE_PROMPTS = [
    # (caption, colours that must be present, background colour)
    ("a red star on a white background", ["red"], "white"),
    ("a green circle on a purple background", ["green"], "purple"),
    ("a blue square on a yellow striped background", ["blue"], "yellow"),
    ("a yellow ring on a black checkered background", ["yellow"], "black"),
    ("an orange triangle on a blue gradient background", ["orange"], "blue"),
    ("a purple cross on a green background", ["purple"], "green"),
    ("a red circle and a yellow square on a white background", ["red", "yellow"], "white"),
    ("a blue star and a green ring on an orange background", ["blue", "green"], "orange"),
    ("a black square, a red circle, a white background", ["black", "red"], "white"),
    ("a white striped background", [], "white"),
    ("a blue checkered background", [], "blue"),
    ("a green background", [], "green"),
]


def toy_pipeline(vae, unet, work: Path, seed: int):
    from diffusers import StableDiffusionXLPipeline

    tokenizer, text_encoder, text_encoder_2 = build_text_encoders(work / "tokenizer", seed)
    return StableDiffusionXLPipeline(vae=vae, unet=unet, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                                     tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=sdxl_euler_scheduler(),
                                     force_zeros_for_empty_prompt=True)


@torch.no_grad()
def score_images(images: list[np.ndarray]) -> dict:
    """Of the fixed prompts: the share whose named objects' colours are present (>= 2% of the image each) and whose
    background colour (or its pattern partner) covers the largest share of the image."""
    names = colour_names()
    present, background = [], []
    for image, (_, colours, bg) in zip(images, SCORE_PROMPTS):
        labels = classify_colours(image)
        shares = {n: float((labels == i).mean()) for i, n in enumerate(names)}
        present += [shares[c] >= 0.02 for c in colours]
        background.append(max(shares, key=shares.get) == bg)
    return {"object_present": float(np.mean(present)), "background_right": float(np.mean(background)),
            "score": float(np.mean(present) + np.mean(background)) / 2}


def score_checkpoint(work: Path, seed: int, vae, unet, steps: int = 20) -> dict:
    pipe = toy_pipeline(vae, unet, work, seed)
    pipe.set_progress_bar_config(disable=True)
    generator = torch.Generator().manual_seed(1234)
    out = pipe([p for p, _, _ in SCORE_PROMPTS], num_inference_steps=steps, guidance_scale=5.0,
               generator=generator, height=SIZE, width=SIZE, output_type="np").images
    images = [np.clip(np.round(o * 255), 0, 255).astype(np.uint8) for o in out]
    return score_images(images), images


def sdxl_alphas_cumprod() -> torch.Tensor:
    """SDXL's noise schedule (scaled_linear betas over 1000 steps) as the cumulative products of 1 - beta."""
    return torch.cumprod(1 - torch.linspace(SDXL_SCHEDULER_CONFIG["beta_start"] ** 0.5,
                                            SDXL_SCHEDULER_CONFIG["beta_end"] ** 0.5, 1000) ** 2, 0)


@dataclass(frozen=True)
class UNetPlan:
    """One UNet stage: its files in the work folder, its learning rate's schedule and what it samples."""

    name: str  # the stage's name in the log and the budget; its checkpoint is <name>.pt
    best: str  # the best scored EMA weights
    scored: str  # prefix of every scored checkpoint's EMA weights (<scored><step>.pt)
    lr: float
    planned_steps: int  # the cosine falls to 10% over this many steps
    mix: dict[str, float] | None = None  # caption_class -> share of the batches (None: the data set as drawn)
    start: str | None = None  # the checkpoint whose weights (model and EMA) a new run starts from
    seed_offset: int = 1


UNET = UNetPlan("unet", "best.pt", "ema-", lr=5e-4, planned_steps=UNET_PLANNED_STEPS)
SCENES = UNetPlan("unet-scenes", "best-scenes.pt", "ema-scenes-", lr=2e-4, planned_steps=SCENES_PLANNED_STEPS,
                  mix=SCENES_MIX, start="unet.pt", seed_offset=3)
"""The several-objects stage (`--scenes`): the finished UNet trained on, with a batch mix that leans to scenes of two
and three objects, at 40% of the first stage's learning rate over a new, shorter cosine. At step 13,000 of the
first stage, plain prompts naming two objects showed both in 47% of the testbed's cases (step 8,000: 66%), and
two-object composites lost an object's colour in the second half (composite colour 0.55); 28% of the first
stage's batches were scenes of two or three objects."""


def caption_class(caption: str) -> str:
    """'several' (two or three objects in a scene), 'one' (one object in a scene), 'object' (an object alone) or
    'background' (a background alone), read off the caption's shape words."""
    shapes = sum(caption.count(f" {shape}") for shape in SHAPES)
    if shapes >= 2:
        return "several"
    if shapes == 1:
        return "one" if caption.endswith("background") else "object"
    return "background"


def mix_weights(captions: list[str], mix: dict[str, float]) -> torch.Tensor:
    """A sampling weight per image such that each caption_class makes up its share of `mix` of the batches."""
    classes = [caption_class(c) for c in captions]
    counts = {k: classes.count(k) for k in mix}
    missing = [k for k, n in counts.items() if n == 0 and mix[k] > 0]
    if missing:
        raise ValueError(f"the data set has no {', '.join(missing)} captions to give a share to")
    return torch.tensor([mix[k] / counts[k] for k in classes], dtype=torch.float64)


def train_unet(work: Path, vae, latents, embeds, pooled, caption_ids, log: Log, budget: Budget, seed: int,
               batch: int = 64, max_steps: int | None = None, carry: Path | None = None, plan: UNetPlan = UNET,
               captions: list[str] | None = None):
    torch.manual_seed(seed + plan.seed_offset)
    lr = plan.lr
    unet, ema = build_unet(), build_unet()
    ema.load_state_dict(unet.state_dict())
    if plan.start is not None and not (work / f"{plan.name}.pt").exists():
        started = torch.load(work / plan.start, weights_only=False)
        unet.load_state_dict(started["model"])
        ema.load_state_dict(started["ema"])
        print(f"{plan.name}: from {plan.start} (step {started['step']})")
    ema.requires_grad_(False)
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-2)
    weights = None if plan.mix is None else mix_weights(captions, plan.mix)
    best_path = work / plan.best

    def keep_best(stage: Stage) -> None:
        ema.eval()
        scores, images = score_checkpoint(work, seed, vae, ema)
        ema.train()
        best = torch.load(best_path, weights_only=False)["scores"]["score"] if best_path.exists() else -1.0
        log.write(stage=f"{plan.name}-score", step=stage.step, minutes=round(stage.spent / 60, 1), **scores)
        sheet = np.concatenate(images, axis=1)
        from PIL import Image

        Image.fromarray(sheet).save(work / f"samples-{stage.step:07d}.png")
        # every scored checkpoint's EMA weights (fp16, 9 MB): the 12 prompts' score is a rough guide (it peaked
        # at step 7091 of the first run and fell while the loss fell), the testbed's plain checks choose
        torch.save({"ema": {k: v.half() for k, v in ema.state_dict().items()}, "step": stage.step,
                    "scores": scores, "stage": plan.name}, work / f"{plan.scored}{stage.step:07d}.pt")
        if scores["score"] >= best:
            torch.save({"ema": ema.state_dict(), "step": stage.step, "seconds": stage.spent, "scores": scores,
                        "stage": plan.name}, best_path)
        print(f"UNet step {stage.step}: {scores} (best so far {max(best, scores['score']):.3f})")

    stage = Stage(plan.name, work / f"{plan.name}.pt", log, budget,
                  budget.seconds_for(plan.name, reserve={"decoder": DECODER_SHARE}), optimizer, keep_best,
                  max_steps=max_steps, carry=carry, model=unet, ema=ema)
    alphas_cumprod = sdxl_alphas_cumprod()
    time_ids = torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]], dtype=torch.float32).repeat(batch, 1)
    unet.train()
    while stage.running():
        idx = (torch.randint(0, len(latents), (batch,)) if weights is None
               else torch.multinomial(weights, batch, replacement=True))
        x0 = latents[idx]
        if torch.rand(()) < 0.5:  # the world is mirror-symmetric; captions name no side
            x0 = x0.flip(-1)
        cond, cond_pooled = embeds[caption_ids[idx]], pooled[caption_ids[idx]]
        drop = torch.rand(batch) < 0.1  # caption dropout: the zero embeddings SDXL feeds as unconditional
        cond = torch.where(drop[:, None, None], torch.zeros_like(cond), cond)
        cond_pooled = torch.where(drop[:, None], torch.zeros_like(cond_pooled), cond_pooled)
        t = torch.randint(0, 1000, (batch,))
        noise = torch.randn_like(x0) + OFFSET_NOISE * torch.randn(batch, x0.shape[1], 1, 1)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        pred = unet(a.sqrt() * x0 + (1 - a).sqrt() * noise, t, encoder_hidden_states=cond,
                    added_cond_kwargs={"text_embeds": cond_pooled, "time_ids": time_ids}).sample
        loss = F.mse_loss(pred, noise)
        progress = min(1.0, stage.step / plan.planned_steps)
        stage.set_lr(lr * min(1.0, (stage.step + 1) / 300) * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * progress))))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        decay = min(0.999, (2 + stage.step) / (11 + stage.step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1 - decay)
        stage.step_done(loss.item() if stage.loss is None else 0.98 * stage.loss + 0.02 * loss.item())
    stage.close()
    return stage.step


@torch.no_grad()
def colour_from_noise(unet, latents, embeds, pooled, caption_ids, captions: list[str], samples: int = 16) -> dict:
    """Does the prompt decide a plain background's colour where the sampler starts? For each plain-colour caption
    of the data ("a green background", ...), the UNet's clean estimate at t=999 from pure noise (what SDXL's Euler
    starts from): the share of captions whose estimate's mean latent lies nearest that caption's own mean latent in
    the data, and the spread of the estimates' means against the spread of the captions' means (near 0: the prompt
    is ignored there, and the colour is whatever the noise's mean says). A seeded generator: the training's RNG is
    not touched."""
    alphas = sdxl_alphas_cumprod()
    plain = sorted({c for c in captions if c.endswith(" background") and len(c.split()) == 3})
    generator = torch.Generator().manual_seed(999)
    noise = torch.randn(samples, latents.shape[1], latents.shape[2], latents.shape[3], generator=generator)
    time_ids = torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]], dtype=torch.float32).repeat(samples, 1)
    truth, estimate = [], []
    for caption in plain:
        rows = [i for i, c in enumerate(captions) if c == caption]
        truth.append(latents[rows].mean(dim=(0, 2, 3)))
        row = int(caption_ids[rows[0]])
        eps = unet(noise, 999, encoder_hidden_states=embeds[row][None].repeat(samples, 1, 1),
                   added_cond_kwargs={"text_embeds": pooled[row][None].repeat(samples, 1), "time_ids": time_ids}).sample
        a = alphas[999]
        estimate.append(((noise - (1 - a).sqrt() * eps) / a.sqrt()).mean(dim=(0, 2, 3)))
    truth, estimate = torch.stack(truth), torch.stack(estimate)
    nearest = torch.cdist(estimate, truth).argmin(dim=1)
    return {"captions": len(plain), "nearest_own": float((nearest == torch.arange(len(plain))).float().mean()),
            "spread_ratio": float(estimate.std(dim=0).norm() / truth.std(dim=0).norm())}


# ---------------------------------------------------------------------------------------------------- carry
def _weights_as(state: dict, convert) -> dict:
    """The checkpoint with its modules' weights (`model`, `ema`) passed through `convert`."""
    return {key: {k: convert(v) for k, v in value.items()} if key in ("model", "ema") else value
            for key, value in state.items()}


def write_carry(work: Path, carry: Path) -> None:
    """A copy of the run small enough to commit (about 30 MB): the stages' checkpoints without the optimizer's
    moments (the UNet's weights in half precision), the budget and the log. `--work` is outside the tracked tree and
    outlives a session only when the next one gets the same machine back; on 2 Dec 2026 it did not, and a 9.6
    CPU-hour run went with it. What is carried resumes with the learning rate warmed up again (Stage.rewarm)."""
    import shutil

    carry.mkdir(parents=True, exist_ok=True)
    for name in CARRIED:
        source, target = work / name, carry / name
        if not source.exists():
            continue
        if not name.endswith(".pt"):
            shutil.copyfile(source, target)
            continue
        state = torch.load(source, weights_only=False)
        state.pop("optimizer", None)
        save_checkpoint(target, **(_weights_as(state, torch.Tensor.half) if name in HALVED else state))


def restore_carry(carry: Path, work: Path) -> list[str]:
    """Put what `work` lacks back from a carried copy (write_carry), the UNet's weights in full precision again;
    the names restored."""
    import shutil

    restored = []
    for name in CARRIED:
        source, target = carry / name, work / name
        if target.exists() or not source.exists():
            continue
        if name.endswith(".pt"):
            save_checkpoint(target, **_weights_as(torch.load(source, weights_only=False), torch.Tensor.float))
        else:
            shutil.copyfile(source, target)
        restored.append(name)
    return restored


# ---------------------------------------------------------------------------------------------------- export
def load_vae(work: Path, decoder: bool = False):
    """The trained VAE; `decoder`: with the paste stage's decoder when it has run (what the export ships)."""
    vae = build_vae()
    path = work / "decoder.pt" if decoder and (work / "decoder.pt").exists() else work / "vae.pt"
    vae.load_state_dict(torch.load(path, weights_only=False)["model"])
    vae.register_to_config(scaling_factor=json.loads((work / "latents.json").read_text())["scaling_factor"])
    return vae.eval()


def export(work: Path, out: Path, seed: int, checkpoint: Path | None = None, count: int = 30000) -> Path:
    """Write the toy pipeline (the best-scoring EMA UNet, or `checkpoint`'s, in half precision, the VAE, the frozen
    text encoders) as a diffusers SDXL folder; the folder's taue_config.json (its sampling choices, chosen with the
    testbed, not by training: config.MODEL_CARD_FIELDS) is kept."""
    import shutil

    images, captions = make_dataset(count, seed, work)  # cached; drawn again where only the carry is
    best = torch.load(checkpoint or work / "best.pt", weights_only=False)
    logged = _logged_score(work, best["step"], best.get("stage", UNET.name))
    best.setdefault("seconds", float(logged.get("minutes", float("nan"))) * 60)
    best.setdefault("scores", {k: logged[k] for k in ("object_present", "background_right", "score") if k in logged})
    unet = build_unet()
    unet.load_state_dict({k: v.float() for k, v in best["ema"].items()})
    pipe = toy_pipeline(load_vae(work, decoder=True), unet.to(torch.float16).eval(), work, seed)
    settings = out / "taue_config.json"
    kept = settings.read_text() if settings.is_file() else None
    if out.exists():
        shutil.rmtree(out)  # an old tokenizer.json would win over the new vocabulary
    pipe.save_pretrained(out)
    if kept is not None:
        settings.write_text(kept)
    vae_steps = torch.load(work / "vae.pt", weights_only=False)["step"]
    decoder = work / "decoder.pt"
    decoder_steps = torch.load(decoder, weights_only=False)["step"] if decoder.exists() else 0
    latents = json.loads((work / "latents.json").read_text())
    latents["vae_before_decoder_stage"] = latents.pop("vae")  # measured when the latents were encoded
    info = {"vae_steps": vae_steps, "decoder_steps": decoder_steps, "unet_steps": best["step"],
            "unet_minutes": round(best["seconds"] / 60, 1),
            "scores": best["scores"],
            "budget_seconds": json.loads((work / "budget.json").read_text()), "seed": seed, **latents,
            # the shipped VAE's own check (held out, paste against its own reconstruction in the same cells)
            "vae": vae_report(pipe.vae.float(), images[-256:])}
    (out / "training.json").write_text(json.dumps(info, indent=2))
    (out / VOCABULARY_FILE).write_text(json.dumps({
        "about": "the words of this model's training captions: any other word means nothing to it",
        "words": sorted({w for c in captions for w in prompt_words(c)})}, indent=1))
    return out


def _logged_score(work: Path, step: int, stage: str = UNET.name) -> dict:
    """The log's record of a scored step of UNet stage `stage` (minutes and scores), {} if it has none: an
    ema-<step>.pt keeps no minutes, and a carried unet.pt (what travels to a new machine) neither minutes nor
    scores. The stage matters: each stage counts its steps from 0."""
    for line in (work / "loss.jsonl").read_text().splitlines():
        record = json.loads(line) if line.strip() else {}
        if record.get("stage") == f"{stage}-score" and record.get("step") == step:
            return record
    return {}


def training_report(work: Path) -> str:
    """The training log as Markdown (for docs/): each stage's steps, minutes and last loss, and every scored UNet
    checkpoint, from `<work>/loss.jsonl`. A step logged twice (a run stopped between checkpoints goes on from the
    last one and logs those steps again) counts once, as the later run logged it."""
    records: dict[tuple[str, int], dict] = {}
    checks: dict[str, dict] = {}  # each VAE stage's last held-out check (finish)
    for line in (work / "loss.jsonl").read_text().splitlines():
        if line.strip():
            record = json.loads(line)
            if "loss" in record or "score" in record:
                records[(record["stage"], record["step"])] = record
            elif "held_out_psnr" in record:
                checks[record["stage"]] = record
    stages: dict[str, list[dict]] = {}
    for (stage, _), record in sorted(records.items(), key=lambda item: (item[1]["stage"], item[1]["step"])):
        stages.setdefault(stage, []).append(record)
    budget = json.loads((work / "budget.json").read_text()) if (work / "budget.json").exists() else {}
    lines = ["| stage | steps | minutes (budget.json) | last loss |", "|---|---|---|---|"]
    for stage, rows in stages.items():
        if stage.endswith("-score"):
            continue
        minutes = round(budget.get(stage, rows[-1]["minutes"] * 60) / 60, 1)
        lines.append(f"| {stage} | {rows[-1]['step']} | {minutes} | {rows[-1]['loss']:.4f} |")
    best = torch.load(work / "best.pt", weights_only=False) if (work / "best.pt").exists() else None
    for stage, rows in stages.items():
        if not stage.endswith("-score"):
            continue
        lines += ["", f"Checkpoints of `{stage[:-len('-score')]}`, scored on the {len(SCORE_PROMPTS)} fixed prompts "
                  "(20 steps):", "", "| step | minutes | object present | background right | score |",
                  "|---|---|---|---|---|"]
        for r in rows:
            mark = " (best score)" if best is not None and stage == "unet-score" and r["step"] == best["step"] else ""
            lines.append(f"| {r['step']}{mark} | {r['minutes']} | {r['object_present']:.2f} | "
                         f"{r['background_right']:.2f} | {r['score']:.3f} |")
    for stage, title in (("vae", "VAE, after its own stage"), ("decoder", "VAE, after the decoder's paste stage "
                                                                        "(what is shipped)")):
        if stage in checks:
            vae = checks[stage]
            lines += ["", f"{title}: held-out PSNR {vae['held_out_psnr']} dB; latent cells pasted into other scenes "
                      f"decode at {vae['paste_psnr']} dB in those cells, against {vae['own_psnr_in_cells']} dB for "
                      "the VAE's own reconstruction there."]
    total = sum(budget.values())
    lines += ["", f"Budget spent: {total / 3600:.2f} of 10 CPU-hours (" +
              ", ".join(f"{k} {v / 60:.0f} min" for k, v in budget.items()) + ")."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/toy2"), help="checkpoints, caches and logs")
    parser.add_argument("--images", type=int, default=30000)
    parser.add_argument("--hours", type=float, default=10.0, help="the budget of all runs of all stages together")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--vae-steps", type=int, default=None,
                        help="stop the VAE at this step instead of its time share (training.json has the committed "
                             "model's: with them and the seed the run is reproduced)")
    parser.add_argument("--unet-steps", type=int, default=None, help="the same for the UNet")
    parser.add_argument("--decoder-steps", type=int, default=None, help="the same for the decoder's paste stage")
    parser.add_argument("--scenes", action="store_true",
                        help="only the several-objects stage (SCENES), from the finished UNet (unet.pt)")
    parser.add_argument("--scenes-steps", type=int, default=None, help="stop --scenes at this step")
    parser.add_argument("--carry", type=Path, default=None, metavar="FOLDER",
                        help="a folder in the tracked tree to commit at a session's end: every checkpoint writes a "
                             "compact copy of the run there (write_carry), and a run whose --work lacks a stage's "
                             "checkpoint takes it from there first")
    parser.add_argument("--export", type=Path, default=None, help="only write the pipeline folder here")
    parser.add_argument("--checkpoint", type=Path, default=None, metavar="PT",
                        help="with --export: these EMA weights (an ema-<step>.pt) instead of best.pt's")
    parser.add_argument("--report", type=Path, default=None, metavar="MARKDOWN",
                        help="only write the training log (stages, scored checkpoints, budget) to this file")
    parser.add_argument("--check-start", type=Path, default=None, metavar="CHECKPOINT",
                        help="only print colour_from_noise of a UNet checkpoint (unet.pt or best.pt's EMA weights)")
    args = parser.parse_args()
    if args.checkpoint is not None and not args.checkpoint.is_file():
        parser.error(f"--checkpoint {args.checkpoint}: no such file (the scored ones are {args.work}/ema-<step>.pt)")
    # every core, unless OMP_NUM_THREADS says otherwise (a second torch process beside a training run must take one
    # thread: two processes of two threads on two cores spin against each other and run many times slower)
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", os.cpu_count() or 2)))
    args.work.mkdir(parents=True, exist_ok=True)
    if args.carry is not None:  # first: --export and --report read the run, which on a new machine is only the carry
        restored = restore_carry(args.carry, args.work)
        if restored:
            print(f"restored from {args.carry}: {', '.join(restored)}")
    if args.export:
        print(export(args.work, args.export, args.seed, args.checkpoint, args.images))
        return
    if args.report:
        args.report.write_text(training_report(args.work))
        print(args.report)
        return
    if args.check_start:
        unet = build_unet()
        unet.load_state_dict(torch.load(args.check_start, weights_only=False)["ema"])
        latents, embeds, pooled, caption_ids = torch.load(args.work / "cache.pt", weights_only=False)
        captions = json.loads((args.work / "captions.json").read_text())
        print(json.dumps(colour_from_noise(unet.eval(), latents, embeds, pooled, caption_ids, captions)))
        return
    if args.scenes and not (args.work / SCENES.start).exists() and not (args.work / f"{SCENES.name}.pt").exists():
        parser.error(f"--scenes goes on from the finished UNet, and {args.work / SCENES.start} is missing: train "
                     "the UNet first, or give --carry FOLDER to restore it")
    random.seed(args.seed)
    np.random.seed(args.seed)
    log, budget = Log(args.work / "loss.jsonl"), Budget(args.work, args.hours)
    images, captions = make_dataset(args.images, args.seed, args.work)
    if (args.work / "latents.json").exists():
        vae = load_vae(args.work)
    else:
        vae = train_vae(args.work, images, log, budget, args.seed, max_steps=args.vae_steps, carry=args.carry)
    cache = args.work / "cache.pt"
    if cache.exists():
        latents, embeds, pooled, caption_ids = torch.load(cache, weights_only=False)
    else:
        raw = encode_latents(vae, images)
        scaling = float(1.0 / raw.std())
        (args.work / "latents.json").write_text(json.dumps({"scaling_factor": scaling, "raw_std": float(raw.std()),
                                                            "vae": vae_report(vae, images[-256:])}, indent=2))
        vae.register_to_config(scaling_factor=scaling)
        latents = raw * scaling
        tokenizer, te1, te2 = build_text_encoders(args.work / "tokenizer", args.seed)
        embeds, pooled, caption_ids = encode_captions(tokenizer, te1, te2, captions)
        torch.save((latents, embeds, pooled, caption_ids), cache)
    print(f"latents {tuple(latents.shape)} std {latents.std():.3f}; {len(embeds)} distinct captions")
    if args.scenes:
        steps = train_unet(args.work, vae, latents, embeds, pooled, caption_ids, log, budget, args.seed,
                           max_steps=args.scenes_steps, carry=args.carry, plan=SCENES, captions=captions)
        print(f"{SCENES.name}: {steps} steps; best checkpoint in {args.work / SCENES.best}")
        return
    steps = train_unet(args.work, vae, latents, embeds, pooled, caption_ids, log, budget, args.seed,
                       max_steps=args.unet_steps, carry=args.carry)
    print(f"UNet: {steps} steps; best checkpoint in {args.work / UNET.best}")
    train_decoder(args.work, vae, images, log, budget, args.seed, max_steps=args.decoder_steps, carry=args.carry)


if __name__ == "__main__":
    main()
