"""The job store: every job of this server, its folder and state file, the FIFO of queued jobs, the running ones.

The API and the runner share it under one lock (`lock`, a Condition: every change of state wakes whoever waits on
it). A restart reads the folders back: finished jobs are served again, queued ones are queued again, and the
runner judges the ones that were running (in this process: lost; on a queue worker: still going). Nothing here
runs a job.
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
from collections.abc import Callable
from pathlib import Path

from .errors import APIError
from .jobs import CANCELLED, JOB_ID, KEPT_DIR, QUEUED, RESULT_DIR, RUNNING, Job, check_job_id, now, write_json

log = logging.getLogger("taue.server")


class JobStore:
    def __init__(self, folder: Path, max_queue: int):
        self.dir = folder
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_queue = max_queue
        self.lock = threading.Condition()
        self.jobs: dict[str, Job] = {}
        self.queue: deque[str] = deque()
        self.running: set[str] = set()

    # ------------------------------------------------------------------ disk
    def folder(self, job_id: str) -> Path:
        return self.dir / check_job_id(job_id)

    def result_path(self, job: Job, filename: str) -> Path:
        return self.folder(job.id) / RESULT_DIR / filename

    def save(self, job: Job) -> None:
        write_json(self.folder(job.id) / "state.json", job.state_record())

    def recover(self) -> list[Job]:
        """Read the job folders back; returns the unfinished jobs (queued ones are queued again, running ones are
        in `running`) for the runner to take up."""
        found = []
        for path in self.dir.iterdir():
            if not path.is_dir() or not JOB_ID.match(path.name):
                continue  # not a job folder (e.g. one being deleted)
            try:
                record = json.loads((path / "job.json").read_text(encoding="utf-8"))
                state = json.loads((path / "state.json").read_text(encoding="utf-8"))
                found.append(Job(id=path.name, created_at=record["created_at"], request=record["request"],
                                 settings=record["settings"], state=state["state"], started_at=state.get("started_at"),
                                 finished_at=state.get("finished_at"), error=state.get("error"),
                                 progress=state.get("progress"), timings=state.get("timings") or {},
                                 warnings=list(state.get("warnings") or [])))  # none in an older version's
            except (OSError, ValueError, KeyError) as error:
                log.warning("skipping unreadable job folder %s: %s", path.name, error)
        with self.lock:
            for job in sorted(found, key=lambda j: j.created_at):
                self.jobs[job.id] = job
                if job.state == QUEUED:
                    self.queue.append(job.id)
                elif job.state == RUNNING:
                    self.running.add(job.id)
        if found:
            log.info("found %d jobs in %s (%d queued again)", len(found), self.dir, len(self.queue))
        return [job for job in found if not job.finished]

    # ------------------------------------------------------------------ adding and reading
    def add(self, requests: list[dict], settings: dict, keep: Callable[[Path], None] | None = None) -> list[Job]:
        """Queue one job per request, all or none (409 when the queue has no room for all): a folder each with its
        job.json and state.json, and `keep(folder)` filling its kept/ folder for a new background."""
        with self.lock:
            if len(self.queue) + len(requests) > self.max_queue:
                raise APIError(409, f"the queue is full ({self.max_queue} jobs): wait for some to finish",
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
                self.save(job)
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

    def running_jobs(self) -> list[str]:
        with self.lock:
            return sorted(self.running)

    # ------------------------------------------------------------------ changes of state
    def start(self, job: Job, progress: dict | None = None) -> None:
        """Queued -> running."""
        with self.lock:
            if job.id in self.queue:
                self.queue.remove(job.id)
            self.running.add(job.id)
            job.state, job.started_at = RUNNING, job.started_at or now()
            job.progress = progress or job.progress
            self.save(job)

    def take_next(self) -> Job:
        """Start the first queued job (the caller holds the lock and saw one)."""
        job = self.jobs[self.queue[0]]
        self.start(job, job.start_progress())
        return job

    def requeue(self, job: Job) -> None:
        """Running -> queued again, first in line (its runner lost it and tries it again)."""
        with self.lock:
            self.running.discard(job.id)
            if job.id not in self.queue:
                self.queue.appendleft(job.id)
            job.state, job.preview = QUEUED, None
            self.save(job)

    def finish(self, job: Job, state: str, error: str | None) -> None:
        """Queued or running -> succeeded, failed or cancelled; a state file that cannot be written is logged (the
        runner goes on)."""
        with self.lock:
            if job.id in self.queue:
                self.queue.remove(job.id)
            self.running.discard(job.id)
            job.state, job.error, job.finished_at, job.preview = state, error, now(), None
            try:
                self.save(job)
            except OSError:
                log.exception("job %s: could not write its state", job.id)
            self.lock.notify_all()

    def cancel(self, job: Job) -> Job:
        """A queued job is cancelled now; a running one is asked to stop (its runner stops it within a step)."""
        with self.lock:
            if job.finished:
                raise APIError(409, f"job {job.id} has already {job.state}: nothing to cancel", code="finished")
            if job.state == QUEUED:
                self.finish(job, CANCELLED, "cancelled before it started")
            else:
                job.cancel_requested = True
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
            while self.queue or self.running:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self.lock.wait(left)
        return True
