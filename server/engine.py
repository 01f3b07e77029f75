"""The engine the server owns: a TAUEPipeline, injected or loaded by the job worker at start-up.

While the model loads, the server already answers (/health says `loading`, new jobs get 503), so a plug-in can
show what is happening instead of a connection error.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("taue.server")
LOADING, READY, ERROR = "loading", "ready", "error"


class Engine:
    def __init__(self, pipe: Any = None):
        self.pipe = pipe
        self.state = READY if pipe is not None else LOADING
        self.error: str | None = None
        self.model = getattr(pipe, "model_name", None)
        self._options: dict[str, Any] = {}

    @property
    def ready(self) -> bool:
        return self.state == READY

    def info(self) -> dict[str, Any]:
        pipe = self.pipe
        device = dtype = None
        if pipe is not None:
            device = str(pipe._execution_device)
            dtype = str(pipe.unet.dtype).replace("torch.", "")
        return {"model": self.model, "vae": getattr(pipe, "vae_name", None) or self._options.get("vae"),
                "device": device, "dtype": dtype, "state": self.state, "error": self.error}

    def unavailable(self, state: str) -> str:
        """Why jobs are refused now (503), and what to do."""
        if state == "error":
            return f"the model failed to load: {self.error}"
        return "the model is still loading: try again in a few seconds (GET /api/v1/health says when it is ready)"

    def prepare(self, model: str, **options: Any) -> None:
        """Name the model to load; the job worker loads it on its own thread (`load`), so that one thread does all
        the torch work: torch's CPU thread pools are per calling thread, and two of them compete for the cores
        (measured: jobs 2-3x slower when the model was loaded or used on another thread)."""
        self.model, self._options = model, options

    def load(self) -> None:
        """Load the prepared model; the state goes loading -> ready, or error with a message saying what to do."""
        from taue_engine.models.loading import ModelLoadError
        from taue_engine.pipeline import TAUEPipeline

        try:
            log.info("loading model %s ...", self.model)
            pipe = TAUEPipeline.from_pretrained(self.model, **self._options)
            pipe.set_progress_bar_config(disable=True)
            pipe.latent_to_rgb()  # the previews' map, fitted now rather than in the first job
            self.pipe, self.state = pipe, READY
            log.info("model %s ready on %s", self.model, self.info()["device"])
        except ModelLoadError as error:
            self.state, self.error = ERROR, str(error)
            log.error("cannot load the model: %s", error)
        except Exception as error:  # noqa: BLE001 - reported through /health, the server stays up
            self.state, self.error = ERROR, f"{type(error).__name__}: {error}"
            log.exception("cannot load the model")
