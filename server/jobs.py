"""A job: its record (request, settings, state, progress) and the names of its files.

The disk is the record: a folder per job holds `job.json` (the validated request and settings, written once),
`state.json` (rewritten atomically on every change of state) and `result/` (the layers, renamed into place only
when complete). The store (store.py) keeps them; a runner (local_runner.py, queue_runner.py) runs them.
"""

from __future__ import annotations

import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from .errors import APIError
from .execution import BACKGROUND

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
JOB_ID = re.compile(r"^[0-9a-f]{32}$")
RESULT_DIR = "result"
KEPT_DIR = "kept"  # a new-background job's copy of its parent's kept objects
LAYERS = {"foreground": "foreground.png", "foreground_on_green": "foreground_on_green.png",
          "background": "background.png", "composite": "composite.png", "mask": "mask.png"}
DOCUMENTS = {"psd": "result.psd", "ora": "result.ora", "metadata": "taue.json"}


def check_job_id(job_id: str) -> str:
    """Job ids are 32 lowercase hex digits; anything else never reaches the file system."""
    if not isinstance(job_id, str) or not JOB_ID.match(job_id):
        raise APIError(404, "no such job: a job id is 32 hexadecimal digits, as returned by POST /api/v1/jobs",
                       field="id")
    return job_id


def object_count(request: dict) -> int:
    return len(request.get("objects") or []) or 1


def job_layers(request: dict) -> dict[str, str]:
    """The layer files of a job's result: the version-1 five, then object-<n> and mask-<n> for each object."""
    layers = dict(LAYERS)
    for n in range(1, object_count(request) + 1):
        layers[f"object-{n}"] = f"object-{n}.png"
        layers[f"mask-{n}"] = f"mask-{n}.png"
    return layers


def denoising_runs(request: dict) -> int:
    """Runs of `steps` steps a job makes: one foreground run per object, the composite and the background; a new
    background makes the last two only."""
    return 2 if request.get("kind") == BACKGROUND else object_count(request) + 2


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def write_json(path: Path, data: dict) -> None:
    tmp = path.with_name(f".{path.name}.{threading.get_ident()}.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
    os.replace(tmp, path)


@dataclass
class Job:
    id: str
    created_at: str
    request: dict
    settings: dict  # the full TAUEConfig the job runs with
    state: str = QUEUED
    started_at: str | None = None
    finished_at: str | None = None
    error: str | None = None
    progress: dict | None = None
    timings: dict = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    """What phase 1 of a succeeded job found (its taue.json's `warnings`), kept here so the API reads no file."""
    cancel_requested: bool = False
    created_monotonic: float = field(default_factory=time.monotonic)
    preview: bytes | None = field(default=None, repr=False)
    """The latest preview PNG while the job runs (memory only; dropped when it ends)."""
    preview_info: dict | None = None

    @property
    def finished(self) -> bool:
        return self.state in FINISHED

    def state_record(self) -> dict:
        return {"state": self.state, "started_at": self.started_at, "finished_at": self.finished_at,
                "error": self.error, "progress": self.progress, "timings": self.timings, "warnings": self.warnings}

    def start_progress(self) -> dict:
        """The progress of a job that has just started: no step made yet."""
        steps = self.request["steps"]
        return {"phase": None, "object": None, "step": 0, "phase_steps": steps, "overall_step": 0,
                "overall_total": denoising_runs(self.request) * steps, "fraction": 0.0, "preview": None}
