"""The model's round trip, with no TAUE at all: how much of a known picture survives being noised and denoised.

    python -m lab.benchmarks.round_trip [--model taue_engine/toy/model] [--pairs 12] [--strengths 0.25 0.5 0.75]
                                    [--guidance 5] [--scenes]

TAUE's PSNR_fg rests on a property of the model, not of the method: a latent noised to the cut and denoised
again with the object's prompt must come back as the same object. This benchmark measures that property alone,
through diffusers' own `StableDiffusionXLImg2ImgPipeline` built from the model's components (its scheduler, its
50 steps, its guidance 5): for each testbed pair the toy world draws the truth (the object alone on the green key,
and the whole scene), and img2img at strength s (the cut at 1 - s: strength 0.5 is TAUE's crop ratio 0.5) denoises
it with the object's prompt (the scene's prompt for the scene). Printed per strength, over the same pairs:

- object: PSNR of the result against the truth over the object's pixels (coverage > 0.5), object on the key;
- key: the same over the key's pixels (the backdrop the foreground phase must keep);
- scene: PSNR over the whole scene, scene prompt;
- in scene: the same scene run over the object's pixels only (the object repainted by its surroundings);
- key vs scene: the two runs against each other over the object's pixels, TAUE's PSNR_fg with the truth at the
  cut and no method at all (I_fg from the object on the key, the composite from the object in its scene);
- vae: the VAE's own reconstruction over the object's pixels (the ceiling: strength 0).

With --scenes, also the testbed's several-object scenes (`testbed.OBJECT_SCENES`: two and three objects in their
boxes on a white background, seeds 1-3) drawn by the toy world and sent through the same round trip with their
scene prompt: printed, the share of each object's pixels in its own colour afterwards (the several-object check of
the composite's colour, with no method at all).

If a model's round trip at strength 0.5 is far under TAUE's PSNR_fg bar, no setting of the method reaches the bar
on that model at crop ratio 0.5: the composite's second half starts from such a latent. A pair whose run raises
counts at 0 dB and is counted as failed.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch
from diffusers import StableDiffusionXLImg2ImgPipeline
from PIL import Image

from lab.metrics import psnr
from lab.testbed import OBJECT_SCENES, OBJECT_SEEDS, PSNR_CAP, choose_pairs
from lab.testbed_scenes import colour_labels, colour_share
from lab.world import make_world_scene
from taue_engine import TAUEPipeline

COLUMNS = ("object", "key", "scene", "in scene", "key vs scene")
RADIUS = 0.26  # of the image: the middle of the world's single-object radii (0.2-0.32)


def img2img_from(pipe: TAUEPipeline) -> StableDiffusionXLImg2ImgPipeline:
    """diffusers' img2img over the same modules (no TAUE processors: the UNet's default attention)."""
    pipe.unet.set_default_attn_processor()
    components = {k: v for k, v in pipe.components.items()
                  if k in StableDiffusionXLImg2ImgPipeline._optional_components
                  or k in ("vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "unet", "scheduler")}
    i2i = StableDiffusionXLImg2ImgPipeline(**components, requires_aesthetics_score=False)
    i2i.set_progress_bar_config(disable=True)
    return i2i


def region_psnr(a: np.ndarray, b: np.ndarray, where: np.ndarray) -> float:
    """PSNR (dB, capped at testbed.PSNR_CAP) of two uint8 images over the pixels where `where` holds."""
    if not where.any():
        return math.nan
    return min(PSNR_CAP, psnr(a[where].astype(np.float32) / 255.0, b[where].astype(np.float32) / 255.0))


def truth(pair, size: int):
    """The pair's scene (object centred) and its object alone on green, uint8 HxWx3, and the object's pixels."""
    scene = make_world_scene(pair.seed, size=size, shapes=[pair.shape], colours=[pair.colour],
                             background_colour=pair.background_colour, background_kind=pair.background_kind,
                             centres=[(0.5, 0.5)], radii=[RADIUS])
    return scene, scene.object_on_key(0, "green"), scene.objects[0].mask > 0.5


def run(model: str, pair_count: int, strengths: list[float], steps: int, guidance: float) -> dict:
    pipe = TAUEPipeline.from_pretrained(model, device="cpu")
    size = pipe.default_sample_size * pipe.vae_scale_factor
    i2i = img2img_from(pipe)
    rows = {s: {k: [] for k in COLUMNS} for s in strengths}
    ceiling, failed = [], {s: 0 for s in strengths}
    for n, pair in enumerate(choose_pairs(pair_count)):
        scene, on_key, inside = truth(pair, size)
        decoded = (pipe.decode_latent(pipe.encode_pixels(Image.fromarray(on_key))).numpy() * 255 + 0.5).astype(np.uint8)
        ceiling.append(region_psnr(decoded, on_key, inside))
        for s in strengths:
            try:
                seeded = torch.Generator().manual_seed(pair.seed)
                out = np.asarray(i2i(pair.object_prompt, image=Image.fromarray(on_key), strength=s,
                                     num_inference_steps=steps, guidance_scale=guidance, generator=seeded,
                                     height=size, width=size).images[0])
                seeded = torch.Generator().manual_seed(pair.seed)
                whole = np.asarray(i2i(scene.scene_prompt, image=Image.fromarray(scene.image), strength=s,
                                       num_inference_steps=steps, guidance_scale=guidance, generator=seeded,
                                       height=size, width=size).images[0])
                values = (region_psnr(out, on_key, inside), region_psnr(out, on_key, ~inside),
                          region_psnr(whole, scene.image, np.ones_like(inside)),
                          region_psnr(whole, scene.image, inside),
                          region_psnr(out, whole, inside))
            except Exception as error:  # noqa: BLE001 - a failed pair counts at the worst value
                print(f"  pair {n} strength {s}: failed ({error})", file=sys.stderr)
                failed[s] += 1
                values = (0.0,) * len(COLUMNS)
            for key, value in zip(COLUMNS, values):
                rows[s][key].append(value)
        print(f"[{n + 1}/{pair_count}] {pair.object_prompt} | {scene.scene_prompt}: " + ", ".join(
            f"s{s} {rows[s]['object'][-1]:.1f}" for s in strengths), flush=True)
    return {"model": model, "size": size, "pairs": pair_count, "steps": steps, "guidance": guidance,
            "vae_object": float(np.nanmean(ceiling)),
            "strengths": {str(s): {k: float(np.nanmean(v)) for k, v in r.items()} | {"failed": failed[s]}
                          for s, r in rows.items()}}


def model_alone(pipe: TAUEPipeline, pairs, strength: float, steps: int, guidance: float, size: int) -> list[dict]:
    """Per pair, what the model does with the truth at the cut and no method at all: psnr_fg_model, TAUE's PSNR_fg
    ('key vs scene': the object's truth on the key and its scene, each noised to the cut, strength = 1 - crop
    ratio, and denoised with its own prompt, compared over the object), and ring_model, the scene's ring around the
    object in neither its colour nor the background's (lab.metrics.foreign_ring). What the testbed's method loss is
    measured from. A pair whose run raises gives NaN. Sets the UNet's default attention processors (img2img_from)."""
    from lab.metrics import foreign_ring

    i2i = img2img_from(pipe)
    values = []
    for pair in pairs:
        scene, on_key, inside = truth(pair, size)
        try:
            runs = [np.asarray(i2i(prompt, image=Image.fromarray(image), strength=strength, num_inference_steps=steps,
                                   guidance_scale=guidance, generator=torch.Generator().manual_seed(pair.seed),
                                   height=size, width=size).images[0])
                    for prompt, image in ((pair.object_prompt, on_key), (scene.scene_prompt, scene.image))]
            values.append({"psnr_fg_model": region_psnr(runs[0], runs[1], inside),
                           "ring_model": foreign_ring(runs[1], inside, pair.colour, pair.background_colour)})
        except Exception as error:  # noqa: BLE001 - counted as failed by the caller
            print(f"  {pair.object_prompt}: model alone failed ({error})", file=sys.stderr)
            values.append({"psnr_fg_model": math.nan, "ring_model": math.nan})
    return values


