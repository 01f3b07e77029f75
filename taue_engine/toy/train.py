"""Train the toy SDXL-architecture model on procedural scenes, from scratch, on a CPU.

    python -m taue_engine.toy.train --work runs/toy --vae-minutes 12 --unet-minutes 90
    python -m taue_engine.toy.train --work runs/toy --resume --unet-minutes 120     # go on to 120 minutes in all
    python -m taue_engine.toy.train --work runs/toy --export taue_engine/toy/model    # write the pipeline folder
    python -m taue_engine.toy.train --work runs/toy16 --latent 16                     # the 16x16-latent variant

Stages: data (seeded scenes and captions), VAE (then its latent is rotated so that key green lies on the paper's
green latent [0, 1, 1, 0], and scaled to unit variance), caption embeddings (frozen random CLIP encoders, computed
once), decoder locality fine-tuning (encoder frozen), UNet (epsilon prediction on SDXL's noise schedule, 10% caption
dropout as zero embeddings, EMA), export as a diffusers SDXL folder that `TAUEPipeline.from_pretrained` loads like
any checkpoint. Every stage checkpoints to the work folder and resumes; the loss log is `<work>/loss.jsonl`.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from ..models.tiny import SDXL_SCHEDULER_CONFIG, VOCABULARY, sdxl_euler_scheduler
from ..models.tokenizer import load_word_tokenizer, read_word_list
from .scenes import KEY_GREEN, SIZE, make_scene

GREEN_LATENT = (0.0, 1.0, 1.0, 0.0)
TEXT_HIDDEN, TEXT_HIDDEN_2, TIME_EMBED_DIM = 64, 96, 32
KINDS = ("scene", "scene_comma", "object_on_green", "object_anywhere", "background")
KIND_WEIGHTS = (0.25, 0.2, 0.25, 0.1, 0.2)


# ---------------------------------------------------------------------------------------------------- data
def make_dataset(count: int, seed: int) -> tuple[np.ndarray, list[str]]:
    """`count` images (uint8, N x 64 x 64 x 3) with captions, in the proportions of KIND_WEIGHTS."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(len(KINDS), size=count, p=KIND_WEIGHTS)
    images = np.empty((count, SIZE, SIZE, 3), np.uint8)
    captions = []
    for i in tqdm(range(count), desc="scenes", unit="img", mininterval=2):
        kind = KINDS[kinds[i]]
        scene = make_scene(seed * 1_000_003 + i, green_background_rate=0.1 if kind == "object_anywhere" else 0.0)
        if kind == "scene":
            images[i], caption = scene.image, scene.scene_prompt
        elif kind == "scene_comma":
            images[i], caption = scene.image, f"{scene.object_prompt}, {scene.background_prompt}"
        elif kind == "object_on_green":
            images[i], caption = scene.object_on_green, f"{scene.object_prompt} on a green background"
        elif kind == "object_anywhere":
            images[i], caption = scene.image, scene.object_prompt
        else:
            images[i], caption = scene.background, scene.background_prompt
        captions.append(caption)
    return images, captions


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1.0


# ---------------------------------------------------------------------------------------------------- models
# Two sizes of latent. 8 (the committed model): an 8x VAE, an 8x8 latent for 64x64 scenes. 16: a 4x VAE and a
# 16x16 latent, so that an object spans 5-10 latent cells instead of 2-4 (tried for the transplant's sake; at the
# same budget it learned the backgrounds worse: see the README's testbed section).
ARCHITECTURES = {
    8: {"vae_channels": (16, 32, 64, 64), "unet_channels": (48, 96, 160), "heads": (2, 4, 5), "batch": 64},
    16: {"vae_channels": (16, 32, 64), "unet_channels": (32, 64, 128), "heads": (2, 4, 4), "batch": 32},
}


def build_vae(latent: int = 8):
    from diffusers import AutoencoderKL

    channels = ARCHITECTURES[latent]["vae_channels"]
    return AutoencoderKL(
        in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels), block_out_channels=channels, layers_per_block=1,
        latent_channels=4, norm_num_groups=16, sample_size=SIZE, force_upcast=True,
        mid_block_add_attention=False,  # self-attention would let every latent pixel depend on the whole image
    )


