"""TAUE Layers engine: training-free layered generation (foreground, background, composite) on SDXL."""

__version__ = "0.1.0"

from .config import LayoutBox, TAUEConfig  # noqa: E402

__all__ = ["LayoutBox", "TAUEConfig", "TAUEPipeline", "TAUEResult", "TAUEProgress", "TAUECancelled", "__version__"]


def __getattr__(name):
    """Import the pipeline (and torch/diffusers, ~6 s) only when it is used: the CLI checks arguments first."""
    if name == "TAUEPipeline":
        from .pipeline import TAUEPipeline

        return TAUEPipeline
    if name in ("TAUEResult", "TAUEProgress", "TAUECancelled"):
        from . import results

        return getattr(results, name)
    raise AttributeError(name)
