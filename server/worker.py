"""taue-worker: one GPU (or the CPU) behind `taue-server --queue redis://...`.

    taue-worker --queue redis://127.0.0.1:6379/0 --model stabilityai/stable-diffusion-xl-base-1.0
    taue-worker --queue redis://127.0.0.1:6379/0 --models-dir ~/models --model photo

Each worker serves one model and says which under a name (a --models-dir entry's, else the folder's name, the
checkpoint's stem or the hub id's last part): it takes the jobs of that model's queue, which the front fills with
the jobs that name it.

An RQ worker that loads the model once and runs one job at a time in its own process (RQ's SimpleWorker: a CUDA
model does not survive the fork RQ's default worker makes per job). A job arrives with everything it needs (its
request, settings and kept objects) and leaves its whole result folder in Redis as a zip; progress, previews and
the cancel request travel through Redis keys (queue_names.py), so the front and the workers share no disk. While a
job runs a thread keeps its heartbeat, so a worker killed mid-job is noticed within HEARTBEAT_TTL_S and the job runs
again elsewhere.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import socket
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path

from .execution import MissingLora, PreviewPacer, describe_failure, free_accelerator_memory, progress_record, run_job
from .queue_names import (
    HEARTBEAT_EVERY_S,
    HEARTBEAT_TTL_S,
    KEY_TTL_S,
    QUEUE,
    WORKER_TTL_S,
    cancel_key,
    model_queue,
    preview_key,
    progress_key,
    result_key,
    worker_key,
)

log = logging.getLogger("taue.worker")
EXIT_FAILURE, EXIT_USAGE = 1, 2
RESULT_WAIT_S = 600  # a finished job's result waits this long for a Redis that is away


class Served:
    """What this worker process serves: its pipeline, LoRA folder and preview pace (set before it works)."""

    pipe = None
    lora_dir: Path | None = None
    preview_seconds: float | None = 0.5


def pack(folder: Path) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                archive.write(path, path.relative_to(folder).as_posix())
    return buffer.getvalue()


def perform(job_id: str, request: dict, settings: dict, kept: dict[str, bytes]) -> dict:
    """The queued job (RQ calls it by name on a worker): run it and leave the result in Redis. Returns what the
    front records: {state: succeeded | failed | cancelled, error, timings, warnings, worker}. A failure of the job
    itself is a result, not an exception, so that it is not tried again; only a worker that dies is."""
    from redis.exceptions import RedisError
    from rq import get_current_job

    from taue_engine.loras import lora_folder_files
    from taue_engine.pipeline import TAUECancelled

    current = get_current_job()
    redis = current.connection
    worker = (current.worker_name or socket.gethostname()) if current is not None else "?"
    pacer = PreviewPacer(Served.preview_seconds)
    shown = {"info": None}

    def progress(tick) -> bool:
        made = pacer.maybe(tick)
        if made is not None:
            shown["info"] = made[1]
        try:
            with redis.pipeline() as batch:
                if made is not None:
                    batch.set(preview_key(job_id), made[0], ex=KEY_TTL_S)
                batch.set(progress_key(job_id), json.dumps(progress_record(tick, shown["info"])), ex=KEY_TTL_S)
                batch.exists(cancel_key(job_id))
                return not batch.execute()[-1]
        except RedisError:  # Redis away for a moment: the job goes on, its progress shows again when it is back
            return True

    with tempfile.TemporaryDirectory(prefix="taue-worker-") as folder:
        folder = Path(folder)
        (folder / "kept").mkdir()
        for name, data in kept.items():
            (folder / "kept" / Path(name).name).write_bytes(data)
        loras = lora_folder_files(Served.lora_dir) if Served.lora_dir is not None else {}
        try:
            ran = run_job(Served.pipe, request, settings, folder / "kept", folder / "result", loras, progress,
                          Served.lora_dir)
        except TAUECancelled as error:
            return {"state": "cancelled", "error": str(error), "worker": worker}
        except MissingLora as error:  # the front has it, this worker not: a set-up to fix, said where
            return {"state": "failed", "worker": worker,
                    "error": f"LoRA {error.name!r} is not on taue-worker {worker}: start it with --lora-dir naming a "
                             "folder with the same files as the front's --lora-dir"}
        except Exception as error:  # noqa: BLE001 - the job failed; the worker goes on
            log.exception("job %s failed", job_id)
            free_accelerator_memory()
            return {"state": "failed", "error": f"{describe_failure(error)} (on taue-worker {worker})",
                    "worker": worker}
        packed = pack(folder / "result")
    deadline = time.monotonic() + RESULT_WAIT_S
    while True:  # the job is done: wait for Redis rather than lose it
        try:
            redis.set(result_key(job_id), packed, ex=KEY_TTL_S)
            break
        except RedisError:
            if time.monotonic() > deadline:
                raise
            time.sleep(1.0)
    return {"state": "succeeded", "error": None, "timings": ran.timings, "warnings": ran.warnings, "worker": worker}


def worker_class():
    from rq import SimpleWorker
    from rq.worker import WorkerStatus

    class TAUEWorker(SimpleWorker):
        """SimpleWorker with a short heartbeat kept alive by a thread while a job runs."""

        def get_heartbeat_ttl(self, job, working_time: float = 0.0) -> int:
            return HEARTBEAT_TTL_S

        def execute_job(self, job, queue):
            execution = self.prepare_execution(job)
            stop = threading.Event()
            beat = threading.Thread(target=self._beat, args=(job, execution, stop), daemon=True)
            beat.start()
            try:
                self.perform_job(job, queue, execution)
            finally:
                stop.set()
                beat.join()
            self.set_state(WorkerStatus.IDLE)

        def _beat(self, job, execution, stop: threading.Event) -> None:
            while not stop.wait(HEARTBEAT_EVERY_S):
                try:
                    self.maintain_heartbeats(job, execution)
                except Exception:  # noqa: BLE001 - Redis away for a moment: the next beat tries again
                    log.warning("heartbeat of job %s failed", job.id, exc_info=True)

    return TAUEWorker


def describe_worker(pipe, name: str, model: str, device: str | None) -> dict:
    """What /health shows of a worker (`model`: the name jobs route to it by), and what the front needs of its
    model (default settings, vocabulary)."""
    config = getattr(pipe, "default_config", None)
    words = getattr(pipe, "known_words", None)
    return {"name": name, "model": model, "source": getattr(pipe, "model_name", None),
            "vae": getattr(pipe, "vae_name", None),
            "device": str(pipe._execution_device),
            "dtype": str(pipe.unet.dtype).replace("torch.", ""), "default_config": config.to_dict() if config else None,
            "words": sorted(words) if words else None, "asked_device": device}


def served_model(model: str, models_dir: Path | None) -> tuple[str, str]:
    """The name this worker serves its model under, and where to load it from: a --models-dir entry by its name,
    else --model as given, named as a models folder would name it. Raises ValueError for a name a job could not
    send."""
    from .model_choice import path_like
    from .models_folder import check_models_folder, entry_name, scan_models

    if models_dir is not None:
        entries = scan_models(check_models_folder(models_dir))
        if model in entries:
            return model, str(entries[model].path)
    name = entry_name(model)
    if not name or name == "." or path_like(name):
        raise ValueError(f"--model {model!r} gives no name jobs could send: name the model's folder or file")
    return name, model


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taue-worker", description=__doc__.splitlines()[0])
    parser.add_argument("--queue", required=True, metavar="URL",
                        help="the Redis the front queues on, e.g. redis://:PASSWORD@HOST:6379/0")
    parser.add_argument("--model", default="toy", metavar="M",
                        help="hub id, diffusers folder, .safetensors file, toy or tiny-random, or a name from "
                             "--models-dir (default: toy); jobs name it by that name, or the folder's name, the "
                             "file's stem or the hub id's last part")
    parser.add_argument("--models-dir", default=None, metavar="DIR",
                        help="a models folder, as taue-server's --models-dir: --model may name one of its entries")
    parser.add_argument("--vae", default=None, metavar="PATH_OR_ID",
                        help="a VAE in place of the model's own: diffusers VAE folder, .safetensors file or hub id "
                             "(madebyollin/sdxl-vae-fp16-fix: SDXL's VAE fixed for float16)")
    parser.add_argument("--device", default=None, help="cuda, cuda:1, mps or cpu (default: the best available)")
    parser.add_argument("--dtype", default=None, help="float16, bfloat16 or float32")
    parser.add_argument("--lora-dir", default=None, metavar="DIR",
                        help="the LoRA files jobs may name: the same files as the front's --lora-dir")
    parser.add_argument("--preview-seconds", type=float, default=0.5, metavar="S",
                        help="make a running job's preview at most every S seconds (0: every step)")
    parser.add_argument("--no-previews", action="store_true")
    parser.add_argument("--name", default=None, help="this worker's name in /health (default: host and a number)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from taue_engine.quiet import quiet_libraries

    quiet_libraries()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    from .queue_engine import missing_libraries

    missing = missing_libraries("taue-worker")
    if missing:
        print(missing, file=sys.stderr)
        return EXIT_USAGE
    import redis
    from rq import Queue

    from taue_engine.models.loading import ModelLoadError, check_model_exists, check_vae_exists
    from taue_engine.pipeline import TAUEPipeline

    try:
        served, source = served_model(args.model, Path(args.models_dir) if args.models_dir else None)
        check_model_exists(source)
        if args.vae is not None:
            check_vae_exists(args.vae)
        connection = redis.Redis.from_url(args.queue)
        connection.ping()
    except (ModelLoadError, ValueError) as error:
        print(f"taue-worker: error: {error}", file=sys.stderr)
        return EXIT_USAGE
    except redis.RedisError as error:
        print(f"taue-worker: error: no Redis answers at --queue {args.queue}: {error}", file=sys.stderr)
        return EXIT_USAGE
    log.info("loading model %s (%s) ...", served, source)
    try:
        pipe = TAUEPipeline.from_pretrained(source, device=args.device, dtype=args.dtype, vae=args.vae)
    except ModelLoadError as error:
        print(f"taue-worker: error: {error}", file=sys.stderr)
        return EXIT_FAILURE
    pipe.set_progress_bar_config(disable=True)
    pipe.latent_to_rgb()
    Served.pipe, Served.lora_dir = pipe, Path(args.lora_dir) if args.lora_dir else None
    Served.preview_seconds = None if args.no_previews else args.preview_seconds
    name = args.name or f"{socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    queues = [model_queue(served), QUEUE]
    log.info("worker %s ready: model %s on %s, queues %s", name, served, pipe._execution_device, ", ".join(queues))
    while True:  # RQ's loop gives up when Redis goes away mid-job: wait for it and work again, same name
        try:
            connection.set(worker_key(name), json.dumps(describe_worker(pipe, name, served, args.device)))
            worker = worker_class()([Queue(queue, connection=connection) for queue in queues], connection=connection,
                                    name=name,
                                    worker_ttl=WORKER_TTL_S, job_monitoring_interval=HEARTBEAT_EVERY_S)
            worker.work(logging_level="WARNING")
            break  # stopped (SIGTERM / SIGINT)
        except redis.RedisError as error:
            log.warning("lost Redis (%s): working again when it answers", error)
            time.sleep(2.0)
    try:
        connection.delete(worker_key(name))
    except redis.RedisError:
        pass
    return 0


if __name__ == "__main__":  # python -m server.worker: run the module RQ imports jobs from, not a __main__ copy
    from server.worker import main as worker_main

    sys.exit(worker_main())
