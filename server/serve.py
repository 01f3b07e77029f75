"""The served application and its WSGI server, built one way for `taue-server` and for the tests' live server, so
that the tests meet the limits users meet."""

from __future__ import annotations

from .app import create_app
from .config import ServerConfig


def waitress_body_limit(config: ServerConfig) -> int:
    """waitress's own body limit: twice the largest route limit. waitress reads a whole body before the app sees
    it; one over its limit is cut off mid-upload (a connection reset for most clients), while one under it reaches
    the app, which answers the route's own limit with a JSON 413 that every client reads."""
    return 2 * max(config.max_body_bytes, config.max_upload_bytes)


def build_server(config: ServerConfig, engine=None, threads: int = 8, port: int | None = None):
    """(app, server): create_app(config, engine) served by waitress on config.host and `port` (default
    config.port; 0 picks a free one). `server.run()` serves until `server.close()`."""
    import waitress

    app = create_app(config, engine=engine)
    server = waitress.create_server(app, host=config.host, port=config.port if port is None else port,
                                    threads=threads, ident="taue-server",
                                    max_request_body_size=waitress_body_limit(config))
    return app, server