def build_unet(latent: int = 8):
    from diffusers import UNet2DConditionModel

    arch = ARCHITECTURES[latent]
    return UNet2DConditionModel(
        sample_size=latent, in_channels=4, out_channels=4, layers_per_block=1,
        block_out_channels=arch["unet_channels"],
        # cross-attention at every level (SDXL skips its finest): the object tokens' attention maps, from which
        # the object mask is read, then come at the latent's own resolution too
        down_block_types=("CrossAttnDownBlock2D",) * 3,
        up_block_types=("CrossAttnUpBlock2D",) * 3,
        attention_head_dim=arch["heads"], transformer_layers_per_block=1,
        cross_attention_dim=TEXT_HIDDEN + TEXT_HIDDEN_2, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=TIME_EMBED_DIM,
        projection_class_embeddings_input_dim=TEXT_HIDDEN_2 + 6 * TIME_EMBED_DIM, norm_num_groups=16,
    )


def architecture(work: Path, latent: int | None = None) -> int:
    """The work folder's latent size: recorded when its training starts, read back on resume and export."""
    path = work / "architecture.json"
    if path.exists():
        recorded = json.loads(path.read_text())["latent"]
        if latent is not None and latent != recorded:
            raise SystemExit(f"{work} holds a {recorded}x{recorded}-latent model: drop --latent or use another --work")
        return recorded
    if any(work.glob("*.pt")):
        return 8  # folders from before the option
    path.write_text(json.dumps({"latent": latent or 8}))
    return latent or 8


def build_text_encoders(tokenizer_dir: Path, seed: int):
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


# ---------------------------------------------------------------------------------------------------- helpers
class Log:
    def __init__(self, path: Path):
        self.path = path

    def write(self, **record) -> None:
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps({"time": round(time.time(), 1), **record}) + "\n")


def save_checkpoint(path: Path, **state) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path, optimizer, **modules) -> tuple[int, float]:
    """Restore `modules` (by checkpoint key), the optimizer and the RNGs; returns (step, seconds spent)."""
    return restore_checkpoint(torch.load(path, weights_only=False), optimizer, **modules)


def restore_checkpoint(state: dict, optimizer, **modules) -> tuple[int, float]:
    """load_checkpoint of a checkpoint already read."""
    for key, module in modules.items():
        module.load_state_dict(state[key])
    if state.get("optimizer") is not None:  # a carried checkpoint (train2's --carry) has no optimizer moments
        optimizer.load_state_dict(state["optimizer"])
    set_rng_state(state["rng"])
    return state["step"], state["seconds"]


def rng_state() -> dict:
    return {"torch": torch.get_rng_state(), "numpy": np.random.get_state(), "python": random.getstate()}


def set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])


class Stage:
    """What every training stage shares: its checkpoint (modules, optimizer, step, time spent, RNGs, restored on
    resume), its time budget (total minutes, earlier runs included), the bar, the loss log every 50 steps and a
    checkpoint every 5 minutes."""

    def __init__(self, name: str, title: str, path: Path, log: "Log", minutes: float, optimizer, **modules):
        self.name, self.path, self.log, self.minutes = name, path, log, minutes
        self.optimizer, self.modules = optimizer, modules
        self.step, spent = load_checkpoint(path, optimizer, **modules) if path.exists() else (0, 0.0)
        self.start, self.last_save, self.loss = time.time() - spent, time.time(), None
        self.bar = tqdm(desc=title, unit="step", initial=self.step, mininterval=2)

    def running(self) -> bool:
        return time.time() - self.start < self.minutes * 60

    def step_done(self, loss: float) -> None:
        self.step, self.loss = self.step + 1, loss
        self.bar.update(1)
        if self.step % 50 == 0:
            self.bar.set_postfix(loss=f"{loss:.4f}")
            self.log.write(stage=self.name, step=self.step, loss=loss)
        if time.time() - self.last_save > 300:
            self.save()
            self.last_save = time.time()

    def save(self) -> None:
        save_checkpoint(self.path, **{key: module.state_dict() for key, module in self.modules.items()},
                        optimizer=self.optimizer.state_dict(), step=self.step, seconds=time.time() - self.start,
                        rng=rng_state())

    def close(self) -> None:
        self.bar.close()
        self.save()


