"""What the docker does, without Qt: generate, follow, cancel, insert, remember; every failure becomes a message.

The docker (docker.py) only draws widgets and forwards clicks here; a Qt timer calls `poll()` on the UI thread,
which applies what the worker threads reported. Server calls run on worker threads, so the UI never waits for
the network; Krita's API is only called from `poll()` and the click handlers, on the UI thread.
"""

from __future__ import annotations

import queue
import sys
import threading
import traceback
from dataclasses import dataclass, replace

from .taue_client import (
    Choice,
    Client,
    JobResult,
    JobRun,
    TAUEError,
    editor_request,
    group_name,
    layout_from_selection,
    new_background_request,
    server_offer,
)
from .taue_client.api import DEFAULT_URL
from .taue_client.choices import LORA_SCALE, Offer
from .taue_client.layers import MAX_SIZE, MIN_SIZE, editor_stack, object_layer_name, object_prompts

HISTORY_LENGTH = 10


def shown_errors(action):
    """A panel action whose failures become a message in the panel: a slot that raised would bring up Krita's
    traceback dialog."""
    def wrapper(self, *args, **kwargs):
        try:
            return action(self, *args, **kwargs)
        except TAUEError as error:
            self.view.show_message("error", error.message)
        except Exception as error:
            traceback.print_exc(file=sys.stderr)
            self.view.show_message("error", f"Unexpected error: {error}. The panel goes on; please report this.")
    wrapper.__name__, wrapper.__doc__ = action.__name__, action.__doc__
    return wrapper


@dataclass
class Form:
    """The panel's fields as the artist left them."""

    foreground: str = ""
    background: str = ""
    composite: str = ""
    negative: str = ""
    random_seed: bool = True
    seed: int = 0
    steps: int = 0  # 0: the style's, else the model's
    use_document_size: bool = True
    width: int = 1024
    height: int = 1024
    use_selection: bool = True
    key_color: str = "green"
    model: str = ""  # "": the server's default
    style: str = ""
    scheduler: str = ""  # "": the style's, else the model's


@dataclass
class HistoryEntry:
    """One result as the history shows it: its label and its layers' pictures (PNG bytes), bottom to top as they
    are inserted (Background, each object, Composite)."""

    label: str
    pictures: list  # [(layer name, PNG bytes)]

    @property
    def composite(self) -> bytes | None:
        return dict(self.pictures).get("Composite")


class View:
    """What the panel tells the docker to show (the docker overrides these; tests record them)."""

    def show_connection(self, ok: bool, text: str) -> None: ...
    def show_progress(self, fraction: float, text: str) -> None: ...
    def set_running(self, running: bool) -> None: ...
    def show_message(self, kind: str, text: str) -> None: ...
    def show_seed(self, seed: int) -> None: ...
    def show_history(self, entries: list) -> None: ...  # HistoryEntry, newest first
    def show_objects(self, labels: list) -> None: ...
    def show_preview(self, png: bytes | None, caption: str) -> None: ...  # None: the job ended
    def show_offer(self, offer: Offer, choice: Choice) -> None: ...  # the server's models, styles, LoRAs, samplers
    def show_loras(self, labels: list) -> None: ...


