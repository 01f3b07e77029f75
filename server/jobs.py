"""Jobs: a folder per job on disk, a FIFO queue, and one worker thread that owns the pipeline.

The disk is the record: `job.json` (the validated request and settings, written once), `state.json` (rewritten
atomically on every change of state) and `result/` (the layers, renamed into place only when complete). A restart
reads the folders back: finished jobs are served again, queued ones are queued again, and a job that was running
is marked failed with a message saying so. A job that raises, out-of-memory included, is recorded as failed and
the worker goes on with the next.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from taue_engine.config import TAUEConfig

from .config import ServerConfig
from .engine import Engine
from .errors import APIError
from .execution import BACKGROUND, PreviewPacer, describe_failure, free_accelerator_memory, progress_record, run_job
from .validation import JOB_ID, check_job_id

log = logging.getLogger("taue.server")

QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED = "queued", "running", "succeeded", "failed", "cancelled"
FINISHED = (SUCCEEDED, FAILED, CANCELLED)
RESULT_DIR = "result"
LAYERS = {"foreground": "foreground.png", "foreground_on_green": "foreground_on_green.png",
          "background": "background.png", "composite": "composite.png", "mask": "mask.png"}
DOCUMENTS = {"psd": "result.psd", "ora": "result.ora", "metadata": "taue.json"}
KEPT_DIR = "kept"  # a new-background job's copy of its parent's kept objects


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
                "error": self.error, "progress": self.progress, "timings": self.timings}


class JobManager:
    """Submit, list, cancel and delete jobs; one worker thread runs them in order on the engine."""

    def __init__(self, config: ServerConfig, engine: Engine):
        self.config = config
        self.engine = engine
        self.dir = config.jobs_dir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.lock = threading.Condition()
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()
        self.running: str | None = None
        self._stop = False
        self._recover()
        self.worker = threading.Thread(target=self._work, name="taue-worker", daemon=True)
        self.worker.start()

    # ------------------------------------------------------------------ disk
    def folder(self, job_id: str) -> Path:
        return self.dir / check_job_id(job_id)

    def result_path(self, job: Job, filename: str) -> Path:
        return self.folder(job.id) / RESULT_DIR / filename

    def _save_state(self, job: Job) -> None:
        write_json(self.folder(job.id) / "state.json", job.state_record())

    def _recover(self) -> None:
        restarted = now()
        found = []
        for path in self.dir.iterdir():
            if not path.is_dir() or not JOB_ID.match(path.name):
                continue  # not a job folder (e.g. one being deleted)
            try:
                record = json.loads((path / "job.json").read_text(encoding="utf-8"))
                state = json.loads((path / "state.json").read_text(encoding="utf-8"))
                job = Job(id=path.name, created_at=record["created_at"], request=record["request"],
                          settings=record["settings"], state=state["state"], started_at=state.get("started_at"),
                          finished_at=state.get("finished_at"), error=state.get("error"),
                          progress=state.get("progress"), timings=state.get("timings") or {})
            except (OSError, ValueError, KeyError) as error:
                log.warning("skipping unreadable job folder %s: %s", path.name, error)
                continue
            if job.state == RUNNING:
                self._recovered_running(job, restarted)
            found.append(job)
        for job in sorted(found, key=lambda j: j.created_at):
            self.jobs[job.id] = job
            if job.state == QUEUED:
                self.queue.append(job.id)
        if found:
            log.info("found %d jobs in %s (%d queued again)", len(found), self.dir, len(self.queue))

    def _recovered_running(self, job: Job, restarted: str) -> None:
        """A job that was running when the server stopped: it ran in this process, so it is lost."""
        job.state, job.finished_at = FAILED, restarted
        job.error = f"the server stopped while this job was running (restarted at {restarted}); submit it again"
        self._save_state(job)

    def running_jobs(self) -> list[str]:
        """The ids of the jobs running now (here: at most one)."""
        with self.lock:
            return [self.running] if self.running else []

    # ------------------------------------------------------------------ API operations
    def submit(self, request: dict, config: TAUEConfig) -> Job:
        return self._enqueue([request], config.to_dict())[0]

    def submit_backgrounds(self, parent: Job, requests: list[dict]) -> list[Job]:
        """One queued job per new background of a succeeded job; each gets its own copy of the parent's kept objects
        (so deleting the parent later loses nothing)."""
        from taue_engine.objects import TRANSPLANT_FILES

        if parent.state != SUCCEEDED:
            raise APIError(409, f"job {parent.id} is {parent.state}: new backgrounds need a succeeded job",
                           code="no_result")
        result = self.folder(parent.id) / RESULT_DIR
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
                         "moved": [n for n, box in enumerate(layouts, 1) if box is not None], "layout": None,
                         "width": record["width"], "height": record["height"],
                         "steps": record["num_inference_steps"], **extra})

        def copy_kept(folder: Path) -> None:
            for path in kept:
                shutil.copyfile(path, folder / path.name)

        return self._enqueue(jobs, dict(parent.settings), copy_kept)

    def submit_brought_layers(self, requests: list[dict], layers: list, config: TAUEConfig) -> list[Job]:
        """One queued job per new background for object layers the user brought (kept in each job's folder)."""
        def save_layers(folder: Path) -> None:
            for n, layer in enumerate(layers, 1):
                layer.save(folder / f"object-{n}.png", format="PNG")

        return self._enqueue([{"kind": BACKGROUND, "parent": None, "foreground_prompt": None, "moved": [],
                               "layout": None, **extra} for extra in requests], config.to_dict(), save_layers)

    def _enqueue(self, requests: list[dict], settings: dict, keep=None) -> list[Job]:
        """Queue one job per request, all or none (409 when the queue has no room for all): a folder each with its
        job.json and state.json, and `keep(folder)` filling its kept/ folder for a new background."""
        with self.lock:
            if len(self.queue) + len(requests) > self.config.max_queue:
                raise APIError(409, f"the queue is full ({self.config.max_queue} jobs): wait for some to finish",
                               code="queue_full")
            jobs = []
            for request in requests:
                job = Job(id=uuid.uuid4().hex, created_at=now(), request=request, settings=dict(settings))
                folder = self.folder(job.id)
                folder.mkdir()
                if keep is not None:
                    (folder / KEPT_DIR).mkdir()
                    keep(folder / KEPT_DIR)
                write_json(folder / "job.json", {"id": job.id, "created_at": job.created_at, "request": job.request,
                                                 "settings": job.settings})
                self._save_state(job)
                self.jobs[job.id] = job
                self.queue.append(job.id)
                jobs.append(job)
            self.lock.notify_all()
        return jobs

    def get(self, job_id: str) -> Job:
        check_job_id(job_id)
        with self.lock:
            job = self.jobs.get(job_id)
        if job is None:
            raise APIError(404, f"no job {job_id}: it was never submitted here, or it was deleted", field="id")
        return job

    def page(self, offset: int, limit: int) -> tuple[list[Job], int]:
        with self.lock:
            jobs = sorted(self.jobs.values(), key=lambda j: (j.created_at, j.created_monotonic), reverse=True)
        return jobs[offset : offset + limit], len(jobs)

    def queue_position(self, job: Job) -> int | None:
        """1 = next to run; None when not queued."""
        with self.lock:
            try:
                return self.queue.index(job.id) + 1
            except ValueError:
                return None

    def queue_length(self) -> int:
        with self.lock:
            return len(self.queue)

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        with self.lock:
            if job.finished:
                raise APIError(409, f"job {job.id} has already {job.state}: nothing to cancel", code="finished")
            if job.state == QUEUED:
                self.queue.remove(job.id)
                job.state, job.finished_at = CANCELLED, now()
                job.error = "cancelled before it started"
                self._save_state(job)
            else:
                job.cancel_requested = True  # the worker stops it within one denoising step
        return job

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        with self.lock:
            if not job.finished:
                raise APIError(409, f"job {job.id} is {job.state}: cancel it first (POST .../cancel), then delete it",
                               code="not_finished")
            del self.jobs[job.id]
            folder = self.folder(job.id)
            trash = folder.with_name(f".deleted-{job.id}")
            os.replace(folder, trash)  # vanishes at once for readers, even if the removal below is slow
        shutil.rmtree(trash, ignore_errors=True)

    def wait_idle(self, timeout: float) -> bool:
        """For tests and shutdown: wait until nothing is queued or running."""
        deadline = time.monotonic() + timeout
        with self.lock:
            while self.queue or self.running_jobs():
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True

    def stop(self, cancel: bool = False, timeout: float = 60) -> None:
        """Stop the worker after the job it is running; with `cancel`, cancel that job and every queued one first
        (they are recorded as cancelled). Waits for the worker up to `timeout` seconds."""
        with self.lock:
            if cancel:
                for job_id in list(self.queue):
                    job = self.jobs[job_id]
                    job.state, job.finished_at, job.error = CANCELLED, now(), "cancelled: the server stopped"
                    self._save_state(job)
                self.queue.clear()
                if self.running:
                    self.jobs[self.running].cancel_requested = True
            self._stop = True
            self.lock.notify_all()
        if threading.current_thread() is not self.worker:
            self.worker.join(timeout)

    # ------------------------------------------------------------------ the worker
    def _next(self) -> Job | None:
        with self.lock:
            while not self._stop and (not self.queue or not self.engine.ready):
                self.lock.wait(0.5)
            if self._stop:
                return None
            job = self.jobs[self.queue.popleft()]
            job.state, job.started_at = RUNNING, now()
            job.progress = {"phase": None, "object": None, "step": 0, "phase_steps": job.request["steps"],
                            "overall_step": 0, "overall_total": denoising_runs(job.request) * job.request["steps"],
                            "fraction": 0.0, "preview": None}
            self.running = job.id
            self._save_state(job)
            return job

    def _work(self) -> None:
        if self.engine.state == "loading":
            self.engine.load()  # on this thread: the one that will run every job
        while True:
            job = self._next()
            if job is None:
                return
            try:
                self._run(job)
            except Exception:  # never let the worker die: the next job must run
                log.exception("job %s: unexpected failure in the worker", job.id)
                job.state, job.error = FAILED, "the server failed while finishing this job; see its log"
            finally:
                with self.lock:
                    if not job.finished:
                        job.state = FAILED
                    job.finished_at = job.finished_at or now()
                    self.running = None
                    try:
                        self._save_state(job)
                    except OSError:
                        log.exception("job %s: could not write its state", job.id)
                    self.lock.notify_all()

    def _run(self, job: Job) -> None:
        from taue_engine.pipeline import TAUECancelled

        pacer = PreviewPacer(self.config.preview_seconds)

        def progress(tick) -> bool:
            shown = pacer.maybe(tick)
            if shown is not None:
                job.preview, job.preview_info = shown
            job.progress = progress_record(tick, job.preview_info)
            return not job.cancel_requested

        folder = self.folder(job.id)
        try:
            job.timings = run_job(self.engine.pipe, job.request, job.settings, folder / KEPT_DIR, folder / RESULT_DIR,
                                  self.config.loras(), progress, self.config.lora_dir)
            job.state, job.error = SUCCEEDED, None
            log.info("job %s succeeded in %.1f s", job.id, job.timings["run_s"])
        except TAUECancelled as error:
            job.state, job.error = CANCELLED, str(error)
            log.info("job %s cancelled", job.id)
        except Exception as error:  # noqa: BLE001 - a failed job is recorded, the server goes on
            job.state, job.error = FAILED, describe_failure(error)
            log.exception("job %s failed", job.id)
            free_accelerator_memory()
        finally:
            job.finished_at = now()
            job.preview = None  # the layers are there now (or nothing is)
