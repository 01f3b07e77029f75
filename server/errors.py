"""JSON errors: every failure, ours or Flask's, answers `{"error": {"code", "message", "field"}}`."""

from __future__ import annotations

import logging

from flask import Flask, jsonify
from werkzeug.exceptions import HTTPException

log = logging.getLogger("taue.server")

HTTP_CODES = {
    400: "bad_request", 401: "unauthorized", 404: "not_found", 405: "method_not_allowed", 409: "conflict",
    413: "body_too_large", 415: "unsupported_media_type", 500: "internal_error", 503: "not_ready",
}
HTTP_MESSAGES = {
    404: "no such resource: see /api/v1/openapi.json for the API",
    405: "method not allowed on this resource: see /api/v1/openapi.json",
}


class APIError(Exception):
    """An error a client can act on: the status, a stable code, what to change, and which field."""

    def __init__(self, status: int, message: str, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.status = status
        self.code = code or HTTP_CODES.get(status, "error")
        self.message = message
        self.field = field


def error_response(status: int, code: str, message: str, field: str | None = None):
    response = jsonify({"error": {"code": code, "message": message, "field": field}})
    response.status_code = status
    return response


def too_large_message() -> str:
    """What the route in question takes: its own limit (jobs 64 KiB, /backgrounds 64 MiB by default)."""
    from flask import request

    limit = request.max_content_length
    size = f"{limit // (1024 * 1024)} MiB" if limit and limit >= 1024 * 1024 else f"{(limit or 0) // 1024} KiB"
    sent = f" (this one is {request.content_length} bytes)" if request.content_length else ""
    if request.path.endswith("/backgrounds"):
        return (f"request body too large{sent}: object layers travel as base64 PNGs in at most {size} in all; "
                "bring fewer or smaller layers")
    return f"request body too large{sent}: this route takes a JSON object of at most {size}"


def register_error_handlers(app: Flask) -> None:
    @app.errorhandler(APIError)
    def _api_error(error: APIError):
        response = error_response(error.status, error.code, error.message, error.field)
        if error.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="taue"'
        return response

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        status = error.code or 500
        message = too_large_message() if status == 413 else HTTP_MESSAGES.get(status, error.description or error.name)
        return error_response(status, HTTP_CODES.get(status, "error"), message)

    @app.errorhandler(Exception)
    def _unexpected(error: Exception):
        log.exception("unexpected error while serving a request")
        return error_response(500, "internal_error", f"the server failed on this request ({type(error).__name__}); "
                              "it is still running, and the server log has the details")
