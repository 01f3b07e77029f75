"""Resolve a model name to pipeline components: built-in name, local folder, single file, or hub id.

Every way a model can be missing ends in one `ModelLoadError` whose message says what to do.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

DEFAULT_HUB_MODEL = "stabilityai/stable-diffusion-xl-base-1.0"
BUILTIN_MODELS = ("toy", "tiny-random")
TOY_MODEL_DIR = Path(__file__).resolve().parents[1] / "toy" / "model"
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")


class ModelLoadError(RuntimeError):
    """The model could not be found or read; the message says what to change."""


class VaeLoadError(ModelLoadError):
    """The replacement VAE (--vae) could not be found or read, or does not fit the model."""


def check_device(device: str) -> str:
    """`device` if this torch can run on it; otherwise a ValueError that says what to install or choose."""
    import re

    if not re.fullmatch(r"cpu|mps|cuda(:\d+)?", device or ""):
        raise ValueError(f"device must be cuda, cuda:N, mps or cpu (got {device!r})")
    if device.startswith("cuda"):
        if torch.version.cuda is None:
            raise ValueError(f"this torch ({torch.__version__}) is a CPU build, it cannot use CUDA: install the CUDA "
                             "build (README, 'GPU or CPU torch'), or use --device cpu")
        if not torch.cuda.is_available():
            raise ValueError("no CUDA GPU is visible to this torch (check nvidia-smi and the driver), or use "
                             "--device cpu")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ValueError(f"{device}: this machine has {torch.cuda.device_count()} CUDA GPU(s), numbered from 0")
    if device == "mps" and not (getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()):
        raise ValueError("mps (Apple GPU) is not available to this torch: use --device cpu")
    return device


def choose_device_and_dtype(device: str | None = None, dtype: str | torch.dtype | None = None):
    """CUDA and MPS run in float16, the CPU in float32; either can be overridden."""
    if device is not None:
        check_device(device)
    if device is None:
        if torch.cuda.is_available():
            device = "cuda"
        elif getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            device = "mps"
        else:
            device = "cpu"
    device_type = torch.device(device).type
    if dtype is None:
        dtype = torch.float16 if device_type in ("cuda", "mps") else torch.float32
    elif isinstance(dtype, str):
        names = {"float16": torch.float16, "fp16": torch.float16, "bfloat16": torch.bfloat16,
                 "bf16": torch.bfloat16, "float32": torch.float32, "fp32": torch.float32}
        if dtype not in names:
            raise ValueError(f"dtype must be one of {', '.join(names)} (got {dtype!r})")
        dtype = names[dtype]
    if device_type == "cpu" and dtype == torch.float16:
        raise ValueError("float16 is not supported on the CPU: use dtype float32 (or bfloat16)")
    return device, dtype


def looks_like_path(model: str) -> bool:
    """A hub id is 'owner/name'; anything else (a leading . / ~, a backslash, a file suffix, more slashes) is a path."""
    return (
        model.startswith((".", "/", "~"))
        or "\\" in model
        or model.lower().endswith(SINGLE_FILE_SUFFIXES)
        or model.count("/") != 1
    )


def describe_model_kind(model: str) -> str:
    if model in BUILTIN_MODELS:
        return "builtin"
    path = Path(os.path.expanduser(model))
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "single_file"
    if looks_like_path(model):
        return "missing_path"
    return "hub"


def builtin_folder(model: str) -> Path | None:
    """The folder a built-in name stands for (the trained toy model), or None."""
    return TOY_MODEL_DIR if model == "toy" else None


def model_folder(model: str) -> Path | None:
    """The local folder of `model` (a built-in name or a diffusers folder), or None (a hub id, a single file)."""
    folder = builtin_folder(model) or Path(os.path.expanduser(model))
    return folder if folder.is_dir() else None


def check_model_exists(model: str) -> None:
    """Fail fast (before any heavy import) when a model given as a path does not exist."""
    folder = builtin_folder(model)
    if folder is not None and not (folder / "model_index.json").is_file():
        raise ModelLoadError(
            f"the toy model is not in this installation ({folder}): reinstall taue-layers (its wheel carries the "
            "model), or in a checkout export it with `python -m lab.train --export taue_engine/toy/model`, or use "
            "tiny-random"
        )
    kind = describe_model_kind(model)
    if kind == "missing_path":
        raise ModelLoadError(
            f"model {model!r} does not exist: give a local diffusers folder (with model_index.json), "
            f"a .safetensors checkpoint file, a hub id such as {DEFAULT_HUB_MODEL}, or one of: "
            f"{', '.join(BUILTIN_MODELS)}"
        )
    if kind == "folder" and not (Path(os.path.expanduser(model)) / "model_index.json").is_file():
        raise ModelLoadError(
            f"folder {model!r} is not a diffusers pipeline (no model_index.json in it): save one with "
            f"pipe.save_pretrained(folder), or give a .safetensors checkpoint file"
        )
    if kind == "single_file" and not model.lower().endswith(SINGLE_FILE_SUFFIXES):
        raise ModelLoadError(f"model file {model!r} must be a .safetensors (or .ckpt) checkpoint")


def load_components(
    model: str,
    torch_dtype: torch.dtype,
    *,
    build: Callable[[dict], Any],
    from_pretrained: Callable[..., Any],
    from_single_file: Callable[..., Any],
    single_file_config: str | None = None,
    local_files_only: bool | None = None,
    **kwargs: Any,
):
    """Build a pipeline from any supported model source, through the given constructors of its class."""
    check_model_exists(model)
    kind = describe_model_kind(model)
    folder = builtin_folder(model)
    if folder is not None:
        model, kind = str(folder), "folder"
    if kind == "builtin":
        from .tiny import build_tiny_random_components

        pipe = build(build_tiny_random_components())
        return pipe if torch_dtype == torch.float32 else pipe.to(dtype=torch_dtype)
    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    try:
        if kind == "single_file":
            options: dict[str, Any] = {"dtype": torch_dtype, "local_files_only": local_files_only}
            if single_file_config is not None:
                options["config"] = single_file_config
            return from_single_file(os.path.expanduser(model), **options, **kwargs)
        path = os.path.expanduser(model) if kind == "folder" else model
        return from_pretrained(
            path, dtype=torch_dtype, local_files_only=local_files_only, **_variant(path, torch_dtype), **kwargs
        )
    except ModelLoadError:
        raise
    except (OSError, ValueError) as error:
        raise ModelLoadError(_explain(model, kind, error)) from error
    except Exception as error:  # network layers raise many types; the user needs one clear message
        if _is_network_error(error):
            raise ModelLoadError(_explain(model, kind, error)) from error
        raise


FP16_FIXED_SDXL_VAE = "madebyollin/sdxl-vae-fp16-fix"
"""A hub id of the SDXL VAE retrained to decode in float16 without overflow (black or NaN pictures): what --vae is
for."""


def describe_vae_kind(vae: str) -> str:
    """'folder' (a diffusers VAE folder, or a pipeline folder with vae/), 'single_file', 'hub' or 'missing_path'."""
    path = Path(os.path.expanduser(vae))
    if path.is_dir():
        return "folder"
    if path.is_file():
        return "single_file"
    return "missing_path" if looks_like_path(vae) else "hub"


def check_vae_exists(vae: str) -> None:
    """Fail fast (before any heavy import) when a VAE given as a path is missing or not a VAE."""
    kind = describe_vae_kind(vae)
    path = Path(os.path.expanduser(vae))
    if kind == "missing_path":
        raise VaeLoadError(f"vae {vae!r} does not exist: give a diffusers VAE folder (with config.json), a "
                             f".safetensors VAE file, or a hub id such as {FP16_FIXED_SDXL_VAE}")
    if kind == "folder" and not ((path / "config.json").is_file() or (path / "vae" / "config.json").is_file()):
        raise VaeLoadError(f"folder {vae!r} is not a diffusers VAE (no config.json in it or in its vae/ folder): "
                             "save one with vae.save_pretrained(folder), or give a .safetensors VAE file")
    if kind == "single_file" and not vae.lower().endswith(SINGLE_FILE_SUFFIXES):
        raise VaeLoadError(f"vae file {vae!r} must be a .safetensors (or .ckpt) file")


def load_vae(vae: str, torch_dtype: torch.dtype, like: Any, local_files_only: bool | None = None) -> Any:
    """A replacement VAE for a loaded model whose own VAE is `like`: a diffusers VAE folder (or a pipeline folder,
    whose vae/ is taken), a single .safetensors file of a VAE built as `like` is (its config describes the file, so
    no hub is asked), or a hub id. The caller checks that it fits the model's UNet."""
    import tempfile

    import diffusers

    check_vae_exists(vae)
    kind = describe_vae_kind(vae)
    if local_files_only is None:
        local_files_only = os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")
    path = os.path.expanduser(vae)
    try:
        if kind == "single_file":
            with tempfile.TemporaryDirectory() as config_dir:
                like.save_config(config_dir)
                return type(like).from_single_file(path, config=config_dir, dtype=torch_dtype, local_files_only=True)
        subfolder = "vae" if kind == "folder" and not (Path(path) / "config.json").is_file() else None
        source = path if kind == "folder" else vae
        config = diffusers.AutoencoderKL.load_config(source, subfolder=subfolder, local_files_only=local_files_only)
        cls = getattr(diffusers, config.get("_class_name", "AutoencoderKL"), None)
        if cls is None or not hasattr(cls, "from_pretrained"):
            raise VaeLoadError(f"vae {vae!r} is a {config.get('_class_name')}, not a diffusers VAE")
        return cls.from_pretrained(source, subfolder=subfolder, torch_dtype=torch_dtype,
                                   local_files_only=local_files_only)
    except VaeLoadError:
        raise
    except Exception as error:  # a file of another architecture, a missing repository, no network: one message
        if kind == "hub":
            raise VaeLoadError(
                f"could not load the VAE {vae!r} from the Hugging Face hub: no network and not in the local cache (or "
                f"no such repository). Run `hf download {vae}` where there is network and copy the cache here, or "
                f"give a local VAE folder or .safetensors file [{type(error).__name__}]") from error
        raise VaeLoadError(f"could not load the VAE {vae!r} for this model: it must be a VAE of the model's own "
                             f"architecture (an SDXL VAE for an SDXL model){_library_reason(error)}") from error


