"""The models a job may name on this server, and the one a job that names none runs on, read once per request:
the --models-dir entries of a single-process server, or the models its taue-workers serve behind a queue. The
request's `model` field is checked against it (fields.ModelName), and /health lists it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .errors import APIError


def path_like(name: str) -> bool:
    """Whether a model's name reads as a path (a separator, `..`, NUL): a name a request may never send."""
    return any(c in name for c in "/\\\x00") or ".." in name


@dataclass(frozen=True)
class ModelChoice:
    kinds: dict[str, str]
    """Name -> kind (start, folder, single_file; worker behind a queue), the default first."""
    default: str | None
    """What a job that names no model runs on (None: no worker has joined yet)."""
    single: str | None = None
    """A server that serves only the model it started with: why a job may not name another (a 400)."""
    by_workers: bool = False
    """The names are what the workers serve now: a name none serves is a 409 (one may join), not a 400."""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(self.kinds)

    def missing(self, model: str) -> str | None:
        """Why a job recorded on `model` (a parent of new backgrounds) cannot run here now, or None."""
        if self.single is not None or model in self.kinds:
            return None  # a single-model server runs everything on its one model
        where = "a taue-worker with it" if self.by_workers else "put it back in --models-dir"
        return (f"its model {model!r} is not served here now ({', '.join(sorted(self.kinds)) or 'none yet'}): its "
                f"kept objects were made by it; serve it again ({where}), then ask again")

    def check(self, field: str, value: Any) -> str:
        """`value` as a job's model: a 400 (or 409 behind a queue) that lists the models otherwise."""
        listed = ", ".join(sorted(self.kinds)) or "none yet"
        if not isinstance(value, str) or not value:
            raise APIError(400, f"{field} must be a model's name, a string (this server has: {listed})", field=field)
        if path_like(value):
            raise APIError(400, f"{field} must name a model of the server, not a path (got {value[:60]!r}); this "
                                f"server has: {listed}", field=field)
        if value in self.kinds:
            return value
        if self.single is not None:
            raise APIError(400, f"{field}: {self.single}", field=field)
        if self.by_workers:
            raise APIError(409, f"{field}: no taue-worker serves the model {value[:60]!r}; served now: {listed} (start "
                                f"one with `taue-worker --queue URL --model {value[:60]}`, then submit again)",
                           code="model_not_served", field=field)
        raise APIError(400, f"{field}: no model {value[:60]!r} on this server; it has: {listed}", field=field)


def folder_choice(config, served: str | None = None) -> ModelChoice:
    """A single-process server's models: the one it started with (`served`: the name of the model it was given,
    default its --model), then its --models-dir entries (read now)."""
    if config.models_dir is None:
        start = served or config.model
        return ModelChoice({start: "start"}, start,
                           single=f"this server serves one model ({start}); start taue-server with "
                                  "--models-dir DIR to let jobs choose among the models in DIR")
    entries = config.models()
    kinds = {config.model: entries[config.model].kind if config.model in entries else "start"}
    kinds.update((name, entry.kind) for name, entry in entries.items() if name != config.model)
    return ModelChoice(kinds, config.model)


def workers_choice(served: list[str], preferred: str) -> ModelChoice:
    """The models the workers behind a queue serve: the default is the front's --model when a worker serves it,
    else the first by name."""
    names = sorted(set(served))
    default = preferred if preferred in names else (names[0] if names else None)
    ordered = ([default] if default else []) + [name for name in names if name != default]
    return ModelChoice({name: "worker" for name in ordered}, default, by_workers=True)
