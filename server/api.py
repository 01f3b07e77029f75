"""API v1: the blueprint that plug-ins and scripts speak (documented at /api/v1/openapi.json)."""

from __future__ import annotations

import re
from contextlib import contextmanager

from flask import Blueprint, current_app, jsonify, request, send_file, url_for

from taue_engine.config import SIZE_MULTIPLE

from . import __version__
from .errors import APIError
from .fields import Context, lora_stem
from .job_requests import (
    JOB,
    LAYERS,
    STYLE,
    parse_backgrounds_request,
    parse_job_request,
    parse_json_body,
    parse_layers_request,
)
from .jobs import DOCUMENTS, SUCCEEDED, Job, job_layers, object_count
from .manager import JobManager
from .openapi import openapi_document
from .styles import Style

api = Blueprint("api_v1", __name__, url_prefix="/api/v1")


def manager() -> JobManager:
    return current_app.extensions["taue"]["jobs"]


def job_urls(job: Job) -> dict:
    urls = {"self": url_for("api_v1.get_job", job_id=job.id), "cancel": url_for("api_v1.cancel_job", job_id=job.id)}
    if not job.finished:
        urls["preview"] = url_for("api_v1.get_preview", job_id=job.id)
    if job.state == SUCCEEDED:
        urls["layers"] = {name: url_for("api_v1.get_layer", job_id=job.id, name=name)
                          for name in job_layers(job.request)}
        urls["backgrounds"] = url_for("api_v1.new_backgrounds", job_id=job.id)
        urls["psd"] = url_for("api_v1.get_document", job_id=job.id, filename="result.psd")
        urls["ora"] = url_for("api_v1.get_document", job_id=job.id, filename="result.ora")
        urls["metadata"] = url_for("api_v1.get_document", job_id=job.id, filename="result.json")
    return urls


def job_view(job: Job) -> dict:
    return {
        "id": job.id,
        "state": job.state,
        "created_at": job.created_at,
        "started_at": job.started_at,
        "finished_at": job.finished_at,
        "queue_position": manager().store.queue_position(job),
        "progress": job.progress,
        "cancel_requested": job.cancel_requested,
        "error": {"message": job.error} if job.error else None,
        "timings": job.timings,
        "request": job.request,
        "warnings": job_warnings(job),
        "urls": job_urls(job),
    }


def job_warnings(job: Job) -> list[str]:
    """What the user should know: before the result, the words of its prompts the served model does not know (a
    model that publishes its vocabulary, as the toy does; the job runs all the same); with it, what phase 1 found
    (its taue.json's `warnings`: a backdrop that did not form, an implausible mask), as its runner recorded them on
    the job when it finished (no file is read: this runs on every poll)."""
    return prompt_warnings(job) + (list(job.warnings) if job.state == SUCCEEDED else [])


def prompt_warnings(job: Job) -> list[str]:
    """The words of a job's prompts that the served model does not know."""
    request = job.request
    pipe = current_app.extensions["taue"]["engine"].view(request.get("model"))
    prompts = [request.get("foreground_prompt"), request.get("background_prompt"), request.get("composite_prompt"),
               *[o.get("prompt") for o in request.get("objects") or []]]
    if pipe is None or not hasattr(pipe, "prompt_warning"):
        return []
    words = []
    if request.get("loras"):  # the folder is read only for jobs that name LoRAs (this runs on every poll)
        from taue_engine.loras import file_words

        files = current_app.extensions["taue"]["config"].loras()
        words = [file_words(files[entry["name"]]) if entry["name"] in files else None for entry in request["loras"]]
    warning = pipe.prompt_warning(prompts, lora_words=words)
    return [warning] if warning else []


def _query_int(name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name)
    if raw is None:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise APIError(400, f"{name} must be a whole number in {low}..{high} (got {raw[:20]!r})", field=name)
    return int(raw)


