"""The OpenAPI 3 document of API v1; the request bodies come from their models (job_requests.py), the same ones
the parser checks against."""

from __future__ import annotations

from taue_engine.config import TAUEConfig
from taue_engine.previews import PREVIEW_SIDE

from . import __version__
from .config import ServerConfig
from .job_requests import backgrounds_request_schema, job_request_schema, layers_request_schema
from .jobs import JOB_ID, LAYERS

JOB_STATES = ["queued", "running", "succeeded", "failed", "cancelled"]


def _error(description: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _json(description: str, ref: str) -> dict:
    return {"description": description,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{ref}"}}}}


def openapi_document(limits: ServerConfig, base_config: TAUEConfig) -> dict:
    job_id = {"name": "job_id", "in": "path", "required": True,
              "schema": {"type": "string", "pattern": JOB_ID.pattern}}
    not_found, auth = _error("no such job (or a malformed id)"), _error("missing or wrong token")
    job = _json("the job", "Job")
    paths = {
        "/health": {"get": {"summary": "Server, model and queue state (no token needed)", "security": [],
                            "responses": {"200": _json("state", "Health")}}},
        "/styles": {"get": {"summary": "The styles a job may name (style): built in, and <data_dir>/styles/*.json",
                            "responses": {"200": _json("the styles", "Styles"), "401": auth}}},
        "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3"},
                                                                            "401": auth}}},
        "/jobs": {
            "post": {"summary": "Submit a job: foreground, background and composite layers from one seed",
                     "requestBody": {"required": True, "content": {"application/json": {
                         "schema": {"$ref": "#/components/schemas/JobRequest"}}}},
                     "responses": {"202": _json("queued", "Job"), "400": _error("invalid field (named in field)"),
                                   "401": auth, "409": _error("queue full, or no taue-worker serves the model named"),
                                   "413": _error("body too large"),
                                   "415": _error("not JSON"), "503": _error("model loading or failed to load")}},
            "get": {"summary": "Jobs, newest first",
                    "parameters": [{"name": "offset", "in": "query", "schema": {"type": "integer", "minimum": 0}},
                                   {"name": "limit", "in": "query", "schema": {
                                       "type": "integer", "minimum": 1, "maximum": limits.max_page_size}}],
                    "responses": {"200": _json("a page of jobs", "JobPage"), "400": _error("bad paging"),
                                  "401": auth}},
        },
        "/jobs/{job_id}": {
            "get": {"summary": "State, queue position, progress, error, timings, result URLs", "parameters": [job_id],
                    "responses": {"200": job, "401": auth, "404": not_found}},
            "delete": {"summary": "Delete a finished job and its files", "parameters": [job_id],
                       "responses": {"204": {"description": "deleted"}, "401": auth, "404": not_found,
                                     "409": _error("not finished: cancel it first")}},
        },
        "/jobs/{job_id}/cancel": {"post": {
            "summary": "Remove a queued job, or stop a running one within one denoising step",
            "parameters": [job_id],
            "responses": {"200": _json("cancelled (was queued)", "Job"), "202": _json("stopping (running)", "Job"),
                          "401": auth, "404": not_found, "409": _error("already finished")}}},
        "/jobs/{job_id}/backgrounds": {"post": {
            "summary": "New backgrounds for the objects of a succeeded job, without regenerating them: one new job "
                       "per background prompt (or seed), each answered like any job; optional layouts move objects",
            "parameters": [job_id],
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/BackgroundsRequest"}}}},
            "responses": {"202": {"description": "queued", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"jobs": {"type": "array",
                                                          "items": {"$ref": "#/components/schemas/Job"}}}}}}},
                          "400": _error("invalid field (named in field)"), "401": auth, "404": not_found,
                          "409": _error("the job has not succeeded, kept no objects, its model is no longer "
                                        "served, or the queue is full"),
                          "503": _error("model loading or failed to load")}}},
        "/backgrounds": {"post": {
            "summary": "New scenes for object layers you bring (RGBA PNGs, base64 in the JSON, all of one size): "
                       "each layer is encoded by the model's VAE and noised to the cut, its alpha is its mask; one "
                       "new job per background prompt (or seed), each answered like any job",
            "requestBody": {"required": True, "content": {"application/json": {
                "schema": {"$ref": "#/components/schemas/LayersBackgroundsRequest"}}}},
            "responses": {"202": {"description": "queued", "content": {"application/json": {"schema": {
                "type": "object", "properties": {"jobs": {"type": "array",
                                                          "items": {"$ref": "#/components/schemas/Job"}}}}}}},
                          "400": _error("invalid field (named in field)"), "401": auth,
                          "409": _error("the queue is full, or no taue-worker serves the model named"),
                          "413": _error("body too large"),
                          "503": _error("model loading or failed to load")}}},
        "/jobs/{job_id}/layers/{name}.png": {"get": {
            "summary": "One layer as PNG (foreground and object-<n> are RGBA; mask and mask-<n> are grey): "
                       "object-<n> and mask-<n> exist for n = 1 .. the job's number of objects",
            "parameters": [job_id, {"name": "name", "in": "path", "required": True,
                                    "schema": {"type": "string", "pattern": "^(" + "|".join(LAYERS) +
                                               "|object-[1-9][0-9]*|mask-[1-9][0-9]*)$"}}],
            "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, "401": auth,
                          "404": not_found, "409": _error("not finished yet")}}},
        "/jobs/{job_id}/preview.png": {"get": {
            "summary": "While the job runs: the latest picture of the running phase (its clean estimate through the "
                       "model's latent-to-RGB map; progress.preview names the phase and step, width and height), "
                       f"at most {PREVIEW_SIDE} px on its long side; gone when the job ends",
            "parameters": [job_id],
            "responses": {"200": {"description": "PNG", "content": {"image/png": {}}}, "401": auth,
                          "404": _error("no such job, or no preview yet (queued, first step not done, or the "
                                        "server makes none)"),
                          "410": _error("the job has ended: its layers (if it succeeded) replace the preview")}}},
    }
    for filename, mimetype, summary in (
            ("result.psd", "image/vnd.adobe.photoshop", "Layered PSD: a group, the foreground's alpha as a mask"),
            ("result.ora", "image/openraster", "Layered OpenRaster (Krita, GIMP)"),
            ("result.json", "application/json", "The result's metadata: prompts, seed, settings, timings")):
        paths[f"/jobs/{{job_id}}/{filename}"] = {"get": {
            "summary": summary, "parameters": [job_id],
            "responses": {"200": {"description": filename, "content": {mimetype: {}}}, "401": auth,
                          "404": not_found, "409": _error("not finished yet")}}}
    nullable_string = {"type": "string", "nullable": True}
    schemas = {
        "Error": {"type": "object", "required": ["error"], "properties": {"error": {
            "type": "object", "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "field": nullable_string}}}},
        "Health": {"type": "object", "properties": {
            "version": {"type": "string"}, "model": nullable_string,
            "vae": {**nullable_string, "description": "the VAE in place of the model's own (--vae), or null"},
            "device": nullable_string,
            "dtype": nullable_string, "state": {"type": "string", "enum": ["loading", "ready", "error"]},
            "error": nullable_string, "queue_length": {"type": "integer"}, "running": nullable_string,
            "running_jobs": {"type": "array", "items": {"type": "string"},
                             "description": "every running job (several with --queue and several workers)"},
            "workers": {"type": "array", "description": "with --queue: the taue-workers that have joined",
                        "items": {"type": "object", "properties": {
                            "name": {"type": "string"},
                            "model": {**nullable_string, "description": "the name jobs route to it by"},
                            "source": {**nullable_string, "description": "what it loaded (--model)"},
                            "vae": nullable_string,
                            "device": nullable_string,
                            "dtype": nullable_string, "state": {"type": "string", "enum": ["idle", "busy"]},
                            "job": nullable_string}}},
            "scheduler": {"type": "string", "description": "the sampler of jobs that name none"},
            "timestep_spacing": {"type": "string"},
            "schedulers": {"type": "array", "items": {"type": "string"},
                           "description": "what a job's scheduler field may name"},
            "timestep_spacings": {"type": "array", "items": {"type": "string"}},
            "loras": {"type": "array", "items": {"type": "string"},
                      "description": "the LoRAs of the server's --lora-dir, by the name a job's loras use"},
            "loaded_loras": {"type": "array", "items": {"type": "object"},
                             "description": "the LoRAs of the job that ran last (name, file, scale, sha256)"},
            "model_change": {"type": "string", "description": "how to serve another checkpoint: a job's model "
                                                              "(with --models-dir, or behind a queue), else a "
                                                              "restart"},
            "models": {"type": "array", "description": "the models a job may name, the default first: the one the "
                                                       "server started with and its --models-dir's, or behind a "
                                                       "queue those a taue-worker serves",
                       "items": {"type": "object", "properties": {
                           "name": {"type": "string"},
                           "kind": {"type": "string", "enum": ["start", "folder", "single_file", "worker"]},
                           "loaded": {"type": "boolean", "description": "resident now (behind a queue: served)"},
                           "default": {"type": "boolean", "description": "what a job that names none runs on"}}}},
            "loading_model": {**nullable_string, "description": "the model the server is switching to now"},
            "limits": {"type": "object", "description": "what a job request may ask for", "properties": {
                name: {"type": "integer"} for name in
                ("min_size", "max_size", "size_multiple", "max_steps", "max_prompt_chars", "max_objects",
                 "max_batch", "max_loras")}}}},
        "Styles": {"type": "object", "properties": {"styles": {"type": "array", "items": {
            "type": "object", "required": ["name", "description", "builtin"],
            "description": "a preset of a job's fields: those it sets (model, loras, steps, scheduler, "
                           "timestep_spacing, guidance_*, crop_ratio) fill the fields a job naming it does not send",
            "properties": {"name": {"type": "string"}, "description": {"type": "string"},
                           "builtin": {"type": "boolean"},
                           "problem": {**nullable_string, "description": "why it cannot run here now (its model "
                                                                         "is not served, a LoRA is missing)"}}}}}},
        "JobRequest": job_request_schema(limits, base_config),
        "BackgroundsRequest": backgrounds_request_schema(limits),
        "LayersBackgroundsRequest": layers_request_schema(limits, base_config),
        "Progress": {"type": "object", "nullable": True, "properties": {
            "phase": {"type": "string", "nullable": True, "enum": ["foreground", "composite", "background", None]},
            "object": {"type": "integer", "nullable": True,
                       "description": "with several objects: whose foreground phase runs (from 1)"},
            "step": {"type": "integer"}, "phase_steps": {"type": "integer"}, "overall_step": {"type": "integer"},
            "overall_total": {"type": "integer"}, "fraction": {"type": "number", "minimum": 0, "maximum": 1},
            "preview": {"type": "object", "nullable": True,
                        "description": "what GET /jobs/{job_id}/preview.png shows now; null before the first",
                        "properties": {"phase": {"type": "string"}, "object": {"type": "integer", "nullable": True},
                                       "step": {"type": "integer"}, "phase_steps": {"type": "integer"},
                                       "width": {"type": "integer"}, "height": {"type": "integer"}}}}},
        "Job": {"type": "object", "required": ["id", "state", "urls"], "properties": {
            "id": {"type": "string"}, "state": {"type": "string", "enum": JOB_STATES},
            "created_at": {"type": "string"}, "started_at": nullable_string, "finished_at": nullable_string,
            "queue_position": {"type": "integer", "nullable": True, "description": "1 = next; null if not queued"},
            "progress": {"$ref": "#/components/schemas/Progress"}, "cancel_requested": {"type": "boolean"},
            "error": {"type": "object", "nullable": True, "properties": {"message": {"type": "string"}}},
            "timings": {"type": "object"}, "request": {"type": "object"},
            "warnings": {"type": "array", "items": {"type": "string"},
                         "description": "prompt words the served model does not know (the job runs anyway); "
                                        "once it succeeded, what its foreground runs found: a key backdrop that "
                                        "did not form, an object mask implausibly large or small"},
            "urls": {"type": "object"}}},
        "JobPage": {"type": "object", "properties": {
            "jobs": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}, "total": {"type": "integer"},
            "offset": {"type": "integer"}, "limit": {"type": "integer"}, "next": nullable_string}},
    }
    document = {
        "openapi": "3.0.3",
        "info": {"title": "TAUE Layers server", "version": __version__,
                 "description": "Layered generation (foreground RGBA, background, composite) with TAUE. Jobs run "
                                "one at a time in submission order; poll GET /jobs/{job_id} for progress."},
        "servers": [{"url": "/api/v1"}],
        "paths": paths,
        "components": {"schemas": schemas,
                       "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}}},
    }
    if limits.token:
        document["security"] = [{"bearer": []}]
    return document
