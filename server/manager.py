"""The job manager: what the API asks of jobs, from a store (the jobs) and a runner (what runs them).

Two runners do the running: LocalRunner (local_runner.py: one thread in this process, the jobs in order) and
QueueRunner (queue_runner.py: taue-workers behind RQ on Redis). Each takes the same few calls:

    recovered(jobs)  the unfinished jobs found on disk at start (the store has queued the queued ones again)
    accept()         raise an APIError when new jobs cannot be taken now (the queue's Redis is down: 503)
    submitted(jobs)  new jobs are in the store's queue
    cancel(job)      a queued or running job is about to be cancelled (the store records it)
    start(), stop(cancel, timeout)
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from taue_engine.config import TAUEConfig

from .errors import APIError
from .execution import BACKGROUND
from .jobs import RESULT_DIR, SUCCEEDED, Job, object_count
from .store import JobStore


class JobManager:
    def __init__(self, store: JobStore, runner):
        self.store, self.runner = store, runner
        runner.recovered(store.recover())

    def start(self) -> JobManager:
        """Start the runner (its thread): jobs run from now on."""
        self.runner.start()
        return self

    def stop(self, cancel: bool = False, timeout: float = 60) -> None:
        """Stop the runner after the jobs it is running; with `cancel`, cancel those and every queued job first
        (recorded as cancelled). Waits for its thread up to `timeout` seconds."""
        self.runner.stop(cancel=cancel, timeout=timeout)

    # ------------------------------------------------------------------ submitting
    def submit(self, request: dict, config: TAUEConfig) -> Job:
        return self._add([request], config.to_dict())[0]

    def submit_backgrounds(self, parent: Job, requests: list[dict]) -> list[Job]:
        """One queued job per new background of a succeeded job; each gets its own copy of the parent's kept objects
        (so deleting the parent later loses nothing)."""
        from taue_engine.transplant import TRANSPLANT_FILES

        if parent.state != SUCCEEDED:
            raise APIError(409, f"job {parent.id} is {parent.state}: new backgrounds need a succeeded job",
                           code="no_result")
        result = self.store.folder(parent.id) / RESULT_DIR
        count = object_count(parent.request)
        kept = [result / name for name in TRANSPLANT_FILES] + [result / f"object-{n}.png" for n in range(1, count + 1)]
        if not all(path.is_file() for path in kept):
            raise APIError(409, f"job {parent.id} kept no objects (made by an older version?): generate it again",
                           code="no_objects")
        record = json.loads((result / "transplant.json").read_text(encoding="utf-8"))
        jobs = []
        for extra in requests:
            layouts = extra.pop("layouts") or [None] * count
            objects = [{"prompt": p, "layout": new or old}
                       for p, old, new in zip(record["prompts"], record["layouts"], layouts)]
            jobs.append({"kind": BACKGROUND, "parent": parent.id, "foreground_prompt": None, "objects": objects,
                         "loras": list(parent.request.get("loras") or []),
                         **{name: parent.request[name] for name in ("model", "style") if parent.request.get(name)},
                         "moved": [n for n, box in enumerate(layouts, 1) if box is not None], "layout": None,
                         "width": record["width"], "height": record["height"],
                         "steps": record["num_inference_steps"], **extra})

        def copy_kept(folder: Path) -> None:
            for path in kept:
                shutil.copyfile(path, folder / path.name)

        return self._add(jobs, dict(parent.settings), copy_kept)

    def submit_brought_layers(self, requests: list[dict], layers: list, config: TAUEConfig) -> list[Job]:
        """One queued job per new background for object layers the user brought (kept in each job's folder)."""
        def save_layers(folder: Path) -> None:
            for n, layer in enumerate(layers, 1):
                layer.save(folder / f"object-{n}.png", format="PNG")

        return self._add([{"kind": BACKGROUND, "parent": None, "foreground_prompt": None, "moved": [],
                           "layout": None, **extra} for extra in requests], config.to_dict(), save_layers)

    def _add(self, requests: list[dict], settings: dict, keep=None) -> list[Job]:
        self.runner.accept()
        jobs = self.store.add(requests, settings, keep)
        self.runner.submitted(jobs)
        return jobs

    # ------------------------------------------------------------------ the rest
    def get(self, job_id: str) -> Job:
        return self.store.get(job_id)

    def cancel(self, job_id: str) -> Job:
        job = self.store.get(job_id)
        if not job.finished:
            self.runner.cancel(job)
        return self.store.cancel(job)

    def delete(self, job_id: str) -> None:
        self.store.delete(job_id)

    def running_jobs(self) -> list[str]:
        return self.store.running_jobs()

    def wait_idle(self, timeout: float) -> bool:
        return self.store.wait_idle(timeout)
