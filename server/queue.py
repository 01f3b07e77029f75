"""`taue-server --queue redis://...`: the same API and job folders, the jobs run by taue-workers behind RQ.

Why RQ: the jobs are Python calls of one function, one at a time per GPU, and RQ is exactly that on Redis alone,
with what a lost worker needs (a heartbeat per running job, abandoned jobs retried: `Retry`, `StartedJobRegistry`
cleanup) and no broker semantics to tune; Celery on Redis redelivers a killed worker's task only after its
visibility timeout (an hour by default) and adds a result backend, prefetching and acks we would have to disable.

The front stays the record: each job's folder, state and result, as in the single-process server. A sync thread
follows the queued and running jobs in Redis (state, progress, preview), collects a finished job's result zip into
its folder, and runs RQ's cleanup of abandoned jobs, so a worker killed mid-job costs one heartbeat TTL and a try.
Redis down: submitting answers 503 with a message, reading what the front has goes on, and the sync resumes when
Redis is back (jobs not yet handed over are sent then).
"""

from __future__ import annotations

import io
import json
import logging
import os
import shutil
import time
import zipfile

from .errors import APIError
from .jobs import CANCELLED, FAILED, KEPT_DIR, QUEUED, RESULT_DIR, RUNNING, SUCCEEDED, Job, JobManager, now
from .queue_names import KEY_TTL_S, QUEUE, TRIES, cancel_key, job_keys, preview_key, progress_key, result_key, worker_key

log = logging.getLogger("taue.server")
SYNC_EVERY_S = 0.2
CLEANUP_EVERY_S = 2.0
CLEANUP_LOCK_S = 10  # a front that dies while cleaning holds RQ's cleaning lock this long, not RQ's 15 minutes
JOB_TIMEOUT_S = 6 * 3600  # RQ's limit for one job (a 4096-px SDXL job on a slow GPU is well under it)


def missing_libraries(program: str) -> str | None:
    """What to install when rq or redis is missing (the queue is an extra: the single-process server needs
    neither), or None."""
    from importlib.util import find_spec

    if find_spec("redis") is None or find_spec("rq") is None:
        return f"{program}: error: the job queue needs rq and redis: pip install 'taue-layers[queue]'"
    return None


def connect(url: str):
    """A Redis client for `url`, with short timeouts: a Redis that is down makes requests answer 503 at once."""
    import redis

    return redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5, health_check_interval=10)


class WorkersModel:
    """What the front knows of the served model without loading it: what the workers publish (queue_names
    worker_key): its name, default settings and vocabulary. Stands in for the pipeline where the API reads those."""

    def __init__(self, info: dict):
        from taue_engine.config import TAUEConfig

        self.model_name = info.get("model")
        self.default_config = TAUEConfig.from_dict(info["default_config"]) if info.get("default_config") else None
        self.known_words = frozenset(info["words"]) if info.get("words") else None
        self.active_loras: list = []

    def prompt_warning(self, prompts, lora_words=None):
        from taue_engine.models.vocabulary import unknown_words, unknown_words_warning

        known = self.known_words
        for words in lora_words or []:
            known = None if known is None or words is None else known | words
        return unknown_words_warning(self.model_name or "served", unknown_words(known, prompts))


class QueueEngine:
    """The Engine the API sees in queue mode: ready once a worker has joined the queue."""

    def __init__(self, redis_client, url: str):
        self.redis, self.url = redis_client, url
        self.pipe, self.error, self.model = None, None, None

    def workers(self) -> list[dict]:
        """The live workers (RQ's registry) with what each published: name, model, device, dtype, state, job."""
        from rq import Worker

        found = []
        for worker in Worker.all(connection=self.redis):
            raw = self.redis.get(worker_key(worker.name))
            info = json.loads(raw) if raw else {"name": worker.name}
            found.append({"name": worker.name, "model": info.get("model"), "device": info.get("device"),
                          "dtype": info.get("dtype"), "state": "busy" if worker.get_current_job_id() else "idle",
                          "job": worker.get_current_job_id(), "_info": info})
        return sorted(found, key=lambda w: w["name"])

    def look(self) -> tuple[str, list[dict]]:
        """The state (ready once a worker has joined, loading before, error when Redis does not answer) and the
        workers, from one read of the registry."""
        try:
            workers = self.workers()
        except Exception as error:  # noqa: BLE001 - Redis down: said, not raised
            self.error = f"the job queue (Redis at {self.url}) does not answer: {error}"
            return "error", []
        self.error = None
        if not workers:
            return "loading", []
        info = workers[0]["_info"]
        if self.pipe is None or self.pipe.model_name != info.get("model"):
            self.pipe = WorkersModel(info)
        self.model = info.get("model")
        return "ready", workers

    @property
    def state(self) -> str:
        return self.look()[0]

    @property
    def ready(self) -> bool:
        return self.state == "ready"

    def info(self) -> dict:
        state, workers = self.look()
        devices = sorted({w["device"] for w in workers if w["device"]})
        waiting = None if workers or state == "error" else (
            f"no taue-worker has joined the queue yet: start one with `taue-worker --queue {self.url} --model ...`")
        return {"model": self.model, "device": ", ".join(devices) or None,
                "dtype": workers[0]["dtype"] if workers else None, "state": state, "error": self.error or waiting,
                "workers": [{k: v for k, v in w.items() if k != "_info"} for w in workers]}

    def load(self) -> None:  # the workers load the model
        pass

    def unavailable(self, state: str) -> str:
        if state == "error":
            return f"{self.error}: start it again; jobs already submitted are kept"
        return (f"no taue-worker has joined the queue yet: start one with `taue-worker --queue {self.url} "
                "--model ...`, then submit again")


