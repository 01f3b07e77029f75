"""One job from submission to layers: submit, follow the progress, cancel on request, fetch the results.

`JobRun.run` blocks (it polls the server), so a plug-in runs it on a worker thread and calls `cancel()` from its
UI thread; progress arrives through a callback. The host adapter then turns `JobResult.layers` into layers.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from .api import Client, TAUEError
from .layers import editor_stack

FINISHED = ("succeeded", "failed", "cancelled")
PHASE_NAMES = {"foreground": "Foreground", "composite": "Composite", "background": "Background"}


def request_prompts(request: dict) -> list:
    """The object prompts of a job's request (one object: its foreground prompt)."""
    objects = request.get("objects")
    return [obj["prompt"] for obj in objects] if objects else [request.get("foreground_prompt") or "?"]


def editor_keys(job: dict) -> tuple:
    """The layers a plug-in inserts of this job: background, each object, composite."""
    return tuple(spec.key for spec in editor_stack(request_prompts(job.get("request") or {})))


@dataclass
class JobResult:
    """A succeeded job: its description, its metadata (result.json), and the files a host asked for."""

    job: dict
    metadata: dict
    layers: dict = field(default_factory=dict)  # layer key (foreground, background, composite) -> PNG bytes
    documents: dict = field(default_factory=dict)  # 'psd' / 'ora' -> the layered document's bytes

    @property
    def id(self) -> str:
        return self.job["id"]

    @property
    def warnings(self) -> list:
        """What the server warned of (e.g. prompt words the model does not know): the plug-ins show these."""
        return list(self.job.get("warnings") or [])

    @property
    def size(self) -> tuple:
        return (int(self.metadata.get("width") or self.job["request"]["width"]),
                int(self.metadata.get("height") or self.job["request"]["height"]))


def warning_messages(result: JobResult) -> list:
    """The lines an editor shows the user with a result: the server's warnings for its job."""
    return [f"TAUE Layers: {warning}" for warning in result.warnings]


def describe_progress(job: dict) -> tuple[float, str]:
    """(fraction 0..1, a short text for a progress bar) of a job as the server reports it."""
    state = job.get("state")
    progress = job.get("progress") or {}
    fraction = float(progress.get("fraction") or 0.0)
    if state == "queued":
        position = job.get("queue_position")
        return 0.0, "Waiting: next in line" if position == 1 else f"Waiting: {(position or 1) - 1} jobs ahead"
    if state == "running":
        phase = progress.get("phase")
        if phase is None:
            return fraction, "Starting"
        if phase == "loading":
            return fraction, f"Loading model {progress.get('model') or ''}".rstrip()
        name = f"Object {progress['object']}" if progress.get("object") else PHASE_NAMES.get(phase, phase)
        return fraction, f"{name} {progress.get('step', 0)}/{progress.get('phase_steps', '?')}"
    if state == "succeeded":
        return 1.0, "Done"
    return fraction, (state or "unknown").capitalize()


class JobRun:
    """Submit one request and follow it to its layers. Thread-safe `cancel()`; `run()` on a worker thread.

    `layer_keys` None fetches the layers the editors insert of this job (background, each object, composite).
    `new_background_of` (a succeeded job's id) makes the request a new background for that job's objects
    (POST /jobs/<id>/backgrounds with one prompt) instead of a new job."""

    def __init__(self, client: Client, request: dict, poll_interval: float = 0.25,
                 layer_keys: tuple | None = None, documents: tuple = (), new_background_of: str | None = None):
        self.client = client
        self.request = request
        self.poll_interval = poll_interval
        self.layer_keys = layer_keys
        self.documents = documents
        self.new_background_of = new_background_of
        self.job_id: str | None = None
        self._cancel = threading.Event()

    def cancel(self) -> None:
        """Ask for the job to stop: a queued job is removed, a running one stops within one denoising step."""
        self._cancel.set()

    @property
    def cancel_requested(self) -> bool:
        return self._cancel.is_set()

    def run(self, on_progress: Callable[[float, str], None] | None = None,
            on_preview: Callable[[bytes, str], None] | None = None) -> JobResult:
        """Block until the job is done; raises TAUEError (kind 'cancelled', 'failed', ...) otherwise.

        `on_preview(png, caption)` gets each new preview of the running phase (the server's preview.png, fetched
        when progress.preview changes); a preview that is gone before it is fetched is skipped."""
        report = on_progress or (lambda fraction, text: None)
        shown = None
        if self._cancel.is_set():
            raise TAUEError("cancelled", "Cancelled before the job was sent: nothing was made.")
        report(0.0, "Sending")
        if self.new_background_of:
            job = self.client.backgrounds(self.new_background_of, self.request)[0]
        else:
            job = self.client.submit(self.request)
        self.job_id = job["id"]
        cancel_sent = False
        while job["state"] not in FINISHED:
            if self._cancel.is_set() and not cancel_sent:
                job, cancel_sent = self.client.cancel(self.job_id), True
                report(*_cancelling(job))
                continue
            report(*describe_progress(job))
            preview = (job.get("progress") or {}).get("preview")
            if on_preview is not None and preview and preview != shown and "preview" in job.get("urls", {}):
                shown = preview
                png = self._fetch_preview(job["urls"]["preview"])
                if png is not None:
                    on_preview(png, describe_preview(preview))
            self._cancel.wait(self.poll_interval)
            job = self.client.job(self.job_id)
        if job["state"] == "cancelled":
            raise TAUEError("cancelled", "The job was cancelled: nothing was added.")
        if job["state"] == "failed":
            message = (job.get("error") or {}).get("message") or "no message"
            raise TAUEError("failed", f"The job failed on the server: {message}. Change the settings it names, or "
                                      "see the server's log; the server goes on with the next job.")
        report(1.0, "Downloading layers")
        return fetch_result(self.client, job, self.layer_keys, self.documents)


    def _fetch_preview(self, path: str) -> bytes | None:
        try:
            return self.client.download(path)
        except TAUEError as error:
            if error.kind == "missing":  # 404 before the first, 410 once the job has ended
                return None
            raise


def describe_preview(preview: dict) -> str:
    """What a preview shows, for its caption: 'Preview: Composite, step 12/30' ('Object 2' in several-object jobs)."""
    phase = preview.get("phase")
    name = f"Object {preview['object']}" if preview.get("object") else PHASE_NAMES.get(str(phase), str(phase))
    return f"Preview: {name}, step {preview.get('step', '?')}/{preview.get('phase_steps', '?')}"


def _cancelling(job: dict) -> tuple[float, str]:
    fraction, _ = describe_progress(job)
    return fraction, "Cancelling"


def fetch_result(client: Client, job: dict, layer_keys: tuple | None = None, documents: tuple = ()) -> JobResult:
    """Download a succeeded job's metadata, the PNGs of `layer_keys` (None: those the editors insert) and the
    `documents` ('psd', 'ora')."""
    urls = job.get("urls") or {}
    layer_keys = editor_keys(job) if layer_keys is None else layer_keys
    if job.get("state") != "succeeded" or "layers" not in urls:
        raise TAUEError("missing", f"Job {job.get('id')} is {job.get('state')}: only a finished job has layers.")
    try:
        metadata = json.loads(client.download(urls["metadata"]).decode("utf-8"))
    except (ValueError, UnicodeDecodeError):
        raise TAUEError("protocol", "The job's result.json is not valid JSON: is the server's disk full?") from None
    layers = {key: client.download(urls["layers"][key]) for key in layer_keys}
    files = {name: client.download(urls[name]) for name in documents}
    return JobResult(job=job, metadata=metadata, layers=layers, documents=files)

