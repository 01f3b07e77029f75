"""Two held objects and the composite's background: each object alone, both, and the same object twice.

    python -m lab.benchmarks.held_objects [--model taue_engine/toy/model] [--seeds 1 2]

On toy 2 the composite of a two-object job can paint its background another colour than its prompt (black comes
out key green) while its background layer follows the prompt. This separates what is held from how many prompts
there are: the two-object scene of the testbed (`testbed.OBJECT_SCENES[2]`) is made once per background and seed,
then its kept objects are composed again on the same background (`new_background`, same seed) as object 1 alone,
object 2 alone, object 1 twice (two prompts, one place) and both (`Transplant.objects_at`). Printed: the share of
the composite outside the objects in the prompt's colour and its commonest other colour, and the share of the image
held (the union of the objects' masks).
The last row of each run, "both, off the key", separates the model from the method: both objects held again, with
their seedlings' content taken off the key (each object's layer over a solid of the prompt's colour, encoded, as its
clean estimate; its seedling that plus the seedling's own noise), so that nothing green is held. If the background
still turns, it is the model's answer to what is held, not the key backdrop the seedlings carry.
A run that raises is printed as failed.
"""

from __future__ import annotations

import argparse
import dataclasses

import numpy as np
from PIL import Image

from lab.testbed import object_request
from lab.testbed_scenes import colour_labels
from lab.world import PALETTE, colour_names
from taue_engine import TAUEPipeline

BACKGROUNDS = (("a black background", "black"), ("a purple background", "purple"), ("a white background", "white"))
SUBSETS = (("object 1", [0]), ("object 2", [1]), ("object 1 twice", [0, 0]), ("both", [0, 1]))


def shares(result, colour: str) -> tuple[float, str, float]:
    """The share of the composite outside the objects in the prompt's colour, the commonest other colour there
    and its share, and the share of the image held."""
    names = colour_names()
    outside = np.asarray(result.mask) < 128
    labels = colour_labels(result.composite)[outside]
    counts = np.bincount(labels, minlength=len(names)) / max(1, labels.size)
    own = names.index(colour)
    other = max((i for i in range(len(names)) if i != own), key=lambda i: counts[i])
    return float(counts[own]), f"{names[other]} {counts[other]:.3f}", float(1 - outside.mean())


def off_the_key(pipe, transplant, rgb: tuple[int, int, int]):
    """The kept objects with nothing of the key in what is held: each layer over a solid `rgb`, encoded, is its
    clean estimate; its seedling is that plus the seedling's own noise (seedling minus its clean estimate)."""
    seedlings, cleans = [], []
    for layer, seedling, clean in zip(transplant.layers, transplant.seedlings, transplant.cleans):
        if seedling is None or clean is None:
            raise ValueError("off_the_key needs generated objects (a seedling and its clean estimate)")
        base = Image.new("RGB", layer.size, rgb)
        base.paste(layer.convert("RGB"), mask=layer.getchannel("A"))
        encoded = pipe.encode_pixels(base).to(seedling.dtype)
        cleans.append(encoded)
        seedlings.append(encoded + (seedling - clean.to(seedling.dtype)))
    return dataclasses.replace(transplant, seedlings=seedlings, cleans=cleans)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="taue_engine/toy/model")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    pipe = TAUEPipeline.from_pretrained(args.model)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.default_config
    print(f"{'background':<22}{'seed':>5}  {'objects':<18}{'its colour':>11}  {'commonest other':<18}{'held':>6}")
    for prompt, colour in BACKGROUNDS:
        for seed in args.seeds:
            made = pipe(objects=object_request(2), background_prompt=prompt, seed=seed, config=config)
            runs = [(name, lambda indices=indices, made=made: made.transplant.objects_at(indices))
                    for name, indices in SUBSETS]
            runs.append(("both, off the key", lambda made=made, colour=colour: off_the_key(pipe, made.transplant,
                                                                                            PALETTE[colour])))
            for name, kept in runs:
                try:
                    result = pipe.new_background(kept(), prompt, seed=seed, config=config)
                    own, other, held = shares(result, colour)
                    print(f"{prompt:<22}{seed:>5}  {name:<18}{own:>11.3f}  {other:<18}{held:>6.3f}")
                except Exception as error:  # noqa: BLE001 - printed, not hidden
                    print(f"{prompt:<22}{seed:>5}  {name:<18} failed: {type(error).__name__}: {error}")


if __name__ == "__main__":
    main()