def check_vae_fits(vae: Any, unet: Any, own_vae: Any, name: str) -> None:
    """A replacement VAE must make the latents the UNet was trained on: as many channels, the same downscaling."""
    channels = getattr(vae.config, "latent_channels", None)
    if channels != unet.config.in_channels:
        raise VaeLoadError(f"vae {name!r} makes {channels}-channel latents, this model's UNet takes "
                             f"{unet.config.in_channels}: give a VAE made for this model")
    scale = lambda v: 2 ** (len(v.config.block_out_channels) - 1)  # noqa: E731 - diffusers' vae_scale_factor
    if scale(vae) != scale(own_vae):
        raise VaeLoadError(f"vae {name!r} downscales by {scale(vae)}, this model's by {scale(own_vae)}: give a VAE "
                             "made for this model")


MODEL_CONFIG_FILE = "taue_config.json"


def model_default_config(model: str):
    """The TAUEConfig a model folder recommends (`taue_config.json`: its sampling choices, config.MODEL_CARD_FIELDS),
    else the paper's defaults. SDXL checkpoints carry none.

    Raises:
        ModelLoadError: the file is not valid, or sets a field that is not a sampling choice (the method measures
            its thresholds on the model; a folder that set them would hide what users get).
    """
    import json

    from ..config import MODEL_CARD_FIELDS, TAUEConfig

    folder = builtin_folder(model) or Path(os.path.expanduser(model))
    path = folder / MODEL_CONFIG_FILE
    if not folder.is_dir() or not path.is_file():
        return TAUEConfig()
    try:
        settings = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(settings, dict):
            raise ValueError("it must hold one JSON object of settings")
        other = sorted(set(settings) - set(MODEL_CARD_FIELDS))
        if other:
            raise ValueError(f"a model folder may set only the sampling choices {', '.join(MODEL_CARD_FIELDS)}; "
                             f"remove {', '.join(other)} (the method measures those on the model itself; pass them "
                             "per job with --set FIELD=VALUE instead)")
        return TAUEConfig.from_dict(settings)
    except (ValueError, TypeError) as error:
        raise ModelLoadError(f"{path} holds invalid settings: {error}") from None


