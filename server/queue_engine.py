"""The front's view of the served model in queue mode (`taue-server --queue redis://...`): the taue-workers that
have joined, read from RQ's registry and what each worker publishes, and the Redis connection they share.

Why RQ: the jobs are Python calls of one function, one at a time per GPU, and RQ is exactly that on Redis alone,
with what a lost worker needs (a heartbeat per running job, abandoned jobs retried: `Retry`, `StartedJobRegistry`
cleanup) and no broker semantics to tune; Celery on Redis redelivers a killed worker's task only after its
visibility timeout (an hour by default) and adds a result backend, prefetching and acks we would have to disable.
"""

from __future__ import annotations

import json

from .model_choice import workers_choice
from .queue_names import worker_key


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
    """The Engine the API sees in queue mode: ready once a worker has joined the queue. Each worker serves one
    model; the models served are what jobs may name (model_choice.workers_choice)."""

    def __init__(self, redis_client, url: str, preferred: str | None = None):
        self.redis, self.url = redis_client, url
        self.preferred = preferred  # the front's --model: the default when a worker serves it
        self.pipe, self.error, self.model = None, None, None
        self.served: dict[str, tuple[dict, WorkersModel]] = {}  # model name -> what its first worker published
        self.choice = workers_choice([], preferred or "")

    def workers(self) -> list[dict]:
        """The live workers (RQ's registry) with what each published: name, model, device, dtype, state, job."""
        from rq import Worker

        found = []
        for worker in Worker.all(connection=self.redis):
            raw = self.redis.get(worker_key(worker.name))
            info = json.loads(raw) if raw else {"name": worker.name}
            found.append({"name": worker.name, "model": info.get("model"), "source": info.get("source"),
                          "vae": info.get("vae"), "device": info.get("device"),
                          "dtype": info.get("dtype"), "state": "busy" if worker.get_current_job_id() else "idle",
                          "job": worker.get_current_job_id(), "_info": info})
        return sorted(found, key=lambda w: w["name"])

    def look(self) -> tuple[str, list[dict]]:
        """The state (ready once a worker has joined, loading before, error when Redis does not answer) and the
        workers, from one read of the registry; the models served and the default are taken from it."""
        try:
            workers = self.workers()
        except Exception as error:  # noqa: BLE001 - Redis down: said, not raised
            self.error = f"the job queue (Redis at {self.url}) does not answer: {error}"
            return "error", []
        self.error = None
        served: dict[str, tuple[dict, WorkersModel]] = {}
        for worker in workers:
            name, info = worker["model"], worker["_info"]
            if "source" not in info:  # a worker of an earlier version: it takes no model's queue
                continue
            if name and name not in served:
                known = self.served.get(name)
                served[name] = known if known is not None and known[0] == info else (info, WorkersModel(info))
        self.served = served
        self.choice = workers_choice(list(served), self.preferred or "")
        self.model = self.choice.default
        self.pipe = self.view(None)
        return ("ready" if workers else "loading"), workers

    def view(self, name: str | None):
        """What the front knows of a served model (its default settings, vocabulary), by name (None: the default);
        None when no worker serves it."""
        known = self.served.get(name or self.model or "")
        return known[1] if known is not None else None

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
        first = next((w for w in workers if w["model"] == self.model), {})
        return {"model": self.model, "vae": first.get("vae"), "device": ", ".join(devices) or None,
                "dtype": first.get("dtype"), "state": state, "error": self.error or waiting, "loading_model": None,
                "workers": [{k: v for k, v in w.items() if k != "_info"} for w in workers]}

    def unavailable(self, state: str) -> str:
        if state == "error":
            return f"{self.error}: start it again; jobs already submitted are kept"
        return (f"no taue-worker has joined the queue yet: start one with `taue-worker --queue {self.url} "
                "--model ...`, then submit again")