def scene_truth(count: int, seed: int, size: int):
    """The testbed's scene of `count` objects as the world draws it: each object in its box (a shape of 0.9 of
    the box's shorter side) on a plain white background."""
    objects = OBJECT_SCENES[count]
    return make_world_scene(seed, size=size, shapes=[prompt.split()[-1] for prompt, _, _ in objects],
                            colours=[colour for _, colour, _ in objects], background_colour="white",
                            background_kind="solid", centres=[(box[0], box[1]) for _, _, box in objects],
                            radii=[0.45 * min(box[2], box[3]) for _, _, box in objects])


def run_scenes(model: str, strengths: list[float], steps: int, guidance: float, seeds=OBJECT_SEEDS) -> dict:
    """Each several-object scene's round trip: per strength, the mean and worst share of an object's pixels in
    its own colour afterwards, over every object of every scene and seed; a run that raises counts its objects at
    0 and as failed."""
    pipe = TAUEPipeline.from_pretrained(model, device="cpu")
    size = pipe.default_sample_size * pipe.vae_scale_factor
    i2i = img2img_from(pipe)
    out = {}
    for s in strengths:
        shares, failed = [], 0
        for count in sorted(OBJECT_SCENES):
            for seed in seeds:
                scene = scene_truth(count, seed, size)
                try:
                    image = i2i(scene.scene_prompt, image=Image.fromarray(scene.image), strength=s,
                                num_inference_steps=steps, guidance_scale=guidance,
                                generator=torch.Generator().manual_seed(seed), height=size, width=size).images[0]
                    labels = colour_labels(image)  # the testbed's composite-colour check, on the truth's objects
                    shares += [colour_share(labels, [o.colour], o.mask > 0.5) for o in scene.objects]
                except Exception as error:  # noqa: BLE001 - a failed scene counts at the worst value
                    print(f"  {count} objects, seed {seed}, strength {s}: failed ({error})", file=sys.stderr)
                    failed += 1
                    shares += [0.0] * count
        out[str(s)] = {"own_colour": float(np.mean(shares)), "worst": float(min(shares)), "objects": len(shares),
                       "failed": failed}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="toy")
    parser.add_argument("--pairs", type=int, default=12)
    parser.add_argument("--strengths", type=float, nargs="+", default=[0.25, 0.5, 0.75])
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--guidance", type=float, default=5.0)
    parser.add_argument("--scenes", action="store_true", help="also the several-object scenes' colours")
    args = parser.parse_args()
    started = time.perf_counter()
    result = run(args.model, args.pairs, args.strengths, args.steps, args.guidance)
    print(f"\nmodel {result['model']} ({result['size']}px), {result['pairs']} pairs, {result['steps']} steps, "
          f"guidance {result['guidance']}; VAE alone over the object: {result['vae_object']:.2f} dB")
    print("| strength (cut = 1 - s) | " + " | ".join(f"{c} (dB)" for c in COLUMNS) + " | failed pairs |")
    print("|---|" + "---|" * (len(COLUMNS) + 1))
    for s, r in result["strengths"].items():
        print(f"| {s} | " + " | ".join(f"{r[c]:.2f}" for c in COLUMNS) + f" | {r['failed']} of {result['pairs']} |")
    if args.scenes:
        scenes = run_scenes(args.model, args.strengths, args.steps, args.guidance)
        print("\nseveral-object scenes (testbed.OBJECT_SCENES, seeds 1-3), each object's pixels in its own colour "
              "after "
              "the round trip")
        print("| strength | own colour: mean | worst | objects | failed scenes |")
        print("|---|---|---|---|---|")
        for s, r in scenes.items():
            print(f"| {s} | {r['own_colour']:.3f} | {r['worst']:.3f} | {r['objects']} | {r['failed']} |")
    print(f"({time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