@api.get("/health")
def health():
    engine = current_app.extensions["taue"]["engine"]
    config = current_app.extensions["taue"]["config"]
    limits = {"min_size": config.min_size, "max_size": config.max_size, "size_multiple": SIZE_MULTIPLE,
              "max_steps": config.max_steps, "max_prompt_chars": config.max_prompt_chars,
              "max_objects": config.max_objects, "max_batch": config.max_batch}
    from taue_engine.schedulers import SCHEDULERS, TIMESTEP_SPACINGS

    state = engine.info()  # first: behind a queue, this reads which models the workers serve
    base = _base_config()
    pipe = engine.pipe
    choice = _choice()
    sampling = {"scheduler": base.scheduler, "timestep_spacing": base.timestep_spacing,
                "schedulers": list(SCHEDULERS), "timestep_spacings": list(TIMESTEP_SPACINGS),
                "loras": sorted(config.loras()), "loaded_loras": list(getattr(pipe, "active_loras", []) or []),
                "models": _models(choice, engine), "model_change": _model_change(config)}
    return jsonify({"version": __version__, **state, **sampling, "queue_length": manager().store.queue_length(),
                    "running": next(iter(manager().running_jobs()), None), "running_jobs": manager().running_jobs(),
                    "limits": {**limits, "max_loras": config.max_loras}})


def _model_change(config) -> str:
    if config.queue:
        return ("a job names its model (model: one of models, each served by its own taue-workers); another model "
                "needs a taue-worker started with it")
    if config.models_dir is not None:
        return "a job names its model (model: one of models); the server switches between jobs"
    return ("the model is chosen when the server starts: restart taue-server with another --model, or with "
            "--models-dir DIR")


def _models(choice, engine) -> list[dict]:
    """The models jobs may name (the default first), each with its kind and whether it is resident now (behind a
    queue: served by a worker)."""
    return [{"name": name, "kind": kind,
             "loaded": kind == "worker" or (engine.model == name and engine.pipe is not None),
             "default": name == choice.default}
            for name, kind in choice.kinds.items()]


def _choice():
    """The models a job may name now: the workers' behind a queue (as the engine last looked), else the folder's."""
    from .model_choice import folder_choice

    config = current_app.extensions["taue"]["config"]
    engine = current_app.extensions["taue"]["engine"]
    return engine.choice if config.queue else folder_choice(config, engine.default)


@api.get("/styles")
def list_styles():
    """The styles a job may name, each with what it sets and, when it cannot run here now, why (`problem`)."""
    config = current_app.extensions["taue"]["config"]
    engine = current_app.extensions["taue"]["engine"]
    if config.queue:
        engine.look()  # which models the workers serve now
    choice, loras = _choice(), config.loras()
    return jsonify({"styles": [{**style.view(), "problem": _style_problem(style, choice, loras)}
                               for style in config.styles().values()]})


def _style_problem(style: Style, choice, loras: dict) -> str | None:
    model = style.fields.get("model")
    if model is not None and model not in choice.names:
        return f"its model {model!r} is not served here (models: {', '.join(choice.names) or 'none yet'})"
    missing = [lora["name"] for lora in style.fields.get("loras") or []
               if lora_stem(lora["name"]) not in loras]
    if missing:
        return f"its LoRA {missing[0]!r} is not in the server's --lora-dir"
    return None


@api.get("/openapi.json")
def openapi():
    return jsonify(openapi_document(current_app.extensions["taue"]["config"], _base_config()))


def _model_named(body: dict, choice) -> str | None:
    """The model a job runs on: the one it names (checked: a 400, or a 409 for a model no worker serves, says what
    to send), else on a server with several (--models-dir, or behind a queue) the default, recorded on the job so
    that its new backgrounds run on it even after a restart with another --model; else None: the one model."""
    value = body.get("model")
    if value is not None:
        return choice.check("model", value)
    return choice.default if choice.single is None else None


