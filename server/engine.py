"""The engine the server owns: a TAUEPipeline, injected or loaded in the background at start-up.

While the model loads, the server already answers (/health says `loading`, new jobs get 503), so a plug-in can
show what is happening instead of a connection error.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

log = logging.getLogger("taue.server")
LOADING, READY, ERROR = "loading", "ready", "error"


class Engine:
    def __init__(self, pipe: Any = None):
        self.pipe = pipe
        self.state = READY if pipe is not None else LOADING
        self.error: str | None = None
        self.model = getattr(pipe, "model_name", None)
        self._thread: threading.Thread | None = None

    @property
    def ready(self) -> bool:
        return self.state == READY

    def info(self) -> dict[str, Any]:
        pipe = self.pipe
        device = dtype = None
        if pipe is not None:
            device = str(pipe._execution_device)
            dtype = str(pipe.unet.dtype).replace("torch.", "")
        return {"model": self.model, "device": device, "dtype": dtype, "state": self.state, "error": self.error}

    def load_in_background(self, model: str, **options: Any) -> threading.Thread:
        """Load `model` on a thread; the state goes loading -> ready, or error with a message saying what to do."""
        self.model = model

        def load() -> None:
            from taue_engine.models.loading import ModelLoadError
            from taue_engine.pipeline import TAUEPipeline

            try:
                log.info("loading model %s ...", model)
                pipe = TAUEPipeline.from_pretrained(model, **options)
                pipe.set_progress_bar_config(disable=True)
                self.pipe, self.state = pipe, READY
                log.info("model %s ready on %s", model, self.info()["device"])
            except ModelLoadError as error:
                self.state, self.error = ERROR, str(error)
                log.error("cannot load the model: %s", error)
            except Exception as error:  # noqa: BLE001 - reported through /health, the server stays up
                self.state, self.error = ERROR, f"{type(error).__name__}: {error}"
                log.exception("cannot load the model")

        self._thread = threading.Thread(target=load, name="taue-model-loader", daemon=True)
        self._thread.start()
        return self._thread
