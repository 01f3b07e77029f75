"""lab/benchmarks/truth_at_cut.py puts the truth in place of phase 1's latent at the cut, and only there."""

import numpy as np
import pytest

from lab.benchmarks.truth_at_cut import summary, truth_pipeline
from lab.metrics import psnr
from lab.testbed import choose_pairs
from taue_engine import TAUEPipeline

pytestmark = pytest.mark.slow  # a benchmark


def test_phase_one_follows_the_truth_from_the_cut():
    """A late cut (9 of 10 steps): I_fg of the truth run is the truth, nearly; the oracle run's own object is not
    where the truth is drawn (the truth is the pair's shape at another size), so it scores far lower against it."""
    toy = TAUEPipeline.from_pretrained("toy", device="cpu")
    toy.set_progress_bar_config(disable=True)
    config = toy.default_config.replace(num_inference_steps=10, crop_ratio=0.9)
    oracle, truth = truth_pipeline(toy)
    pair = choose_pairs(4)[1]
    size = int(toy.default_sample_size * toy.vae_scale_factor)
    truth.aim(pair, size, config.key_color)
    expected = truth.truth_pixels[0]
    scores = {}
    for name, pipe in (("oracle", oracle), ("truth", truth)):
        result = pipe(pair.object_prompt, pair.background_prompt, seed=pair.seed, config=config)
        on_key = np.asarray(result.foreground_on_green, dtype=np.float32) / 255.0
        scores[name] = psnr(on_key, expected, None)
    assert scores["truth"] >= 18.0 and scores["truth"] >= scores["oracle"] + 5.0, scores


def test_a_failed_pair_counts_at_zero_db():
    rows = [{"psnr_fg": 20.0}, {"error": "RuntimeError: boom"}, {"psnr_fg": float("nan")}]
    assert summary(rows, "psnr_fg") == {"mean": 20.0 / 3, "worst": 0.0, "failed": 2}
