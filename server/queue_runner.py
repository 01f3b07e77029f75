"""Running the jobs on taue-workers (`taue-server --queue redis://...`): each job is handed to RQ on Redis, and one
sync thread follows the queued and running ones there.

The front stays the record: each job's folder, state and result, as in the single-process server. The sync thread
follows the jobs in Redis (state, progress, preview), collects a finished job's result zip into its folder, and runs
RQ's cleanup of abandoned jobs, so a worker killed mid-job costs one heartbeat TTL and a try. Redis down: submitting
answers 503 with a message, reading what the front has goes on, and the sync resumes when Redis is back (jobs not
yet handed over are sent then).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import threading
import time
import zipfile

from .config import ServerConfig
from .errors import APIError
from .jobs import CANCELLED, FAILED, KEPT_DIR, QUEUED, RESULT_DIR, RUNNING, SUCCEEDED, Job
from .queue_names import (
    KEY_TTL_S,
    QUEUE,
    TRIES,
    cancel_key,
    job_keys,
    model_queue,
    preview_key,
    progress_key,
    result_key,
)
from .store import JobStore

log = logging.getLogger("taue.server")
SYNC_EVERY_S = 0.2
CLEANUP_EVERY_S = 2.0
CLEANUP_LOCK_S = 10  # a front that dies while cleaning holds RQ's cleaning lock this long, not RQ's 15 minutes
JOB_TIMEOUT_S = 6 * 3600  # RQ's limit for one job (a 4096-px SDXL job on a slow GPU is well under it)


class QueueRunner:
    def __init__(self, store: JobStore, config: ServerConfig, redis_client):
        self.store, self.config, self.redis = store, config, redis_client
        self._queues: dict[str, object] = {}  # RQ queue name -> rq.Queue
        self.handed: set[str] = set()  # in Redis (or were, before a restart): the sync follows these only
        self.unsent: set[str] = set()  # queued here, not yet handed to Redis (it was down)
        self._last_cleanup = 0.0
        self._stop = False
        self.thread: threading.Thread | None = None

    # ------------------------------------------------------------------ handing jobs over
    def recovered(self, jobs: list[Job]) -> None:
        """The jobs the front had queued or running before it stopped were handed to Redis: follow them again (one
        Redis lost is sent again by the sync); a running one is still on its worker."""
        self.handed.update(job.id for job in jobs)

    def accept(self) -> None:
        try:
            self.redis.ping()
        except Exception as error:  # noqa: BLE001
            raise APIError(503, f"the job queue (Redis at {self.config.queue}) does not answer ({error}): start "
                                "Redis again, then resubmit; jobs already here are kept", code="queue_down") from None

    def submitted(self, jobs: list[Job]) -> None:
        for job in jobs:
            self._send(job)

    def queue(self, name: str):
        """The RQ queue `name`, made once."""
        from rq import Queue

        if name not in self._queues:
            self._queues[name] = Queue(name, connection=self.redis)
        return self._queues[name]

    def _send(self, job: Job) -> None:
        """Hand a job to the queue of its model (the front recorded it on the job; a job recorded before models
        were routed goes to the queue every worker takes from last)."""
        from rq import Retry

        kept = self.store.folder(job.id) / KEPT_DIR
        files = {path.name: path.read_bytes() for path in kept.iterdir()} if kept.is_dir() else {}
        model = job.request.get("model")
        queue = self.queue(model_queue(model) if model else QUEUE)
        try:
            queue.enqueue_call("server.worker.perform", args=(job.id, job.request, job.settings, files),
                               job_id=job.id, timeout=JOB_TIMEOUT_S, result_ttl=KEY_TTL_S, failure_ttl=KEY_TTL_S,
                               retry=Retry(max=TRIES - 1))
            with self.store.lock:  # only now may the sync look for it in Redis (before, it would seem lost: sent twice)
                self.handed.add(job.id)
                self.unsent.discard(job.id)
        except Exception:  # noqa: BLE001 - Redis went away: the sync sends it when it is back
            log.warning("job %s: could not hand it to the queue; it is sent when Redis answers", job.id)
            with self.store.lock:
                self.unsent.add(job.id)

    def cancel(self, job: Job) -> None:
        """A worker that has just taken the job stops it (the cancel key); a queued one leaves Redis too."""
        self.accept()
        self.redis.set(cancel_key(job.id), "1", ex=KEY_TTL_S)
        with self.store.lock:
            if job.state == QUEUED and job.id in self.store.queue:
                self._forget(job.id)

    def _forget(self, job_id: str) -> None:
        """Take a job out of Redis (its RQ job and our keys)."""
        from rq.job import Job as RQJob

        with self.store.lock:
            self.handed.discard(job_id)
        try:
            RQJob.fetch(job_id, connection=self.redis).delete()  # and out of its queue
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.redis.delete(*[key for key in job_keys(job_id) if key != cancel_key(job_id)])

    # ------------------------------------------------------------------ the sync thread
    def start(self) -> None:
        self.thread = threading.Thread(target=self._work, name="taue-queue-sync", daemon=True)
        self.thread.start()

    def stop(self, cancel: bool = False, timeout: float = 60) -> None:
        """Stop following the queue; with `cancel`, cancel every queued and running job first (on the workers)."""
        store = self.store
        if cancel:
            with store.lock:
                unfinished = list(store.queue) + sorted(store.running)
            for job_id in unfinished:
                try:
                    self.redis.set(cancel_key(job_id), "1", ex=KEY_TTL_S)
                    self._forget(job_id)
                except Exception:  # noqa: BLE001 - Redis down: the jobs are recorded cancelled all the same
                    pass
            with store.lock:
                for job_id in unfinished:
                    store.finish(store.jobs[job_id], CANCELLED, "cancelled: the server stopped")
        with store.lock:
            self._stop = True
            store.lock.notify_all()
        if self.thread is not None and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def _work(self) -> None:
        warned = False
        while not self._stop:
            try:
                self._sync()
                if warned:
                    log.info("the job queue answers again")
                warned = False
            except Exception as error:  # noqa: BLE001 - Redis down: keep what we have, try again
                if not warned:
                    log.warning("the job queue does not answer: %s", error)
                warned = True
            with self.store.lock:
                self.store.lock.wait(SYNC_EVERY_S)

    def _sync(self) -> None:
        from rq.job import Job as RQJob

        store = self.store
        if time.monotonic() - self._last_cleanup >= CLEANUP_EVERY_S:
            self._clean_abandoned()
            self._last_cleanup = time.monotonic()
        with store.lock:
            unsent = sorted(self.unsent)
        for job_id in unsent:
            self._send(store.jobs[job_id])
        with store.lock:
            following = [job_id for job_id in list(store.queue) + sorted(store.running) if job_id in self.handed]
        if not following:
            return
        found = RQJob.fetch_many(following, connection=self.redis)
        for job_id, queued in zip(following, found):
            job = store.jobs.get(job_id)
            if job is None or job.finished:
                continue
            if queued is None:  # Redis lost it (restarted without its data): hand it over again
                store.requeue(job)
                self._send(job)
                continue
            status = queued.get_status()
            if status == "started":
                self._follow(job)
            elif status in ("queued", "scheduled", "deferred") and job.state == RUNNING:
                store.requeue(job)  # its worker died; RQ tries it again
            elif status == "finished":
                self._collect(job, queued.return_value() or {})
            elif status == "failed":
                self._finish(job, FAILED, failure_of(queued))
            elif status in ("canceled", "stopped"):
                self._finish(job, CANCELLED, "cancelled")

    def _clean_abandoned(self) -> None:
        """RQ's cleanup of abandoned jobs (tried again, or failed) in each of our queues, under the lock RQ's workers
        take for the same cleanup, held briefly: two cleanups at once would both put a dead worker's job back, and
        two workers run it."""
        from rq import Queue
        from rq.registry import StartedJobRegistry

        for found in Queue.all(connection=self.redis):
            if found.name != QUEUE and not found.name.startswith(model_queue("")):
                continue
            if not self.redis.set(found.registry_cleaning_key, 1, nx=True, ex=CLEANUP_LOCK_S):
                continue  # a worker is cleaning it now
            try:
                StartedJobRegistry(queue=found).cleanup()
            finally:
                self.redis.delete(found.registry_cleaning_key)

    def _follow(self, job: Job) -> None:
        with self.store.lock:
            if job.state == QUEUED:
                self.store.start(job)
        raw = self.redis.get(progress_key(job.id))
        if raw:
            progress = json.loads(raw)
            if progress.get("preview") and progress["preview"] != (job.progress or {}).get("preview"):
                job.preview = self.redis.get(preview_key(job.id))
            job.progress = progress

    def _collect(self, job: Job, outcome: dict) -> None:
        state = outcome.get("state")
        if state != "succeeded":
            self._finish(job, CANCELLED if state == "cancelled" else FAILED, outcome.get("error") or state)
            return
        data = self.redis.get(result_key(job.id))
        if data is None:
            self._finish(job, FAILED, "the worker's result was lost (Redis restarted without its data?): submit the "
                                      "job again")
            return
        folder = self.store.folder(job.id)
        partial = folder / f".{RESULT_DIR}.partial"
        shutil.rmtree(partial, ignore_errors=True)
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            archive.extractall(partial)
        os.replace(partial, folder / RESULT_DIR)
        job.timings = {**(outcome.get("timings") or {}), "worker": outcome.get("worker")}
        job.warnings = list(outcome.get("warnings") or [])  # a worker of an older version sends none
        self._finish(job, SUCCEEDED, None)

    def _finish(self, job: Job, state: str, error: str | None) -> None:
        self.store.finish(job, state, error)
        log.info("job %s %s%s", job.id, state, f": {error}" if error else "")
        self._forget(job.id)
        self.redis.delete(cancel_key(job.id))


def failure_of(queued) -> str:
    """Why RQ failed a job: a worker that died on every try, or the last line of the exception."""
    text = (queued.latest_result().exc_string if queued.latest_result() else "") or ""
    if "AbandonedJobError" in text:
        return (f"the worker running it stopped (tried {TRIES} times): see the workers' logs; the front and the "
                "other jobs go on")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed on the worker"
