"""The server's HTTP API v1 in plain urllib, and errors that say what happened and what to do.

Every failure a plug-in can meet becomes a `TAUEError` whose `message` is shown to the designer as it is: no
tracebacks, no HTTP jargon without the fix next to it.
"""

from __future__ import annotations

import http.client
import json
import socket
import urllib.error
import urllib.parse
import urllib.request

DEFAULT_URL = "http://127.0.0.1:7860"
API_PREFIX = "/api/v1"
START_HINT = "start it with `taue-server` (see the TAUE Layers README), or correct the server URL"


class TAUEError(Exception):
    """A failure the user can act on.

    kind: 'settings' (URL or form to correct), 'unreachable', 'unauthorized', 'not_ready', 'rejected' (the server
    refused the request), 'missing' (a job or file the server no longer has), 'failed' (the job failed),
    'cancelled', 'protocol' (an answer that is not TAUE's).
    """

    def __init__(self, kind: str, message: str, field: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.field = field


def normalise_url(url: str) -> str:
    """'127.0.0.1:7860/' -> 'http://127.0.0.1:7860'; anything but http(s) with a host is refused."""
    url = (url or "").strip()
    if url and "://" not in url:
        url = "http://" + url
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise TAUEError("settings", f"The server URL {url!r} is not valid: use the form {DEFAULT_URL}", "url")
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))


class Client:
    """One TAUE server. Blocking calls: run them on a worker thread, never on an editor's UI thread."""

    def __init__(self, url: str = DEFAULT_URL, token: str = "", timeout: float = 10.0):
        self.url = normalise_url(url)
        self.token = (token or "").strip()
        self.timeout = timeout

    # ------------------------------------------------------------------ the API
    def health(self) -> dict:
        return self._json("GET", "/health")

    def styles(self) -> dict:
        """GET /styles: {'styles': [...]}; a server of an earlier version, without styles, answers none."""
        try:
            return self._json("GET", "/styles")
        except TAUEError as error:
            if error.kind == "missing" or (error.kind == "protocol" and "HTTP 404" in error.message):
                return {"styles": []}
            raise

    def jobs(self, offset: int = 0, limit: int = 20) -> dict:
        """GET /jobs, newest first: {'jobs': [...], 'total', 'next'}. Needs the token (health does not)."""
        return self._json("GET", f"/jobs?offset={int(offset)}&limit={int(limit)}")

    def submit(self, request: dict) -> dict:
        """POST /jobs: the job as the server describes it (id, state, urls)."""
        return self._json("POST", "/jobs", request)

    def backgrounds(self, job_id: str, request: dict) -> list:
        """POST /jobs/<id>/backgrounds: new scenes for a succeeded job's objects; one job per background prompt."""
        return self._json("POST", f"/jobs/{urllib.parse.quote(job_id, safe='')}/backgrounds", request)["jobs"]

    def job(self, job_id: str) -> dict:
        return self._json("GET", f"/jobs/{urllib.parse.quote(job_id, safe='')}")

    def cancel(self, job_id: str) -> dict:
        return self._json("POST", f"/jobs/{urllib.parse.quote(job_id, safe='')}/cancel")

    def download(self, path: str) -> bytes:
        """A result file by the URL path the server gave (e.g. job['urls']['layers']['foreground'])."""
        if not path.startswith(API_PREFIX + "/"):
            raise TAUEError("protocol", f"The server gave an unexpected result address {path[:80]!r}: "
                                        "is this a TAUE server of the same version?")
        return self._request("GET", path[len(API_PREFIX):])

    # ------------------------------------------------------------------ transport
    def _json(self, method: str, path: str, body: dict | None = None) -> dict:
        raw = self._request(method, path, body)
        try:
            value = json.loads(raw.decode("utf-8"))
        except (UnicodeDecodeError, ValueError):
            raise TAUEError("protocol", f"{self.url} answered something that is not TAUE's JSON: is this the TAUE "
                                        "server's address?") from None
        if not isinstance(value, dict):
            raise TAUEError("protocol", f"{self.url} answered an unexpected JSON value: is this a TAUE server?")
        return value

    def _request(self, method: str, path: str, body: dict | None = None) -> bytes:
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(self.url + API_PREFIX + path, data=data, method=method)
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return response.read()
        except urllib.error.HTTPError as error:
            raise self._http_error(error) from None
        except urllib.error.URLError as error:
            reason = error.reason
            if isinstance(reason, (socket.timeout, TimeoutError)):
                raise TAUEError("unreachable", f"The TAUE server at {self.url} did not answer within "
                                               f"{self.timeout:g} s: is it busy or stopped? If stopped, "
                                               f"{START_HINT}.") from None
            raise TAUEError("unreachable", f"No TAUE server answers at {self.url} ({reason}): {START_HINT}.") from None
        except TimeoutError:
            raise TAUEError("unreachable", f"The TAUE server at {self.url} did not answer within {self.timeout:g} s:"
                                           f" is it busy or stopped? If stopped, {START_HINT}.") from None
        except (ConnectionError, OSError) as error:
            raise TAUEError("unreachable", f"The connection to {self.url} failed ({error}): {START_HINT}.") from None
        except (http.client.HTTPException, ValueError) as error:  # not an HTTP server there, or not a usable URL
            raise TAUEError("unreachable", f"{self.url} does not answer as the TAUE server does ({type(error).__name__}"
                                           f": {error}): correct the server URL, or {START_HINT}.", "url") from None

    def _http_error(self, error: urllib.error.HTTPError) -> TAUEError:
        detail, field = "", None
        try:
            body = json.loads(error.read().decode("utf-8"))
            detail, field = body["error"]["message"], body["error"].get("field")
        except (ValueError, KeyError, TypeError, UnicodeDecodeError, OSError):
            pass
        if error.code == 401:
            return TAUEError("unauthorized", "The server refused the token: enter the token it was started with "
                                             "(taue-server --token ...), or none for a server without one.", "token")
        if error.code == 403:
            return TAUEError("unauthorized", f"The server refused this connection: {detail or 'forbidden'}.", "url")
        if error.code == 503:
            return TAUEError("not_ready", f"The server is not ready: {detail or 'it is still loading its model'}. "
                                          "Try again when the connection light is green.")
        if error.code in (404, 410) and detail:
            return TAUEError("missing", f"The server does not have it: {detail}", field)
        if detail:
            return TAUEError("rejected", f"The server refused the request: {detail}", field)
        return TAUEError("protocol", f"{self.url} answered HTTP {error.code}: is this the TAUE server's address?")
