"""The one client of the TAUE server that every editor plug-in embeds.

Standard library only (Krita's and GIMP's Python have nothing else), relative imports only (it is packaged into each
plug-in as a sub-package), no host API: the plug-ins add their host adapter on top.

- `api`: the HTTP API v1 (`Client`), errors a designer can act on (`TAUEError`)
- `jobs`: submit, follow, cancel and fetch one job from a worker thread (`JobRun`)
- `choices`: what a server offers (models, styles, LoRAs, samplers) and what the artist chose (`Choice`)
- `layers`: the layer stack of a result (names, order, visibility), group names, size and selection rules
"""

from .api import DEFAULT_URL, Client, TAUEError
from .choices import Choice, Offer, describe_offer, format_loras, parse_loras, server_offer
from .jobs import JobResult, JobRun, describe_preview, describe_progress, warning_messages
from .layers import (
                     EDITOR_STACK,
                     KEY_COLORS,
                     STACK,
                     LayerSpec,
                     build_request,
                     editor_request,
                     editor_stack,
                     group_name,
                     layout_from_selection,
                     new_background_request,
                     object_prompts,
                     result_stack,
                     round_size,
                     scene_objects,
)

__all__ = [
    "DEFAULT_URL", "Client", "TAUEError", "JobResult", "JobRun", "describe_preview", "describe_progress",
    "EDITOR_STACK", "STACK",
    "LayerSpec", "build_request", "editor_request", "editor_stack", "group_name", "layout_from_selection",
    "object_prompts", "result_stack", "round_size", "KEY_COLORS", "new_background_request", "scene_objects",
    "warning_messages", "Choice", "Offer", "describe_offer", "format_loras", "parse_loras", "server_offer",
]
