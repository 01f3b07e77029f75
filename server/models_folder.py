"""The models one server may switch between: every SDXL diffusers folder (with model_index.json) and single
.safetensors checkpoint in its --models-dir, each named after its entry (the folder's name, the file's stem).

The folder is read each time it is asked, so that a model copied in while the server runs counts; an entry that is
not a model is skipped with one log line.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("taue.server")
CHECKPOINT_SUFFIX = ".safetensors"
_told: set[str] = set()  # entries already logged as skipped


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    kind: str  # "folder" (diffusers) or "single_file" (a checkpoint)


def check_models_folder(folder: Path) -> Path:
    """`folder` as a --models-dir (taue-server's and taue-worker's), or ValueError saying what to name."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"--models-dir {str(folder)!r} is not a folder: name the folder that holds your SDXL "
                         "diffusers folders and .safetensors checkpoints")
    return folder


def scan_models(folder: Path) -> dict[str, ModelEntry]:
    """The models in `folder`, by name, in name order."""
    found: dict[str, ModelEntry] = {}
    for path in sorted(folder.iterdir()):
        if path.name.startswith("."):
            continue
        if path.is_dir() and (path / "model_index.json").is_file():
            entry = ModelEntry(path.name, path, "folder")
        elif path.is_file() and path.suffix.lower() == CHECKPOINT_SUFFIX:
            entry = ModelEntry(path.stem, path, "single_file")
        else:
            _skip(path, "neither a diffusers folder (with model_index.json) nor a .safetensors checkpoint")
            continue
        if entry.name in found:
            _skip(path, f"another entry is already named {entry.name!r}")
            continue
        found[entry.name] = entry
    return found


def _skip(path: Path, why: str) -> None:
    if str(path) not in _told:
        _told.add(str(path))
        log.warning("models folder: skipped %s: %s", path, why)


def entry_name(model: str) -> str:
    """The name a model goes by when it is given as a path or hub id (a taue-worker's --model): as in a models
    folder, a folder's name or a checkpoint's stem; a hub id's last part; a built-in name (toy) itself."""
    last = model.rstrip("/\\").replace("\\", "/").rsplit("/", 1)[-1]
    return last[: -len(CHECKPOINT_SUFFIX)] if last.lower().endswith(CHECKPOINT_SUFFIX) else last