class QueueJobManager(JobManager):
    """JobManager whose jobs run on taue-workers: the folders and the API as before, the running on RQ."""

    def __init__(self, config, engine: QueueEngine):
        from rq import Queue

        self.redis = engine.redis
        self.rq = Queue(QUEUE, connection=self.redis)
        self.active: set[str] = set()  # running on a worker
        self.handed: set[str] = set()  # in Redis (or were, before a restart): the sync follows these only
        self.unsent: set[str] = set()  # queued here, not yet handed to Redis (it was down)
        self._last_cleanup = 0.0
        super().__init__(config, engine)

    # ------------------------------------------------------------------ handing jobs over
    def _enqueue(self, requests: list[dict], settings: dict, keep=None) -> list[Job]:
        self._check_redis()
        jobs = super()._enqueue(requests, settings, keep)
        for job in jobs:
            self._send(job)
        return jobs

    def _send(self, job: Job) -> None:
        from rq import Retry

        kept = self.folder(job.id) / KEPT_DIR
        files = {path.name: path.read_bytes() for path in kept.iterdir()} if kept.is_dir() else {}
        try:
            self.rq.enqueue_call("server.worker.perform", args=(job.id, job.request, job.settings, files),
                                 job_id=job.id, timeout=JOB_TIMEOUT_S, result_ttl=KEY_TTL_S, failure_ttl=KEY_TTL_S,
                                 retry=Retry(max=TRIES - 1))
            with self.lock:  # only now may the sync look for it in Redis (before, it would seem lost and be sent twice)
                self.handed.add(job.id)
                self.unsent.discard(job.id)
        except Exception:  # noqa: BLE001 - Redis went away: the sync sends it when it is back
            log.warning("job %s: could not hand it to the queue; it is sent when Redis answers", job.id)
            with self.lock:
                self.unsent.add(job.id)

    def _check_redis(self) -> None:
        try:
            self.redis.ping()
        except Exception as error:  # noqa: BLE001
            raise APIError(503, f"the job queue (Redis at {self.config.queue}) does not answer ({error}): start "
                                "Redis again, then resubmit; jobs already here are kept", code="queue_down") from None

    def cancel(self, job_id: str) -> Job:
        job = self.get(job_id)
        if not job.finished:
            self._check_redis()
            self.redis.set(cancel_key(job.id), "1", ex=KEY_TTL_S)  # a worker that has just taken it stops it
        with self.lock:
            if job.state == QUEUED and job.id in self.queue:
                self._forget(job.id)
        return super().cancel(job_id)

    def _forget(self, job_id: str) -> None:
        """Take a job out of Redis (its RQ job and our keys)."""
        from rq.job import Job as RQJob

        with self.lock:
            self.handed.discard(job_id)
        try:
            self.rq.remove(job_id)
            RQJob.fetch(job_id, connection=self.redis).delete()
        except Exception:  # noqa: BLE001 - already gone
            pass
        self.redis.delete(*[key for key in job_keys(job_id) if key != cancel_key(job_id)])

    def running_jobs(self) -> list[str]:
        with self.lock:
            return sorted(self.active)

    # ------------------------------------------------------------------ restart
    def _recover(self) -> None:
        """The jobs the front had queued or running before it stopped were handed to Redis: follow them again (one
        Redis lost is sent again by the sync)."""
        super()._recover()
        self.handed.update(self.queue)
        self.handed.update(self.active)

    def _recovered_running(self, job: Job, restarted: str) -> None:
        """A job running when the front stopped is still on its worker: follow it again."""
        self.active.add(job.id)

    # ------------------------------------------------------------------ the sync thread
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
            with self.lock:
                self.lock.wait(SYNC_EVERY_S)

    def _sync(self) -> None:
        from rq.job import Job as RQJob

        if time.monotonic() - self._last_cleanup >= CLEANUP_EVERY_S:
            self._clean_abandoned()
            self._last_cleanup = time.monotonic()
        with self.lock:
            unsent = sorted(self.unsent)
        for job_id in unsent:
            self._send(self.jobs[job_id])
        with self.lock:
            following = [job_id for job_id in list(self.queue) + sorted(self.active) if job_id in self.handed]
        if not following:
            return
        found = RQJob.fetch_many(following, connection=self.redis)
        for job_id, queued in zip(following, found):
            job = self.jobs.get(job_id)
            if job is None or job.finished:
                continue
            if queued is None:  # Redis lost it (restarted without its data): hand it over again
                self._requeue_here(job)
                self._send(job)
                continue
            status = queued.get_status()
            if status == "started":
                self._follow(job)
            elif status in ("queued", "scheduled", "deferred") and job.state == RUNNING:
                self._requeue_here(job)  # its worker died; RQ tries it again
            elif status == "finished":
                self._collect(job, queued.return_value() or {})
            elif status == "failed":
                self._finish(job, FAILED, failure_of(queued))
            elif status in ("canceled", "stopped"):
                self._finish(job, CANCELLED, "cancelled")

    def _clean_abandoned(self) -> None:
        """RQ's cleanup of abandoned jobs (tried again, or failed), under the lock RQ's workers take for the same
        cleanup, held briefly: two cleanups at once would both put a dead worker's job back, and two workers run it."""
        from rq.registry import StartedJobRegistry

        if not self.redis.set(self.rq.registry_cleaning_key, 1, nx=True, ex=CLEANUP_LOCK_S):
            return  # a worker is cleaning now
        try:
            StartedJobRegistry(queue=self.rq).cleanup()
        finally:
            self.redis.delete(self.rq.registry_cleaning_key)

    def _follow(self, job: Job) -> None:
        with self.lock:
            if job.state == QUEUED:
                if job.id in self.queue:
                    self.queue.remove(job.id)
                job.state, job.started_at = RUNNING, job.started_at or now()
                self.active.add(job.id)
                self._save_state(job)
        raw = self.redis.get(progress_key(job.id))
        if raw:
            progress = json.loads(raw)
            if progress.get("preview") and progress["preview"] != (job.progress or {}).get("preview"):
                job.preview = self.redis.get(preview_key(job.id))
            job.progress = progress

    def _requeue_here(self, job: Job) -> None:
        with self.lock:
            self.active.discard(job.id)
            if job.id not in self.queue:
                self.queue.appendleft(job.id)
            job.state, job.preview = QUEUED, None
            self._save_state(job)

    def _collect(self, job: Job, outcome: dict) -> None:
        state = outcome.get("state")
        if state == "succeeded":
            data = self.redis.get(result_key(job.id))
            if data is None:
                self._finish(job, FAILED, "the worker's result was lost (Redis restarted without its data?): "
                                          "submit the job again")
                return
            folder = self.folder(job.id)
            partial = folder / f".{RESULT_DIR}.partial"
            shutil.rmtree(partial, ignore_errors=True)
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                archive.extractall(partial)
            os.replace(partial, folder / RESULT_DIR)
            job.timings = {**(outcome.get("timings") or {}), "worker": outcome.get("worker")}
            self._finish(job, SUCCEEDED, None)
        else:
            self._finish(job, CANCELLED if state == "cancelled" else FAILED, outcome.get("error") or state)

    def _finish(self, job: Job, state: str, error: str | None) -> None:
        with self.lock:
            if job.id in self.queue:
                self.queue.remove(job.id)
            self.active.discard(job.id)
            job.state, job.error, job.finished_at, job.preview = state, error, now(), None
            self._save_state(job)
            self.lock.notify_all()
        log.info("job %s %s%s", job.id, state, f": {error}" if error else "")
        self._forget(job.id)
        self.redis.delete(cancel_key(job.id))

    def stop(self, cancel: bool = False, timeout: float = 60) -> None:
        """Stop following the queue; with `cancel`, cancel every queued and running job first (on the workers)."""
        if cancel:
            with self.lock:
                unfinished = [job_id for job_id in list(self.queue) + sorted(self.active)]
            for job_id in unfinished:
                try:
                    self.redis.set(cancel_key(job_id), "1", ex=KEY_TTL_S)
                    self._forget(job_id)
                except Exception:  # noqa: BLE001 - Redis down: the jobs are recorded cancelled all the same
                    pass
            with self.lock:
                for job_id in unfinished:
                    job = self.jobs[job_id]
                    job.state, job.finished_at, job.error = CANCELLED, now(), "cancelled: the server stopped"
                    self._save_state(job)
                self.queue.clear()
                self.active.clear()
        super().stop(cancel=False, timeout=timeout)


def failure_of(queued) -> str:
    """Why RQ failed a job: a worker that died on every try, or the last line of the exception."""
    text = (queued.latest_result().exc_string if queued.latest_result() else "") or ""
    if "AbandonedJobError" in text:
        return (f"the worker running it stopped (tried {TRIES} times): see the workers' logs; the front and the "
                "other jobs go on")
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "failed on the worker"
