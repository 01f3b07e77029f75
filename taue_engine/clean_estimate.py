"""The scheduler's own clean estimate x0-hat of a latent, recorded while a phase runs.

At the cut the seedling is still mostly noise (on SDXL's Euler schedule sigma is about 1.5 at step 25 of 50, against
a signal std of about 0.7), so what the object mask and the high-pass read is its clean estimate: the next step's
`pred_original_sample`, the latent denoised by that step's own (guided) noise prediction (each scheduler's own
form of it: schedulers.clean_estimate_of); the pipeline's denoising loop is left as diffusers wrote it.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

from .schedulers import SCHEDULERS, clean_estimate_of


@contextmanager
def clean_estimates(scheduler, steps: set[int] | None):
    """Record x0-hat of the latent that step `i` (0-based, the latent after i steps) starts from, for each i in
    `steps`, while the context lasts; yields the dict {i: tensor} that fills as the phase runs. `steps` None keeps
    only the latest step's, under the key "latest" and uncopied (what a preview reads within its step)."""
    record: dict = {}
    previous = scheduler.__dict__.get("step")  # an enclosing recorder's wrapper, put back on exit
    original = scheduler.step
    calls = 0

    @functools.wraps(original)
    def step(*args, **kwargs):
        nonlocal calls
        out = original(*args, **kwargs)
        if steps is None:
            record["latest"] = clean_estimate_of(scheduler, out)
        elif calls in steps:
            clean = clean_estimate_of(scheduler, out)
            if clean is None:
                raise RuntimeError(f"{type(scheduler).__name__} gives no clean estimate, which TAUE reads the "
                                   f"seedling's object mask from: use one of {', '.join(SCHEDULERS)}")
            record[calls] = clean.detach().clone()
        calls += 1
        return out

    scheduler.step = step
    try:
        yield record
    finally:
        if scheduler.__dict__.get("step") is step:
            if previous is None:
                del scheduler.step
            else:
                scheduler.step = previous
