"""Layer quality of several-object scenes on the toy model, where every colour is known.

For each object layer: the share of its opaque pixels in its own colour and in the other objects' colours
(attribute leakage), and PSNR_fg against the composite where the object is visible; for the background layer, the
share of the objects' area that still carries an object's colour. The scenes are taue_engine.testbed.OBJECT_SCENES, as in tests/test_objects_toy.py.

    python benchmarks/objects_quality.py
"""

from __future__ import annotations

import os
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

from taue_engine import TAUEPipeline  # noqa: E402
from taue_engine.metrics import psnr  # noqa: E402
from taue_engine.testbed import OBJECT_SCENES, OBJECT_SEEDS, object_request  # noqa: E402
from taue_engine.toy.scenes import classify_colours, palette_names  # noqa: E402

SCENES, SEEDS = OBJECT_SCENES, OBJECT_SEEDS
NAMES = palette_names()


def as_float(image) -> np.ndarray:
    return np.asarray(image, dtype=np.float32)[..., :3] / 255.0


def main() -> int:
    pipe = TAUEPipeline.from_pretrained("taue_engine/toy/model")
    pipe.set_progress_bar_config(disable=True)
    rows = []
    for count in SCENES:
        colours = [c for _, c, _ in SCENES[count]]
        for seed in SEEDS:
            result = pipe(objects=object_request(count), background_prompt="a white background", seed=seed)
            composite = as_float(result.composite)
            union = np.asarray(result.mask) > 127
            background = classify_colours(np.asarray(result.background))
            leaked = float(np.isin(background[union], [NAMES.index(c) for c in colours]).mean())
            for obj, colour in zip(result.objects, colours):
                pixels = np.asarray(obj.layer)
                opaque = pixels[..., 3] > 127
                labels = classify_colours(pixels[..., :3])[opaque]
                visible = np.asarray(obj.mask) > 127
                rows.append({"objects": count, "seed": seed, "object": obj.prompt,
                             "own": float((labels == NAMES.index(colour)).mean()),
                             "others": float(np.isin(labels, [NAMES.index(c) for c in colours if c != colour]).mean()),
                             "psnr_fg": psnr(as_float(obj.layer), composite, opaque & visible),
                             "background_leak": leaked})
    print(f"{'objects':>7} {'seed':>4}  {'object':<16}{'own':>6}{'others':>8}{'psnr_fg':>9}{'bg leak':>9}")
    for r in rows:
        print(f"{r['objects']:>7} {r['seed']:>4}  {r['object']:<16}{r['own']:>6.3f}{r['others']:>8.3f}"
              f"{r['psnr_fg']:>9.2f}{r['background_leak']:>9.3f}")
    for count in SCENES:
        chosen = [r for r in rows if r["objects"] == count]
        print(f"{count} objects: mean own {statistics.mean(r['own'] for r in chosen):.3f}, worst others "
              f"{max(r['others'] for r in chosen):.3f}, mean PSNR_fg {statistics.mean(r['psnr_fg'] for r in chosen):.2f}"
              f" dB (worst {min(r['psnr_fg'] for r in chosen):.2f}), worst background leak "
              f"{max(r['background_leak'] for r in chosen):.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
