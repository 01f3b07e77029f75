"""The engine the server owns: a TAUEPipeline, injected or loaded by the job worker at start-up, and switched by
it between jobs when a job names another model of the server's --models-dir.

While the model loads, the server already answers (/health says `loading`, new jobs get 503), so a plug-in can
show what is happening instead of a connection error. One model is resident at a time: a switch lets the old one
go (its memory given back) before it loads the new one, and keeps what the old one measured of its VAE (the key
colours' latents, the previews' map), so that switching back costs only the load.
"""

from __future__ import annotations

import gc
import logging
from typing import Any

log = logging.getLogger("taue.server")
LOADING, READY, ERROR = "loading", "ready", "error"


class Engine:
    def __init__(self, pipe: Any = None):
        self.pipe = pipe
        self.state = READY if pipe is not None else LOADING
        self.error: str | None = None
        self.model = getattr(pipe, "model_name", None)  # the resident model's name (None: none resident)
        self.default = self.model  # what a job that names no model runs on (the one the server starts with)
        self.switching: str | None = None  # the model a switch is loading now
        self._source: str | None = None
        self._options: dict[str, Any] = {}
        self._calibration: dict[str, tuple[dict, Any]] = {}  # model name -> what its VAE measured

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
                "device": device, "dtype": dtype, "state": self.state, "error": self.error,
                "loading_model": self.switching}

    def view(self, name: str | None):
        """The pipeline of the model `name` (None: the default) when it is the resident one, else None: what the
        API reads a model's default settings and vocabulary from."""
        return self.pipe if self.pipe is not None and (name or self.default) in (None, self.model) else None

    def unavailable(self, state: str) -> str:
        """Why jobs are refused now (503), and what to do."""
        if state == "error":
            return f"the model failed to load: {self.error}"
        return "the model is still loading: try again in a few seconds (GET /api/v1/health says when it is ready)"

    def prepare(self, model: str, source: str | None = None, **options: Any) -> None:
        """Name the model to load (`source`: where it is, default its name); the job worker loads it on its own
        thread (`load`), so that one thread does all the torch work: torch's CPU thread pools are per calling
        thread, and two of them compete for the cores (measured: jobs 2-3x slower when the model was loaded or
        used on another thread)."""
        self.model, self._source, self._options = model, source or model, options
        self.default = model

    def load(self) -> None:
        """Load the prepared model; the state goes loading -> ready, or error with a message saying what to do."""
        from taue_engine.models.loading import ModelLoadError

        try:
            self._load(self.model, self._source or self.model)
            self.state = READY
            log.info("model %s ready on %s", self.model, self.info()["device"])
        except ModelLoadError as error:
            self.state, self.error = ERROR, str(error)
            log.error("cannot load the model: %s", error)
        except Exception as error:  # noqa: BLE001 - reported through /health, the server stays up
            self.state, self.error = ERROR, f"{type(error).__name__}: {error}"
            log.exception("cannot load the model")

    def switch(self, name: str, source: str) -> None:
        """Make `name` (loaded from `source`) the resident model, on the job worker's thread; nothing when it is.
        The old one is let go first. Raises what loading raises; the server then has no model resident until
        the next job's switch (the state stays ready: the next job loads its own)."""
        if self.pipe is not None and self.model == name:
            return
        self.unload()
        self.switching = name
        try:
            self._load(name, source)
        finally:
            self.switching = None
        log.info("switched to model %s", name)

    def unload(self) -> None:
        """Let the resident model go and give its memory back (its calibration is kept)."""
        pipe, self.pipe = self.pipe, None
        if pipe is not None and self.model is not None and hasattr(pipe, "key_calibration"):
            self._calibration[self.model] = (pipe.key_calibration(), pipe.latent_to_rgb())
        self.model = None
        del pipe
        gc.collect()
        from .execution import free_accelerator_memory

        free_accelerator_memory()

    def _load(self, name: str, source: str) -> None:
        from taue_engine.pipeline import TAUEPipeline

        log.info("loading model %s ...", name)
        pipe = TAUEPipeline.from_pretrained(source, **self._options)
        pipe.set_progress_bar_config(disable=True)
        if name in self._calibration:  # measured when it was resident before
            keys, fitted = self._calibration[name]
            pipe.restore_key_calibration(keys)
            pipe.restore_latent_to_rgb(fitted)
        else:
            pipe.latent_to_rgb()  # the previews' map, fitted now rather than in the first job
        self.pipe, self.model = pipe, name