def _base_config(model: str | None = None):
    """The defaults a job starts from: its model's own (a --models-dir entry's taue_config.json, or what the
    worker serving it published), else the served model's."""
    from taue_engine.config import TAUEConfig

    config = current_app.extensions["taue"]["config"]
    if config.models_dir is not None:
        from taue_engine.models.loading import ModelLoadError, model_default_config

        try:
            return model_default_config(config.model_source(model))
        except ModelLoadError as error:
            raise APIError(400, f"model {model or config.model!r}: {error}", field="model") from None
    view = current_app.extensions["taue"]["engine"].view(model)
    return getattr(view, "default_config", None) or TAUEConfig()


def _styled(body: dict, takes) -> tuple[dict, Style | None]:
    """The body with its style's fields (those the request `takes`) under the ones it sends itself, and the style."""
    name = body.get("style")
    if name is None:
        return body, None
    config = current_app.extensions["taue"]["config"]
    styles = config.styles()
    if not isinstance(name, str) or name not in styles:
        STYLE.check("style", name, Context(config))  # raises: no such style, and which there are
    style = styles[name]
    own = {key: value for key, value in body.items() if value is not None}
    return {**{key: value for key, value in style.fields.items() if key in takes}, **own}, style


@contextmanager
def _style_says(style: Style | None, body: dict):
    """An error in a field the job's style set (not the job) says so: the style is what to change."""
    try:
        yield
    except APIError as error:
        field = re.split(r"[.\[]", error.field or "")[0]
        if style is None or field not in style.fields or style.fields[field] != body.get(field):
            raise
        detail = error.message.removeprefix(f"{error.field}: ")
        raise APIError(error.status, f"the style {style.name!r} sets {field}: {detail}", code=error.code,
                       field=error.field) from None


def _json_body_for_a_ready_engine() -> dict:
    engine = current_app.extensions["taue"]["engine"]
    if request.mimetype != "application/json":
        raise APIError(415, "send the job as JSON with 'Content-Type: application/json'",
                       code="unsupported_media_type")
    body = parse_json_body(request.get_data(cache=False))
    state = engine.state
    if state != "ready":
        raise APIError(503, engine.unavailable(state), code="model_error" if state == "error" else "loading")
    return body


@api.post("/jobs")
def submit_job():
    config = current_app.extensions["taue"]["config"]
    body, style = _styled(_json_body_for_a_ready_engine(), JOB.fields)
    with _style_says(style, body):
        choice = _choice()
        model = _model_named(body, choice)
        parsed = parse_job_request(body, config, _base_config(model), choice)
    job = manager().submit({**parsed["request"], **({"model": model} if model else {})}, parsed["config"])
    response = jsonify(job_view(job))
    response.status_code = 202
    response.headers["Location"] = url_for("api_v1.get_job", job_id=job.id)
    return response


@api.post("/jobs/<job_id>/backgrounds")
def new_backgrounds(job_id: str):
    """New scenes for the objects of a succeeded job: one job per background prompt (or seed), answered like any."""
    parent = manager().get(job_id)
    body = _json_body_for_a_ready_engine()
    missing = _choice().missing(parent.request["model"]) if parent.request.get("model") else None
    if missing:  # they run on the job's model
        raise APIError(409, f"job {parent.id}: {missing}", code="model_not_served")
    requests = parse_backgrounds_request(body, current_app.extensions["taue"]["config"], object_count(parent.request))
    return _queued(manager().submit_backgrounds(parent, requests))


def _queued(jobs: list[Job]):
    """202 and the new jobs, each described as GET /jobs/<id> describes it."""
    response = jsonify({"jobs": [job_view(job) for job in jobs]})
    response.status_code = 202
    return response


