"""The server's settings: where jobs live, who may connect, and the limits every request is checked against."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from taue_engine.config import MAX_SIZE, MIN_SIZE

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")


@dataclass
class ServerConfig:
    data_dir: Path = field(default_factory=lambda: Path("taue-server-data"))
    """Every job gets a folder under <data_dir>/jobs: its request, its state and its result files; the styles a
    job may name beside the built-in ones are <data_dir>/styles/*.json."""
    model: str = "toy"
    """What to load when no engine is injected: the engine's names, folders and files (default: the toy). Behind a
    queue: the model a job that names none runs on, when a worker serves it (else the first served by name)."""
    host: str = "127.0.0.1"
    port: int = 7860
    token: str | None = None
    """When set, every request except /health must carry `Authorization: Bearer <token>`."""
    device: str | None = None
    dtype: str | None = None
    vae: str | None = None
    """A VAE in place of the model's own (a folder, .safetensors file or hub id), or None."""
    lora_dir: Path | None = None
    """A folder of LoRA .safetensors files that jobs may name (`loras: [{"name", "scale"}]`); None: no LoRAs. A
    request names a file of this folder, never a path."""
    models_dir: Path | None = None
    """A folder of models jobs may name (`model`): each SDXL diffusers folder and single .safetensors checkpoint in
    it, by its folder name or file stem (models_folder.py); None: only `model`. One is resident at a time."""
    max_loras: int = 8
    max_body_bytes: int = 64 * 1024
    max_prompt_chars: int = 2000
    min_size: int = MIN_SIZE
    max_size: int = 2048
    """Largest width/height a request may ask for (the engine allows up to 4096; SDXL is trained at 1024)."""
    max_steps: int = 200
    max_objects: int = 8
    """Objects one job may hold (each adds one foreground run)."""
    max_batch: int = 16
    """New backgrounds one POST .../backgrounds may ask for (one job each)."""
    max_upload_bytes: int = 64 * 1024 * 1024
    """Body limit of POST /backgrounds, whose object layers travel inside the JSON as base64 PNGs."""
    max_queue: int = 1000
    """Queued jobs beyond this are refused (409), so a runaway client cannot fill the disk."""
    page_size: int = 20
    max_page_size: int = 100
    queue: str | None = None
    """A Redis URL (redis://[:password@]host:port/db): jobs go on its RQ queue for taue-workers; None: this process
    runs them."""
    preview_seconds: float | None = 0.5
    """A running job's preview (GET /jobs/<id>/preview.png) is made at each phase's first step and then at most
    every this many seconds (0: every step); None: no previews."""

    def __post_init__(self) -> None:
        self.data_dir = Path(self.data_dir)
        if self.lora_dir is not None:
            self.lora_dir = Path(self.lora_dir)
            if not self.lora_dir.is_dir():
                raise ValueError(f"--lora-dir {str(self.lora_dir)!r} is not a folder: name the folder that holds "
                                 "your LoRA .safetensors files")
        if self.models_dir is not None:
            if self.queue:
                raise ValueError("--models-dir is for a server that runs its jobs itself: behind --queue each "
                                 "taue-worker serves one model (taue-worker --models-dir DIR --model NAME), and jobs "
                                 "may name any model a worker serves")
            from .models_folder import check_models_folder

            self.models_dir = check_models_folder(self.models_dir)
        if not 0 < self.port < 65536:
            raise ValueError(f"port must be in 1..65535 (got {self.port})")
        if self.token is not None and len(self.token) < 8:
            raise ValueError("token must be at least 8 characters")
        if not self.is_loopback and not self.token:
            raise ValueError(
                f"binding to {self.host} lets other machines connect: pass --token <secret> (clients send it as "
                f"'Authorization: Bearer <secret>'), or bind to 127.0.0.1")
        if self.preview_seconds is not None and not 0 <= self.preview_seconds <= 3600:
            raise ValueError(f"--preview-seconds must be in 0..3600 (got {self.preview_seconds:g})")
        if not MIN_SIZE <= self.min_size <= self.max_size <= MAX_SIZE:
            raise ValueError(f"size limits must satisfy {MIN_SIZE} <= min_size <= max_size <= {MAX_SIZE}")

    @property
    def is_loopback(self) -> bool:
        if self.host in LOOPBACK_NAMES:
            return True
        try:
            return ipaddress.ip_address(self.host).is_loopback
        except ValueError:
            return False

    def loras(self) -> dict[str, Path]:
        """The LoRAs jobs may name (read from the folder each time: files added while the server runs count)."""
        from taue_engine.loras import lora_folder_files

        return lora_folder_files(self.lora_dir) if self.lora_dir is not None else {}

    def styles(self) -> dict:
        """The styles jobs may name: the built-in ones, then <data_dir>/styles/*.json (styles.py; read each time)."""
        from .styles import load_styles

        return load_styles(self.styles_dir)

    @property
    def styles_dir(self) -> Path:
        return self.data_dir / "styles"

    def models(self) -> dict:
        """The models jobs may name from --models-dir, by name (models_folder.ModelEntry; read each time)."""
        from .models_folder import scan_models

        return scan_models(self.models_dir) if self.models_dir is not None else {}

    def model_source(self, name: str | None = None) -> str:
        """What to load for a model name (None: the one the server starts with): a --models-dir entry's path, else
        the name as given (`model`: a built-in name, a path or a hub id)."""
        name = name or self.model
        entry = self.models().get(name)
        return str(entry.path) if entry is not None else name

    @property
    def jobs_dir(self) -> Path:
        return self.data_dir / "jobs"
