"""The scheduler's own clean estimate x0-hat of a latent, recorded while a phase runs.

At the cut the seedling is still mostly noise (on SDXL's Euler schedule sigma is about 1.5 at step 25 of 50, against
a signal std of about 0.7), so what the object mask and the high-pass read is its clean estimate: the next step's
`pred_original_sample`, the latent denoised by that step's own (guided) noise prediction. Every diffusers scheduler
whose step output has `pred_original_sample` gives it; the pipeline's denoising loop is left as diffusers wrote it.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import torch


@contextmanager
def clean_estimates(scheduler, steps: set[int]):
    """Record x0-hat of the latent that step `i` (0-based, the latent after i steps) starts from, for each i in
    `steps`, while the context lasts; yields the dict {i: tensor} that fills as the phase runs."""
    record: dict[int, torch.Tensor] = {}
    original = scheduler.step
    calls = 0

    @functools.wraps(original)
    def step(*args, **kwargs):
        nonlocal calls
        out = original(*args, **kwargs)
        if calls in steps:
            clean = getattr(out, "pred_original_sample", None)
            if clean is None and isinstance(out, tuple) and len(out) > 1:
                clean = out[1]
            if clean is None:
                raise RuntimeError(f"{type(scheduler).__name__} gives no pred_original_sample, which TAUE reads the "
                                   "seedling's object mask from: use the Euler scheduler")
            record[calls] = clean.detach().clone()
        calls += 1
        return out

    scheduler.step = step
    try:
        yield record
    finally:
        if scheduler.__dict__.get("step") is step:
            del scheduler.step