@api.post("/backgrounds")
def new_backgrounds_for_layers():
    """New scenes for object layers the user brings (base64 PNGs in the JSON): one job per background prompt."""
    config = current_app.extensions["taue"]["config"]
    request.max_content_length = config.max_upload_bytes
    body, style = _styled(_json_body_for_a_ready_engine(), LAYERS.fields)
    with _style_says(style, body):
        choice = _choice()
        model = _model_named(body, choice)
        parsed = parse_layers_request(body, config, _base_config(model), choice)
    requests = [{**each, **({"model": model} if model else {})} for each in parsed["requests"]]
    return _queued(manager().submit_brought_layers(requests, parsed["layers"], parsed["config"]))


@api.get("/jobs")
def list_jobs():
    config = current_app.extensions["taue"]["config"]
    limit = _query_int("limit", config.page_size, 1, config.max_page_size)
    offset = _query_int("offset", 0, 0, 10**9)
    jobs, total = manager().store.page(offset, limit)
    following = offset + limit
    return jsonify({"jobs": [job_view(job) for job in jobs], "total": total, "offset": offset, "limit": limit,
                    "next": url_for("api_v1.list_jobs", offset=following, limit=limit) if following < total
                    else None})


@api.get("/jobs/<job_id>")
def get_job(job_id: str):
    return jsonify(job_view(manager().get(job_id)))


@api.post("/jobs/<job_id>/cancel")
def cancel_job(job_id: str):
    job = manager().cancel(job_id)
    response = jsonify(job_view(job))
    response.status_code = 200 if job.finished else 202  # 202: a running job stops within one step
    return response


@api.delete("/jobs/<job_id>")
def delete_job(job_id: str):
    manager().delete(job_id)
    return "", 204


def _finished_file(job_id: str, filename: str):
    jobs = manager()
    job = jobs.get(job_id)
    if job.state != SUCCEEDED:
        raise APIError(409 if not job.finished else 404,
                       f"job {job.id} is {job.state}: results exist only for succeeded jobs", code="no_result")
    path = jobs.store.result_path(job, filename)
    if not path.is_file():
        raise APIError(404, f"job {job.id} has no {filename} (deleted from disk?)", code="not_found")
    return path


@api.get("/jobs/<job_id>/layers/<name>.png")
def get_layer(job_id: str, name: str):
    layers = job_layers(manager().get(job_id).request)
    if name not in layers:
        raise APIError(404, f"no layer {name[:40]!r}: this job's layers are {', '.join(layers)}", field="name")
    return send_file(_finished_file(job_id, layers[name]), mimetype="image/png", max_age=0)


@api.get("/jobs/<job_id>/preview.png")
def get_preview(job_id: str):
    """The running phase's latest picture (progress.preview says which phase and step it shows)."""
    job = manager().get(job_id)
    png = job.preview
    if job.finished:
        raise APIError(410, f"job {job.id} is {job.state}: its previews are gone"
                       + (" (its layers are at urls.layers)" if job.state == SUCCEEDED else ""), code="gone")
    if png is None:
        waiting = "queued" if job.state == "queued" else "starting its first step"
        if current_app.extensions["taue"]["config"].preview_seconds is None:
            waiting = "running on a server started with --no-previews"
        raise APIError(404, f"job {job.id} has no preview yet: it is {waiting}; ask again in a moment",
                       code="no_preview")
    response = current_app.response_class(png, mimetype="image/png")
    response.headers["Cache-Control"] = "no-store"
    return response


@api.get("/jobs/<job_id>/<any('result.psd', 'result.ora', 'result.json'):filename>")
def get_document(job_id: str, filename: str):
    stored = {"result.psd": DOCUMENTS["psd"], "result.ora": DOCUMENTS["ora"], "result.json": DOCUMENTS["metadata"]}
    mimetypes = {"result.psd": "image/vnd.adobe.photoshop", "result.ora": "image/openraster",
                 "result.json": "application/json"}
    path = _finished_file(job_id, stored[filename])
    return send_file(path, mimetype=mimetypes[filename], max_age=0,
                     as_attachment=filename != "result.json", download_name=f"taue-{job_id[:8]}-{filename}")
