"""TAUE Layers local inference server: jobs, progress, cancel, layers as PNG, PSD and OpenRaster."""

from taue_engine import __version__

from .app import create_app  # noqa: E402
from .config import ServerConfig  # noqa: E402

__all__ = ["ServerConfig", "__version__", "create_app"]
