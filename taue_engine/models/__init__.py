"""Model loading: hub ids, local diffusers folders, single .safetensors files, and built-in models."""

from .loading import BUILTIN_MODELS, DEFAULT_HUB_MODEL, ModelLoadError, choose_device_and_dtype, load_components

__all__ = ["BUILTIN_MODELS", "DEFAULT_HUB_MODEL", "ModelLoadError", "choose_device_and_dtype", "load_components"]