class Panel:
    """The docker's logic. `host` is the Krita adapter (krita_host.KritaHost) or a stand-in with its methods."""

    def __init__(self, host, view: View, client_factory=Client):
        self.host = host
        self.view = view
        self.client_factory = client_factory
        self.events: queue.Queue = queue.Queue()
        self.run: JobRun | None = None
        self.target_document = None
        self.history: list[JobResult] = []
        self.objects: list[dict] = []  # objects added for the next job ({prompt, layout}), before the form's own
        self.limits = {"min_size": MIN_SIZE, "max_size": MAX_SIZE}
        self.offer = Offer()
        self.loras: list[dict] = self.remembered_choice().loras  # the LoRAs of the next job ({name, scale})

    # ------------------------------------------------------------------ settings
    @property
    def url(self) -> str:
        return self.host.read_setting("url", DEFAULT_URL)

    @property
    def token(self) -> str:
        return self.host.read_setting("token", "")

    @shown_errors
    def save_connection(self, url: str, token: str) -> None:
        self.host.write_setting("url", url.strip())
        self.host.write_setting("token", token.strip())
        self.check_connection()

    def _client(self) -> Client:
        return self.client_factory(self.url, self.token)

    def remembered_choice(self) -> Choice:
        """The model, style, LoRAs and sampler of the last job sent (Krita's settings)."""
        return Choice.from_setting(self.host.read_setting("choice", ""))

    def remembered_steps(self) -> int:
        text = self.host.read_setting("steps", "0")
        return int(text) if str(text).isdigit() else 0

    def choice(self, form: Form) -> Choice:
        return Choice(model=form.model, style=form.style, loras=list(self.loras), scheduler=form.scheduler)

    def _remember(self, form: Form) -> None:
        self.host.write_setting("choice", self.choice(form).to_setting())
        self.host.write_setting("steps", str(int(form.steps)))

    # ------------------------------------------------------------------ actions (UI thread)
    @shown_errors
    def check_connection(self) -> None:
        """Ask /health (and /styles) on a worker thread; the light turns green, or says what is wrong and what to do.
        The settings are read here, on the UI thread: Krita's settings object is per thread, and another thread's
        reads what was on disk when it started (measured in real Krita 5.1: a URL just written was not seen)."""
        try:
            client = self._client()
        except TAUEError as error:  # a URL that is not one
            self.view.show_connection(False, error.message)
            return
        self._start(self._health_work, client)

    @shown_errors
    def generate(self, form: Form) -> None:
        if self.running:
            self.view.show_message("info", "A job is running: wait for it, or cancel it first.")
            return
        document = self.host.active_document()
        request = self._request(form, document)
        self._remember(form)
        self._follow(JobRun(self._client(), request, documents=("psd",)), document)

    def _follow(self, run: JobRun, document) -> None:
        """Start following a job on a worker thread; its result goes into `document` (krita_host inserts the PSD)."""
        self.target_document = document
        self.run = run
        self.view.set_running(True)
        self.view.show_progress(0.0, "Sending")
        self.view.show_message("info", "")
        self._start(self._job_work, run)

    @shown_errors
    def add_object(self, form: Form) -> bool:
        """Keep the form's foreground, placed in the current selection, as one more object of the next job (the
        form's own foreground then goes in front of it). Returns whether it was added."""
        prompt = form.foreground.strip()
        if not prompt:
            self.view.show_message("error", "Describe the object to add (e.g. 'a red vintage bicycle').")
            return False
        limit = self.limits.get("max_objects", 8)
        if len(self.objects) + 1 >= limit:
            self.view.show_message("error", f"The server takes at most {limit} objects per job.")
            return False
        document = self.host.active_document()
        layout = None
        if form.use_selection and document is not None:
            box = self.host.selection_box(document)
            if box is not None:
                layout = layout_from_selection(*box, *self.host.document_size(document))
        self.objects.append({"prompt": prompt, "layout": layout})
        self._show_objects()
        where = "in the selection" if layout else "placed side by side with the others"
        self.view.show_message("info", f"Added '{prompt}' ({where}). Describe the next object, select where it "
                                       "goes, and Add it or Generate.")
        return True

    @shown_errors
    def clear_objects(self) -> None:
        self.objects = []
        self._show_objects()

    @shown_errors
    def add_lora(self, name: str, scale: float) -> bool:
        """One more LoRA (of the server's --lora-dir) for the next jobs, at `scale`; again with another scale
        replaces it."""
        name = (name or "").strip()
        if not name:
            self.view.show_message("error", "Choose a LoRA first (the server lists those of its --lora-dir).")
            return False
        if not LORA_SCALE[0] <= scale <= LORA_SCALE[1]:
            self.view.show_message("error", f"A LoRA's scale is {LORA_SCALE[0]:g}..{LORA_SCALE[1]:g} (1: as trained).")
            return False
        limit = self.limits.get("max_loras", 8)
        self.loras = [lora for lora in self.loras if lora["name"] != name]
        if len(self.loras) >= limit:
            self.view.show_message("error", f"The server takes at most {limit} LoRAs per job.")
            return False
        self.loras.append({"name": name, "scale": round(float(scale), 3)})
        self.show_loras()
        return True

    @shown_errors
    def clear_loras(self) -> None:
        self.loras = []
        self.show_loras()

    def show_loras(self) -> None:
        """Tell the view the LoRAs the next job sends."""
        self.view.show_loras([f"{lora['name']} {lora['scale']:g}" for lora in self.loras])

    @shown_errors
    def new_background(self, form: Form, index: int) -> None:
        """A new background for the objects of an earlier result (the history's selection), without making them
        again: the form's Background (and seed, composite, negative) describe the new scene."""
        if self.running:
            self.view.show_message("info", "A job is running: wait for it, or cancel it first.")
            return
        if not 0 <= index < len(self.history):
            self.view.show_message("error", "Choose a result in the history first: its objects get the new "
                                            "background.")
            return
        request = new_background_request(form.background, seed=None if form.random_seed else form.seed,
                                         composite=form.composite, negative=form.negative)
        self._follow(JobRun(self._client(), request, documents=("psd",), new_background_of=self.history[index].id),
                     self.host.active_document())

    @shown_errors
    def cancel(self) -> None:
        if self.run is not None:
            self.run.cancel()
            self.view.show_progress(0.0, "Cancelling")

    @shown_errors
    def insert_again(self, index: int) -> None:
        """Insert an earlier result of this session into the active document (a new one when none is open)."""
        if not 0 <= index < len(self.history):
            self.view.show_message("error", "Choose a result in the history first.")
            return
        self._insert(self.history[index], self.host.active_document())

    @shown_errors
    def open_psd(self, index: int) -> None:
        """Open an earlier result's PSD as a new document."""
        if not 0 <= index < len(self.history):
            self.view.show_message("error", "Choose a result in the history first.")
            return
        result = self.history[index]
        self.host.open_psd(result.documents["psd"], group_name(result.metadata))

    @property
    def running(self) -> bool:
        return self.run is not None

    # ------------------------------------------------------------------ the UI thread's timer
    def poll(self) -> None:
        """Apply what the worker threads reported. Called by a Qt timer on the UI thread."""
        while True:
            try:
                kind, payload = self.events.get_nowait()
            except queue.Empty:
                return
            self._apply(kind, payload)

    @shown_errors
    def _apply(self, kind: str, payload) -> None:
        if kind == "health":
            self.limits.update(payload.get("limits") or {})
            if payload.get("state") == "ready" and payload.get("loading_model"):
                self.view.show_connection(True, f"Connected: loading model {payload['loading_model']} on "
                                                f"{payload.get('device')}")
            elif payload.get("state") == "ready":
                self.view.show_connection(True, f"Connected: {payload.get('model')} on {payload.get('device')}")
            elif payload.get("state") == "loading":
                self.view.show_connection(False, "The server is loading its model: wait a moment")
            else:
                self.view.show_connection(False, f"The server cannot run jobs: {payload.get('error')}")
        elif kind == "offer":
            self.offer = payload
            self.view.show_offer(payload, replace(self.remembered_choice(), loras=list(self.loras)))
        elif kind == "connection_error":
            self.view.show_connection(False, payload.message)
        elif kind == "progress":
            self.view.show_progress(*payload)
        elif kind == "preview":
            if self.running:  # a preview that arrives after the job ended is dropped
                self.view.show_preview(*payload)
        elif kind == "done":
            self._finish()
            self.check_connection()  # the resident model may have changed
            self.history.insert(0, payload)
            del self.history[HISTORY_LENGTH:]
            self.view.show_history([self.history_entry(result) for result in self.history])
            self.view.show_seed(int(payload.metadata.get("seed", payload.job["request"]["seed"])))
            self.view.show_progress(1.0, "Done")
            document = self.target_document
            if document is not None and not self.host.is_open(document):
                self.view.show_message("error", "The document was closed while the job ran. The result is in the "
                                                "history: select it and choose Insert to add it to an open document.")
                return
            self._insert(payload, document)
        elif kind == "job_error":
            self._finish()
            self.view.show_progress(0.0, "Cancelled" if payload.kind == "cancelled" else "Failed")
            self.view.show_message("info" if payload.kind == "cancelled" else "error", payload.message)
        elif kind == "error":
            self.view.show_message("error", payload.message)

    # ------------------------------------------------------------------ helpers
    def _request(self, form: Form, document) -> dict:
        image_size = self.host.document_size(document) if document is not None else None
        own_size = form.use_document_size and document is not None
        selection = self.host.selection_box(document) if form.use_selection and document is not None else None
        return editor_request(form.foreground, form.background, image_size=image_size,
                              size=None if own_size else (form.width, form.height), selection=selection,
                              seed=None if form.random_seed else form.seed, composite=form.composite,
                              negative=form.negative, steps=form.steps, low=self.limits["min_size"],
                              high=self.limits["max_size"], objects=self.objects, key_color=form.key_color,
                              choice=self.choice(form))

    def _insert(self, result: JobResult, document) -> None:
        if document is None:
            document = self.host.new_document(*result.size, group_name(result.metadata))
        name = self.host.insert(document, result)
        added = f"Added the layer group '{name}'."
        if result.warnings:
            self.view.show_message("warning", added + " Note: " + " ".join(result.warnings))
        else:
            self.view.show_message("info", added)

    def _show_objects(self) -> None:
        self.view.show_objects([object_layer_name(obj["prompt"]) + (" (in its box)" if obj["layout"] else "")
                                for obj in self.objects])

    def _finish(self) -> None:
        self.run = None
        self.view.set_running(False)
        self.view.show_preview(None, "")

    @staticmethod
    def history_entry(result: JobResult) -> HistoryEntry:
        """The label and layer pictures the history shows for a result (the layers it downloaded)."""
        label = group_name(result.metadata).replace("TAUE: ", "", 1)
        stack = editor_stack(object_prompts(result.metadata))
        layers = [(spec.name, result.layers[spec.key]) for spec in stack if spec.key in result.layers]
        return HistoryEntry(label, layers)

    def _start(self, work, *args) -> None:
        threading.Thread(target=self._guarded, args=(work, *args), daemon=True).start()

    def _guarded(self, work, *args) -> None:
        try:
            work(*args)
        except Exception as error:  # reported on the UI thread, never raised on a worker thread
            traceback.print_exc(file=sys.stderr)
            self.events.put(("error", TAUEError("protocol", f"Unexpected error: {error}. Please report this.")))

    # ------------------------------------------------------------------ worker threads
    def _health_work(self, client: Client) -> None:
        try:
            health = client.health()
            client.jobs(limit=1)  # /health answers without the token; this checks it
            self.events.put(("health", health))
            self.events.put(("offer", server_offer(health, client.styles())))
        except TAUEError as error:
            self.events.put(("connection_error", error))

    def _job_work(self, run: JobRun) -> None:
        try:
            result = run.run(lambda fraction, text: self.events.put(("progress", (fraction, text))),
                             lambda png, caption: self.events.put(("preview", (png, caption))))
        except TAUEError as error:
            self.events.put(("job_error", error))
        except Exception:
            self.events.put(("job_error", TAUEError("protocol", "Unexpected error while following the job: "
                                                                "see Krita's log, and please report this.")))
            raise
        else:
            self.events.put(("done", result))