def _variant(path: str, torch_dtype: torch.dtype) -> dict[str, str]:
    """Use the fp16 weight files of a local folder when they exist and we run in float16."""
    if torch_dtype == torch.float16 and os.path.isdir(path):
        if any(p.name.endswith(".fp16.safetensors") for p in Path(path).glob("*/*.safetensors")):
            return {"variant": "fp16"}
    return {}


def _is_network_error(error: BaseException) -> bool:
    name = type(error).__name__.lower()
    return any(word in name for word in ("connection", "timeout", "http", "offline", "entrynotfound", "repository"))


def _library_reason(error: BaseException) -> str:
    """The library's own first line, short, unless it only points at a trace the user never sees."""
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if "stacktrace" in first_line.lower() or "traceback" in first_line.lower():
        return ""
    return f" [{type(error).__name__}: {first_line[:140]}]"


def _explain(model: str, kind: str, error: BaseException) -> str:
    first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    if kind == "hub":
        return (
            f"could not load {model!r} from the Hugging Face hub: no network and not in the local cache (or no "
            f"such repository). Run `hf download {model}` where there is network and copy the cache here, or give "
            f"a local diffusers folder or .safetensors file (tiny-random needs no download). [{type(error).__name__}]"
        )
    if kind == "single_file":
        return (
            f"could not load the checkpoint {model!r}: single-file SDXL loading needs the SDXL configs, from the hub "
            f"({DEFAULT_HUB_MODEL}) or from a local diffusers folder given as the single-file config; "
            f"check that the file is an SDXL checkpoint. [{type(error).__name__}: {first_line}]"
        )
    return f"could not load the diffusers folder {model!r}: [{type(error).__name__}: {first_line}]"
