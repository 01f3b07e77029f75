"""What the front (taue-server --queue) and the workers (taue-worker) agree on: the RQ queues' names (one per model
name) and the Redis keys a job's progress, preview, cancel request and result travel through (no shared disk
between them)."""

from __future__ import annotations

QUEUE = "taue"  # every worker takes from it after its model's queue: jobs a front recorded without a model
KEY_TTL_S = 24 * 3600  # a job's keys outlive any job; the front deletes them when it has collected the result
HEARTBEAT_TTL_S = 20  # a running job whose worker stops beating for this long is abandoned (and tried again)
HEARTBEAT_EVERY_S = 5
WORKER_TTL_S = 30  # an idle worker that stops answering for this long is gone from /health
TRIES = 3  # a job whose worker dies is tried this many times in all


def model_queue(model: str) -> str:
    """The RQ queue of the jobs for the model `model` (a worker serving it takes from it first)."""
    return f"{QUEUE}:model:{model}"


def progress_key(job_id: str) -> str:
    return f"taue:progress:{job_id}"


def preview_key(job_id: str) -> str:
    return f"taue:preview:{job_id}"


def cancel_key(job_id: str) -> str:
    return f"taue:cancel:{job_id}"


def result_key(job_id: str) -> str:
    return f"taue:result:{job_id}"


def worker_key(name: str) -> str:
    return f"taue:worker:{name}"


def job_keys(job_id: str) -> list[str]:
    return [progress_key(job_id), preview_key(job_id), cancel_key(job_id), result_key(job_id)]
