"""Speed and memory of TAUE against three plain SDXL calls, in one run, on the same model, size and steps.

TAUE runs three denoising passes, so three plain `StableDiffusionXLPipeline` calls are its floor; what it adds on
top (attention capture, shearing's second attention, masks, holds, keying) must stay under 10% of them.

    python -m lab.benchmarks.overhead                                   # tiny-random on the CPU
    python -m lab.benchmarks.overhead --model random-sdxl --width 1024 --height 1024 --dtype float16   # full-size SDXL,
                                                                    # random weights (GPU; no hub needed)
    python -m lab.benchmarks.overhead --steps 8 --guidance 1 --timestep-spacing trailing   # a few-step model's settings
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time
from pathlib import Path

os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import torch
from diffusers import StableDiffusionXLPipeline

from taue_engine import TAUEConfig, TAUEPipeline
from taue_engine.models.loading import choose_device_and_dtype

FG, BG = "a red vintage bicycle", "a cobblestone street at dusk"


def build_random_sdxl(device: str, dtype: torch.dtype) -> TAUEPipeline:
    """Full-size SDXL base (2.6 B-parameter UNet, both text encoders, VAE) with random weights, built offline."""
    import tempfile

    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTextModelWithProjection

    from taue_engine.models.tiny import VOCABULARY, sdxl_euler_scheduler
    from taue_engine.models.tokenizer import load_word_tokenizer, read_word_list

    tokenizer = load_word_tokenizer(read_word_list(VOCABULARY), Path(tempfile.mkdtemp()))
    with torch.device(device):
        torch.manual_seed(0)
        unet = UNet2DConditionModel(
            sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
            block_out_channels=(320, 640, 1280),
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
            attention_head_dim=(5, 10, 20), transformer_layers_per_block=(1, 2, 10), cross_attention_dim=2048,
            use_linear_projection=True, addition_embed_type="text_time", addition_time_embed_dim=256,
            projection_class_embeddings_input_dim=2816,
        ).to(dtype)
        vae = AutoencoderKL(
            in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 4,
            up_block_types=("UpDecoderBlock2D",) * 4, block_out_channels=(128, 256, 512, 512), layers_per_block=2,
            latent_channels=4, sample_size=1024, scaling_factor=0.13025, force_upcast=True,
        ).to(dtype)
        common = dict(vocab_size=49408, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
                      eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.eos_token_id)
        text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
                                                    num_attention_heads=12, hidden_act="quick_gelu",
                                                    projection_dim=768, **common)).to(dtype)
        text_encoder_2 = CLIPTextModelWithProjection(CLIPTextConfig(
            hidden_size=1280, intermediate_size=5120, num_hidden_layers=32, num_attention_heads=20,
            hidden_act="gelu", projection_dim=1280, **common)).to(dtype)
    pipe = TAUEPipeline(unet=unet, vae=vae, text_encoder=text_encoder, text_encoder_2=text_encoder_2,
                        tokenizer=tokenizer, tokenizer_2=tokenizer, scheduler=sdxl_euler_scheduler())
    pipe.model_name = "random-sdxl"
    return pipe


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_plain(pipe, args, config: TAUEConfig, device: str) -> tuple[float, list[float]]:
    """Three plain SDXL calls with the phases' prompts and guidance scales: total and each call's seconds."""
    each = []
    for prompt, guidance in ((FG, config.guidance_foreground), (f"{FG}, {BG}", config.guidance_composite),
                             (BG, config.guidance_background)):
        synchronize(device)
        start = time.perf_counter()
        StableDiffusionXLPipeline.__call__(pipe, prompt=prompt, num_inference_steps=config.num_inference_steps,
                                           guidance_scale=guidance, width=args.width, height=args.height,
                                           generator=torch.Generator("cpu").manual_seed(args.seed))
        synchronize(device)
        each.append(time.perf_counter() - start)
    return sum(each), each


def time_taue(pipe, args, config: TAUEConfig, device: str) -> tuple[float, dict]:
    synchronize(device)
    start = time.perf_counter()
    result = pipe(FG, BG, seed=args.seed, width=args.width, height=args.height, config=config)
    synchronize(device)
    return time.perf_counter() - start, result.metadata["timings_s"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="tiny-random", help="tiny-random, random-sdxl, or any TAUE model")
    parser.add_argument("--width", type=int, default=None)
    parser.add_argument("--height", type=int, default=None)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=None,
                        help="guidance of every phase and plain call (default: the paper's 7.5 / 5 / 5); <= 1: no CFG")
    parser.add_argument("--scheduler", default="euler", help="sampler (taue_engine.schedulers.SCHEDULERS)")
    parser.add_argument("--timestep-spacing", default="model")
    parser.add_argument("--repeats", type=int, default=3, help="timed rounds; the median is reported")
    parser.add_argument("--device", default=None)
    parser.add_argument("--dtype", default=None)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write the numbers to this file")
    args = parser.parse_args()

    device, dtype = choose_device_and_dtype(args.device, args.dtype)
    t0 = time.perf_counter()
    if args.model == "random-sdxl":
        pipe = build_random_sdxl(device, dtype)
    else:
        pipe = TAUEPipeline.from_pretrained(args.model, device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    load_s = time.perf_counter() - t0
    native = pipe.unet.config.sample_size * pipe.vae_scale_factor
    args.width, args.height = args.width or native, args.height or native
    config = TAUEConfig(num_inference_steps=args.steps, scheduler=args.scheduler,
                        timestep_spacing=args.timestep_spacing)
    if args.guidance is not None:
        config = config.replace(guidance_foreground=args.guidance, guidance_composite=args.guidance,
                                guidance_background=args.guidance)

    # warm-up (kernels, allocator, caches, GPU clocks), not timed
    warm = config.replace(num_inference_steps=min(args.steps, 10))  # also puts the sampler in place for plain calls
    pipe(FG, BG, seed=args.seed, width=args.width, height=args.height, config=warm)
    time_plain(pipe, args, warm, device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()

    plain_times, plain_each, taue_times, phase_timings = [], [], [], []
    for _ in range(args.repeats):  # interleaved, so drift hits both alike
        seconds, each = time_plain(pipe, args, config, device)
        plain_times.append(seconds)
        plain_each.append([round(t, 3) for t in each])
        if device.startswith("cuda"):
            plain_peak = torch.cuda.max_memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        seconds, timings = time_taue(pipe, args, config, device)
        taue_times.append(seconds)
        phase_timings.append(timings)
    plain, taue = statistics.median(plain_times), statistics.median(taue_times)
    report = {
        "model": args.model, "device": device,
        "gpu": torch.cuda.get_device_name() if device.startswith("cuda") else None,
        "dtype": str(dtype).replace("torch.", ""), "width": args.width, "height": args.height, "steps": args.steps,
        "scheduler": config.scheduler, "timestep_spacing": config.timestep_spacing,
        "guidance": [config.guidance_foreground, config.guidance_composite, config.guidance_background],
        "repeats": args.repeats, "load_s": round(load_s, 2),
        "taue_s": round(taue, 3), "three_plain_sdxl_s": round(plain, 3), "one_plain_sdxl_s": round(plain / 3, 3),
        "ratio_taue_over_three_plain": round(taue / plain, 4),
        "overhead_percent": round(100 * (taue - plain) / plain, 2),
        "taue_runs_s": [round(t, 3) for t in taue_times], "plain_runs_s": [round(t, 3) for t in plain_times],
        "plain_calls_s": plain_each,
        "taue_phase_timings_s": phase_timings[len(phase_timings) // 2],
    }
    if device.startswith("cuda"):
        report["peak_gpu_memory_gib_taue"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
        report["peak_gpu_memory_gib_plain"] = round(plain_peak / 2**30, 2)
    report["peak_process_rss_gib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20, 2)
    print(json.dumps(report, indent=2))
    verdict = "PASS" if report["overhead_percent"] < 10 else "FAIL"
    print(f"{verdict}: TAUE {taue:.2f} s vs three plain SDXL calls {plain:.2f} s "
          f"-> method overhead {report['overhead_percent']:+.1f}% (limit 10%)")
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
