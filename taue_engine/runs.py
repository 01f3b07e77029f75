"""The denoising runs of one job: one job at a time on a pipeline, one progress bar and one stream of progress
over all of its runs, and the UNet's own attention processors put back whatever happens."""

from __future__ import annotations

import functools
from collections.abc import Callable
from contextlib import contextmanager

import torch

from .clean_estimate import clean_estimates
from .results import ProgressCallback, TAUECancelled, TAUEProgress


def one_run_at_a_time(method):
    """A diffusers pipeline keeps its run in itself (the scheduler's step index, the attention processors, our
    recording of x0-hat), so two threads running one pipeline corrupt each other's phases: the second waits on
    the pipeline's `_run_lock` (a re-entrant lock set in its __init__)."""

    @functools.wraps(method)
    def serialized(self, *args, **kwargs):
        with self._run_lock:
            return method(self, *args, **kwargs)

    return serialized


StepReport = Callable[[int, object, torch.Tensor], None]
"""What a phase calls after each step: (step index, timestep, latents)."""


@contextmanager
def denoising_runs(pipe, total: int, steps: int, progress_callback: ProgressCallback | None,
                   callback_on_step_end: Callable | None):
    """Yields (report, original_processors); report(run, phase, object) is the `StepReport` of run `run` (0-based,
    `steps` steps each, `total` steps in all): it moves the bar, calls the diffusers-style callback and sends the
    job's progress, whose preview is the step's clean estimate. On exit the UNet's own attention processors, the
    progress bar's settings and `pipe.current_phase` are put back."""
    bar_config = dict(getattr(pipe, "_progress_bar_config", {}))
    bar = pipe.progress_bar(total=total)
    pipe.set_progress_bar_config(**{**bar_config, "disable": True})  # SDXL's own per-phase bars stay quiet

    def report(run: int, phase: str, obj: int | None) -> StepReport:
        name = f"{phase} (object {obj})" if obj else phase

        def tick(i: int, t, latents: torch.Tensor) -> None:
            if i == 0:  # the bar names the phase that runs
                bar.set_postfix_str(name, refresh=False)
            bar.update(1)
            if callback_on_step_end is not None:
                callback_on_step_end(pipe, i, t, {"latents": latents})
            if progress_callback is not None:
                clean = latest.get("latest")
                progress = TAUEProgress(phase, i + 1, steps, run * steps + i + 1, total, obj,
                                        preview=lambda: pipe.preview_image(latents if clean is None else clean))
                if progress_callback(progress) is False:
                    raise TAUECancelled(f"cancelled during the {phase} phase at step {progress.step}/{steps}")
        return tick

    original_processors = dict(pipe.unet.attn_processors)
    try:
        with clean_estimates(pipe.scheduler, None) as latest:  # each step's x0-hat, for the previews
            yield report, original_processors
    finally:
        pipe.unet.set_attn_processor(dict(original_processors))
        pipe.set_progress_bar_config(**bar_config)
        bar.close()
        pipe.current_phase = None