def psnr_of(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = F.mse_loss((a.clamp(-1, 1) + 1) / 2, (b.clamp(-1, 1) + 1) / 2).item()
    return 10 * math.log10(1 / max(mse, 1e-10))


def paste_masks(batch: int, height: int, width: int) -> torch.Tensor:
    """[B, 1, H, W] random rectangles of latent cells (1 inside), for `locality_loss`."""
    masks = torch.zeros(batch, 1, height, width)
    for m in masks:
        h, w = (int(v) for v in torch.randint(1, max(2, height * 3 // 4) + 1, (2,)))
        y, x = int(torch.randint(0, height - h + 1, ())), int(torch.randint(0, width - w + 1, ()))
        m[:, y : y + h, x : x + w] = 1
    return masks


def locality_loss(vae, images: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
    """Teach the VAE the locality that TAUE relies on in SDXL's: a latent pasted together from two images decodes
    to the same paste of the images, and a pasted image encodes to the pasted latents.

    TAUE transplants a region of one latent into another (the seedling into the composite, the composite's
    background into the background run). SDXL's VAE is local enough for that; a small VAE trained on
    reconstruction alone is not (a transplanted object decoded in another context came out in other colours).
    """
    other = torch.roll(torch.arange(len(images)), 1)
    mask = paste_masks(len(images), latent.shape[-2], latent.shape[-1])
    pixel_mask = F.interpolate(mask, size=images.shape[-2:], mode="nearest")
    pasted_images = pixel_mask * images + (1 - pixel_mask) * images[other]
    pasted_latent = mask * latent + (1 - mask) * latent[other]
    decoded = F.mse_loss(vae.decode(pasted_latent).sample, pasted_images)
    encoded = vae.encode(pasted_images).latent_dist.mean
    scale = latent.detach().var() + 1e-6  # scale-free, so the VAE cannot meet it by shrinking its latents
    return decoded + 0.1 * F.mse_loss(encoded, pasted_latent.detach()) / scale


# ---------------------------------------------------------------------------------------------------- stages
def train_vae(work: Path, images: np.ndarray, minutes: float, log: Log, batch: int = 16, seed: int = 0,
              latent: int = 8):
    path = work / "vae.pt"
    torch.manual_seed(seed)  # seeded initial weights; a resumed run restores its RNGs below
    vae = build_vae(latent)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=1e-3, weight_decay=0.0)
    stage = Stage("vae", "VAE", path, log, minutes, optimizer, model=vae)
    data = to_tensor(images)
    held_out = data[-256:]
    vae.train()
    while stage.running():
        x = data[torch.randint(0, len(data) - 256, (batch,))]
        posterior = vae.encode(x).latent_dist
        recon = vae.decode(posterior.sample()).sample
        loss = F.mse_loss(recon, x) + 1e-6 * posterior.kl().mean() + locality_loss(vae, x, posterior.mean)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        stage.step_done(loss.item())
    stage.close()
    vae.eval()
    with torch.no_grad():
        recon = vae.decode(vae.encode(held_out).latent_dist.mode()).sample
    quality = psnr_of(recon, held_out)
    log.write(stage="vae", step=stage.step, held_out_psnr=quality)
    print(f"VAE: {stage.step} steps, held-out PSNR {quality:.1f} dB")
    return vae


@torch.no_grad()
def align_green(vae, images: np.ndarray) -> dict:
    """Rotate the latent space so that key green lies along GREEN_LATENT, and scale it to unit variance.

    The rotation is folded into quant_conv (mean half) and post_quant_conv, so decoding the rotated latent gives the
    same image: the VAE is unchanged, only its coordinates move. Then the paper's green injection on channels 1 and
    2 pushes this VAE's latents towards key green, as it does for SDXL's.
    """
    sample = to_tensor(images[:2048])
    means = torch.cat([vae.encode(sample[i : i + 256]).latent_dist.mean for i in range(0, len(sample), 256)])
    green = to_tensor(np.broadcast_to(np.array(KEY_GREEN, np.uint8), (1, SIZE, SIZE, 3)).copy())
    green_mean = vae.encode(green).latent_dist.mean.mean(dim=(0, 2, 3))
    overall = means.mean(dim=(0, 2, 3))
    direction = F.normalize(green_mean - overall, dim=0)
    target = F.normalize(torch.tensor(GREEN_LATENT), dim=0)
    v = direction - target
    rotation = torch.eye(4) - 2 * torch.outer(v, v) / v.dot(v) if v.norm() > 1e-6 else torch.eye(4)
    q = vae.quant_conv
    q.weight[:4] = torch.einsum("ij,jkab->ikab", rotation, q.weight[:4])
    q.bias[:4] = rotation @ q.bias[:4]
    p = vae.post_quant_conv
    p.weight.copy_(torch.einsum("ojab,jk->okab", p.weight, rotation.T))
    rotated = torch.einsum("ij,bjhw->bihw", rotation, means)
    scaling = float(1.0 / rotated.std())
    vae.register_to_config(scaling_factor=scaling)
    green_latent = (rotation @ (green_mean - overall)) * scaling
    return {"scaling_factor": scaling, "green_direction_after": green_latent.tolist()}


@torch.no_grad()
def encode_latents(vae, images: np.ndarray) -> torch.Tensor:
    data = to_tensor(images)
    out = [vae.encode(data[i : i + 256]).latent_dist.mean for i in tqdm(range(0, len(data), 256), desc="latents")]
    return torch.cat(out) * vae.config.scaling_factor


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


def train_unet(work: Path, latents, embeds, pooled, caption_ids, minutes: float, log: Log, batch: int = 64,
               lr: float = 5e-4, seed: int = 0, latent: int = 8):
    path = work / "unet.pt"
    torch.manual_seed(seed + 1)  # seeded initial weights; a resumed run restores its RNGs below
    unet = build_unet(latent)
    ema = build_unet(latent)
    ema.load_state_dict(unet.state_dict())
    optimizer = torch.optim.AdamW(unet.parameters(), lr=lr, weight_decay=1e-2)
    stage = Stage("unet", "UNet", path, log, minutes, optimizer, model=unet, ema=ema)
    ema.requires_grad_(False)
    betas = torch.linspace(SDXL_SCHEDULER_CONFIG["beta_start"] ** 0.5, SDXL_SCHEDULER_CONFIG["beta_end"] ** 0.5,
                           1000) ** 2
    alphas_cumprod = torch.cumprod(1 - betas, 0)
    time_ids = torch.tensor([[SIZE, SIZE, 0, 0, SIZE, SIZE]], dtype=torch.float32)
    unet.train()
    while stage.running():
        idx = torch.randint(0, len(latents), (batch,))
        x0 = latents[idx]
        cond, cond_pooled = embeds[caption_ids[idx]], pooled[caption_ids[idx]]
        drop = torch.rand(batch) < 0.1  # caption dropout: the zero embeddings SDXL feeds as unconditional
        cond = torch.where(drop[:, None, None], torch.zeros_like(cond), cond)
        cond_pooled = torch.where(drop[:, None], torch.zeros_like(cond_pooled), cond_pooled)
        t = torch.randint(0, 1000, (batch,))
        noise = torch.randn_like(x0)
        a = alphas_cumprod[t].view(-1, 1, 1, 1)
        noisy = a.sqrt() * x0 + (1 - a).sqrt() * noise
        pred = unet(noisy, t, encoder_hidden_states=cond,
                    added_cond_kwargs={"text_embeds": cond_pooled, "time_ids": time_ids.repeat(batch, 1)}).sample
        loss = F.mse_loss(pred, noise)
        for group in optimizer.param_groups:
            group["lr"] = lr * min(1.0, (stage.step + 1) / 300)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optimizer.step()
        step = stage.step + 1
        decay = min(0.999, (1 + step) / (10 + step))
        with torch.no_grad():
            for e, p in zip(ema.parameters(), unet.parameters()):
                e.lerp_(p, 1 - decay)
        running = loss.item() if stage.loss is None else 0.98 * stage.loss + 0.02 * loss.item()
        stage.step_done(running)  # the loss logged is the running mean
    stage.close()
    print(f"UNet: {stage.step} steps, loss {stage.loss}")
    return ema.eval(), stage.step


def paste_blobs(batch: int, height: int, width: int) -> torch.Tensor:
    """[B, 1, H, W] random object-like blobs of latent cells (smoothed noise above a threshold)."""
    noise = F.interpolate(torch.rand(batch, 1, 3, 3), size=(height, width), mode="bicubic", align_corners=False)
    levels = torch.quantile(noise.flatten(1), torch.empty(batch).uniform_(0.5, 0.9), dim=1)  # [level, sample]
    return (noise > levels.diagonal().view(batch, 1, 1, 1)).float()


def train_local_decoder(work: Path, images: np.ndarray, minutes: float, log: Log, batch: int = 16, seed: int = 0):
    """Fine-tune the decoder (encoder and latent space frozen, so the UNet stays valid) until a transplanted
    region decodes the same in any surroundings.

    The decoder's convolutions reach across the small latent and its GroupNorms average over all of it, so the
    same latent cells decoded next to a green backdrop or a striped background came out in other colours (11-20 dB
    apart on the first toy's 8x8 latent, measured on held latents). TAUE's transplant assumes they do not, as SDXL's VAE nearly satisfies.
    """
    path = work / "decoder.pt"
    vae = load_aligned_vae(work)
    params = list(vae.decoder.parameters()) + list(vae.post_quant_conv.parameters())
    optimizer = torch.optim.AdamW(params, lr=3e-4, weight_decay=0.0)
    torch.manual_seed(seed + 4)
    stage = Stage("decoder", "decoder", path, log, minutes, optimizer, model=vae)
    data = to_tensor(images)
    vae.train()
    vae.encoder.requires_grad_(False)
    vae.quant_conv.requires_grad_(False)
    while stage.running():
        x = data[torch.randint(0, len(data) - 256, (batch,))]
        with torch.no_grad():
            latent = vae.encode(x).latent_dist.mean
        other = torch.roll(torch.arange(batch), 1)
        half = batch // 2
        mask = torch.cat([paste_masks(half, *latent.shape[-2:]), paste_blobs(batch - half, *latent.shape[-2:])])
        pixel_mask = F.interpolate(mask, size=x.shape[-2:], mode="nearest")
        pasted = vae.decode(mask * latent + (1 - mask) * latent[other]).sample
        target = pixel_mask * x + (1 - pixel_mask) * x[other]
        loss = F.mse_loss(vae.decode(latent).sample, x) + 2.0 * F.mse_loss(pasted, target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        stage.step_done(loss.item())
    stage.close()
    print(f"decoder: {stage.step} steps, last loss {stage.loss}")


def load_aligned_vae(work: Path, local_decoder: bool = False):
    """The trained VAE after `align_green` (rotated coordinates, unit-variance scaling), in eval mode; with
    `local_decoder`, the decoder fine-tuned by `train_local_decoder` when it exists."""
    vae = build_vae(architecture(work))
    vae.load_state_dict(torch.load(work / "vae_aligned.pt", weights_only=False)["model"])
    if local_decoder and (work / "decoder.pt").exists():
        vae.load_state_dict(torch.load(work / "decoder.pt", weights_only=False)["model"])
    vae.register_to_config(scaling_factor=json.loads((work / "alignment.json").read_text())["scaling_factor"])
    return vae.eval()


def export(work: Path, out: Path, seed: int) -> Path:
    """Write the toy pipeline (EMA UNet, aligned VAE, frozen text encoders) as a diffusers SDXL folder."""
    from diffusers import StableDiffusionXLPipeline

    vae = load_aligned_vae(work, local_decoder=True)
    unet_state = torch.load(work / "unet.pt", weights_only=False)
    unet = build_unet(architecture(work))
    unet.load_state_dict(unet_state["ema"])
    unet.to(torch.float16)  # stored in half precision to stay under 30 MB; loads as float32 on the CPU
    tokenizer, text_encoder, text_encoder_2 = build_text_encoders(work / "tokenizer", seed)
    pipe = StableDiffusionXLPipeline(vae=vae, unet=unet.eval(), text_encoder=text_encoder,
                                     text_encoder_2=text_encoder_2, tokenizer=tokenizer, tokenizer_2=tokenizer,
                                     scheduler=sdxl_euler_scheduler(), force_zeros_for_empty_prompt=True)
    settings = out / "taue_config.json"  # chosen with the testbed, not by training: kept across exports
    kept = settings.read_text() if settings.is_file() else None
    if out.exists():
        import shutil

        shutil.rmtree(out)  # an old tokenizer.json would win over the new vocabulary
    pipe.save_pretrained(out)
    if kept is not None:
        settings.write_text(kept)
    info = {"unet_steps": unet_state["step"], "unet_minutes": round(unet_state["seconds"] / 60, 1),
            **json.loads((work / "alignment.json").read_text())}
    if (work / "decoder.pt").exists():
        decoder_state = torch.load(work / "decoder.pt", weights_only=False)
        info.update(decoder_steps=decoder_state["step"], decoder_minutes=round(decoder_state["seconds"] / 60, 1))
    (out / "training.json").write_text(json.dumps(info, indent=2))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("runs/toy"), help="checkpoints, caches and logs")
    parser.add_argument("--images", type=int, default=24000)
    parser.add_argument("--latent", type=int, choices=sorted(ARCHITECTURES), default=None,
                        help="latent size for 64x64 scenes: 8 (default; the committed model) or 16")
    parser.add_argument("--vae-minutes", type=float, default=14.0, help="total VAE training time")
    parser.add_argument("--unet-minutes", type=float, default=62.0,
                        help="total UNet training time (a resumed run goes on until it is reached)")
    parser.add_argument("--decoder-minutes", type=float, default=12.0,
                        help="total time of the decoder's locality fine-tuning (before the UNet)")
    parser.add_argument("--unet-batch", type=int, default=None,
                        help="UNet batch size (default 64 for the 8x8 latent, 32 for 16x16)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--resume", action="store_true", help="go on from the checkpoints in --work")
    parser.add_argument("--export", type=Path, default=None, help="only write the pipeline folder here")
    args = parser.parse_args()
    torch.set_num_threads(os.cpu_count() or 2)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.export:
        print(export(args.work, args.export, args.seed))
        return
    if not args.resume and any(args.work.glob("*.pt")):
        raise SystemExit(f"{args.work} holds checkpoints: pass --resume to go on, or choose another --work")
    latent = architecture(args.work, args.latent)
    log = Log(args.work / "loss.jsonl")
    random.seed(args.seed)
    np.random.seed(args.seed)
    images, captions = make_dataset(args.images, args.seed)
    aligned = args.work / "vae_aligned.pt"
    if aligned.exists():
        vae = load_aligned_vae(args.work)
    else:
        vae = train_vae(args.work, images, args.vae_minutes, log, seed=args.seed, latent=latent).eval()
        alignment = align_green(vae, images)
        (args.work / "alignment.json").write_text(json.dumps(alignment, indent=2))
        torch.save({"model": vae.state_dict()}, aligned)
        print("green alignment:", alignment)
    cache = args.work / "cache.pt"
    if cache.exists():
        latents, embeds, pooled, caption_ids = torch.load(cache, weights_only=False)
    else:
        latents = encode_latents(vae, images)
        tokenizer, te1, te2 = build_text_encoders(args.work / "tokenizer", args.seed)
        embeds, pooled, caption_ids = encode_captions(tokenizer, te1, te2, captions)
        torch.save((latents, embeds, pooled, caption_ids), cache)
    print(f"latents {tuple(latents.shape)} std {latents.std():.3f}; {len(embeds)} distinct captions")
    # the decoder first: it leaves the encoder and the latents alone, and its locality can be checked before the
    # long UNet stage
    train_local_decoder(args.work, images, args.decoder_minutes, log, seed=args.seed)
    train_unet(args.work, latents, embeds, pooled, caption_ids, args.unet_minutes, log,
               batch=args.unet_batch or ARCHITECTURES[latent]["batch"], seed=args.seed, latent=latent)


if __name__ == "__main__":
    main()
