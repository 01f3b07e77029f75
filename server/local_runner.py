"""Running the jobs in this process: one thread that owns the pipeline runs them in order, through execution.py.

The same thread loads the model first (engine.py says why). A job that raises, out-of-memory included, is recorded
as failed and the thread goes on with the next.
"""

from __future__ import annotations

import logging
import threading
import time

from .config import ServerConfig
from .engine import Engine
from .execution import PreviewPacer, describe_failure, free_accelerator_memory, loading_record, progress_record, run_job
from .jobs import CANCELLED, FAILED, KEPT_DIR, RESULT_DIR, RUNNING, SUCCEEDED, Job, now
from .store import JobStore

log = logging.getLogger("taue.server")


class LocalRunner:
    def __init__(self, store: JobStore, config: ServerConfig, engine: Engine):
        self.store, self.config, self.engine = store, config, engine
        self.thread: threading.Thread | None = None
        self._stop = False

    def recovered(self, jobs: list[Job]) -> None:
        """A job that was running when the server stopped ran in this process: it is lost."""
        restarted = now()
        for job in jobs:
            if job.state == RUNNING:
                self.store.finish(job, FAILED, f"the server stopped while this job was running (restarted at "
                                               f"{restarted}); submit it again")

    def accept(self) -> None:
        pass  # the engine's state is the API's to check; a loading model queues jobs for later

    def submitted(self, jobs: list[Job]) -> None:
        pass  # the store woke the thread

    def cancel(self, job: Job) -> None:
        pass  # the store asks a running job to stop; its progress callback reads that

    def start(self) -> None:
        self.thread = threading.Thread(target=self._work, name="taue-worker", daemon=True)
        self.thread.start()

    def stop(self, cancel: bool = False, timeout: float = 60) -> None:
        store = self.store
        with store.lock:
            if cancel:
                for job_id in list(store.queue):
                    store.finish(store.jobs[job_id], CANCELLED, "cancelled: the server stopped")
                for job_id in store.running:
                    store.jobs[job_id].cancel_requested = True
            self._stop = True
            store.lock.notify_all()
        if self.thread is not None and threading.current_thread() is not self.thread:
            self.thread.join(timeout)

    def _next(self) -> Job | None:
        store = self.store
        with store.lock:
            while not self._stop and (not store.queue or not self.engine.ready):
                store.lock.wait(0.5)
            return None if self._stop else store.take_next()

    def _work(self) -> None:
        if self.engine.state == "loading":
            self.engine.load()  # on this thread: the one that will run every job
        while (job := self._next()) is not None:
            try:
                self._run(job)
            except Exception:  # noqa: BLE001 - never let the thread die: the next job must run
                log.exception("job %s: unexpected failure in the worker", job.id)
                if not job.finished:
                    self.store.finish(job, FAILED, "the server failed while finishing this job; see its log")

    def _run(self, job: Job) -> None:
        from taue_engine.pipeline import TAUECancelled

        pacer = PreviewPacer(self.config.preview_seconds)

        def progress(tick) -> bool:
            shown = pacer.maybe(tick)
            if shown is not None:
                job.preview, job.preview_info = shown
            job.progress = progress_record(tick, job.preview_info)
            return not job.cancel_requested

        if not self._use_model(job):
            return
        folder = self.store.folder(job.id)
        try:
            job.timings, job.warnings = run_job(self.engine.pipe, job.request, job.settings, folder / KEPT_DIR,
                                                folder / RESULT_DIR, self.config.loras(), progress,
                                                self.config.lora_dir)
            state, error = SUCCEEDED, None
            log.info("job %s succeeded in %.1f s", job.id, job.timings["run_s"])
        except TAUECancelled as cancelled:
            state, error = CANCELLED, str(cancelled)
            log.info("job %s cancelled", job.id)
        except Exception as failure:  # noqa: BLE001 - a failed job is recorded, the server goes on
            state, error = FAILED, describe_failure(failure)
            log.exception("job %s failed", job.id)
            free_accelerator_memory()
        self.store.finish(job, state, error)

    def _use_model(self, job: Job) -> bool:
        """With --models-dir, make the job's model (default: the one the server started with) the resident one,
        its progress saying `loading` meanwhile; False when it cannot be loaded (the job fails with the reason, the
        server goes on)."""
        if self.config.models_dir is None:
            return True
        name = job.request.get("model") or self.config.model
        if self.engine.pipe is not None and self.engine.model == name:
            return True
        job.progress = loading_record(name)
        started = time.perf_counter()
        try:
            self.engine.switch(name, self.config.model_source(name))
        except Exception as error:  # noqa: BLE001 - that job fails, the server goes on
            log.exception("job %s: model %s failed to load", job.id, name)
            free_accelerator_memory()
            self.store.finish(job, FAILED, f"the model {name!r} failed to load: {error}; the server goes on with the "
                                           "next job (which loads its own model)")
            return False
        log.info("job %s: model %s loaded in %.1f s", job.id, name, time.perf_counter() - started)
        return True
