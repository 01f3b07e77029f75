"""Shared fixtures: one tiny-random pipeline and one TAUE run per session (imports alone cost ~6 s)."""

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

import pytest  # noqa: E402

SIZE = 128
STEPS = 10


@pytest.fixture(scope="session")
def pipe():
    from taue_engine import TAUEPipeline

    pipeline = TAUEPipeline.from_pretrained("tiny-random", device="cpu")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="session")
def toy():
    """The embedded toy model, loaded once, for tests that only run it (tests that load LoRAs load their own)."""
    from taue_engine import TAUEPipeline

    pipeline = TAUEPipeline.from_pretrained("toy", device="cpu")
    pipeline.set_progress_bar_config(disable=True)
    return pipeline


@pytest.fixture(scope="session")
def packager():
    """tools/package_plugins.py (a script, not a package): the plug-in tests build what users install."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "tools" / "package_plugins.py"
    spec = importlib.util.spec_from_file_location("package_plugins", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def config():
    from taue_engine import TAUEConfig

    return TAUEConfig(num_inference_steps=STEPS)


class StepRecorder:
    """A diffusers-style callback_on_step_end that keeps every phase's latent after every step."""

    def __init__(self):
        self.latents = {"foreground": [], "composite": [], "background": []}

    def __call__(self, pipe, step, timestep, callback_kwargs):
        self.latents[pipe.current_phase].append(callback_kwargs["latents"].detach().clone())
        return {}


@pytest.fixture(scope="session")
def recorded_run(pipe, config):
    """One run with a layout box, every step's latent recorded: most mechanism tests read this."""
    recorder = StepRecorder()
    result = pipe("a red star", "a blue striped background", seed=7, width=SIZE, height=SIZE,
                  layout=(0.4, 0.5, 0.5, 0.6), config=config, callback_on_step_end=recorder)
    return result, recorder
