"""The Flask app factory: settings, engine, job store and runner, the API blueprint, JSON errors and the access
rules."""

from __future__ import annotations

import hmac
import logging

from flask import Flask, request

from .api import api
from .config import LOOPBACK_NAMES, ServerConfig
from .engine import Engine
from .errors import APIError, register_error_handlers
from .local_runner import LocalRunner
from .manager import JobManager
from .store import JobStore

log = logging.getLogger("taue.server")


def create_app(config: ServerConfig | None = None, engine=None) -> Flask:
    """Build the server. `engine`: a TAUEPipeline to serve (tests inject one); when None, `config.model` is
    loaded by the job worker's thread and the server answers 'loading' meanwhile."""
    config = config or ServerConfig()
    app = Flask("taue_server")
    app.config["MAX_CONTENT_LENGTH"] = config.max_body_bytes
    app.json.sort_keys = False
    store = JobStore(config.jobs_dir, config.max_queue)
    if config.queue:
        from .models_folder import entry_name
        from .queue_engine import QueueEngine, connect
        from .queue_runner import QueueRunner

        holder = QueueEngine(connect(config.queue), config.queue, preferred=entry_name(config.model))
        runner = QueueRunner(store, config, holder.redis)
    else:
        holder = Engine(engine)
        if engine is None:
            holder.prepare(config.model, config.model_source(), device=config.device, dtype=config.dtype,
                           vae=config.vae)
        runner = LocalRunner(store, config, holder)
    jobs = JobManager(store, runner).start()
    app.extensions["taue"] = {"config": config, "engine": holder, "jobs": jobs}

    @app.before_request
    def access_rules():
        if config.is_loopback and not config.token:
            # a web page can make a browser send requests to 127.0.0.1 under a name it controls (DNS
            # rebinding): without a token, answer only requests addressed to this machine by a loopback name
            host = (request.host or "").rsplit(":", 1)[0].strip("[]").lower()
            if host not in LOOPBACK_NAMES:
                raise APIError(403, f"requests must be addressed to 127.0.0.1 or localhost (got {host[:60]!r})",
                               code="forbidden_host")
        if config.token and request.endpoint != "api_v1.health":
            header = request.headers.get("Authorization", "")
            scheme, _, given = header.partition(" ")
            if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(),
                                                                     config.token.encode()):
                raise APIError(401, "missing or wrong token: send 'Authorization: Bearer <token>' with the token "
                               "the server was started with (--token)")

    app.register_blueprint(api)
    register_error_handlers(app)
    return app
